package net

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/blockmix/blockmix/blocks"
)

// TestNodesOnLoopback starts five real nodes on 127.0.0.1, each joining the
// DHT through the one before it, and checks that every routing table fills
// and that a node finds peers closest to a block's key, then fetches the
// block from the node that holds it.
func TestNodesOnLoopback(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var nodes []*Node
	stores := make([]*blocks.Mem, 5)
	for i := range stores {
		stores[i] = blocks.NewMem()
		cfg := Config{}
		if i > 0 {
			cfg.Bootstrap = []peer.AddrInfo{nodes[i-1].AddrInfo()}
		}
		n, err := NewNode(cfg, stores[i], nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { n.Close() })
		nodes = append(nodes, n)
		for _, a := range n.Host.Addrs() {
			if s := a.String(); len(s) < 14 || s[:14] != "/ip4/127.0.0.1" {
				t.Fatalf("node listens on %s, not loopback", s)
			}
		}
	}
	for i, n := range nodes {
		if i > 0 {
			connect(t, ctx, n, nodes[i-1])
		}
	}
	for i, n := range nodes {
		for n.DHT.RoutingTable().Size() == 0 {
			if ctx.Err() != nil {
				t.Fatalf("node %d: routing table still empty", i)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	b := block(7)
	if err := stores[4].PutBlock(ctx, b, 0); err != nil {
		t.Fatal(err)
	}
	// The DHT converges: a lookup made while the chain's routing tables are
	// still filling may see fewer peers, so ask again for a while.
	var closest []peer.ID
	for try := 0; len(closest) < 3; try++ {
		var err error
		if closest, err = nodes[0].Closest(ctx, b.ID(), 3); err != nil {
			t.Fatal(err)
		}
		if try == 50 {
			t.Fatalf("closest: %v, want 3 peers", closest)
		}
		if len(closest) < 3 {
			time.Sleep(100 * time.Millisecond)
		}
	}
	for _, p := range closest {
		if p == nodes[0].Host.ID() {
			t.Fatal("closest includes the asking node")
		}
	}
	connect(t, ctx, nodes[0], nodes[4])
	var got []byte
	if _, err := nodes[0].Blocks.Fetch(ctx, nodes[4].Host.ID(), []blocks.ID{b.ID()}, func(blk blocks.Block) error {
		got = blk.Clone().Data()
		return nil
	}); err != nil || len(got) != len(b.Data()) {
		t.Fatalf("fetch over TCP: %d bytes, %v", len(got), err)
	}
}

// TestFileProviders: a node that announces a file is found by another
// through the DHT, and no one is found for a file nobody announced.
func TestFileProviders(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	nodes, _ := startNetwork(t, ctx, []int{0, 0, 0, 0})
	root := block(5).ID()
	if err := nodes[1].ProvideFile(ctx, root); err != nil {
		t.Fatal(err)
	}
	var found []string
	for p := range nodes[3].FileProviders(ctx, root, 3) {
		found = append(found, p.String())
	}
	if len(found) != 1 || found[0] != nodes[1].Host.ID().String() {
		t.Fatalf("providers %v, want [%s]", found, nodes[1].Host.ID())
	}
	sctx, scancel := context.WithTimeout(ctx, 5*time.Second)
	defer scancel()
	for p := range nodes[3].FileProviders(sctx, block(6).ID(), 3) {
		t.Fatalf("a provider %s for a file nobody announced", p)
	}
}

// TestGroups: nodes with one group key see each other; a node with another
// key cannot join them, and says so within two seconds.
func TestGroups(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	key := func(b byte) []byte { return bytes.Repeat([]byte{b}, GroupKeySize) }
	mk := func(k []byte, listen ...string) *Node {
		n, err := NewNode(Config{GroupKey: k, Listen: listen}, blocks.NewMem(), nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { n.Close() })
		return n
	}
	a := mk(key(1), "/ip4/127.0.0.1/tcp/0", "/ip4/127.0.0.1/udp/0/quic-v1")
	for _, addr := range a.Host.Addrs() {
		if strings.Contains(addr.String(), "quic") {
			t.Fatalf("a group node listens on QUIC: %s", addr)
		}
	}
	b, c := mk(key(1)), mk(key(2))
	if err := b.Join(ctx, a.AddrInfo(), 2*time.Second, true); err != nil {
		t.Fatalf("same group: %v", err)
	}
	start := time.Now()
	err := c.Join(ctx, a.AddrInfo(), 1500*time.Millisecond, true)
	if !errors.Is(err, ErrOtherGroup) || time.Since(start) > 2*time.Second {
		t.Fatalf("another group: %v after %s", err, time.Since(start))
	}
	if _, err := NewNode(Config{GroupKey: key(1), Listen: []string{"/ip4/127.0.0.1/udp/0/quic-v1"}}, blocks.NewMem(), nil); err == nil {
		t.Fatal("a group node with only a QUIC address started")
	}
}
