package net

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/blockmix/blockmix/blocks"
)

// Service speaks the block protocol on a libp2p host: it answers other
// peers' want-lists from src and hands their pushes to sink, and it fetches
// from and pushes to other peers. Safe for concurrent use.
type Service struct {
	h   host.Host
	srv Server
	// Peers holds what the service measured of every peer: latency,
	// reliability, bytes, lies.
	Peers Book
	// DirectWait bounds how long a stream to a peer reached only through
	// a relay waits for a direct connection; 0: DefaultDirectWait. Set it
	// before the first request.
	DirectWait time.Duration
	// PunchFailed, if set, reports when the last hole punch to a peer
	// failed (false: it did not, or there was none): a stream to a peer
	// reached only through a relay then fails at once instead of waiting
	// for a direct connection that cannot come. Set it before the first
	// request.
	PunchFailed func(peer.ID) (time.Time, bool)
}

// ErrRelayedOnly: the peer is reached only through a relay, and no
// direct connection came within DirectWait. Blocks never go through a
// relay (its circuits carry control traffic only).
var ErrRelayedOnly = errors.New("reached only through a relay, and hole punching found no direct path")

// open opens a block-protocol stream to p over a direct connection: never
// over a relay's limited one. When p is reached only through a relay, it
// waits up to DirectWait for a hole punch (libp2p's swarm starts it); the
// error then wraps ErrRelayedOnly and says so.
func (s *Service) open(ctx context.Context, p peer.ID) (network.Stream, error) {
	wait := s.DirectWait
	if wait <= 0 {
		wait = DefaultDirectWait
	}
	if s.PunchFailed != nil && relayedOnly(s.h, p) {
		if at, failed := s.PunchFailed(p); failed && time.Since(at) < punchRetry {
			return nil, fmt.Errorf("open stream to %s: %w (the hole punch failed %v ago)", p, ErrRelayedOnly, time.Since(at).Round(time.Second))
		}
	}
	sctx, cancel := context.WithCancel(network.WithDialPeerTimeout(ctx, wait))
	defer cancel()
	punched := make(chan struct{}) // closed when a hole punch to p failed meanwhile
	if s.PunchFailed != nil {
		start := time.Now()
		go func() { // ends with sctx, at the latest when open returns
			t := time.NewTicker(100 * time.Millisecond)
			defer t.Stop()
			for {
				select {
				case <-sctx.Done():
					return
				case <-t.C:
					if at, failed := s.PunchFailed(p); failed && at.After(start) {
						close(punched)
						cancel()
						return
					}
				}
			}
		}()
	}
	st, err := s.h.NewStream(sctx, p, protocol.ID(ProtocolID))
	if err == nil {
		return st, nil
	}
	select {
	case <-punched:
		return nil, fmt.Errorf("open stream to %s: %w (the hole punch failed)", p, ErrRelayedOnly)
	default:
	}
	if relayedOnly(s.h, p) {
		return nil, fmt.Errorf("open stream to %s: %w within %v (%v)", p, ErrRelayedOnly, wait, err)
	}
	return nil, fmt.Errorf("open stream to %s: %w", p, err)
}

// punchRetry is how long after a failed hole punch a stream to the same
// peer, still reached only through a relay, fails at once.
const punchRetry = 10 * time.Minute

// relayedOnly reports whether every open connection to p is a relay's
// limited one (and there is one).
func relayedOnly(h host.Host, p peer.ID) bool {
	cs := h.Network().ConnsToPeer(p)
	for _, c := range cs {
		if !c.Stat().Limited {
			return false
		}
	}
	return len(cs) > 0
}

// NewService registers the protocol's handler on h, serving peers within
// lim (its Queued, QueuedPerPeer and WriteIdle). sink may be nil (the node
// takes no pushes).
func NewService(h host.Host, src blocks.Getter, sink Sink, lim Limits) *Service {
	s := &Service{h: h, srv: Server{Src: src, Sink: sink, WriteIdle: lim.WriteIdle}}
	if lim.Queued > 0 {
		s.srv.Budget = NewBudget(lim.Queued, lim.QueuedPerPeer)
	}
	if lim.ProofsPerPeer > 0 {
		s.srv.Proofs = NewProofRate(lim.ProofsPerPeer, lim.Proofs)
	}
	s.srv.Stalled = func(p string) {
		if id, err := peer.Decode(p); err == nil {
			_ = h.Network().ClosePeer(id)
		}
	}
	h.SetStreamHandler(protocol.ID(ProtocolID), s.handle)
	return s
}

// Close removes the handler; streams being served finish.
func (s *Service) Close() { s.h.RemoveStreamHandler(protocol.ID(ProtocolID)) }

func (s *Service) handle(st network.Stream) {
	err := s.srv.Serve(context.Background(), st, st.Conn().RemotePeer().String())
	if err != nil {
		_ = st.Reset()
		return
	}
	_ = st.Close()
}

// Fetch asks peer p for ids over a new stream (see the package's Fetch). A
// lying peer's stream is reset; the error wraps ErrPeerLied.
func (s *Service) Fetch(ctx context.Context, p peer.ID, ids []blocks.ID, got func(blocks.Block) error) ([]blocks.ID, error) {
	start := time.Now()
	st, err := s.open(ctx, p)
	if err != nil {
		s.Peers.Failure(p)
		return nil, err
	}
	var in int64
	missing, err := Fetch(ctx, st, ids, func(b blocks.Block) error {
		in += int64(len(b.Data()))
		return got(b)
	})
	if err != nil {
		_ = st.Reset()
		if IsLie(err) {
			s.Peers.Lie(p, time.Now())
		} else {
			s.Peers.Failure(p)
		}
		return missing, fmt.Errorf("fetch from %s: %w", p, err)
	}
	s.Peers.Success(p, time.Since(start)/time.Duration(len(ids)), in)
	return missing, st.Close()
}

