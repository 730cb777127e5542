package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestKillPutLeavesNothing: a put killed with SIGKILL halfway leaves
// blocks no file uses; the next put removes them first, so a killed put
// costs nothing for good.
func TestKillPutLeavesNothing(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.file("first.bin", randBytes(96, 1<<20))
	w.ok("--no-progress", "put", "first.bin")
	before := w.stat()
	segBefore := segmentBytes(t, w)

	const size = 8 << 20
	w.file("big.bin", randBytes(97, size))
	p := w.startPaused(size/2, "--no-progress", "put", "big.bin")
	deadline := time.Now().Add(60 * time.Second)
	// Wait until the blocks it mixed from the first half are on disk.
	for segmentBytes(t, w) < segBefore+2<<20 {
		if time.Now().After(deadline) {
			p.kill(t)
			t.Fatalf("the paused put wrote %d bytes of blocks", segmentBytes(t, w)-segBefore)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if !p.kill(t) {
		t.Fatal("the put finished instead of pausing")
	}
	left := w.stat()
	if left.Blocks <= before.Blocks {
		t.Fatalf("the killed put left no blocks (%d, %d before): nothing to test", left.Blocks, before.Blocks)
	}

	w.file("small.bin", randBytes(98, 200<<10))
	var out jsonPut
	if err := json.Unmarshal(w.ok("--no-progress", "put", "--json", "small.bin"), &out); err != nil {
		t.Fatal(err)
	}
	after := w.stat()
	if want := before.Blocks + out.NewBlocks; after.Blocks != want {
		t.Fatalf("after the next put: %d blocks; want %d (%d before the killed put, %d new); the killed put left %d",
			after.Blocks, want, before.Blocks, out.NewBlocks, left.Blocks-before.Blocks)
	}
	w.ok("verify")
}

// segmentBytes sums the sizes of w's segment files (no lock needed).
func segmentBytes(t *testing.T, w *world) int64 {
	t.Helper()
	segs, err := filepath.Glob(filepath.Join(w.repo, "segments", "*"))
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	for _, s := range segs {
		if fi, err := os.Stat(s); err == nil {
			n += fi.Size()
		}
	}
	return n
}
