//go:build linux

package main

import (
	"encoding/json"
	"syscall"
	"testing"
	"time"

	"github.com/blockmix/blockmix/blocks"
	"github.com/blockmix/blockmix/webui"
)

// checkOf runs check --json on w (through its daemon).
func checkOf(t *testing.T, w *world, rc string, more ...string) webui.HealthInfo {
	t.Helper()
	r := w.run(append([]string{"check", "--json", rc}, more...)...)
	var h webui.HealthInfo
	if err := json.Unmarshal(r.stdout, &h); err != nil {
		t.Fatalf("check: %v\n%v", err, r)
	}
	if (h.State == webui.HealthHealthy) != (r.code == 0) {
		t.Fatalf("check says %s with exit %d", h.State, r.code)
	}
	return h
}

// TestRepairHeals: six daemons, R = 3; two donors are killed with SIGKILL;
// the survivors that hold the blocks push the missing copies by
// themselves (no uploader needed: it is stopped before the last check),
// and a new node rebuilds the file byte for byte.
func TestRepairHeals(t *testing.T) {
	if testing.Short() {
		t.Skip("starts seven daemons")
	}
	t.Parallel()
	args := daemonArgs("--replicas", "3", "--repair-interval", "300ms")
	up := newWorld(t)
	pu, idu := startDaemonWith(t, up, args...)
	var donors []*world
	var procs []*started
	for range 5 {
		w := newWorld(t)
		p, _ := startDaemonWith(t, w, append(args, "--bootstrap", idu.Addrs[0])...)
		donors, procs = append(donors, w), append(procs, p)
	}
	waitRoutingTable(t, up, 5)
	sum := writeRandomFile(t, up.path("f.bin"), 81, 2<<20)
	rc := up.okLine("--no-progress", "put", up.path("f.bin"))
	if h := checkOf(t, up, rc); h.State != webui.HealthHealthy || h.MinCopies < 4 {
		t.Fatalf("after the put: %+v", h)
	}
	ids := up.blockIDs() // the uploader's store holds the file's blocks only

	// The uploader leaves, then two donors die.
	stopDaemon(t, pu)
	start := time.Now()
	for _, p := range procs[:2] {
		if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		<-p.done
	}
	survivors := donors[2:]
	fewest := 0
	for deadline := time.Now().Add(90 * time.Second); ; {
		fewest = len(survivors)
		held := map[blocks.ID]int{}
		for _, w := range survivors {
			for _, id := range w.blockIDs() {
				held[id]++
			}
		}
		for _, id := range ids {
			fewest = min(fewest, held[id])
		}
		if fewest >= 3 || time.Now().After(deadline) {
			break
		}
		time.Sleep(300 * time.Millisecond)
	}
	healed := time.Since(start)
	t.Logf("phase                              blocks  fewest copies  time to heal")
	t.Logf("uploader gone, 2 of 5 donors killed  %4d  %13d  %s", len(ids), fewest, healed.Round(time.Millisecond))
	if fewest < 3 {
		t.Fatalf("not healed after 90 s: a block has %d copies on the 3 survivors", fewest)
	}

	// A newcomer gets the file from the survivors.
	n := newWorld(t)
	info, _ := daemonID(survivors[0])
	startDaemonWith(t, n, append(args, "--bootstrap", info.Addrs[0])...)
	waitRoutingTable(t, n, 3)
	if n.getSum(rc) != sum {
		t.Fatal("the file rebuilt after the repair differs")
	}
}
