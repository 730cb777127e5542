package net

import (
	"context"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/p2p/net/swarm"
)

// connect joins a to b, retrying a few times: on a busy machine a first
// dial can fail while the DHT dials too, and libp2p then backs off.
func connect(t *testing.T, ctx context.Context, a, b *Node) {
	t.Helper()
	var err error
	for try := 0; try < 20; try++ {
		if err = a.Host.Connect(ctx, b.AddrInfo()); err == nil {
			return
		}
		if sw, ok := a.Host.Network().(*swarm.Swarm); ok {
			sw.Backoff().Clear(b.Host.ID())
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("connect %s to %s: %v", a.Host.ID(), b.Host.ID(), err)
}
