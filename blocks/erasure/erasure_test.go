package erasure

import (
	"context"
	"errors"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/blockmix/blockmix/blocks"
)

// fill stores n random blocks of size bytes in st and returns their IDs.
func fill(t *testing.T, st *blocks.Mem, rnd *rand.ChaCha8, n, size int) []blocks.ID {
	t.Helper()
	var ids []blocks.ID
	for range n {
		b := make([]byte, size)
		_, _ = rnd.Read(b)
		blk, err := blocks.NewBlock(b)
		if err != nil {
			t.Fatal(err)
		}
		if err := st.PutBlock(context.Background(), blk, 1); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, blk.ID())
	}
	return ids
}

func build(t *testing.T, st *blocks.Mem, ids []blocks.ID, s Scheme) Manifest {
	t.Helper()
	m, err := Build(context.Background(), st, ids, s, func(b blocks.Block) error {
		return st.PutBlock(context.Background(), b, 1)
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestParseRedundancy(t *testing.T) {
	for in, want := range map[string]Redundancy{
		"r:3": {Replicas: 3}, "5": {Replicas: 5}, " RS:4+2 ": {Replicas: 3, Scheme: Scheme{4, 2}},
		"rs:16+8": {Replicas: 9, Scheme: Scheme{16, 8}}, "rs:2+1": {Replicas: 2, Scheme: Scheme{2, 1}},
	} {
		got, err := ParseRedundancy(in)
		if err != nil || got != want {
			t.Errorf("ParseRedundancy(%q) = %+v, %v; want %+v", in, got, err, want)
		}
		if err == nil && got.String() != map[bool]string{true: "r:" + in[len(in)-1:], false: got.Scheme.String()}[got.Scheme.IsZero()] {
			t.Errorf("%+v spells as %q", got, got.String())
		}
	}
	for _, in := range []string{"", "rs:1+2", "rs:4+0", "rs:17+2", "rs:4+9", "rs:4", "rs:a+b", "r:0", "r:17", "raid5", "-1"} {
		if _, err := ParseRedundancy(in); !errors.Is(err, ErrBadRedundancy) {
			t.Errorf("ParseRedundancy(%q): %v, want ErrBadRedundancy", in, err)
		}
	}
}

// TestRebuildAnyK: every block of every stripe comes back from any K of
// its stripe, across two sizes and short last stripes.
func TestRebuildAnyK(t *testing.T) {
	ctx := context.Background()
	rnd := rand.NewChaCha8([32]byte{1})
	st := blocks.NewMem()
	ids := append(fill(t, st, rnd, 11, 1<<14), fill(t, st, rnd, 3, 1<<10)...)
	s := Scheme{K: 4, M: 2}
	m := build(t, st, ids, s)
	if len(m.Stripes) != 3+1 {
		t.Fatalf("%d stripes, want 4 (11 blocks of 16 KiB in 3, 3 of 1 KiB in 1)", len(m.Stripes))
	}
	for si, stripe := range m.Stripes {
		shards := stripe.Shards()
		// Lose every pair of shards in turn.
		for a := range shards {
			for b := a + 1; b < len(shards); b++ {
				lost := blocks.NewMem()
				for i, id := range shards {
					if i == a || i == b {
						continue
					}
					data, _ := st.Get(ctx, id)
					_ = lost.Put(ctx, id, data, 1)
				}
				for _, want := range []blocks.ID{shards[a], shards[b]} {
					got, err := Rebuild(ctx, lost, s, stripe, want)
					if err != nil {
						t.Fatalf("stripe %d without %d,%d: %v", si, a, b, err)
					}
					if blocks.Check(want, got) != nil {
						t.Fatalf("stripe %d: rebuilt block does not match", si)
					}
				}
			}
		}
		// Three lost: too few.
		if len(stripe.Data) == s.K {
			lost := blocks.NewMem()
			for _, id := range shards[3:] {
				data, _ := st.Get(ctx, id)
				_ = lost.Put(ctx, id, data, 1)
			}
			if _, err := Rebuild(ctx, lost, s, stripe, shards[0]); !errors.Is(err, ErrTooFew) {
				t.Fatalf("stripe %d with 3 of 6 lost: %v, want ErrTooFew", si, err)
			}
		}
	}
}

// TestParityIsNotData: a short stripe (one data block and zeros) must not
// make a parity block equal to its data block (it would be one block, on
// one node), for every scheme within bounds.
func TestParityIsNotData(t *testing.T) {
	rnd := rand.NewChaCha8([32]byte{2})
	for k := MinK; k <= MaxK; k++ {
		for mm := MinM; mm <= MaxM; mm++ {
			st := blocks.NewMem()
			for n := 1; n < k; n++ {
				ids := fill(t, st, rnd, n, 1<<10)
				m := build(t, st, ids, Scheme{k, mm})
				seen := map[blocks.ID]bool{}
				for _, id := range m.Stripes[0].Shards() {
					if seen[id] {
						t.Fatalf("rs:%d+%d with %d data blocks: a parity block equals another block", k, mm, n)
					}
					seen[id] = true
				}
			}
		}
	}
}

func TestManifestRoundTrip(t *testing.T) {
	rnd := rand.NewChaCha8([32]byte{3})
	st := blocks.NewMem()
	ids := append(fill(t, st, rnd, 9, 1<<10), fill(t, st, rnd, 2, 1<<17)...)
	m := build(t, st, ids, Scheme{3, 2})
	b, err := m.Encode()
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeManifest(b, len(m.Stripes))
	if err != nil {
		t.Fatal(err)
	}
	b2, _ := got.Encode()
	if string(b2) != string(b) || got.K != 3 || got.M != 2 || len(got.Stripes) != 4 {
		t.Fatalf("round trip changed the manifest")
	}
	if len(got.Blocks()) != 11+4*2 {
		t.Fatalf("%d blocks, want %d", len(got.Blocks()), 11+8)
	}
	// Bounds: too many stripes for the file, cut, trailing bytes, bad K.
	if _, err := DecodeManifest(b, len(m.Stripes)-1); !errors.Is(err, ErrBadManifest) {
		t.Errorf("more stripes than the bound: %v", err)
	}
	for _, bad := range [][]byte{b[:len(b)-1], append(append([]byte(nil), b...), 0), nil, b[:11]} {
		if _, err := DecodeManifest(bad, 100); !errors.Is(err, ErrBadManifest) {
			t.Errorf("damaged manifest of %d bytes: %v", len(bad), err)
		}
	}
	k := append([]byte(nil), b...)
	k[5] = 1
	if _, err := DecodeManifest(k, 100); !errors.Is(err, ErrBadManifest) {
		t.Errorf("K = 1: %v", err)
	}
	if MaxBytes(int64(len(ids))) < int64(len(b)) {
		t.Errorf("MaxBytes(%d) = %d < %d", len(ids), MaxBytes(int64(len(ids))), len(b))
	}
}

func FuzzDecodeManifest(f *testing.F) {
	rnd := rand.NewChaCha8([32]byte{4})
	st := blocks.NewMem()
	ids := fill(&testing.T{}, st, rnd, 5, 1<<10)
	m, _ := Build(context.Background(), st, ids, Scheme{2, 1}, func(b blocks.Block) error { return st.PutBlock(context.Background(), b, 1) })
	b, _ := m.Encode()
	f.Add(b)
	f.Add([]byte("BMXS\x01\x04\x02\x00\x01\x00\x00\x00"))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := DecodeManifest(b, 64)
		if err != nil {
			return
		}
		again, err := m.Encode()
		if err != nil || string(again) != string(b) {
			t.Fatalf("a manifest that decodes does not encode back the same: %v", err)
		}
	})
}

// missing is a getter that has lost some blocks and is slow for others.
type missing struct {
	g    blocks.Getter
	gone map[blocks.ID]bool
	slow map[blocks.ID]bool
}

func (m missing) Get(ctx context.Context, id blocks.ID) ([]byte, error) {
	if m.gone[id] {
		return nil, blocks.ErrNotFound
	}
	if m.slow[id] {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	return m.g.Get(ctx, id)
}

func TestGetterRebuilds(t *testing.T) {
	ctx := context.Background()
	rnd := rand.NewChaCha8([32]byte{5})
	st := blocks.NewMem()
	ids := fill(t, st, rnd, 8, 1<<10)
	m := build(t, st, ids, Scheme{4, 2})
	g := NewGetter(missing{g: st, gone: map[blocks.ID]bool{ids[0]: true, ids[5]: true}, slow: map[blocks.ID]bool{ids[2]: true}}, m)
	for _, id := range []blocks.ID{ids[0], ids[5], ids[1]} {
		data, err := g.Get(ctx, id)
		if err != nil || blocks.Check(id, data) != nil {
			t.Fatalf("get %s: %v", id.Short(), err)
		}
	}
	if g.Rebuilt() != 2 {
		t.Fatalf("rebuilt %d, want 2", g.Rebuilt())
	}
	// A slow block: with a hedge, rebuilt from the others without waiting.
	g.Hedge = 20 * time.Millisecond
	tctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if data, err := g.Get(tctx, ids[2]); err != nil || blocks.Check(ids[2], data) != nil {
		t.Fatalf("slow block: %v", err)
	}
	// Three of a stripe gone: G's not-found comes back.
	g = NewGetter(missing{g: st, gone: map[blocks.ID]bool{ids[0]: true, ids[1]: true, m.Stripes[0].Parity[0]: true}}, m)
	if _, err := g.Get(ctx, ids[0]); !errors.Is(err, blocks.ErrNotFound) {
		t.Fatalf("three of six gone: %v, want not found", err)
	}
}

func TestCanLose(t *testing.T) {
	six := [][]string{{"a"}, {"b"}, {"c"}, {"d"}, {"e"}, {"f"}}
	if n := CanLose(six, 0, 4); n != 2 {
		t.Errorf("six shards on six nodes, K=4: can lose %d, want 2", n)
	}
	two := [][]string{{"a"}, {"a"}, {"b"}, {"c"}, {"d"}, {"e"}}
	if n := CanLose(two, 0, 4); n != 1 {
		t.Errorf("two shards on one node: can lose %d, want 1", n)
	}
	if n := CanLose([][]string{{"a"}, {}, {}, {"d"}, {"e"}, {}}, 0, 4); n != -1 {
		t.Errorf("three held of six: %d, want -1", n)
	}
	if n := CanLose([][]string{{"a", "b"}, {"c"}, {"d"}}, 2, 4); n != 1 {
		t.Errorf("short stripe: %d, want 1", n)
	}
}
