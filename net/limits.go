package net

import (
	"fmt"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/protocol"
	rcmgr "github.com/libp2p/go-libp2p/p2p/host/resource-manager"
)

// Limits bounds what the peers a node serves can make it hold, whatever
// they send: the bytes of blocks read for them and not yet written (the
// Server's Budget), the block protocol's streams they may open (go-libp2p's
// resource manager, per protocol and per peer), and the memory libp2p's
// connections and streams may take.
type Limits struct {
	// Queued bounds the bytes of blocks read for peers and not yet
	// written, all peers together; QueuedPerPeer for one peer.
	Queued, QueuedPerPeer int64
	// Streams bounds the inbound block-protocol streams of all peers,
	// StreamsPerPeer those of one peer; a stream over either is reset.
	Streams, StreamsPerPeer int
	// Conns bounds the inbound connections.
	Conns int
	// Memory bounds what libp2p's resource manager lets connections and
	// streams reserve (buffers, windows).
	Memory int64
	// WriteIdle: a peer that takes no bytes of an answer for this long
	// is cut (0: DefaultIdle).
	WriteIdle time.Duration
	// ProofsPerPeer and Proofs bound the proofs a second computed for one
	// peer and for all (0: unbounded).
	ProofsPerPeer, Proofs int
}

// DefaultLimits are the limits of a default node, or of a low-power one:
// together with the rest of the daemon, at most 256 MiB and 96 MiB of
// memory whatever the peers do.
func DefaultLimits(lowPower bool) Limits {
	if lowPower {
		return Limits{Queued: 8 << 20, QueuedPerPeer: 2 << 20, Streams: 64, StreamsPerPeer: 16, Conns: 64, Memory: 24 << 20, WriteIdle: 20 * time.Second,
			ProofsPerPeer: 32, Proofs: 128}
	}
	return Limits{Queued: 32 << 20, QueuedPerPeer: 4 << 20, Streams: 256, StreamsPerPeer: 32, Conns: 256, Memory: 64 << 20, WriteIdle: 20 * time.Second,
		ProofsPerPeer: 64, Proofs: 512}
}

// resourceManager is go-libp2p's resource manager with its default limits
// (and those of its own services), the block protocol's streams bounded
// per protocol and per peer, and the whole within l.Memory. With metrics,
// its scopes' figures are reported (libp2p registers them with the node's
// Prometheus registry).
func resourceManager(l Limits, metrics bool) (network.ResourceManager, error) {
	sl := rcmgr.DefaultLimits
	libp2p.SetDefaultServiceLimits(&sl)
	pid := protocol.ID(ProtocolID)
	// Outbound streams are this node's own fetches and pushes: bounded by
	// its own workers, not by peers.
	sl.AddProtocolLimit(pid, rcmgr.BaseLimit{StreamsInbound: l.Streams, StreamsOutbound: 4096, Streams: l.Streams + 4096, Memory: l.Memory / 2}, rcmgr.BaseLimitIncrease{})
	sl.AddProtocolPeerLimit(pid, rcmgr.BaseLimit{StreamsInbound: l.StreamsPerPeer, StreamsOutbound: 1024, Streams: l.StreamsPerPeer + 1024, Memory: l.Memory / 8}, rcmgr.BaseLimitIncrease{})
	cc := sl.Scale(256<<20, 1024) // counts as on a small machine; memory below
	sys := rcmgr.PartialLimitConfig{System: rcmgr.ResourceLimits{
		Memory:       rcmgr.LimitVal64(l.Memory),
		ConnsInbound: rcmgr.LimitVal(l.Conns),
		Conns:        rcmgr.LimitVal(2 * l.Conns),
	}}
	var opts []rcmgr.Option
	if metrics {
		str, err := rcmgr.NewStatsTraceReporter()
		if err != nil {
			return nil, fmt.Errorf("resource manager's metrics: %w", err)
		}
		opts = append(opts, rcmgr.WithTraceReporter(str))
	}
	rm, err := rcmgr.NewResourceManager(rcmgr.NewFixedLimiter(sys.Build(cc)), opts...)
	if err != nil {
		return nil, fmt.Errorf("resource manager: %w", err)
	}
	return rm, nil
}
