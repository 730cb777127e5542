package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/blockmix/blockmix/blocks"
	"github.com/blockmix/blockmix/webui/apiv1"
)

// startDaemon runs `blockmix daemon` on w's repo, on 127.0.0.1 only, and
// waits for its API.
func startDaemon(t testing.TB, w *world, bootstrap []string) (*started, apiv1.IDInfo) {
	t.Helper()
	args := []string{"--listen", "/ip4/127.0.0.1/tcp/0", "--api", "127.0.0.1:0"}
	for _, b := range bootstrap {
		args = append(args, "--bootstrap", b)
	}
	return startDaemonWith(t, w, args...)
}

// startDaemonWith runs `blockmix daemon args...` on w's repo and waits for
// its API. The caller keeps it off the real network (127.0.0.1 only).
func startDaemonWith(t testing.TB, w *world, args ...string) (*started, apiv1.IDInfo) {
	t.Helper()
	return startDaemonOpts(t, w, runOpts{}, args...)
}

// startDaemonOpts is startDaemonWith with the less common options (a
// longer life than cmdTimeout, say).
func startDaemonOpts(t testing.TB, w *world, o runOpts, args ...string) (*started, apiv1.IDInfo) {
	t.Helper()
	p := w.startWith(o, append([]string{"daemon"}, args...)...)
	deadline := time.Now().Add(30 * time.Second)
	for {
		if info, ok := daemonID(w); ok {
			return p, info
		}
		if p.exited() || time.Now().After(deadline) {
			t.Fatalf("daemon on %s did not come up:\n%s", w.repo, p.stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func daemonID(w *world) (apiv1.IDInfo, bool) {
	b, err := os.ReadFile(filepath.Join(w.repo, "api"))
	if err != nil {
		return apiv1.IDInfo{}, false
	}
	resp, err := http.Get(strings.TrimSpace(string(b)) + "/api/v1/id")
	if err != nil {
		return apiv1.IDInfo{}, false
	}
	defer resp.Body.Close()
	var info apiv1.IDInfo
	return info, json.NewDecoder(resp.Body).Decode(&info) == nil && resp.StatusCode == http.StatusOK
}

// TestFiveDaemons is the network's promise end to end, with real
// processes: five daemons on 127.0.0.1, a put on node 2, node 2 stops, and
// node 5 gets the file byte for byte from the others.
func TestFiveDaemons(t *testing.T) {
	if testing.Short() {
		t.Skip("starts five daemons")
	}
	var worlds []*world
	var procs []*started
	var addrs []string
	for i := 0; i < 5; i++ {
		w := newWorld(t)
		p, info := startDaemon(t, w, addrs)
		worlds, procs = append(worlds, w), append(procs, p)
		addrs = append(addrs, info.Addrs[0])
	}
	// Every routing table knows the four others (bounded wait).
	deadline := time.Now().Add(30 * time.Second)
	for i, w := range worlds {
		for {
			info, ok := daemonID(w)
			if ok && info.RoutingTable >= 4 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("node %d: routing table %d, want 4", i+1, info.RoutingTable)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}

	data := randBytes(500, 3<<20+777)
	n2, n5 := worlds[1], worlds[4]
	n2.file("shared.bin", data)
	var out apiv1.PutInfo
	decodeStrict(t, n2.ok("put", "--json", "shared.bin"), &out)
	if out.Short == nil || *out.Short != 0 || out.Replicas != 3 || out.Placement != "" {
		t.Fatalf("put through the daemon: %+v", out)
	}

	// The uploader goes away.
	if err := procs[1].cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-procs[1].done:
	case <-time.After(20 * time.Second):
		t.Fatal("daemon 2 did not stop on SIGTERM")
	}
	if _, err := os.Stat(filepath.Join(n2.repo, "api")); !os.IsNotExist(err) {
		t.Errorf("daemon 2 left its api file behind: %v", err)
	}

	if got := n5.getFile(out.Recipe); !bytes.Equal(got, data) {
		t.Fatal("node 5 did not get the file back byte for byte")
	}

	// id and peers through node 5's daemon; id of the stopped node from its repo.
	var id apiv1.IDInfo
	decodeStrict(t, n5.ok("id", "--json"), &id)
	if want, _ := daemonID(n5); id.ID != want.ID || len(id.Addrs) == 0 {
		t.Errorf("id --json: %+v", id)
	}
	if !strings.Contains(string(n2.ok("id")), procsID(t, addrs[1])) {
		t.Errorf("id of a stopped node does not read its identity")
	}
	var ps []apiv1.PeerInfo
	if err := json.Unmarshal(n5.ok("peers", "--json"), &ps); err != nil || len(ps) < 3 {
		t.Fatalf("peers --json: %d peers, %v", len(ps), err)
	}
	fetched := false
	for _, p := range ps {
		fetched = fetched || p.BytesIn > 0
	}
	if !fetched {
		t.Errorf("peers shows no bytes fetched after a get: %+v", ps)
	}
	if r := worlds[1].run("peers"); r.code != 1 || !strings.Contains(string(r.stderr), "no daemon") {
		t.Errorf("peers without a daemon: %v", r)
	}
}

// procsID returns the peer ID at the end of a multiaddr.
func procsID(t *testing.T, addr string) string {
	t.Helper()
	i := strings.LastIndex(addr, "/p2p/")
	if i < 0 {
		t.Fatalf("no /p2p/ in %s", addr)
	}
	return addr[i+len("/p2p/"):]
}

// waitFor polls cond until it holds, failing the test after timeout.
func waitFor(t testing.TB, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// statusOf runs status --json.
func statusOf(t *testing.T, w *world) apiv1.StatusInfo {
	t.Helper()
	var s apiv1.StatusInfo
	decodeStrict(t, w.ok("status", "--json"), &s)
	return s
}

// stopDaemon ends a daemon with SIGTERM, as a user would.
func stopDaemon(t *testing.T, p *started) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.done:
	case <-time.After(20 * time.Second):
		t.Fatal("the daemon did not stop on SIGTERM")
	}
}

// TestCommandsThroughDaemon: while a daemon holds the repo, stat, files,
// verify and block answer through it, exactly as they do offline; a
// damaged block is seen and quarantined through it too.
func TestCommandsThroughDaemon(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.file("a.bin", randBytes(140, 300<<10))
	w.file("b.txt", randBytes(141, 3000))
	w.ok("put", "a.bin", "b.txt")

	// What the commands print offline.
	textCmds := [][]string{{"files"}, {"files", "--json"}, {"block", "ls"}, {"block", "ls", "--json"}, {"verify"}, {"verify", "--json"}}
	offline := map[string][]byte{}
	for _, args := range textCmds {
		offline[strings.Join(args, " ")] = w.ok(args...)
	}
	stat := w.stat()
	statText := w.ok("stat")
	ids := w.blockIDs()
	blockBytes := map[blocks.ID][]byte{}
	for _, id := range ids {
		blockBytes[id] = w.ok("block", "get", id.String())
	}

	p, _ := startDaemonWith(t, w, "--listen", "/ip4/127.0.0.1/tcp/0", "--api", "127.0.0.1:0")
	// The daemon holds the repo: a command that opened the store itself
	// would fail with "in use", so each success went through the daemon.
	for _, args := range textCmds {
		if got := w.ok(args...); !bytes.Equal(got, offline[strings.Join(args, " ")]) {
			t.Errorf("%v through the daemon:\n%s\noffline:\n%s", args, got, offline[strings.Join(args, " ")])
		}
	}
	// The index's files on disk may change once the daemon opens it.
	got := w.stat()
	got.DiskBytes, stat.DiskBytes = 0, 0
	if got != stat {
		t.Errorf("stat --json through the daemon: %+v, offline %+v", got, stat)
	}
	dropDisk := func(b []byte) string {
		var keep []string
		for _, l := range strings.Split(string(b), "\n") {
			if !strings.HasPrefix(l, "on disk") {
				keep = append(keep, l)
			}
		}
		return strings.Join(keep, "\n")
	}
	if got := w.ok("stat"); dropDisk(got) != dropDisk(statText) {
		t.Errorf("stat through the daemon:\n%s\noffline:\n%s", got, statText)
	}
	for id, want := range blockBytes {
		if got := w.ok("block", "get", id.String()); !bytes.Equal(got, want) {
			t.Errorf("block get %s through the daemon: %d bytes, offline %d", id, len(got), len(want))
		}
	}
	missing := blocks.Sum([]byte("not stored"))
	if r := w.want(1, "block", "get", missing.String()); !strings.Contains(string(r.stderr), "not found") || len(r.stdout) != 0 {
		t.Errorf("block get of a missing block through the daemon:\n%v", r)
	}
	w.want(2, "block", "get", "bafkrei-not-an-id")

	// A damaged block, seen through the daemon.
	var victim blocks.ID
	for id, b := range blockBytes {
		if len(b) == 128<<10 {
			victim = id
			break
		}
	}
	if victim.IsZero() {
		t.Fatal("no 128 KiB block in the store")
	}
	flipByteOf(t, w.repo, blockBytes[victim])
	if r := w.want(1, "block", "get", victim.String()); !strings.Contains(string(r.stderr), "corrupt") || len(r.stdout) != 0 {
		t.Errorf("block get of a damaged block through the daemon:\n%v", r)
	}
	r := w.want(1, "verify")
	if out := string(r.stdout); !strings.Contains(out, "corrupt  "+victim.String()+"  (quarantined)") || !strings.Contains(out, ": 1 corrupt") {
		t.Errorf("verify through the daemon does not report the damaged block:\n%v", r)
	}
	if !strings.Contains(string(r.stderr), "1 corrupt blocks quarantined") {
		t.Errorf("verify's error through the daemon:\n%s", r.stderr)
	}
	var v jsonVerify
	decodeStrict(t, w.ok("verify", "--json"), &v)
	if v.Checked != len(ids)-1 || len(v.Quarantined) != 0 || v.Quarantined == nil {
		t.Errorf("second verify through the daemon: %+v, want %d checked, none quarantined", v, len(ids)-1)
	}
	if slices.Contains(w.blockIDs(), victim) {
		t.Errorf("block ls through the daemon lists the quarantined block")
	}
	w.want(1, "block", "get", victim.String())
	s := statusOf(t, w)
	if s.State != apiv1.StateQuarantined || s.Store.Quarantined != 1 || !strings.Contains(s.Verdict, "quarantined: 1 corrupt block") {
		t.Errorf("status after a quarantine: %s %q (%d quarantined)", s.State, s.Verdict, s.Store.Quarantined)
	}

	// A daemon killed without a chance to clean up leaves its api file; the
	// commands notice nobody answers and open the store themselves.
	p.kill(t)
	if _, err := os.Stat(filepath.Join(w.repo, "api")); err != nil {
		t.Fatalf("a killed daemon's api file: %v", err)
	}
	if s := w.stat(); s.Quarantined != 1 || s.Blocks != len(ids)-1 {
		t.Errorf("stat offline after the daemon died: %+v", s)
	}
	w.ok("verify")
}

// TestStatus: status offline, alone, with one peer (ok for one and too few
// for the other), and the traffic a put makes.
func TestStatus(t *testing.T) {
	if testing.Short() {
		t.Skip("starts two daemons")
	}
	t.Parallel()
	a, b := newWorld(t), newWorld(t)

	// Offline: says so, sums up the store, exits 0.
	out := string(a.ok("status"))
	if first, _, _ := strings.Cut(out, "\n"); !strings.HasPrefix(first, "no daemon running on "+a.repo+" (offline)") {
		t.Errorf("status offline begins %q", first)
	}
	for _, sub := range []string{"repo           " + a.repo, "blocks         0 ", "files          0 ", "quarantined    none"} {
		if !strings.Contains(out, sub) {
			t.Errorf("status offline does not say %q:\n%s", sub, out)
		}
	}
	s := statusOf(t, a)
	if s.Daemon || s.State != apiv1.StateOffline || s.Repo != a.repo || s.ID != "" {
		t.Errorf("status --json offline: %+v", s)
	}
	if r := a.runWith(runOpts{noRepo: true}, "--repo", filepath.Join(a.dir, "nowhere"), "status"); r.code != 1 || !strings.Contains(string(r.stderr), "no blockmix repo") {
		t.Errorf("status of a missing repo:\n%v", r)
	}

	// Alone.
	_, ida := startDaemonWith(t, a, "--listen", "/ip4/127.0.0.1/tcp/0", "--api", "127.0.0.1:0", "--replicas", "1")
	out = string(a.ok("status"))
	for _, sub := range []string{"alone: no peers connected", "--bootstrap", "peer ID        " + ida.ID, "uptime ", "peers          0 connected",
		"replicas       1 ", "network        ", "repo           " + a.repo} {
		if !strings.Contains(out, sub) {
			t.Errorf("status of a lone daemon does not say %q:\n%s", sub, out)
		}
	}
	if s := statusOf(t, a); !s.Daemon || s.State != apiv1.StateAlone || s.ID != ida.ID || s.Replicas != 1 ||
		time.Since(s.Started) > time.Minute || s.UptimeSeconds < 0 || s.UptimeSeconds > 60 {
		t.Errorf("status --json of a lone daemon: %+v", s)
	}

	// One peer: enough for a, which wants one copy; too few for b (three).
	startDaemonWith(t, b, "--listen", "/ip4/127.0.0.1/tcp/0", "--api", "127.0.0.1:0", "--bootstrap", ida.Addrs[0])
	waitFor(t, "a sees b", 30*time.Second, func() bool { return statusOf(t, a).Peers >= 1 })
	sa := statusOf(t, a)
	if sa.State != apiv1.StateOK || sa.Verdict != "ok: connected to 1 peer; files you put get 1 copy on other nodes" {
		t.Errorf("status of a with one peer: %s %q", sa.State, sa.Verdict)
	}
	sb := statusOf(t, b)
	if sb.State != apiv1.StateFewPeers || !strings.Contains(sb.Verdict, "connected to 1 peer") || !strings.Contains(sb.Verdict, "not the 3 wanted") {
		t.Errorf("status of b with one peer: %s %q", sb.State, sb.Verdict)
	}

	// A put on a pushes its blocks to b: the traffic shows on both.
	data := randBytes(150, 1<<20)
	a.file("t.bin", data)
	var put apiv1.PutInfo
	decodeStrict(t, a.ok("put", "--json", "t.bin"), &put)
	if put.Short == nil || *put.Short != 0 {
		t.Fatalf("put with one peer and --replicas 1: %+v", put)
	}
	// libp2p's counters catch up about once a second.
	waitFor(t, "the traffic of a 1 MiB put shows in status", 15*time.Second, func() bool {
		sa, sb = statusOf(t, a), statusOf(t, b)
		return sa.BytesOut >= int64(len(data)) && sb.BytesIn >= int64(len(data))
	})
	if sa.Store.Files != 1 || sa.Store.FileBytes != int64(len(data)) || sa.Store.Blocks == 0 || sa.Store.Overhead <= 1 {
		t.Errorf("status --json store: %+v", sa.Store)
	}
	if out := string(a.ok("status")); !strings.Contains(out, "files          1 (1.0 MiB)") || !strings.Contains(out, " out since the start") {
		t.Errorf("status after a put:\n%s", out)
	}
}

// TestDaemonCache: a node keeps the blocks it fetched (they serve other
// files and peers) unless --cache says the store is full enough.
func TestDaemonCache(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three daemons")
	}
	t.Parallel()
	up, keeper, passer := newWorld(t), newWorld(t), newWorld(t)
	_, idu := startDaemonWith(t, up, "--listen", "/ip4/127.0.0.1/tcp/0", "--api", "127.0.0.1:0")
	sum := writeRandomFile(t, up.path("f.bin"), 21, 3<<20)
	rc := up.okLine("--no-progress", "put", up.path("f.bin"))
	// Started after the put, so nothing was pushed to them.
	startDaemonWith(t, keeper, "--listen", "/ip4/127.0.0.1/tcp/0", "--api", "127.0.0.1:0", "--bootstrap", idu.Addrs[0])
	startDaemonWith(t, passer, "--listen", "/ip4/127.0.0.1/tcp/0", "--api", "127.0.0.1:0", "--bootstrap", idu.Addrs[0], "--cache", "0")
	for _, w := range []*world{keeper, passer} {
		if got := w.getSum(rc); got != sum {
			t.Fatalf("%s rebuilt a different file", w.repo)
		}
	}
	if s := keeper.stat(); s.Blocks < 24 {
		t.Errorf("the default cache kept %d blocks of a 3 MiB file", s.Blocks)
	}
	if s := passer.stat(); s.Blocks != 0 {
		t.Errorf("--cache 0 kept %d blocks", s.Blocks)
	}
}
