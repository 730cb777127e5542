package recipe

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"slices"
	"testing"

	"github.com/blockmix/blockmix/blocks"
	"github.com/blockmix/blockmix/mixer"
)

// describe writes the descriptor of a mixed stream with the streaming
// writer (class 0: the class Put picks; dir "": tuples in memory).
func describe(t testing.TB, ctx context.Context, m *mixer.Mixer, res mixer.Result, class int, dir string) (mixer.Tuple, int, []blocks.ID, error) {
	t.Helper()
	l := newTupleLog(res.T, dir)
	defer l.close()
	for _, tu := range res.Tuples {
		if err := l.add(tu); err != nil {
			t.Fatal(err)
		}
	}
	d := dataInfo{class: res.Class, t: res.T, size: res.Size, sha: res.SHA256}
	if class == 0 {
		return writeDescriptor(ctx, m, d, l, dir)
	}
	return writeDescriptorClass(ctx, m, d, l, dir, class)
}

// wholeDescriptor is the descriptor writer as it was before it streamed:
// every level held whole. The reference the streaming writer must match.
func wholeDescriptor(ctx context.Context, m *mixer.Mixer, res mixer.Result, class int) (mixer.Tuple, int, []blocks.ID, error) {
	total := int64(len(res.Tuples))
	h := header{
		entryT: res.T, entryClass: res.Class, dataClass: res.Class, dataT: res.T,
		size: res.Size, sha: res.SHA256, total: total,
	}
	var ids []blocks.ID
	level := res.Tuples
	for lv := 0; ; lv++ {
		per := capacity(class, h.entryT)
		var next []mixer.Tuple
		for i := 0; i < len(level); i += per {
			j := min(i+per, len(level))
			n := node{header: h, entries: level[i:j]}
			n.level = lv
			pad := make([]byte, class)
			if _, err := io.ReadFull(m.Rand(), pad); err != nil {
				return nil, 0, nil, err
			}
			buf, err := encodeNode(n, class, pad)
			if err != nil {
				return nil, 0, nil, err
			}
			tu, err := m.MixBlock(ctx, buf, DescT)
			if err != nil {
				return nil, 0, nil, err
			}
			ids = append(ids, tu...)
			next = append(next, tu)
		}
		if len(next) == 1 {
			return next[0], class, ids, nil
		}
		level = next
		h.entryT, h.entryClass = DescT, class
	}
}

// TestStreamingDescriptorSameTree: for tuple counts on and around the
// boundaries of the tree's levels (1 KiB nodes hold 10 tuples: a second
// level from 11, a third from 101, a fourth from 1001), the streaming
// writer, with its tuples spilled to a file in small pieces, stores the
// same blocks and returns the same root, class and IDs as the writer that
// held every level whole, from the same store and random source.
func TestStreamingDescriptorSameTree(t *testing.T) {
	old := spillBytes
	spillBytes = 5 * 96 // spill every five tuples: the file is read back too
	defer func() { spillBytes = old }()
	ctx := context.Background()
	for _, n := range []int{1, 9, 10, 11, 99, 100, 101, 110, 111, 999, 1000, 1001, 1011} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			data := randomBytes(uint64(n), n*mixer.Small-7)
			var roots [2]mixer.Tuple
			var idss [2][]blocks.ID
			var stores [2]*blocks.Mem
			for k := range 2 {
				stores[k] = blocks.NewMem()
				m := newMixer(t, stores[k], 77)
				mres, err := m.Mix(ctx, bytes.NewReader(data), mixer.Small, nil)
				if err != nil {
					t.Fatal(err)
				}
				if len(mres.Tuples) != n {
					t.Fatalf("%d tuples, want %d", len(mres.Tuples), n)
				}
				var class int
				if k == 0 {
					roots[k], class, idss[k], err = wholeDescriptor(ctx, m, mres, mixer.Small)
				} else {
					dir := t.TempDir()
					roots[k], class, idss[k], err = describe(t, ctx, m, mres, mixer.Small, dir)
					if left, _ := os.ReadDir(dir); len(left) != 0 {
						t.Errorf("the writer left %d files in its directory", len(left))
					}
				}
				if err != nil || class != mixer.Small {
					t.Fatalf("class %d, %v", class, err)
				}
			}
			if !slices.Equal(roots[0], roots[1]) || !slices.Equal(idss[0], idss[1]) {
				t.Fatalf("streaming writer: root %v, %d IDs; whole writer: root %v, %d IDs", roots[1], len(idss[1]), roots[0], len(idss[0]))
			}
			if a, b := storeIDs(t, stores[0]), storeIDs(t, stores[1]); !slices.Equal(a, b) {
				t.Fatalf("the stores differ: %d blocks and %d", len(a), len(b))
			}
			rc := Recipe{Root: roots[1], DescClass: mixer.Small, Size: int64(len(data))}
			r, err := Open(ctx, stores[1], rc, Options{})
			if err != nil {
				t.Fatal(err)
			}
			var out bytes.Buffer
			if _, err := r.WriteTo(&out); err != nil || !bytes.Equal(out.Bytes(), data) {
				t.Fatalf("rebuilt %d bytes (%v), want the %d put", out.Len(), err, len(data))
			}
		})
	}
}

// storeIDs lists a store's blocks, sorted.
func storeIDs(t *testing.T, st *blocks.Mem) []blocks.ID {
	t.Helper()
	var ids []blocks.ID
	if err := st.Enumerate(context.Background(), func(id blocks.ID, _ blocks.Meta) error {
		ids = append(ids, id)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(ids, func(a, b blocks.ID) int { return bytes.Compare(a[:], b[:]) })
	return ids
}

// TestPutSpillsTuples: a put with a TempDir keeps its tuples there while
// it runs and leaves nothing behind; its recipe, block list and blocks are
// those of a put that kept them in memory.
func TestPutSpillsTuples(t *testing.T) {
	old := spillBytes
	spillBytes = 7 * 96
	defer func() { spillBytes = old }()
	ctx := context.Background()
	data := randomBytes(31, 300*mixer.Small+5)
	var got [2]PutResult
	for k := range 2 {
		st := blocks.NewMem()
		m := newMixer(t, st, 5)
		dir := ""
		if k == 1 {
			dir = t.TempDir()
		}
		res, err := PutWith(ctx, m, st, bytes.NewReader(data), -1, "f.bin", "", PutOptions{TempDir: dir})
		if err != nil {
			t.Fatal(err)
		}
		got[k] = res
		if dir != "" {
			if left, _ := os.ReadDir(dir); len(left) != 0 {
				t.Errorf("the put left %d files in its directory", len(left))
			}
		}
		if b := get(t, st, res.Recipe.String()); !bytes.Equal(b, data) {
			t.Fatal("rebuilt bytes differ")
		}
	}
	if got[0].Recipe.String() != got[1].Recipe.String() || got[0].NBlock != got[1].NBlock || got[0].Tuples != got[1].Tuples {
		t.Fatalf("in memory: %s, %d blocks; spilled: %s, %d blocks", got[0].Recipe, got[0].NBlock, got[1].Recipe, got[1].NBlock)
	}
}
