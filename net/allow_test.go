package net

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/net/swarm"

	"github.com/blockmix/blockmix/blocks"
)

// TestAllowlist: a node with an allowlist talks to the listed peer both
// ways, and refuses an unlisted one both ways (its dial, and the
// stranger's), telling of each refused peer once.
func TestAllowlist(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	newKey := func() (crypto.PrivKey, peer.ID) {
		k, _, err := crypto.GenerateEd25519Key(nil)
		if err != nil {
			t.Fatal(err)
		}
		id, err := peer.IDFromPrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		return k, id
	}
	start := func(cfg Config) (*Node, *blocks.Mem) {
		st := blocks.NewMem()
		n, err := NewNode(cfg, st, &quotaSink{st: st, left: 1 << 30})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { n.Close() })
		return n, st
	}
	friendKey, friendID := newKey()
	var mu sync.Mutex
	refused := map[peer.ID][]network.Direction{}
	gated, gatedStore := start(Config{Allow: []peer.ID{friendID}, AllowRefused: func(p peer.ID, dir network.Direction) {
		mu.Lock()
		defer mu.Unlock()
		refused[p] = append(refused[p], dir)
	}})
	friend, _ := start(Config{Key: friendKey})
	stranger, _ := start(Config{})

	// The friend connects and fetches.
	b := block(42)
	if err := gatedStore.PutBlock(ctx, b, 0); err != nil {
		t.Fatal(err)
	}
	connect(t, ctx, friend, gated)
	missing, err := friend.Blocks.Fetch(ctx, gated.Host.ID(), []blocks.ID{b.ID()}, func(blocks.Block) error { return nil })
	if err != nil || len(missing) != 0 {
		t.Fatalf("the listed peer cannot fetch: missing %v, %v", missing, err)
	}
	if err := gated.Host.Connect(ctx, friend.AddrInfo()); err != nil {
		t.Fatalf("the gated node cannot dial the listed peer: %v", err)
	}

	// The stranger is refused, three times over: it is told once.
	for range 3 {
		if err := stranger.Host.Connect(ctx, gated.AddrInfo()); err == nil {
			// The dialer may finish its side of the handshake before the
			// gated node drops it: the connection must not last.
			deadline := time.Now().Add(10 * time.Second)
			for stranger.Host.Network().Connectedness(gated.Host.ID()) == network.Connected {
				if time.Now().After(deadline) {
					t.Fatal("an unlisted peer stays connected to a gated node")
				}
				time.Sleep(10 * time.Millisecond)
			}
		}
		clearBackoff(stranger, gated.Host.ID())
	}
	if _, err := stranger.Blocks.Fetch(ctx, gated.Host.ID(), []blocks.ID{b.ID()}, func(blocks.Block) error { return nil }); err == nil {
		t.Fatal("an unlisted peer fetched from a gated node")
	}
	if err := gated.Host.Connect(ctx, stranger.AddrInfo()); err == nil {
		t.Fatal("the gated node dialled an unlisted peer")
	}
	for _, p := range gated.Host.Network().Peers() {
		if p != friendID {
			t.Fatalf("the gated node is connected to %s, not listed", p)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if got := refused[stranger.Host.ID()]; len(got) != 1 {
		t.Fatalf("the stranger was reported %d times (%v), want once", len(got), got)
	}
	if _, ok := refused[friendID]; ok {
		t.Fatal("the listed peer was reported refused")
	}
}

// clearBackoff lets a dial from n to p go out again at once.
func clearBackoff(n *Node, p peer.ID) {
	if sw, ok := n.Host.Network().(*swarm.Swarm); ok {
		sw.Backoff().Clear(p)
	}
}
