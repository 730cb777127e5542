package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/blockmix/blockmix/webui"
)

// startDaemon runs `blockmix daemon` on w's repo, on 127.0.0.1 only, and
// waits for its API.
func startDaemon(t *testing.T, w *world, bootstrap []string) (*started, webui.IDInfo) {
	t.Helper()
	args := []string{"daemon", "--listen", "/ip4/127.0.0.1/tcp/0", "--api", "127.0.0.1:0"}
	for _, b := range bootstrap {
		args = append(args, "--bootstrap", b)
	}
	p := w.start(args...)
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

func daemonID(w *world) (webui.IDInfo, bool) {
	b, err := os.ReadFile(filepath.Join(w.repo, "api"))
	if err != nil {
		return webui.IDInfo{}, false
	}
	resp, err := http.Get(strings.TrimSpace(string(b)) + "/api/v1/id")
	if err != nil {
		return webui.IDInfo{}, false
	}
	defer resp.Body.Close()
	var info webui.IDInfo
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
	var out putOutput
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
	var id webui.IDInfo
	decodeStrict(t, n5.ok("id", "--json"), &id)
	if want, _ := daemonID(n5); id.ID != want.ID || len(id.Addrs) == 0 {
		t.Errorf("id --json: %+v", id)
	}
	if !strings.Contains(string(n2.ok("id")), procsID(t, addrs[1])) {
		t.Errorf("id of a stopped node does not read its identity")
	}
	var ps []webui.PeerInfo
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
