//go:build linux

package main

import (
	"encoding/json"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/blockmix/blockmix/webui/apiv1"
)

// putRS puts path on w with --redundancy rs:4+2 and returns what put
// said.
func putRS(t testing.TB, w *world, path string) apiv1.PutInfo {
	t.Helper()
	var info apiv1.PutInfo
	if err := json.Unmarshal(w.ok("--no-progress", "put", "--json", "--redundancy", "rs:4+2", path), &info); err != nil {
		t.Fatal(err)
	}
	return info
}

// TestErasureSurvives: rs:4+2 across six donors (so every stripe has a
// block on each of them); the uploader leaves and two donors are killed
// with SIGKILL, which takes two blocks of every full stripe. A fresh node
// still gets the file byte for byte (rebuilding what is gone from the
// stripes), check there says the file is at risk; with two newcomers,
// check --repair rebuilds the lost blocks from the survivors (no
// uploader) and puts them on nodes of their own: healthy, every stripe
// can lose 2 more nodes; and a newcomer gets the file again.
func TestErasureSurvives(t *testing.T) {
	if testing.Short() {
		t.Skip("starts ten daemons")
	}
	t.Parallel()
	args := daemonArgs("--replicas", "3")
	up := newWorld(t)
	pu, idu := startDaemonWith(t, up, args...)
	var donors []*world
	var procs []*started
	for range 6 {
		w := newWorld(t)
		// The donors run repair rounds often: they must not copy the
		// stripes' blocks up to R = 3 (that would undo the savings).
		p, _ := startDaemonWith(t, w, append(args, "--bootstrap", idu.Addrs[0], "--repair-interval", "200ms")...)
		donors, procs = append(donors, w), append(procs, p)
	}
	waitRoutingTable(t, up, 6)
	sum := writeRandomFile(t, up.path("f.bin"), 101, 3<<20+777)
	info := putRS(t, up, up.path("f.bin"))
	if info.Redundancy != "rs:4+2" || info.Short == nil || *info.Short != 0 || info.Replicas != 3 {
		t.Fatalf("put: %+v", info)
	}
	h := checkOf(t, up, info.Recipe)
	if h.State != apiv1.HealthHealthy || h.Parity != "rs:4+2" || h.StripesCanLose != 2 || h.Stripes == 0 {
		t.Fatalf("after the put: %+v", h)
	}
	t.Logf("after the put: %s", h.Verdict)
	// What the donors hold, once each has run a repair round since the
	// put: one copy of what the uploader holds (the file's blocks, its
	// parity and the manifest) and two more of the few blocks outside the
	// stripes, where r:3 would hold three copies of each block.
	putDone := time.Now()
	for deadline := time.Now().Add(30 * time.Second); ; {
		all := true
		for _, d := range donors {
			all = all && statusOf(t, d).Repair.Finished.After(putDone)
		}
		if all {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the donors ran no repair round within 30 s")
		}
		time.Sleep(100 * time.Millisecond)
	}
	var held int64
	for _, d := range donors {
		held += d.stat().Bytes
	}
	own := up.stat().Bytes
	ratio := float64(held) / float64(own)
	t.Logf("the donors hold %.3f bytes per byte the uploader holds (its blocks, parity and manifest: %.3f bytes per file byte)", ratio, float64(own)/float64(3<<20+777))
	// About 1.05 on a quiet machine; up to about 1.4 under load, when a
	// holder's view of who is closest differs from the uploader's and its
	// repair copies a block (see "Not done" in the notes). r:3 gives 3.
	if ratio < 1 || ratio > 1.6 {
		t.Fatalf("the donors hold %.3f bytes per byte the uploader holds; rs:4+2 wants one copy of each and a few more", ratio)
	}

	// The uploader leaves; two donors die: each held a block of every
	// full stripe (six blocks a stripe on six distinct nodes).
	stopDaemon(t, pu)
	for _, p := range procs[:2] {
		if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		<-p.done
	}
	survivor, _ := daemonID(donors[2])

	fresh := newWorld(t)
	startDaemonWith(t, fresh, append(args, "--bootstrap", survivor.Addrs[0])...)
	waitRoutingTable(t, fresh, 4)
	start := time.Now()
	if fresh.getSum(info.Recipe) != sum {
		t.Fatal("the file got with two blocks of every stripe gone differs")
	}
	t.Logf("get with 2 of 6 donors gone: %s", time.Since(start).Round(time.Millisecond))
	h = checkOf(t, fresh, info.Recipe)
	// Every full stripe lost two blocks (a short one at the end of the
	// file, fewer than K data blocks, may sit on other donors).
	if h.State != apiv1.HealthAtRisk || h.StripesShort < h.Stripes-2 || h.StripesCanLose != 0 {
		t.Fatalf("with two donors gone: %+v", h)
	}
	t.Logf("two donors gone: %s", h.Verdict)

	// Two newcomers give the stripes room; check --repair on the fresh
	// node (never the uploader) rebuilds and places the lost blocks.
	for range 2 {
		startDaemonWith(t, newWorld(t), append(args, "--bootstrap", survivor.Addrs[0])...)
	}
	waitRoutingTable(t, fresh, 6)
	start = time.Now()
	for deadline := time.Now().Add(90 * time.Second); ; {
		h = checkOf(t, fresh, info.Recipe, "--repair")
		if h.State == apiv1.HealthHealthy || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if h.State != apiv1.HealthHealthy || h.StripesCanLose != 2 || h.StripesShort != 0 {
		t.Fatalf("after check --repair: %+v", h)
	}
	t.Logf("repaired in %s: %s", time.Since(start).Round(time.Millisecond), h.Verdict)
	// Another node's view agrees, and a newcomer gets the file.
	if h := checkOf(t, donors[3], info.Recipe); h.State != apiv1.HealthHealthy {
		t.Fatalf("a survivor's check after the repair: %+v", h)
	}
	last := newWorld(t)
	startDaemonWith(t, last, append(args, "--bootstrap", survivor.Addrs[0])...)
	waitRoutingTable(t, last, 5)
	if last.getSum(info.Recipe) != sum {
		t.Fatal("the file got after the repair differs")
	}
}

// TestRedundancyFlag: bad values of put --redundancy and of the daemon's
// default are usage errors that say what is accepted; rs without a
// daemon is refused before anything is stored.
func TestRedundancyFlag(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	path := w.file("a.bin", []byte("hello"))
	for _, bad := range []string{"rs:1+2", "rs:4+9", "rs:4", "raid5", "r:0"} {
		r := w.want(2, "put", "--redundancy", bad, path)
		if !strings.Contains(string(r.stderr), "--redundancy") || !strings.Contains(string(r.stderr), "bad redundancy") {
			t.Errorf("put --redundancy %s: %s", bad, r.stderr)
		}
	}
	r := w.want(2, "put", "--redundancy", "rs:4+2", path)
	if !strings.Contains(string(r.stderr), "no daemon") {
		t.Errorf("put --redundancy rs:4+2 without a daemon: %s", r.stderr)
	}
	if n := w.stat().Blocks; n != 0 {
		t.Errorf("a refused put stored %d blocks", n)
	}
	r = w.want(2, append([]string{"daemon"}, daemonArgs("--redundancy", "rs:20+2")...)...)
	if !strings.Contains(string(r.stderr), "K must be 2 to 16") {
		t.Errorf("daemon --redundancy rs:20+2: %s", r.stderr)
	}
}
