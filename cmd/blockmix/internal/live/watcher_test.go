package live

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"
)

// TestWatchTree: a change made right after NewTreeWatch returns, changes
// in the folder and in a folder made later are reported once the tree is
// quiet, a burst as one report.
func TestWatchTree(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	var mu sync.Mutex
	var reports [][]string
	tw, err := NewTreeWatch(dir, WatchOptions{Quiet: 200 * time.Millisecond, MaxDelay: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	// Written before Run starts: the watch is already in place.
	a := filepath.Join(dir, "a.txt")
	if err := os.WriteFile(a, []byte("one"), 0o644); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		done <- tw.Run(ctx, func(p []string) {
			mu.Lock()
			reports = append(reports, p)
			mu.Unlock()
		})
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	wait := func(n int) [][]string {
		t.Helper()
		for end := time.Now().Add(20 * time.Second); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
			mu.Lock()
			r := slices.Clone(reports)
			mu.Unlock()
			if len(r) >= n {
				return r
			}
		}
		t.Fatalf("no report %d", n)
		return nil
	}
	if r := wait(1); !slices.Contains(r[0], a) {
		t.Fatalf("first report %v lacks %s", r[0], a)
	}
	first := 1
	sub := filepath.Join(dir, "sub")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	r := wait(first + 1)
	// Now the new folder is watched: a file inside it is reported.
	b := filepath.Join(sub, "b.txt")
	if err := os.WriteFile(b, []byte("two"), 0o644); err != nil {
		t.Fatal(err)
	}
	r = wait(len(r) + 1)
	if !slices.Contains(r[len(r)-1], b) {
		t.Fatalf("report %v lacks %s", r[len(r)-1], b)
	}
}
