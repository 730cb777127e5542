package net

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/blockmix/blockmix/blocks"
)

// dropSink stores every pushed block but one (it accepts that one too):
// a peer that lost, or never kept, one block of a batch.
type dropSink struct {
	*StoreSink
	drop blocks.ID
}

func (s dropSink) Accept(ctx context.Context, peer string, b blocks.Block) error {
	if b.ID() == s.drop {
		return nil
	}
	return s.StoreSink.Accept(ctx, peer, b)
}

// TestPushThenProveOnOneStream: a push and the prove-list for its blocks
// go on one stream, one after the other, and the server answers both; a
// block it accepted and did not keep is not proven.
func TestPushThenProveOnOneStream(t *testing.T) {
	st := blocks.NewMem()
	bs := []blocks.Block{block(1), block(2), block(3)}
	conn, _ := serve(t, st, dropSink{NewStoreSink(st), bs[1].ID()})
	ctx := context.Background()
	res, err := Push(ctx, conn, bs)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range res {
		if r != nil {
			t.Fatalf("push %d refused: %v", i, r)
		}
	}
	ok, err := Prove(ctx, conn, bs)
	if err != nil {
		t.Fatal(err)
	}
	if !ok[0] || ok[1] || !ok[2] {
		t.Fatalf("proofs on the push's stream %v, want [true false true]", ok)
	}
}

// TestPushProven: PushProven pushes a batch and proves a sample of it on
// the same stream. An honest peer proves the whole batch; a peer that
// kept all blocks of the batch but one fails the proof of the batch
// (asked for every block), is marked a liar, and placement counts none
// of the batch there.
func TestPushProven(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	up, err := NewNode(Config{}, blocks.NewMem(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer up.Close()
	honestStore := blocks.NewMem()
	honest, err := NewNode(Config{}, honestStore, NewStoreSink(honestStore))
	if err != nil {
		t.Fatal(err)
	}
	defer honest.Close()
	bs := randomBlocks(t, 8, 16<<10)
	lossyStore := blocks.NewMem()
	lossy, err := NewNode(Config{}, lossyStore, dropSink{NewStoreSink(lossyStore), bs[5].ID()})
	if err != nil {
		t.Fatal(err)
	}
	defer lossy.Close()
	connect(t, ctx, up, honest)
	connect(t, ctx, up, lossy)

	res, proven, err := up.Blocks.PushProven(ctx, honest.Host.ID(), bs, len(bs))
	if err != nil || !proven {
		t.Fatalf("honest peer: proven %v, err %v; want proven", proven, err)
	}
	for i, r := range res {
		if r != nil {
			t.Fatalf("honest peer refused block %d: %v", i, r)
		}
		if got, err := honestStore.Get(ctx, bs[i].ID()); err != nil || !bytes.Equal(got, bs[i].Data()) {
			t.Fatalf("honest peer does not hold block %d: %v", i, err)
		}
	}
	if up.Blocks.Peers.Liar(honest.Host.ID()) {
		t.Fatal("honest peer marked a liar")
	}

	res, proven, err = up.Blocks.PushProven(ctx, lossy.Host.ID(), bs, len(bs))
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range res {
		if r != nil {
			t.Fatalf("lossy peer refused block %d: %v", i, r)
		}
	}
	if proven {
		t.Fatal("a peer that kept 7 of 8 blocks proved the batch")
	}
	if !up.Blocks.Peers.Liar(lossy.Host.ID()) {
		t.Fatal("the peer that lost a block it accepted is not marked a liar")
	}

	// Placement on the two: every block counts the honest peer only.
	pls, err := up.Place(ctx, bs, 2)
	if err == nil {
		t.Fatal("placement with R = 2 on one honest peer and a liar: no error")
	}
	for i, pl := range pls {
		if len(pl.Holders) != 1 || pl.Holders[0] != honest.Host.ID() {
			t.Fatalf("block %d: holders %v, want only the honest peer", i, pl.Holders)
		}
	}
}
