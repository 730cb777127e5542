package net

import (
	"bytes"
	"context"
	"crypto/subtle"
	"testing"
	"time"

	"github.com/blockmix/blockmix/blocks"
	"github.com/blockmix/blockmix/mixer"
	"github.com/blockmix/blockmix/recipe"
)

// TestNoiseAcrossNodes is the central promise on a node that received
// blocks: node A puts 2 MiB of zeros; node B fetches the file, then puts
// 2 MiB of 0xFF bytes. No block B stores, and no XOR of two of them, may
// be B's plaintext (or A's): B must not mix its file with blocks whose
// relation to each other it cannot know.
func TestNoiseAcrossNodes(t *testing.T) {
	t.Run("fetched", func(t *testing.T) { noiseAcrossNodes(t, false) })
	t.Run("pushed", func(t *testing.T) { noiseAcrossNodes(t, true) })
}

// noiseAcrossNodes: B gets A's blocks by fetching the file, or (pushed)
// as a donor A places them on.
func noiseAcrossNodes(t *testing.T, pushed bool) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	nodes, stores := startNetwork(t, ctx, []int{1 << 30, 1 << 30})
	a, b := stores[0], stores[1]
	zeros := make([]byte, 2<<20)
	ma, err := mixer.New(a, mixer.Options{})
	if err != nil {
		t.Fatal(err)
	}
	res, err := recipe.Put(ctx, ma, a, bytes.NewReader(zeros), int64(len(zeros)), "zeros.bin", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	ids := putList(t, a, res)
	if pushed {
		var bs []blocks.Block
		for _, id := range ids {
			blk, err := blocks.GetBlock(ctx, a, id)
			if err != nil {
				t.Fatal(err)
			}
			bs = append(bs, blk)
		}
		if _, err := nodes[0].Place(ctx, bs, 1); err != nil {
			t.Fatal(err)
		}
	} else {
		r, err := recipe.Open(ctx, NewFetcher(nodes[1], b), res.Recipe, recipe.Options{})
		if err != nil {
			t.Fatal(err)
		}
		var got bytes.Buffer
		if _, err := r.WriteTo(&got); err != nil || !bytes.Equal(got.Bytes(), zeros) {
			t.Fatalf("B's get: %v", err)
		}
	}
	if s, _ := b.Stats(ctx); s.Blocks < len(ids) {
		t.Fatalf("B holds %d blocks, A's file has %d", s.Blocks, len(ids))
	}

	ones := bytes.Repeat([]byte{0xff}, 2<<20)
	mb, err := mixer.New(b, mixer.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := recipe.Put(ctx, mb, b, bytes.NewReader(ones), int64(len(ones)), "ones.bin", "", nil); err != nil {
		t.Fatal(err)
	}

	var held [][]byte
	if err := b.Enumerate(ctx, func(id blocks.ID, m blocks.Meta) error {
		if m.Size == mixer.Large {
			d, err := b.Get(ctx, id)
			held = append(held, d)
			return err
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	plain := func(x []byte) bool { return bytes.Equal(x, ones[:len(x)]) || bytes.Equal(x, zeros[:len(x)]) }
	x := make([]byte, mixer.Large)
	leaks := 0
	for i := range held {
		if plain(held[i]) {
			leaks++
		}
		for j := i + 1; j < len(held); j++ {
			subtle.XORBytes(x, held[i], held[j])
			if plain(x) {
				leaks++
			}
		}
	}
	if leaks > 0 {
		t.Fatalf("%d blocks or pairs of blocks on B are plaintext (of %d blocks)", leaks, len(held))
	}
}
