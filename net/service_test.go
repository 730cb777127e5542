package net

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
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
	a := NewService(ha, stA, &quotaSink{st: stA, left: 1 << 20}, Limits{})
	NewService(hb, stB, &quotaSink{st: stB, left: len(block(0).Data())}, Limits{})

	held := block(1)
	if err := stB.PutBlock(ctx, held, 0); err != nil {
		t.Fatal(err)
	}
	var got []byte
	missing, err := a.Fetch(ctx, hb.ID(), []blocks.ID{held.ID(), block(2).ID()}, func(b blocks.Block) error {
		got = b.Clone().Data()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, held.Data()) || len(missing) != 1 || missing[0] != block(2).ID() {
		t.Fatalf("fetch: got %d bytes, missing %v", len(got), missing)
	}
	if s := a.Peers.Stats(hb.ID()); s.Successes != 1 || s.BytesIn != int64(len(held.Data())) || s.Latency <= 0 {
		t.Fatalf("peer stats after a fetch: %+v", s)
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

// TestServiceMarksLiars: a host that answers with wrong bytes is reported
// as lying, and the service's book ranks it out.
func TestServiceMarksLiars(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	mn := mocknet.New()
	defer mn.Close()
	ha, _ := mn.GenPeer()
	hb, _ := mn.GenPeer()
	if err := mn.LinkAll(); err != nil {
		t.Fatal(err)
	}
	if _, err := mn.ConnectPeers(ha.ID(), hb.ID()); err != nil {
		t.Fatal(err)
	}
	a := NewService(ha, blocks.NewMem(), nil, Limits{})
	want, other := block(1), block(2)
	hb.SetStreamHandler(ProtocolID, func(st network.Stream) {
		defer st.Close()
		if _, err := NewFrameReader(st).ReadFrame(); err != nil {
			return
		}
		_ = WriteFrame(st, Frame{Kind: KindBlock, ID: want.ID(), Data: other.Data()})
		_ = WriteFrame(st, Frame{Kind: KindEnd})
	})
	_, err := a.Fetch(ctx, hb.ID(), []blocks.ID{want.ID()}, func(blocks.Block) error {
		t.Fatal("a wrong block was delivered")
		return nil
	})
	if !errors.Is(err, ErrPeerLied) {
		t.Fatalf("got %v, want ErrPeerLied", err)
	}
	if s := a.Peers.Stats(hb.ID()); s.Lies != 1 {
		t.Fatalf("liar stats %+v", s)
	}
	if r := a.Peers.Rank([]peer.ID{hb.ID()}, time.Now()); len(r) != 0 {
		t.Fatal("a liar is still ranked")
	}
}
