package recipe

import (
	"bytes"
	"context"
	"sync"
	"testing"
	"time"

	"github.com/blockmix/blockmix/blocks"
	"github.com/blockmix/blockmix/mixer"
)

// countingGetter is a slow Getter and Viewer that counts Gets per ID. Unmix
// reads a tuple's stored block with Get and its randomizers with View, so
// the Gets of an ID count how often a tuple was unmixed.
type countingGetter struct {
	st    *blocks.Mem
	delay time.Duration
	mu    sync.Mutex
	gets  map[blocks.ID]int
}

func (c *countingGetter) Get(ctx context.Context, id blocks.ID) ([]byte, error) {
	c.mu.Lock()
	c.gets[id]++
	c.mu.Unlock()
	time.Sleep(c.delay)
	return c.st.Get(ctx, id)
}

func (c *countingGetter) View(ctx context.Context, id blocks.ID) ([]byte, error) {
	return c.st.Get(ctx, id)
}

// TestRebuildManyWorkersSlowGetter: a rebuild with many workers over a slow
// getter reads each descriptor node once, however many workers need it at
// the same moment, and rebuilds the file byte for byte.
func TestRebuildManyWorkersSlowGetter(t *testing.T) {
	ctx := context.Background()
	st := blocks.NewMem()
	m := newMixer(t, st, 2)
	data := randomBytes(6, 400*1024-5) // Small class: 400 tuples, 40 leaves
	mres, err := m.Mix(ctx, bytes.NewReader(data), mixer.Small, nil)
	if err != nil {
		t.Fatal(err)
	}
	root, class, _, err := writeDescriptorClass(ctx, m, mres, mixer.Small)
	if err != nil {
		t.Fatal(err)
	}
	g := &countingGetter{st: st, delay: 3 * time.Millisecond, gets: map[blocks.ID]int{}}
	r, err := Open(ctx, g, Recipe{Root: root, DescClass: class, Size: int64(len(data))}, Options{Workers: 64})
	if err != nil {
		t.Fatal(err)
	}
	if r.root.level < 1 {
		t.Fatalf("depth %d, want ≥ 1", r.root.level)
	}
	var out bytes.Buffer
	if _, err := r.WriteTo(&out); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out.Bytes(), data) {
		t.Fatal("the rebuilt file differs")
	}
	for id, n := range g.gets {
		if n > 1 {
			t.Errorf("block %s was unmixed %d times: workers that need one descriptor node must share one read", id, n)
		}
	}
}
