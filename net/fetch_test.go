package net

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/blockmix/blockmix/blocks"
	"github.com/blockmix/blockmix/mixer"
	"github.com/blockmix/blockmix/recipe"
)

// TestUploaderMayLeave: node 0 puts a file, places every block it needs on
// three other nodes and goes away; node 4, which held nothing, rebuilds the
// file byte for byte through its Fetcher.
func TestUploaderMayLeave(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	nodes, stores := startNetwork(t, ctx, []int{1 << 30, 1 << 30, 1 << 30, 1 << 30, 1 << 30})

	data := make([]byte, 3<<20+12345)
	rand.NewChaCha8([32]byte{9}).Read(data)
	m, err := mixer.New(stores[0], mixer.Options{})
	if err != nil {
		t.Fatal(err)
	}
	res, err := recipe.Put(ctx, m, stores[0], bytes.NewReader(data), int64(len(data)), "f.bin", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	var bs []blocks.Block
	for _, id := range res.Blocks {
		b, err := blocks.GetBlock(ctx, stores[0], id)
		if err != nil {
			t.Fatal(err)
		}
		bs = append(bs, b)
	}
	if _, err := nodes[0].Place(ctx, bs, 3); err != nil {
		t.Fatal(err)
	}
	nodes[0].Close()

	// Node 4 is empty but for what placement gave it.
	r, err := recipe.Open(ctx, NewFetcher(nodes[4], stores[4]), res.Recipe, recipe.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if _, err := io.Copy(&out, r); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out.Bytes(), data) {
		t.Fatal("the file rebuilt on node 4 differs")
	}
	// What it fetched, it keeps.
	for _, id := range res.Blocks[:5] {
		if ok, _ := stores[4].Has(ctx, id); !ok {
			t.Fatalf("block %s was not kept after the fetch", id)
		}
	}
	// A block nobody has is "not found", after asking everyone.
	_, err = NewFetcher(nodes[4], stores[4]).Get(ctx, block(999).ID())
	if !errors.Is(err, blocks.ErrNotFound) {
		t.Fatalf("a block nobody has: %v", err)
	}
}
