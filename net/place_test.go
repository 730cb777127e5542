package net

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	kb "github.com/libp2p/go-libp2p-kbucket"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/blockmix/blockmix/blocks"
)

// startNetwork starts n real nodes on 127.0.0.1 that all know each other; node i
// takes pushes into stores[i] within quota[i] bytes.
func startNetwork(t *testing.T, ctx context.Context, quota []int) ([]*Node, []*blocks.Mem) {
	t.Helper()
	var nodes []*Node
	var stores []*blocks.Mem
	for i := range quota {
		st := blocks.NewMem()
		n, err := NewNode(Config{}, st, &quotaSink{st: st, left: quota[i]})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { n.Close() })
		nodes, stores = append(nodes, n), append(stores, st)
	}
	for i, a := range nodes {
		for _, b := range nodes[i+1:] {
			connect(t, ctx, a, b)
		}
	}
	for i, n := range nodes {
		for n.DHT.RoutingTable().Size() < len(nodes)-1 {
			if ctx.Err() != nil {
				t.Fatalf("node %d: routing table has %d peers", i, n.DHT.RoutingTable().Size())
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	return nodes, stores
}

func TestPlace(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	nodes, stores := startNetwork(t, ctx, []int{1 << 30, 1 << 30, 1 << 30, 1 << 30, 1 << 30})
	var bs []blocks.Block
	for i := 0; i < 40; i++ {
		bs = append(bs, block(100+i))
	}
	pls, err := nodes[0].Place(ctx, bs, 3)
	if err != nil {
		t.Fatal(err)
	}
	others := []peer.ID{}
	for _, n := range nodes[1:] {
		others = append(others, n.Host.ID())
	}
	for i, pl := range pls {
		want := kb.SortClosestPeers(append([]peer.ID(nil), others...), kb.ConvertKey(BlockKey(bs[i].ID())))[:3]
		if len(pl.Holders) != 3 {
			t.Fatalf("block %d: %d holders", i, len(pl.Holders))
		}
		for k := range want {
			if pl.Holders[k] != want[k] {
				t.Fatalf("block %d: holders %v, want the closest %v", i, pl.Holders, want)
			}
		}
		for j, n := range nodes[1:] {
			has, _ := stores[j+1].Has(ctx, bs[i].ID())
			held := false
			for _, h := range pl.Holders {
				held = held || h == n.Host.ID()
			}
			if has != held {
				t.Fatalf("block %d: node %d has it %v, placement says %v", i, j+1, has, held)
			}
		}
	}
}

// TestPlaceFallsBack: a node whose quota is full refuses, and the block
// goes to the next closest; asking for more copies than there are other
// nodes says so.
func TestPlaceFallsBack(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	nodes, _ := startNetwork(t, ctx, []int{1 << 30, 0, 1 << 30, 1 << 30, 1 << 30})
	full := nodes[1].Host.ID()
	var bs []blocks.Block
	for i := 0; i < 30; i++ {
		bs = append(bs, block(200+i))
	}
	pls, err := nodes[0].Place(ctx, bs, 3)
	if err != nil {
		t.Fatal(err)
	}
	refused := 0
	for i, pl := range pls {
		if len(pl.Holders) != 3 {
			t.Fatalf("block %d: %d holders", i, len(pl.Holders))
		}
		for _, h := range pl.Holders {
			if h == full {
				t.Fatalf("block %d placed on the full node", i)
			}
		}
		if len(pl.Refused) > 0 {
			refused++
			if !strings.Contains(pl.Refused[0], "quota") {
				t.Fatalf("refusal without the reason: %q", pl.Refused[0])
			}
		}
	}
	if refused == 0 {
		t.Fatal("the full node was never asked: the test proves nothing")
	}
	_, err = nodes[0].Place(ctx, bs[:2], 5)
	if !errors.Is(err, ErrUnderReplicated) || !strings.Contains(err.Error(), "only 4 other nodes") {
		t.Fatalf("R=5 with 4 other nodes: %v", err)
	}
}

// TestPlaceAll: a file's blocks placed slice by slice from a store: every
// block gets its copies, and when the network is too small the shortfall
// is counted across all slices and explained.
func TestPlaceAll(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	nodes, stores := startNetwork(t, ctx, []int{1 << 30, 1 << 30, 1 << 30, 1 << 30, 1 << 30})
	n := 2*PlaceSlice + 10
	var ids []blocks.ID
	for i := 0; i < n; i++ {
		b := block(5000 + i)
		if err := stores[0].PutBlock(ctx, b, uint64(i+1)); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, b.ID())
	}
	var progress []int
	short, holders, err := nodes[0].PlaceAll(ctx, stores[0], ids, 3, func(k int) { progress = append(progress, k) })
	if err != nil || short != 0 || holders != 4 {
		t.Fatalf("short %d, on %d nodes, %v", short, holders, err)
	}
	if len(progress) != (n+PlaceSlice-1)/PlaceSlice || progress[len(progress)-1] != n {
		t.Fatalf("progress %v", progress)
	}
	wantCopies(t, ctx, stores[1:], ids, 3)
	short, _, err = nodes[0].PlaceAll(ctx, stores[0], ids, 5, nil)
	if short != n || !errors.Is(err, ErrUnderReplicated) || !strings.Contains(err.Error(), "only 4 other nodes") {
		t.Fatalf("R=5 with 4 others: short %d, %v", short, err)
	}
}

// wantCopies fails the test unless each of ids is held by want of stores.
func wantCopies(t *testing.T, ctx context.Context, stores []*blocks.Mem, ids []blocks.ID, want int) {
	t.Helper()
	for _, id := range ids {
		copies := 0
		for _, st := range stores {
			if ok, _ := st.Has(ctx, id); ok {
				copies++
			}
		}
		if copies != want {
			t.Fatalf("block %s has %d copies, want %d", id, copies, want)
		}
	}
}

// TestPlacer: blocks added while they are made, some of them again (as a
// file's tuples name their randomizers many times), all get their copies
// once Close returns; a block the store lacks fails the placement with an
// error that says so.
func TestPlacer(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	nodes, stores := startNetwork(t, ctx, []int{1 << 30, 1 << 30, 1 << 30, 1 << 30, 1 << 30})
	p := nodes[0].NewPlacer(ctx, stores[0], 3)
	var placed []int
	p.Done = func(k int) { placed = append(placed, k) }
	n := 3*PlaceSlice + 5
	var ids []blocks.ID
	for i := 0; i < n; i++ {
		b := block(7000 + i)
		if err := stores[0].PutBlock(ctx, b, uint64(i+1)); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, b.ID())
		// Each new block, with one earlier block named again.
		if err := p.Add(b.ID(), ids[i/2]); err != nil {
			t.Fatalf("add %d: %v", i, err)
		}
	}
	short, holders, err := p.Close()
	if err != nil || short != 0 || holders != 4 {
		t.Fatalf("short %d, on %d nodes, %v", short, holders, err)
	}
	if len(placed) == 0 || placed[len(placed)-1] != n {
		t.Fatalf("placed %v, want a last count of %d (each block once)", placed, n)
	}
	wantCopies(t, ctx, stores[1:], ids, 3)

	// Blocks given with their bytes are placed without a read: these
	// are not even in the store. Each comes back through Release once
	// placed (or, given again, at once): its buffer can be reused.
	p = nodes[0].NewPlacer(ctx, stores[0], 3)
	var relMu sync.Mutex
	released := map[blocks.ID]int{}
	p.Release = func(b blocks.Block) {
		relMu.Lock()
		defer relMu.Unlock()
		released[b.ID()]++
	}
	var given []blocks.ID
	for i := range PlaceSlice + 3 {
		b := block(8000 + i)
		given = append(given, b.ID())
		if err := p.AddBlocks(b); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.AddBlocks(block(8000)); err != nil { // again: not placed twice
		t.Fatal(err)
	}
	if err := p.Add(given...); err != nil {
		t.Fatal(err)
	}
	if short, _, err := p.Close(); err != nil || short != 0 {
		t.Fatalf("blocks given with their bytes: short %d, %v", short, err)
	}
	wantCopies(t, ctx, stores[1:], given, 3)
	for i, id := range given {
		want := 1
		if i == 0 {
			want = 2
		}
		if released[id] != want {
			t.Fatalf("block %d given %d times came back %d times", i, want, released[id])
		}
	}

	p = nodes[0].NewPlacer(ctx, stores[0], 3)
	missing := block(9999).ID()
	var addErr error
	for i := 0; i < 2*PlaceSlice && addErr == nil; i++ {
		addErr = p.Add(missing, ids[i])
	}
	if _, _, err := p.Close(); err == nil || !errors.Is(err, blocks.ErrNotFound) || !strings.Contains(err.Error(), "read block to place") {
		t.Fatalf("a block the store lacks: %v (add: %v)", err, addErr)
	}
}

// TestCopies: after placement every block has three holders among the
// closest, the has-lists say so, and a block nobody has counts zero.
func TestCopies(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	nodes, stores := startNetwork(t, ctx, []int{1 << 30, 1 << 30, 1 << 30, 1 << 30, 1 << 30})
	var bs []blocks.Block
	var ids []blocks.ID
	for i := 0; i < 30; i++ {
		bs = append(bs, block(7000+i))
		ids = append(ids, bs[i].ID())
	}
	if _, err := nodes[0].Place(ctx, bs, 3); err != nil {
		t.Fatal(err)
	}
	// One holder loses a block.
	lost := ids[0]
	for _, st := range stores[1:] {
		if ok, _ := st.Has(ctx, lost); ok {
			if err := st.Delete(ctx, lost); err != nil {
				t.Fatal(err)
			}
			break
		}
	}
	got := nodes[0].Copies(ctx, append(ids, block(9999).ID()), 4)
	for i, c := range got[:len(ids)] {
		want := 3
		if i == 0 {
			want = 2
		}
		if c != want {
			t.Fatalf("block %d: %d copies, want %d (all %v)", i, c, want, got)
		}
	}
	if got[len(ids)] != 0 {
		t.Fatalf("a block nobody has: %d copies", got[len(ids)])
	}
}

// TestHandOff: a block this node is responsible for goes to the next
// closest nodes that lack it before this node may drop it; with too few
// nodes the hand-off says so.
func TestHandOff(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	nodes, stores := startNetwork(t, ctx, []int{1 << 30, 1 << 30, 1 << 30, 1 << 30, 1 << 30})
	b := block(8000)
	if !nodes[0].Responsible(b.ID(), 5) {
		t.Fatal("with R = 5 in a 5-node network every node is responsible")
	}
	responsible := 0
	for _, n := range nodes {
		if n.Responsible(b.ID(), 2) {
			responsible++
		}
	}
	if responsible != 2 {
		t.Fatalf("%d nodes think they are among the 2 closest", responsible)
	}
	if pushed, err := nodes[0].HandOff(ctx, b, 3); err != nil || pushed != 3 {
		t.Fatalf("HandOff = %d pushed, %v; want 3 pushed", pushed, err)
	}
	holders := 0
	for _, st := range stores[1:] {
		if ok, _ := st.Has(ctx, b.ID()); ok {
			holders++
		}
	}
	if holders != 3 {
		t.Fatalf("%d others hold the block after the hand-off, want 3", holders)
	}
	// Again: they have it already, nothing more is pushed.
	if pushed, err := nodes[0].HandOff(ctx, b, 3); err != nil || pushed != 0 {
		t.Fatalf("second HandOff = %d pushed, %v; want 0 pushed", pushed, err)
	}
	// One more holder is found (the fourth other), then too few.
	if pushed, err := nodes[0].HandOff(ctx, b, 5); !errors.Is(err, ErrUnderReplicated) || pushed != 1 {
		t.Fatalf("5 holders among 4 others: %d pushed, %v; want 1 pushed and ErrUnderReplicated", pushed, err)
	}
}
