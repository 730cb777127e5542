package blocks_test

import (
	"context"
	"math/rand/v2"
	"testing"

	"github.com/blockmix/blockmix/blocks"
)

// TestPutNew: PutNew adds a block once; a second Put of the same block
// adds nothing and keeps the first tag.
func TestPutNew(t *testing.T) {
	ctx := context.Background()
	s := openDisk(t, t.TempDir(), blocks.DiskOptions{})
	id, data := randBlock(rand.New(rand.NewPCG(1, 2)), 1024)
	tag := blocks.PushTag("peerA", 77)
	for i, want := range []bool{true, false} {
		added, err := s.PutNew(ctx, id, data, tag+uint64(i)*2)
		if err != nil || added != want {
			t.Fatalf("PutNew #%d = %v, %v; want %v", i+1, added, err, want)
		}
	}
	m, err := s.Stat(ctx, id)
	if err != nil || m.Tag != tag {
		t.Fatalf("Stat = %+v, %v; want the first tag %x", m, err, tag)
	}
	if _, err := s.PutNew(ctx, id, data[1:], tag); err == nil {
		t.Fatal("PutNew of bytes that do not match the ID succeeded")
	}
}

// TestPutNewBlock: PutNewBlock, PutNew for a Block already hashed, adds a
// block once and refuses the zero Block.
func TestPutNewBlock(t *testing.T) {
	ctx := context.Background()
	s := openDisk(t, t.TempDir(), blocks.DiskOptions{})
	_, data := randBlock(rand.New(rand.NewPCG(3, 4)), 1024)
	b, err := blocks.NewBlock(data)
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []bool{true, false} {
		added, err := s.PutNewBlock(ctx, b, 7)
		if err != nil || added != want {
			t.Fatalf("PutNewBlock #%d = %v, %v; want %v", i+1, added, err, want)
		}
	}
	if got, err := s.Get(ctx, b.ID()); err != nil || string(got) != string(data) {
		t.Fatalf("Get after PutNewBlock: %v", err)
	}
	if added, err := s.PutNewBlock(ctx, blocks.Block{}, 7); err == nil || added {
		t.Fatalf("PutNewBlock of the zero Block = %v, %v; want an error", added, err)
	}
}

// TestPushTag: a push tag marks the block held for the network and names
// its pusher; fetched blocks' and the mixer's tags do not.
func TestPushTag(t *testing.T) {
	for _, r := range []uint64{0, 1, 1<<64 - 1, 12345} {
		tag := blocks.PushTag("12D3KooWpeer", r)
		if !blocks.HeldForNetwork(tag) || tag == 0 {
			t.Errorf("PushTag(_, %x) = %x: not held for the network", r, tag)
		}
		if p, ok := blocks.Pusher(tag); !ok || p != blocks.PusherPrint("12D3KooWpeer") {
			t.Errorf("Pusher(%x) = %x, %v; want %x", tag, p, ok, blocks.PusherPrint("12D3KooWpeer"))
		}
	}
	for _, tag := range []uint64{blocks.ForeignTag | 5, blocks.NetworkTag | 5, 5} {
		if blocks.HeldForNetwork(tag) {
			t.Errorf("HeldForNetwork(%x) = true", tag)
		}
		if _, ok := blocks.Pusher(tag); ok {
			t.Errorf("Pusher(%x) found a pusher", tag)
		}
	}
}

// TestCostMatchesDisk: the sum of Cost over the blocks held is what the
// store takes on disk (Stats.DiskBytes), within 1 %, for small blocks
// too, where the index is a large part of it.
func TestCostMatchesDisk(t *testing.T) {
	ctx := context.Background()
	for _, c := range [][2]int{{1 << 10, 5000}, {16 << 10, 2000}} {
		n, count := c[0], c[1]
		dir := t.TempDir()
		s := openDisk(t, dir, blocks.DiskOptions{})
		r := rand.New(rand.NewPCG(uint64(n), 9))
		var cost int64
		for i := 0; i < count; i++ {
			id, data := randBlock(r, n)
			if _, err := s.PutNew(ctx, id, data, blocks.PushTag("peer", r.Uint64())); err != nil {
				t.Fatal(err)
			}
			cost += s.Cost(n)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		s = openDisk(t, dir, blocks.DiskOptions{})
		st, err := s.Stats(ctx)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%d-byte blocks: cost %d, on disk %d (%.2f %%)", n, cost, st.DiskBytes, 100*float64(cost-st.DiskBytes)/float64(st.DiskBytes))
		if d := float64(cost-st.DiskBytes) / float64(st.DiskBytes); d > 0.01 || d < -0.01 {
			t.Errorf("%d-byte blocks: Cost sums to %d, the store takes %d on disk", n, cost, st.DiskBytes)
		}
	}
}
