package recipe

import (
	"bytes"
	"context"
	"errors"
	"io"
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
	root, class, _, err := describe(t, ctx, m, mres, mixer.Small, "")
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

// cancelAfter is a getter that cancels a context after n Gets.
type cancelAfter struct {
	g      blocks.Getter
	n      int
	cancel context.CancelFunc
	mu     sync.Mutex
}

func (c *cancelAfter) Get(ctx context.Context, id blocks.ID) ([]byte, error) {
	c.mu.Lock()
	c.n--
	if c.n == 0 {
		c.cancel()
	}
	c.mu.Unlock()
	return c.g.Get(ctx, id)
}

// TestWriteToInterrupted: a rebuild whose context ends halfway (Ctrl-C)
// stops at once with the context's error: never a hash mismatch, never a
// hang, whatever the number of workers, whether the cancel comes while
// blocks are fetched or while the writer is busy.
func TestWriteToInterrupted(t *testing.T) {
	st := blocks.NewMem()
	m := newMixer(t, st, 3)
	data := randomBytes(7, 3<<20)
	res := put(t, m, st, data, "big.bin")
	for _, workers := range []int{1, 4, 64} {
		for _, after := range []int{1, 5, 20} {
			for _, inWriter := range []bool{false, true} {
				ctx, cancel := context.WithCancel(context.Background())
				g := &cancelAfter{g: st, n: after + 3, cancel: cancel}
				var w io.Writer = io.Discard
				if inWriter {
					g.n = -1 // never
					w = &lateWriter{left: after, cancel: cancel}
				}
				r, err := Open(ctx, g, res.Recipe, Options{Workers: workers})
				if err != nil {
					t.Fatal(err)
				}
				done := make(chan error, 1)
				go func() {
					_, err := r.WriteTo(w)
					done <- err
				}()
				select {
				case err := <-done:
					if !errors.Is(err, context.Canceled) {
						t.Errorf("workers %d, cancelled after %d (in the writer: %v): %v; want context.Canceled", workers, after, inWriter, err)
					}
				case <-time.After(30 * time.Second):
					t.Fatalf("workers %d, cancelled after %d (in the writer: %v): WriteTo hangs", workers, after, inWriter)
				}
				cancel()
			}
		}
	}
}

// lateWriter cancels on its left-th write and takes a moment over it, as
// a Ctrl-C that arrives while the output is busy.
type lateWriter struct {
	left   int
	cancel context.CancelFunc
}

func (w *lateWriter) Write(p []byte) (int, error) {
	w.left--
	if w.left == 0 {
		w.cancel()
		time.Sleep(20 * time.Millisecond) // the producer sees the cancel
	}
	return len(p), nil
}

// TestReaderBlocks: Blocks lists exactly the blocks a put says the file
// needs, and reads only descriptor nodes to find them, never data.
func TestReaderBlocks(t *testing.T) {
	ctx := context.Background()
	st := blocks.NewMem()
	m := newMixer(t, st, 4)
	res := put(t, m, st, randomBytes(8, 2<<20+77), "b.bin")
	r, err := Open(ctx, st, res.Recipe, Options{})
	if err != nil {
		t.Fatal(err)
	}
	got, err := r.Blocks(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := listed(t, st, res); !sameSet(got, want) || len(want) != res.NBlock {
		t.Fatalf("Blocks lists %d blocks, the put %d (%d in its record)", len(got), res.NBlock, len(want))
	}

	// A deep descriptor (1 KiB nodes): only node reads.
	data := randomBytes(9, 300*1024-1)
	mres, err := m.Mix(ctx, bytes.NewReader(data), mixer.Small, nil)
	if err != nil {
		t.Fatal(err)
	}
	root, class, descIDs, err := describe(t, ctx, m, mres, mixer.Small, "")
	if err != nil {
		t.Fatal(err)
	}
	g := &countingGetter{st: st, gets: map[blocks.ID]int{}}
	r, err = Open(ctx, g, Recipe{Root: root, DescClass: class, Size: int64(len(data))}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	got, err = r.Blocks(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := append([]blocks.ID(nil), descIDs...)
	for _, tu := range mres.Tuples {
		want = append(want, tu...)
	}
	if !sameSet(got, want) {
		t.Fatalf("deep descriptor: Blocks lists %d distinct blocks, want %d", len(got), len(distinct(want)))
	}
	data0 := map[blocks.ID]bool{}
	for _, tu := range mres.Tuples {
		data0[tu[0]] = true
	}
	for id := range g.gets {
		if data0[id] {
			t.Fatalf("Blocks read data block %s", id)
		}
	}
}

func distinct(ids []blocks.ID) map[blocks.ID]bool {
	m := map[blocks.ID]bool{}
	for _, id := range ids {
		m[id] = true
	}
	return m
}

func sameSet(a, b []blocks.ID) bool {
	x, y := distinct(a), distinct(b)
	if len(x) != len(y) || len(x) != len(a) {
		return false // a must list each once
	}
	for id := range x {
		if !y[id] {
			return false
		}
	}
	return true
}

// failingReader gives n bytes, then fails.
type failingReader struct{ n int }

func (f *failingReader) Read(p []byte) (int, error) {
	if f.n <= 0 {
		return 0, errors.New("the disk under the file went away")
	}
	k := min(len(p), f.n)
	for i := range p[:k] {
		p[i] = byte(i * 7)
	}
	f.n -= k
	return k, nil
}

// TestFailedPutLeavesNothing: a put that does not finish (the file fails
// halfway, is shorter than said, or is interrupted) leaves the store as it
// was: no block it stored stays behind.
func TestFailedPutLeavesNothing(t *testing.T) {
	st := blocks.NewMem()
	m := newMixer(t, st, 5)
	put(t, m, st, randomBytes(10, 1<<20), "first.bin") // a warm store
	before, _ := st.Stats(context.Background())
	for name, run := range map[string]func(m *mixer.Mixer) error{
		"read fails": func(m *mixer.Mixer) error {
			_, err := Put(context.Background(), m, st, &failingReader{n: 900 << 10}, -1, "f", "", nil)
			return err
		},
		"shorter than said": func(m *mixer.Mixer) error {
			_, err := Put(context.Background(), m, st, bytes.NewReader(randomBytes(11, 700<<10)), 800<<10, "f", "", nil)
			return err
		},
		"interrupted": func(m *mixer.Mixer) error {
			ctx, cancel := context.WithCancel(context.Background())
			_, err := Put(ctx, m, st, io.MultiReader(bytes.NewReader(randomBytes(12, 600<<10)), readerFunc(func([]byte) (int, error) {
				cancel()
				return 0, context.Canceled
			})), -1, "f", "", nil)
			return err
		},
	} {
		if err := run(newMixer(t, st, 6)); err == nil {
			t.Fatalf("%s: the put did not fail", name)
		}
		if after, _ := st.Stats(context.Background()); after.Blocks != before.Blocks || after.Bytes != before.Bytes {
			t.Errorf("%s: %d blocks (%d bytes) after the failed put, %d (%d) before", name, after.Blocks, after.Bytes, before.Blocks, before.Bytes)
		}
	}
}

type readerFunc func([]byte) (int, error)

func (f readerFunc) Read(p []byte) (int, error) { return f(p) }

// intoGetter is a Mem store that reads into the caller's buffers, as a
// Disk does, noting which buffers it was given and which blocks it was
// told to prefetch.
type intoGetter struct {
	*blocks.Mem
	mu         sync.Mutex
	bufs       map[*byte]bool
	prefetched map[blocks.ID]bool
}

func (g *intoGetter) GetInto(ctx context.Context, id blocks.ID, buf []byte) ([]byte, error) {
	b, err := g.Get(ctx, id)
	if err != nil || cap(buf) < len(b)+blocks.ReadSlack {
		return b, err
	}
	g.mu.Lock()
	g.bufs[&buf[:1][0]] = true
	g.mu.Unlock()
	return append(buf[:0], b...), nil
}

func (g *intoGetter) Prefetch(_ context.Context, ids []blocks.ID) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, id := range ids {
		g.prefetched[id] = true
	}
}

// TestWriteToReusesBuffers: WriteTo over an IntoGetter rebuilds a file of
// many more blocks than it has buffers byte for byte, reads into a bounded
// set of buffers (2×workers+4), and asks to prefetch every data block.
func TestWriteToReusesBuffers(t *testing.T) {
	ctx := context.Background()
	for _, workers := range []int{1, 3, 8} {
		st := blocks.NewMem()
		m := newMixer(t, st, 2)
		data := randomBytes(7, 300*1024-9) // Small class: 300 tuples
		mres, err := m.Mix(ctx, bytes.NewReader(data), mixer.Small, nil)
		if err != nil {
			t.Fatal(err)
		}
		root, class, _, err := describe(t, ctx, m, mres, mixer.Small, "")
		if err != nil {
			t.Fatal(err)
		}
		g := &intoGetter{Mem: st, bufs: map[*byte]bool{}, prefetched: map[blocks.ID]bool{}}
		r, err := Open(ctx, g, Recipe{Root: root, DescClass: class, Size: int64(len(data))}, Options{Workers: workers})
		if err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		if _, err := r.WriteTo(&out); err != nil {
			t.Fatalf("workers %d: %v", workers, err)
		}
		if !bytes.Equal(out.Bytes(), data) {
			t.Fatalf("workers %d: the rebuilt file differs", workers)
		}
		if n, limit := len(g.bufs), 2*workers+4; n == 0 || n > limit {
			t.Errorf("workers %d: blocks read into %d buffers, want 1 to %d", workers, n, limit)
		}
		for _, tu := range mres.Tuples {
			if !g.prefetched[tu[0]] {
				t.Errorf("workers %d: block %s was never prefetched", workers, tu[0])
				break
			}
		}
	}
}

// listed is the block list st's record of res's file holds.
func listed(t testing.TB, st blocks.Filer, res PutResult) []blocks.ID {
	t.Helper()
	var ids []blocks.ID
	if err := st.FileBlocks(context.Background(), res.Recipe.Key(), func(p []blocks.ID) error {
		ids = append(ids, p...)
		return nil
	}); err != nil {
		t.Fatalf("the list of %s: %v", res.Recipe.Name, err)
	}
	return ids
}
