//go:build linux

package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/blockmix/blockmix/webui/apiv1"
)

// daemonArgs are the flags of a test daemon on 127.0.0.1.
func daemonArgs(more ...string) []string {
	return append([]string{"--listen", "/ip4/127.0.0.1/tcp/0", "--api", "127.0.0.1:0"}, more...)
}

// uploaderAndDonors starts a daemon (the uploader) and n more joined
// through it, all with args, and waits until the uploader's routing table
// holds the n others.
func uploaderAndDonors(t testing.TB, n int, args []string) (up *world, pu *started, donors []*world, procs []*started) {
	t.Helper()
	up = newWorld(t)
	pu, idu := startDaemonWith(t, up, args...)
	for range n {
		w := newWorld(t)
		p, _ := startDaemonWith(t, w, append(args, "--bootstrap", idu.Addrs[0])...)
		donors, procs = append(donors, w), append(procs, p)
	}
	waitRoutingTable(t, up, n)
	return up, pu, donors, procs
}

// putPlaced puts a file through w's daemon and fails the test unless
// every block got all its copies (what names the situation).
func putPlaced(t *testing.T, w *world, path, what string) apiv1.PutInfo {
	t.Helper()
	var put apiv1.PutInfo
	if err := json.Unmarshal(w.ok("--no-progress", "put", "--json", path), &put); err != nil {
		t.Fatal(err)
	}
	if put.Short == nil || *put.Short != 0 {
		t.Fatalf("%s: not placed in full: %+v", what, put)
	}
	return put
}

// TestQuotaRefusalsFallBack: a donor with a small quota refuses the pushes
// past it, with the reason, and the uploader gives those blocks to the next
// closest node: the put still gets every copy.
func TestQuotaRefusalsFallBack(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three daemons")
	}
	t.Parallel()
	up, small, big := newWorld(t), newWorld(t), newWorld(t)
	_, idu := startDaemonWith(t, up, daemonArgs("--replicas", "1")...)
	const quota = 256 << 10
	startDaemonWith(t, small, daemonArgs("--bootstrap", idu.Addrs[0], "--donor", "--quota", "256KiB")...)
	startDaemonWith(t, big, daemonArgs("--bootstrap", idu.Addrs[0], "--donor", "--quota", "1GiB")...)
	waitRoutingTable(t, up, 2)

	writeRandomFile(t, up.path("f.bin"), 31, 3<<20)
	put := putPlaced(t, up, up.path("f.bin"), "put with a full donor")
	s := small.stat()
	if s.Quota != quota {
		t.Errorf("stat --json says quota %d, want %d", s.Quota, quota)
	}
	if s.Bytes == 0 || s.Bytes > quota {
		t.Errorf("the small donor holds %d bytes; want some, at most %d", s.Bytes, quota)
	}
	if b := big.stat(); int(b.Blocks)+s.Blocks < put.Blocks {
		t.Errorf("the donors hold %d+%d blocks of the file's %d", s.Blocks, b.Blocks, put.Blocks)
	}
	st := statusOf(t, small)
	if st.Quota != quota {
		t.Errorf("status --json says quota %d, want %d", st.Quota, quota)
	}
	if out := string(small.ok("status")); !strings.Contains(out, "quota") {
		t.Errorf("status does not show the quota:\n%s", out)
	}
}

