package main

import (
	"os"
	"strconv"
	"testing"
)

// TestFreshNodesGet is a friend's get, repeated: four daemons hold a file
// whose descriptor has more than one leaf (over 1364 tuples of 128 KiB);
// then one fresh node after another joins, gets it through its daemon
// (many blocks in flight, descriptor leaves read by several workers at
// once) and must rebuild it byte for byte. BLOCKMIX_GET_SOAK=N (make soak)
// runs N fresh nodes instead of 1.
func TestFreshNodesGet(t *testing.T) {
	if testing.Short() {
		t.Skip("starts five daemons and moves 171 MiB")
	}
	rounds := 1
	if s := os.Getenv("BLOCKMIX_GET_SOAK"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil || v < 1 {
			t.Fatalf("BLOCKMIX_GET_SOAK=%q", s)
		}
		rounds = v
	}
	var holders []*world
	boot := ""
	for i := range 4 {
		w := newWorld(t)
		args := daemonArgs("--replicas", "3")
		if boot != "" {
			args = append(args, "--bootstrap", boot)
		}
		_, info := startDaemonWith(t, w, args...)
		if i == 0 {
			boot = info.Addrs[0]
		}
		holders = append(holders, w)
	}
	waitRoutingTable(t, holders[0], 3)
	const size = 1365*128<<10 + 4321 // one tuple past the first leaf
	sum := writeRandomFile(t, holders[1].path("big.bin"), 1365, size)
	put := putPlaced(t, holders[1], holders[1].path("big.bin"), "the big file")
	if err := os.Remove(holders[1].path("big.bin")); err != nil {
		t.Fatal(err)
	}

	failed := 0
	for i := range rounds {
		w := newWorldIn(t, t.TempDir())
		p, _ := startDaemonWith(t, w, daemonArgs("--bootstrap", boot)...)
		waitRoutingTable(t, w, 1)
		out := w.path("got.bin")
		r := w.run("--no-progress", "get", "-o", out, put.Recipe)
		switch {
		case r.code != 0:
			failed++
			t.Errorf("fresh node %d: %v", i+1, r)
		case fileSum(t, out) != sum:
			failed++
			t.Errorf("fresh node %d: the file differs", i+1)
		}
		stopDaemon(t, p)
		// The node's repo holds a copy of the file: make room for the next.
		if err := os.RemoveAll(w.repo); err != nil {
			t.Fatal(err)
		}
		if err := os.RemoveAll(w.dir); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("%d of %d fresh nodes failed to get the file", failed, rounds)
}
