package mixer

import (
	"bytes"
	"context"
	"slices"
	"testing"

	"github.com/blockmix/blockmix/blocks"
)

// TestMixStream: MixStream with every choice gives the tuples Mix gives
// from the same store and random source, each once and in order; Stored
// sees every block the call added (Result.New), in order, each before the
// tuple that names it, with the bytes its ID says; NoHash leaves the hash
// zero. Several short calls on one Mixer (its pooled buffers reused) give
// the same blocks as before too.
func TestMixStream(t *testing.T) {
	ctx := context.Background()
	src := randomBytes(9, 40*Small+3)
	stA, stB := blocks.NewMem(), blocks.NewMem()
	ma, mb := newMixer(t, stA, 3, 4, 7), newMixer(t, stB, 3, 4, 7)
	var want, got []Tuple
	var stored []blocks.ID
	named := map[blocks.ID]bool{}
	for part := range 3 {
		chunk := src[part*len(src)/3 : (part+1)*len(src)/3]
		from := len(stored)
		ra, err := ma.Mix(ctx, bytes.NewReader(chunk), Small, nil)
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, ra.Tuples...)
		rb, err := mb.MixStream(ctx, bytes.NewReader(chunk), Small, Stream{
			NoHash: true,
			Tuple: func(tu Tuple) error {
				got = append(got, tu)
				for _, id := range tu {
					named[id] = true
				}
				return nil
			},
			Stored: func(b blocks.Block) {
				if named[b.ID()] {
					t.Errorf("block %s stored after a tuple named it", b.ID())
				}
				if blocks.Sum(b.Data()) != b.ID() {
					t.Errorf("block %s given with other bytes", b.ID())
				}
				stored = append(stored, b.ID())
			},
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(rb.Tuples) != 0 || rb.SHA256 != [32]byte{} {
			t.Fatalf("MixStream with Tuple and NoHash: %d tuples listed, hash %x", len(rb.Tuples), rb.SHA256)
		}
		if !slices.Equal(stored[from:], rb.New) {
			t.Fatalf("part %d: Stored saw %d blocks, the call added %d", part, len(stored)-from, len(rb.New))
		}
	}
	if len(got) != len(want) {
		t.Fatalf("%d tuples, want %d", len(got), len(want))
	}
	for i := range want {
		if !slices.Equal(got[i], want[i]) {
			t.Fatalf("tuple %d: %v, want %v", i, got[i], want[i])
		}
	}
}