// Has asks peer p which of ids it holds (see the package's Has).
func (s *Service) Has(ctx context.Context, p peer.ID, ids []blocks.ID) ([]bool, error) {
	st, err := s.open(ctx, p)
	if err != nil {
		s.Peers.Failure(p)
		return nil, err
	}
	out, err := Has(ctx, st, ids)
	if err != nil {
		_ = st.Reset()
		s.Peers.Failure(p)
		return nil, fmt.Errorf("ask %s: %w", p, err)
	}
	s.Peers.Answered(p)
	return out, st.Close()
}

// Push offers bs to peer p over a new stream (see the package's Push).
func (s *Service) Push(ctx context.Context, p peer.ID, bs []blocks.Block) ([]error, error) {
	st, err := s.open(ctx, p)
	if err != nil {
		s.Peers.Failure(p)
		return nil, err
	}
	res, err := Push(ctx, st, bs)
	if err != nil {
		_ = st.Reset()
		s.Peers.Failure(p)
		return res, fmt.Errorf("push to %s: %w", p, err)
	}
	for i, b := range bs {
		if res[i] == nil {
			s.Peers.Sent(p, int64(len(b.Data())))
		}
	}
	s.Peers.Answered(p)
	return res, st.Close()
}

// PushProven pushes bs to peer p (see the package's Push) and, on the
// same stream, asks p to prove it holds up to k of the blocks it accepted,
// chosen at random (see Prove): an accept is a claim, and one stream
// carries the blocks and the question (no second stream, no second
// protocol negotiation per batch). res is Push's answer; proven reports
// whether p proved every block of the sample (true when it accepted none:
// nothing to prove). A block it cannot prove marks it a liar. err is for
// the stream as a whole: after one, nothing of bs counts as held there.
func (s *Service) PushProven(ctx context.Context, p peer.ID, bs []blocks.Block, k int) (res []error, proven bool, err error) {
	st, err := s.open(ctx, p)
	if err != nil {
		s.Peers.Failure(p)
		return nil, false, err
	}
	res, err = Push(ctx, st, bs)
	if err != nil {
		_ = st.Reset()
		s.Peers.Failure(p)
		return res, false, fmt.Errorf("push to %s: %w", p, err)
	}
	var took []blocks.Block
	for i, b := range bs {
		if res[i] == nil {
			s.Peers.Sent(p, int64(len(b.Data())))
			took = append(took, b)
		}
	}
	proven, err = s.proveOn(ctx, st, p, sample(took, k))
	if err != nil {
		return res, false, err
	}
	return res, proven, nil
}

// Prove asks peer p to prove it holds bs, which it claimed (a Have, an
// Accept), and reports for each whether it did. A claim it cannot prove is
// a lie: the peer is marked a liar (see Book.Liar). A failed stream is a
// failure, not a lie; the error says so and nothing counts as proven.
func (s *Service) Prove(ctx context.Context, p peer.ID, bs []blocks.Block) ([]bool, error) {
	st, err := s.open(ctx, p)
	if err != nil {
		s.Peers.Failure(p)
		return nil, err
	}
	out, err := s.prove(ctx, st, p, bs)
	if err != nil {
		return nil, err
	}
	return out, st.Close()
}

// prove asks p on st to prove it holds bs (see Prove), marking it a
// liar when it cannot, and answered when it can. After an error st is
// reset; otherwise the caller closes it.
func (s *Service) prove(ctx context.Context, st network.Stream, p peer.ID, bs []blocks.Block) ([]bool, error) {
	out, err := Prove(ctx, st, bs)
	if err != nil {
		_ = st.Reset()
		s.Peers.Failure(p)
		return nil, fmt.Errorf("ask %s for proofs: %w", p, err)
	}
	for _, ok := range out {
		if !ok {
			s.Peers.Lie(p, time.Now())
			return out, nil
		}
	}
	s.Peers.Answered(p)
	return out, nil
}

// proveOn is prove on st for a yes or no: whether p proved every block
// of bs (true for none). It closes st, or resets it after an error.
func (s *Service) proveOn(ctx context.Context, st network.Stream, p peer.ID, bs []blocks.Block) (bool, error) {
	if len(bs) == 0 {
		s.Peers.Answered(p)
		return true, st.Close()
	}
	out, err := s.prove(ctx, st, p, bs)
	if err != nil {
		return false, err
	}
	for _, ok := range out {
		if !ok {
			return false, st.Close()
		}
	}
	return true, st.Close()
}

// Proven reports whether peer p proved it holds every block of bs (see
// Prove); any failure, even of the stream, is false.
func (s *Service) Proven(ctx context.Context, p peer.ID, bs []blocks.Block) bool {
	ok, err := s.Prove(ctx, p, bs)
	if err != nil {
		return false
	}
	for _, o := range ok {
		if !o {
			return false
		}
	}
	return true
}

// IsLie reports whether err means the peer sent bad blocks.
func IsLie(err error) bool { return errors.Is(err, ErrPeerLied) || errors.Is(err, ErrBadFrame) }
