package net

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"

	"github.com/blockmix/blockmix/blocks"
)

// TestServiceOverLibp2p: two real libp2p hosts (in-process network) fetch
// and push blocks with the protocol.
func TestServiceOverLibp2p(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	mn := mocknet.New()
	defer mn.Close()
	ha, err := mn.GenPeer()
	if err != nil {
		t.Fatal(err)
	}
	hb, err := mn.GenPeer()
	if err != nil {
		t.Fatal(err)
	}
	if err := mn.LinkAll(); err != nil {
		t.Fatal(err)
	}
	if _, err := mn.ConnectPeers(ha.ID(), hb.ID()); err != nil {
		t.Fatal(err)
	}
	stA, stB := blocks.NewMem(), blocks.NewMem()
	a := NewService(ha, stA, &quotaSink{st: stA, left: 1 << 20})
	NewService(hb, stB, &quotaSink{st: stB, left: len(block(0).Data())})

	held := block(1)
	if err := stB.PutBlock(ctx, held, 0); err != nil {
		t.Fatal(err)
	}
	var got []byte
	missing, err := a.Fetch(ctx, hb.ID(), []blocks.ID{held.ID(), block(2).ID()}, func(_ blocks.ID, b []byte) error {
		got = append([]byte(nil), b...)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, held.Data()) || len(missing) != 1 || missing[0] != block(2).ID() {
		t.Fatalf("fetch: got %d bytes, missing %v", len(got), missing)
	}

	res, err := a.Push(ctx, hb.ID(), []blocks.Block{block(3), block(4)})
	if err != nil {
		t.Fatal(err)
	}
	var r *Refusal
	if res[0] != nil || !errors.As(res[1], &r) || r.Code != RefuseQuota {
		t.Fatalf("push: %v; want accepted, then refused for quota", res)
	}
	if ok, _ := stB.Has(ctx, block(3).ID()); !ok {
		t.Fatal("the pushed block is not on the receiver")
	}
}
