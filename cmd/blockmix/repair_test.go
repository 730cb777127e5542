//go:build linux

package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"syscall"
	"testing"
	"time"

	"github.com/blockmix/blockmix/blocks"
	"github.com/blockmix/blockmix/webui/apiv1"
)

// checkOf runs check --json on w (through its daemon).
func checkOf(t *testing.T, w *world, rc string, more ...string) apiv1.HealthInfo {
	t.Helper()
	r := w.run(append([]string{"check", "--json", rc}, more...)...)
	var h apiv1.HealthInfo
	if err := json.Unmarshal(r.stdout, &h); err != nil {
		t.Fatalf("check: %v\n%v", err, r)
	}
	if (h.State == apiv1.HealthHealthy) != (r.code == 0) {
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
	up, pu, donors, procs := uploaderAndDonors(t, 5, args)
	sum := writeRandomFile(t, up.path("f.bin"), 81, 2<<20)
	rc := up.okLine("--no-progress", "put", up.path("f.bin"))
	if h := checkOf(t, up, rc); h.State != apiv1.HealthHealthy || h.MinCopies < 4 {
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

// TestScrubHeals: bytes of a block rot on a donor's disk; the scrub finds
// the block, quarantines it and fetches it again from a peer.
func TestScrubHeals(t *testing.T) {
	if testing.Short() {
		t.Skip("starts four daemons")
	}
	t.Parallel()
	up := newWorld(t)
	_, idu := startDaemonWith(t, up, daemonArgs("--replicas", "3")...)
	var donors []*world
	for range 3 {
		w := newWorld(t)
		startDaemonWith(t, w, daemonArgs("--bootstrap", idu.Addrs[0], "--scrub-interval", "200ms", "--scrub-rate", "0")...)
		donors = append(donors, w)
	}
	waitRoutingTable(t, up, 3)
	writeRandomFile(t, up.path("f.bin"), 91, 1<<20)
	up.okLine("--no-progress", "put", up.path("f.bin"))

	// Flip a byte inside the first record of the donor's first segment.
	d := donors[0]
	before := d.stat().Blocks
	flipFirstBlockByte(t, d)

	// The scrub finds it, quarantines it and fetches it again; the block
	// is then off the quarantine list.
	var st apiv1.StatusInfo
	for deadline := time.Now().Add(30 * time.Second); ; {
		st = statusOf(t, d)
		if (st.ScrubHealed > 0 && st.Store.Quarantined == 0) || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if st.ScrubHealed != 1 || st.Store.Quarantined != 0 {
		t.Fatalf("after the scrub: %d healed, %d still quarantined; want 1 and 0", st.ScrubHealed, st.Store.Quarantined)
	}
	// Fetched again: every block it lists reads back whole.
	var v jsonVerify
	for deadline := time.Now().Add(30 * time.Second); ; {
		decodeStrict(t, d.ok("verify", "--json"), &v)
		if (v.Checked > 0 && len(v.Quarantined) == 0 && d.stat().Blocks == v.Checked) || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if len(v.Quarantined) != 0 {
		t.Fatalf("verify after the scrub: %+v", v)
	}
	if b := d.stat().Blocks; b != before {
		t.Fatalf("the donor holds %d blocks after the scrub, %d before: the corrupt one was not fetched again", b, before)
	}
}

// flipFirstBlockByte flips a byte inside the first record of w's first
// segment: a block that rotted on disk.
func flipFirstBlockByte(t *testing.T, w *world) {
	t.Helper()
	segs, err := filepath.Glob(filepath.Join(w.repo, "segments", "*"))
	if err != nil || len(segs) == 0 {
		t.Fatalf("no segments in %s: %v", w.repo, err)
	}
	sort.Strings(segs)
	f, err := os.OpenFile(segs[0], os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var one [1]byte
	if _, err := f.ReadAt(one[:], 100); err != nil {
		t.Fatal(err)
	}
	one[0] ^= 0xff
	if _, err := f.WriteAt(one[:], 100); err != nil {
		t.Fatal(err)
	}
}