// TestPinsAndGC: gc evicts the blocks a node cached for a read, never those
// of a pinned file; after unpin, those go too; a pinned file rebuilds on the
// node with the network gone.
func TestPinsAndGC(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three daemons")
	}
	t.Parallel()
	up, holder, n := newWorld(t), newWorld(t), newWorld(t)
	pu, idu := startDaemonWith(t, up, daemonArgs("--replicas", "1")...)
	ph, _ := startDaemonWith(t, holder, daemonArgs("--bootstrap", idu.Addrs[0])...)
	waitRoutingTable(t, up, 1)
	sumA := writeRandomFile(t, up.path("a.bin"), 41, 2<<20)
	sumB := writeRandomFile(t, up.path("b.bin"), 42, 2<<20)
	ra := up.okLine("--no-progress", "put", up.path("a.bin"))
	rb := up.okLine("--no-progress", "put", up.path("b.bin"))

	// n joins after the puts, so all it holds it fetched.
	pn, _ := startDaemonWith(t, n, daemonArgs("--bootstrap", idu.Addrs[0], "--replicas", "1")...)
	waitRoutingTable(t, n, 2)
	if out := n.okLine("pin", ra); !strings.HasPrefix(out, "pinned a.bin") {
		t.Fatalf("pin says %q", out)
	}
	if n.getSum(rb) != sumB {
		t.Fatal("b.bin rebuilt wrong")
	}
	before := n.stat()
	var gc apiv1.GCInfo
	if err := json.Unmarshal(n.ok("gc", "--json"), &gc); err != nil {
		t.Fatal(err)
	}
	after := n.stat()
	if gc.EvictedBlocks == 0 || gc.PinnedBlocks == 0 || after.Blocks != before.Blocks-gc.EvictedBlocks ||
		gc.EvictedBlocks+gc.PinnedBlocks+gc.KeptBlocks != before.Blocks {
		t.Fatalf("gc %+v: %d blocks before, %d after", gc, before.Blocks, after.Blocks)
	}
	if fs := n.ok("pins"); !strings.Contains(string(fs), "a.bin") || strings.Contains(string(fs), "b.bin") {
		t.Fatalf("pins:\n%s", fs)
	}

	// The network goes away: the pinned file is still whole here.
	for _, p := range []*started{pu, ph, pn} {
		stopDaemon(t, p)
	}
	if n.getSum(ra) != sumA {
		t.Fatal("the pinned file does not rebuild offline")
	}
	if r := n.run("gc"); r.code != 1 || !strings.Contains(string(r.stderr), "no daemon") {
		t.Fatalf("gc offline:\n%v", r)
	}
	n.ok("unpin", ra)
	if fs := n.ok("pins"); len(strings.TrimSpace(string(fs))) != 0 {
		t.Fatalf("pins after unpin:\n%s", fs)
	}
}

// TestDonorDiskFull: a donor whose disk fills up (a file-size limit set on
// the running process) refuses the pushes it cannot store, says so in
// status, keeps serving, and loses nothing; the uploader's blocks go to
// the next node.
func TestDonorDiskFull(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three daemons")
	}
	t.Parallel()
	up, full, roomy := newWorld(t), newWorld(t), newWorld(t)
	_, idu := startDaemonWith(t, up, daemonArgs("--replicas", "1")...)
	pf, _ := startDaemonWith(t, full, daemonArgs("--bootstrap", idu.Addrs[0])...)
	startDaemonWith(t, roomy, daemonArgs("--bootstrap", idu.Addrs[0])...)
	waitRoutingTable(t, up, 2)
	// From now on no file of the full donor may grow past 512 KiB: its
	// segment fills up (Go programs ignore SIGXFSZ, so writes fail).
	lim := unix.Rlimit{Cur: 512 << 10, Max: 512 << 10}
	if err := unix.Prlimit(pf.cmd.Process.Pid, unix.RLIMIT_FSIZE, &lim, nil); err != nil {
		t.Fatal(err)
	}
	writeRandomFile(t, up.path("f.bin"), 51, 3<<20)
	putPlaced(t, up, up.path("f.bin"), "put beside a full donor")
	st := statusOf(t, full)
	if st.State != apiv1.StateStoreFails || !strings.Contains(st.Verdict, "file too large") || !strings.Contains(st.Verdict, "disk") {
		t.Errorf("the full donor's status: %s %q", st.State, st.Verdict)
	}
	// Still up, and what it holds is whole.
	var v jsonVerify
	decodeStrict(t, full.ok("verify", "--json"), &v)
	if v.Checked == 0 || len(v.Quarantined) != 0 {
		t.Errorf("verify on the full donor: %+v", v)
	}
}

