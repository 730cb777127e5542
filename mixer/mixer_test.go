package mixer

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"testing"

	"github.com/blockmix/blockmix/blocks"
)

// seeded returns a deterministic random source.
func seeded(n byte) io.Reader {
	var seed [32]byte
	seed[0] = n
	return rand.NewChaCha8(seed)
}

func newMixer(t testing.TB, st Store, tsize, workers int, seed byte) *Mixer {
	t.Helper()
	m, err := New(st, Options{T: tsize, Rand: seeded(seed), Workers: workers})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func randomBytes(seed byte, n int) []byte {
	b := make([]byte, n)
	seeded(seed + 100).Read(b)
	return b
}

func rebuild(t testing.TB, g blocks.Getter, res Result) []byte {
	t.Helper()
	var out bytes.Buffer
	for _, tu := range res.Tuples {
		b, err := Unmix(context.Background(), g, tu)
		if err != nil {
			t.Fatal(err)
		}
		out.Write(b)
	}
	return out.Bytes()[:res.Size]
}

func TestRoundTrip(t *testing.T) {
	ctx := context.Background()
	for _, tsize := range []int{2, 3, 5, 8} {
		for _, class := range Classes {
			for _, n := range []int{0, 1, class - 1, class, class + 1, 5*class + 17} {
				t.Run(fmt.Sprintf("t%d/c%d/n%d", tsize, class, n), func(t *testing.T) {
					st := blocks.NewMem()
					m := newMixer(t, st, tsize, 3, 1)
					src := randomBytes(byte(n), n)
					res, err := m.Mix(ctx, bytes.NewReader(src), class, nil)
					if err != nil {
						t.Fatal(err)
					}
					if res.Size != int64(n) {
						t.Fatalf("size %d, want %d", res.Size, n)
					}
					want := (n + class - 1) / class
					if want == 0 {
						want = 1
					}
					if len(res.Tuples) != want {
						t.Fatalf("%d tuples, want %d", len(res.Tuples), want)
					}
					for _, tu := range res.Tuples {
						if len(tu) != tsize {
							t.Fatalf("tuple of %d, want %d", len(tu), tsize)
						}
					}
					if got := rebuild(t, st, res); !bytes.Equal(got, src) {
						t.Fatal("rebuilt bytes differ")
					}
				})
			}
		}
	}
}

func TestDeterministic(t *testing.T) {
	ctx := context.Background()
	src := randomBytes(7, 9*Large+100)
	var first []Tuple
	for _, workers := range []int{1, 2, 4} {
		st := blocks.NewMem()
		m := newMixer(t, st, 3, workers, 42)
		// Two streams, so the second reuses the first's blocks.
		if _, err := m.Mix(ctx, bytes.NewReader(src[:3*Large]), Large, nil); err != nil {
			t.Fatal(err)
		}
		res, err := m.Mix(ctx, bytes.NewReader(src), Large, nil)
		if err != nil {
			t.Fatal(err)
		}
		if first == nil {
			first = res.Tuples
			continue
		}
		if fmt.Sprint(first) != fmt.Sprint(res.Tuples) {
			t.Fatalf("workers=%d: tuples differ from workers=1", workers)
		}
	}
}

// tags returns every held block's tag.
func allMeta(t testing.TB, st blocks.Store) map[blocks.ID]blocks.Meta {
	t.Helper()
	out := map[blocks.ID]blocks.Meta{}
	err := st.Enumerate(context.Background(), func(id blocks.ID, m blocks.Meta) error {
		out[id] = m
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestTagsDistinct checks the noise rule's bookkeeping: for t ≥ 3 no two
// held blocks share a tag and none is zero, across files with repeats.
func TestTagsDistinct(t *testing.T) {
	ctx := context.Background()
	st := blocks.NewMem()
	m := newMixer(t, st, 3, 2, 3)
	rep := bytes.Repeat(randomBytes(1, Large), 20)
	for _, src := range [][]byte{make([]byte, 20*Large), rep, rep, randomBytes(2, 7*Large)} {
		if _, err := m.Mix(ctx, bytes.NewReader(src), Large, nil); err != nil {
			t.Fatal(err)
		}
	}
	seen := map[uint64]blocks.ID{}
	for id, me := range allMeta(t, st) {
		if me.Tag == 0 {
			t.Fatalf("block %s has tag 0", id)
		}
		if o, ok := seen[me.Tag]; ok {
			t.Fatalf("blocks %s and %s share tag %x", id, o, me.Tag)
		}
		seen[me.Tag] = id
	}
}

// TestTagMemoryFlat: a long Mix call remembers the tags only of the
// blocks not stored yet, not one per block of the file, and the tags
// stay distinct.
func TestTagMemoryFlat(t *testing.T) {
	const n = 20000
	st := blocks.NewMem()
	m := newMixer(t, st, 3, 2, 9)
	res, err := m.Mix(context.Background(), bytes.NewReader(randomBytes(9, n*Small)), Small, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Tuples) != n {
		t.Fatalf("%d tuples, want %d", len(res.Tuples), n)
	}
	if k := len(m.pick.tags); k >= 2*tagsPruneMin {
		t.Fatalf("the picker remembers %d tags after a file of %d blocks; want fewer than %d", k, n, 2*tagsPruneMin)
	}
	seen := map[uint64]bool{}
	for id, me := range allMeta(t, st) {
		if me.Tag == 0 || seen[me.Tag] {
			t.Fatalf("block %s: tag %x is zero or taken twice", id, me.Tag)
		}
		seen[me.Tag] = true
	}
}

// TestUnderQueueDropsServed: a put in parts of 16 blocks (a daemon's
// upload) whose oldest under-shared block no choice accepts (every XOR of
// its tag with the popular set's is taken; with this seed from about the
// 180th part on) keeps few served blocks in the live part of the queue:
// they piled up behind it by the thousand, and each pick passed them all.
func TestUnderQueueDropsServed(t *testing.T) {
	st := blocks.NewMem()
	m := newMixer(t, st, 3, 2, 5)
	part := randomBytes(3, 16*Small)
	most := 0
	for range 1500 {
		part[0]++
		part[5000]++
		if _, err := m.MixStream(context.Background(), bytes.NewReader(part), Small, Stream{NoHash: true}); err != nil {
			t.Fatal(err)
		}
		pl := m.pick.pools[Small]
		served := 0
		for _, c := range pl.under[pl.head:] {
			if m.pick.served[c.id] {
				served++
			}
		}
		most = max(most, served)
	}
	if most > 64 {
		t.Fatalf("up to %d served blocks in the under-shared queue's live part; want at most 64", most)
	}
}

func TestRandomizerSetsDistinct(t *testing.T) {
	ctx := context.Background()
	st := blocks.NewMem()
	m := newMixer(t, st, 3, 2, 4)
	sets := map[string]bool{}
	for i := 0; i < 5; i++ {
		res, err := m.Mix(ctx, bytes.NewReader(make([]byte, 10*Large)), Large, nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, tu := range res.Tuples {
			a, b := tu[1], tu[2]
			if bytes.Compare(a[:], b[:]) > 0 {
				a, b = b, a
			}
			k := string(a[:]) + string(b[:])
			if sets[k] {
				t.Fatalf("randomizer set used twice")
			}
			sets[k] = true
		}
	}
}

// failingStore fails every PutBlock after the first n: a disk that fills.
type failingStore struct {
	*blocks.Mem
	n int
}

var errFull = fmt.Errorf("disk full")

func (f *failingStore) PutBlock(ctx context.Context, b blocks.Block, tag uint64) error {
	if f.n <= 0 {
		return errFull
	}
	f.n--
	return f.Mem.PutBlock(ctx, b, tag)
}

// TestFailedMixBreaksMixer: a mix that fails midway returns the store's
// error, and the Mixer then refuses work rather than reuse choices of blocks
// that were never stored.
func TestFailedMixBreaksMixer(t *testing.T) {
	ctx := context.Background()
	st := &failingStore{Mem: blocks.NewMem(), n: 5}
	m := newMixer(t, st, 3, 2, 1)
	if _, err := m.Mix(ctx, bytes.NewReader(randomBytes(1, 20*Small)), Small, nil); !errors.Is(err, errFull) {
		t.Fatalf("mix into a full store: %v, want %v", err, errFull)
	}
	st.n = 1 << 20
	if _, err := m.Mix(ctx, bytes.NewReader(randomBytes(2, 3*Small)), Small, nil); err == nil {
		t.Fatal("a Mixer that failed mixed again")
	}
	m = newMixer(t, st, 3, 2, 2)
	res, err := m.Mix(ctx, bytes.NewReader(randomBytes(2, 3*Small)), Small, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := rebuild(t, st, res); !bytes.Equal(got, randomBytes(2, 3*Small)) {
		t.Fatal("rebuilt bytes differ")
	}
}

// TestFirstMixMakesNoSpareBlock: into an empty store, one source block
// mixed with t = 3 needs two fresh randomizers and stores three blocks,
// whatever the random source: the picker used to put its second fresh
// block in both slots now and then, refuse the duplicate, and make a third
// that no tuple used.
func TestFirstMixMakesNoSpareBlock(t *testing.T) {
	ctx := context.Background()
	for seed := range 64 {
		st := blocks.NewMem()
		m := newMixer(t, st, 3, 1, byte(seed))
		res, err := m.Mix(ctx, bytes.NewReader(randomBytes(byte(seed), Small)), Small, nil)
		if err != nil {
			t.Fatal(err)
		}
		s, err := st.Stats(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Tuples) != 1 || s.Blocks != 3 {
			t.Fatalf("seed %d: %d tuples, %d blocks stored; want 1 and 3", seed, len(res.Tuples), s.Blocks)
		}
	}
}

// TestSessionQueueBounded: a put of more new blocks than sessionQueued
// leaves at most that many of them in the picker's under-shared queue;
// the rest come from the store's queue once the file is recorded, in
// order, so that later puts still reach every one of them.
func TestSessionQueueBounded(t *testing.T) {
	ctx := context.Background()
	st := blocks.NewMem()
	m := newMixer(t, st, 3, 2, 6)
	// Prime the pool, so that the put's blocks come after a load.
	if _, err := m.MixStream(ctx, bytes.NewReader(randomBytes(1, 4*Small)), Small, Stream{}); err != nil {
		t.Fatal(err)
	}
	n := sessionQueued + 700
	res, err := m.MixStream(ctx, bytes.NewReader(randomBytes(2, n*Small)), Small, Stream{})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.New) < n {
		t.Fatalf("%d new blocks, want at least %d", len(res.New), n)
	}
	pl := m.pick.pools[Small]
	if q := len(pl.under) - pl.head; q > sessionQueued || pl.drained {
		t.Fatalf("%d of the put's blocks queued in memory (drained %v); want at most %d, and the rest left to the store", q, pl.drained, sessionQueued)
	}
	if err := st.AddFile(ctx, blocks.FileRecord{Key: "f", Blocks: res.New}); err != nil {
		t.Fatal(err)
	}
	for !pl.drained {
		if err := m.pick.refill(ctx, pl); err != nil {
			t.Fatal(err)
		}
	}
	for _, id := range res.New {
		if !pl.queued[id] {
			t.Fatalf("new block %s never reached the under-shared queue", id)
		}
	}
}