// TestFairShare: a donor with --fair-share takes from a peer that holds
// nothing for it only the allowance, refuses the rest (the uploader moves
// on), and shows the accounts in peers.
func TestFairShare(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three daemons")
	}
	t.Parallel()
	up, fair, roomy := newWorld(t), newWorld(t), newWorld(t)
	_, idu := startDaemonWith(t, up, daemonArgs("--replicas", "1")...)
	const allowance = 256 << 10
	startDaemonWith(t, fair, daemonArgs("--bootstrap", idu.Addrs[0], "--fair-share", "256KiB")...)
	startDaemonWith(t, roomy, daemonArgs("--bootstrap", idu.Addrs[0])...)
	waitRoutingTable(t, up, 2)
	writeRandomFile(t, up.path("f.bin"), 61, 3<<20)
	putPlaced(t, up, up.path("f.bin"), "put beside a fair-share donor")
	var ps []apiv1.PeerInfo
	if err := json.Unmarshal(fair.ok("peers", "--json"), &ps); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, p := range ps {
		if p.ID == idu.ID {
			found = true
			if p.StoredHere == 0 || p.StoredHere > allowance || p.HoldsForUs != 0 {
				t.Errorf("the uploader's account on the fair donor: stored here %d (allowance %d), holds for us %d", p.StoredHere, allowance, p.HoldsForUs)
			}
		}
	}
	if !found {
		t.Fatalf("the uploader is not among the fair donor's peers: %+v", ps)
	}
	if s := fair.stat(); s.Bytes > allowance {
		t.Errorf("the fair donor holds %d bytes, more than the allowance %d", s.Bytes, allowance)
	}
}

// TestHandOffOverQuota: a donor restarted with a quota below what it holds
// says so, and gc hands the blocks it holds for the network to the next
// closest nodes before it lets them go: the file keeps its copies.
func TestHandOffOverQuota(t *testing.T) {
	if testing.Short() {
		t.Skip("starts four daemons")
	}
	t.Parallel()
	up, d1, d2, d3 := newWorld(t), newWorld(t), newWorld(t), newWorld(t)
	_, idu := startDaemonWith(t, up, daemonArgs("--replicas", "2")...)
	p1, _ := startDaemonWith(t, d1, daemonArgs("--bootstrap", idu.Addrs[0], "--replicas", "2")...)
	for _, w := range []*world{d2, d3} {
		startDaemonWith(t, w, daemonArgs("--bootstrap", idu.Addrs[0], "--replicas", "2")...)
	}
	waitRoutingTable(t, up, 3)
	sum := writeRandomFile(t, up.path("f.bin"), 71, 2<<20)
	rc := up.okLine("--no-progress", "put", up.path("f.bin"))
	held := d1.stat().Bytes
	if held == 0 {
		t.Fatal("d1 took no blocks")
	}

	stopDaemon(t, p1)
	startDaemonWith(t, d1, daemonArgs("--bootstrap", idu.Addrs[0], "--replicas", "2", "--quota", "64KiB")...)
	waitRoutingTable(t, d1, 3)
	if st := statusOf(t, d1); st.State != apiv1.StateOverQuota {
		t.Errorf("d1 over its quota: %s %q", st.State, st.Verdict)
	}
	var gc apiv1.GCInfo
	if err := json.Unmarshal(d1.ok("gc", "--json"), &gc); err != nil {
		t.Fatal(err)
	}
	if gc.HandedOff == 0 || d1.stat().Bytes > 64<<10 {
		t.Fatalf("gc over quota: %+v, d1 holds %d bytes (had %d)", gc, d1.stat().Bytes, held)
	}
	// Every block still has its two copies among the nodes closest to it.
	var h apiv1.HealthInfo
	if err := json.Unmarshal(mustGet(t, up, "/api/v1/health?"+url.Values{"recipe": {rc}}.Encode()), &h); err != nil {
		t.Fatal(err)
	}
	if h.State != apiv1.HealthHealthy || h.MinCopies < 2 || h.Missing != 0 {
		t.Fatalf("after the hand-off: %+v", h)
	}
	if d2.getSum(rc) != sum {
		t.Fatal("the file no longer rebuilds")
	}
}

// mustGet reads an API path of w's daemon.
func mustGet(t *testing.T, w *world, path string) []byte {
	t.Helper()
	resp, err := http.Get(w.apiBase(t) + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %s %v", path, resp.StatusCode, b, err)
	}
	return b
}
