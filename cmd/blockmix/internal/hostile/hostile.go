// Package hostile is an adversary for blockmix's tests: libp2p nodes that
// speak blockmix's DHT (its own prefix, server mode) and the block protocol
// on raw streams, the way a broken or hostile peer would, and HTTP clients
// that abuse a node's local API. Each attack is a function that takes its
// target (a peer.AddrInfo, or the API's base URL) and returns what it
// measured; the tests in cmd/blockmix run them against real daemons and
// assert the bounds the daemon must hold.
//
// Nothing here is used by the daemon. Every node listens on 127.0.0.1 only.
package hostile

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p"
	dht "github.com/libp2p/go-libp2p-kad-dht"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
	"github.com/multiformats/go-multistream"

	"github.com/blockmix/blockmix/blocks"
	bmnet "github.com/blockmix/blockmix/net"
)

// Options set up a Node.
type Options struct {
	// Bootstrap peers to join the DHT through (none: the node only dials
	// the targets it is given).
	Bootstrap []peer.AddrInfo
	// Liar makes the node serve the block protocol as a liar: it answers
	// Accept to every push and throws the block away, Have to every
	// has-list, DontHave to every want-list, and resets the stream on any
	// other frame (a proof challenge it cannot answer).
	Liar bool
}

// Node is one hostile peer: a libp2p host on 127.0.0.1 with blockmix's DHT
// in server mode. Its resource manager is off, so that its own limits never
// soften an attack.
type Node struct {
	Host host.Host
	DHT  *dht.IpfsDHT

	// What a liar was told and what it claimed.
	PushesDiscarded atomic.Int64 // pushes answered Accept and thrown away
	HavesClaimed    atomic.Int64 // Have answers for blocks it does not hold
	Challenges      atomic.Int64 // streams reset on a frame it does not know
}

// New starts a hostile node.
func New(o Options) (*Node, error) {
	h, err := libp2p.New(
		libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"),
		libp2p.Transport(tcp.NewTCPTransport),
		libp2p.DisableRelay(),
		libp2p.DisableMetrics(),
		libp2p.ResourceManager(&network.NullResourceManager{}),
	)
	if err != nil {
		return nil, fmt.Errorf("start hostile host: %w", err)
	}
	d, err := dht.New(h,
		dht.ProtocolPrefix(bmnet.DHTPrefix),
		dht.Mode(dht.ModeServer),
		dht.BootstrapPeers(o.Bootstrap...),
	)
	if err != nil {
		h.Close()
		return nil, fmt.Errorf("start hostile DHT: %w", err)
	}
	n := &Node{Host: h, DHT: d}
	if o.Liar {
		h.SetStreamHandler(protocol.ID(bmnet.ProtocolID), n.lie)
	}
	return n, nil
}

// Close stops the node.
func (n *Node) Close() error { return errors.Join(n.DHT.Close(), n.Host.Close()) }

// AddrInfo returns how to reach the node.
func (n *Node) AddrInfo() peer.AddrInfo { return peer.AddrInfo{ID: n.Host.ID(), Addrs: n.Host.Addrs()} }

// stream connects to target and opens a block-protocol stream.
func (n *Node) stream(ctx context.Context, target peer.AddrInfo) (network.Stream, error) {
	if err := n.Host.Connect(ctx, target); err != nil {
		return nil, fmt.Errorf("connect to %s: %w", target.ID, err)
	}
	s, err := n.Host.NewStream(ctx, target.ID, protocol.ID(bmnet.ProtocolID))
	if err != nil {
		return nil, fmt.Errorf("open stream to %s: %w", target.ID, err)
	}
	return s, nil
}

// rawStream opens a block-protocol stream on the swarm itself and
// negotiates the protocol before it returns. Unlike the host's NewStream
// (whose lazy negotiation answers a read of zero bytes without looking at
// the stream), a read of zero bytes on it reaches the muxer: Poll sees a
// reset without taking a byte of the answer.
func rawStream(ctx context.Context, n *Node, p peer.ID) (network.Stream, error) {
	s, err := n.Host.Network().NewStream(ctx, p)
	if err != nil {
		return nil, err
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = s.SetDeadline(dl)
	}
	if err := multistream.SelectProtoOrFail(protocol.ID(bmnet.ProtocolID), s); err != nil {
		_ = s.Reset()
		return nil, fmt.Errorf("negotiate %s: %w", bmnet.ProtocolID, err)
	}
	_ = s.SetProtocol(protocol.ID(bmnet.ProtocolID))
	_ = s.SetDeadline(time.Time{})
	return s, nil
}

// lie serves one stream as a liar (see Options.Liar).
func (n *Node) lie(s network.Stream) {
	defer s.Close()
	fr := bmnet.NewFrameReader(s)
	for {
		_ = s.SetDeadline(time.Now().Add(bmnet.DefaultIdle))
		f, err := fr.ReadFrame()
		if err == io.EOF {
			return
		}
		if err != nil {
			n.Challenges.Add(1)
			_ = s.Reset()
			return
		}
		var out []bmnet.Frame
		switch f.Kind {
		case bmnet.KindPush:
			n.PushesDiscarded.Add(1)
			out = append(out, bmnet.Frame{Kind: bmnet.KindAccept, ID: f.ID})
		case bmnet.KindHas:
			for _, id := range f.IDs {
				out = append(out, bmnet.Frame{Kind: bmnet.KindHave, ID: id})
			}
			n.HavesClaimed.Add(int64(len(f.IDs)))
			out = append(out, bmnet.Frame{Kind: bmnet.KindEnd})
		case bmnet.KindWant:
			for _, id := range f.IDs {
				out = append(out, bmnet.Frame{Kind: bmnet.KindDontHave, ID: id})
			}
			out = append(out, bmnet.Frame{Kind: bmnet.KindEnd})
		default:
			// A challenge, or anything else it cannot answer truthfully.
			n.Challenges.Add(1)
			_ = s.Reset()
			return
		}
		for _, g := range out {
			if err := bmnet.WriteFrame(s, g); err != nil {
				_ = s.Reset()
				return
			}
		}
	}
}

// Fetch is what an honest peer does: it asks target for ids over a new
// stream of n and reads the answer (every block checked against its ID).
// It returns how long the fetch took and the IDs the target does not have.
func Fetch(ctx context.Context, n *Node, target peer.AddrInfo, ids []blocks.ID) (time.Duration, []blocks.ID, error) {
	start := time.Now()
	s, err := n.stream(ctx, target)
	if err != nil {
		return time.Since(start), nil, err
	}
	missing, err := bmnet.Fetch(ctx, s, ids, func(blocks.Block) error { return nil })
	if err != nil {
		_ = s.Reset()
		return time.Since(start), missing, err
	}
	_ = s.Close()
	return time.Since(start), missing, nil
}

// WantResult is what RepeatedWant measured.
type WantResult struct {
	Bytes    int64 // bytes of the answer (frames, as the block protocol counts them)
	Blocks   int   // block frames in the answer
	DontHave int   // don't-have frames
	Ended    bool  // the answer ended with an End frame
	Cut      error // the stream's error when it broke (reset, deadline) instead
}

// RepeatedWant sends one want-list naming id times times (one frame of
// 32×times bytes) and reads the whole answer, counting what came back.
// It stops at the answer's End, when the stream breaks, or when ctx ends.
func RepeatedWant(ctx context.Context, n *Node, target peer.AddrInfo, id blocks.ID, times int) (WantResult, error) {
	var r WantResult
	s, err := n.stream(ctx, target)
	if err != nil {
		return r, err
	}
	defer s.Reset()
	if dl, ok := ctx.Deadline(); ok {
		_ = s.SetDeadline(dl)
	}
	ids := make([]blocks.ID, times)
	for i := range ids {
		ids[i] = id
	}
	if err := bmnet.WriteFrame(s, bmnet.Frame{Kind: bmnet.KindWant, IDs: ids}); err != nil {
		return r, fmt.Errorf("send want-list: %w", err)
	}
	cr := &countingReader{r: s}
	fr := bmnet.NewFrameReader(cr)
	for {
		f, err := fr.ReadFrame()
		r.Bytes = cr.n.Load()
		if err != nil {
			r.Cut = err
			return r, nil
		}
		switch f.Kind {
		case bmnet.KindBlock:
			r.Blocks++
		case bmnet.KindDontHave:
			r.DontHave++
		case bmnet.KindEnd:
			r.Ended = true
			return r, nil
		}
	}
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n atomic.Int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	k, err := c.r.Read(p)
	c.n.Add(int64(k))
	return k, err
}

// PushResult is what Push measured.
type PushResult struct {
	Sent          int   // pushes written
	Accepted      int   // answered Accept
	AcceptedBytes int64 // bytes of the accepted blocks
	Refused       int   // answered Refuse
	// Reasons counts the refusals by code and text ("code 1: quota full: …").
	Reasons map[string]int
	// Unanswered pushes: the stream ended or broke before their answer.
	Unanswered int
	Cut        error // the stream's error when it broke
}

// FirstReason returns one of the refusal reasons ("" when none).
func (r PushResult) FirstReason() string {
	for k := range r.Reasons {
		return k
	}
	return ""
}

// Push pushes count blocks to target over one stream of n, block(i) giving
// the bytes of the i-th (their IDs are computed here, so every push is
// valid). The pushes are pipelined: a writer sends while the answers are
// read. It returns when every push was answered, the stream broke or ctx
// ended.
func Push(ctx context.Context, n *Node, target peer.AddrInfo, count int, block func(i int) []byte) (PushResult, error) {
	r := PushResult{Reasons: map[string]int{}}
	s, err := n.stream(ctx, target)
	if err != nil {
		return r, err
	}
	defer s.Reset()
	if dl, ok := ctx.Deadline(); ok {
		_ = s.SetDeadline(dl)
	}
	sizes := make(chan int, count) // the size of each push sent, in order
	var sent atomic.Int64
	go func() {
		defer close(sizes)
		w := bufio.NewWriterSize(s, 256<<10)
		for i := 0; i < count; i++ {
			data := block(i)
			if err := bmnet.WriteFrame(w, bmnet.Frame{Kind: bmnet.KindPush, ID: blocks.Sum(data), Data: data}); err != nil {
				return
			}
			sizes <- len(data)
			sent.Add(1)
			if w.Buffered() >= 256<<10 || i == count-1 {
				if err := w.Flush(); err != nil {
					return
				}
			}
		}
	}()
	fr := bmnet.NewFrameReader(s)
	for size := range sizes {
		f, err := fr.ReadFrame()
		if err != nil {
			r.Cut = err
			break
		}
		switch f.Kind {
		case bmnet.KindAccept:
			r.Accepted++
			r.AcceptedBytes += int64(size)
		case bmnet.KindRefuse:
			r.Refused++
			r.Reasons[fmt.Sprintf("code %d: %s", f.Reason, f.Text)]++
		default:
			r.Cut = fmt.Errorf("kind %d in an answer to a push", f.Kind)
		}
		if r.Cut != nil {
			break
		}
	}
	_ = s.Reset() // ends the writer if it still writes
	for range sizes {
	}
	r.Sent = int(sent.Load())
	r.Unanswered = r.Sent - r.Accepted - r.Refused
	return r, nil
}

// FloodConfig is the shape of a Flood: Peers peer IDs, each opening
// Streams streams, each sending one want-list naming ID Repeat times and
// never reading the answer.
type FloodConfig struct {
	Peers, Streams, Repeat int
	ID                     blocks.ID
}

// Flood is a want-list flood under way: the streams stay open, unread,
// until Close.
type Flood struct {
	target  peer.AddrInfo
	want    []byte // the want-list frame every stream sends
	nodes   []*Node
	streams []*floodStream
	renewed int
	// Streams the target refused: the connection, the stream or its
	// protocol, or the want-list's write (with the last such error).
	refused    int
	refusedErr error
}

type floodStream struct {
	n       *Node
	s       network.Stream
	opened  time.Time
	cutAt   time.Time // zero while the stream stands
	renewed bool      // a fresh stream took its place
	err     error
}

// StartFlood starts the flood on target: it makes the peers, opens every
// stream and sends every want-list, and returns once they are sent. A
// stream the target refuses (its connection, the stream, the protocol or
// the want-list's write fails) is counted in FloodStats.Refused, not an
// error: refusing is a defence. The hostile side holds at most the target's stream windows
// (256 KiB each) of answer: it never reads.
func StartFlood(ctx context.Context, target peer.AddrInfo, c FloodConfig) (*Flood, error) {
	f := &Flood{target: target}
	ids := make([]blocks.ID, c.Repeat)
	for i := range ids {
		ids[i] = c.ID
	}
	var b bytes.Buffer
	if err := bmnet.WriteFrame(&b, bmnet.Frame{Kind: bmnet.KindWant, IDs: ids}); err != nil {
		return nil, err
	}
	want := b.Bytes()
	f.want = want
	for range c.Peers {
		n, err := New(Options{})
		if err != nil {
			f.Close()
			return nil, err
		}
		f.nodes = append(f.nodes, n)
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, n := range f.nodes {
		if err := n.Host.Connect(ctx, target); err != nil {
			f.refused += c.Streams
			f.refusedErr = err
			continue
		}
		for range c.Streams {
			wg.Add(1)
			go func() {
				defer wg.Done()
				s, err := rawStream(ctx, n, target.ID)
				if err == nil {
					if _, err = s.Write(want); err != nil {
						_ = s.Reset()
					}
				}
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					f.refused++
					f.refusedErr = err
					return
				}
				f.streams = append(f.streams, &floodStream{n: n, s: s, opened: time.Now()})
			}()
		}
	}
	wg.Wait()
	if ctx.Err() != nil {
		f.Close()
		return nil, fmt.Errorf("flood: %w", ctx.Err())
	}
	return f, nil
}

// Renew opens a fresh stream, with its want-list, in place of every
// stream the target cut (as Poll last saw), from the same peer: an
// attacker that comes back. It returns how many it opened; those the
// target refuses count in FloodStats.Refused.
func (f *Flood) Renew(ctx context.Context) int {
	opened := 0
	for _, fs := range f.streams {
		if fs.cutAt.IsZero() || fs.renewed {
			continue
		}
		if err := fs.n.Host.Connect(ctx, f.target); err != nil {
			fs.renewed = true
			f.refused++
			f.refusedErr = err
			continue
		}
		fs.renewed = true
		s, err := rawStream(ctx, fs.n, f.target.ID)
		if err == nil {
			if _, err = s.Write(f.want); err != nil {
				_ = s.Reset()
			}
		}
		if err != nil {
			f.refused++
			f.refusedErr = err
			continue
		}
		f.streams = append(f.streams, &floodStream{n: fs.n, s: s, opened: time.Now()})
		opened++
	}
	f.renewed += opened
	return opened
}

// FloodStats is what Poll saw.
type FloodStats struct {
	Refused    int           // streams the target refused outright (not in Streams)
	RefusedErr error         // the last reason
	Renewed    int           // streams opened by Renew (counted in Streams too)
	Streams    int           // streams opened
	Cut        int           // of them, reset or closed by the target (or their connection gone)
	Slowest    time.Duration // the longest a cut stream stood, from its opening to when Poll saw it cut
}

// Poll looks at every stream without reading any of its bytes and returns
// how many the target cut so far. A stream counts as cut when a read
// returns an error (a reset, the end of the stream, or its connection
// closed); a read of zero bytes takes nothing from the window.
func (f *Flood) Poll() FloodStats {
	st := FloodStats{Streams: len(f.streams), Renewed: f.renewed, Refused: f.refused, RefusedErr: f.refusedErr}
	now := time.Now()
	for _, fs := range f.streams {
		if fs.cutAt.IsZero() {
			_ = fs.s.SetReadDeadline(now.Add(time.Millisecond))
			_, err := fs.s.Read(nil)
			if err != nil && !isTimeout(err) {
				fs.cutAt, fs.err = now, err
			} else if fs.s.Conn().IsClosed() {
				fs.cutAt, fs.err = now, errors.New("connection closed")
			}
		}
		if !fs.cutAt.IsZero() {
			st.Cut++
			st.Slowest = max(st.Slowest, fs.cutAt.Sub(fs.opened))
		}
	}
	return st
}

// Close resets every stream and stops the flood's peers.
func (f *Flood) Close() {
	for _, fs := range f.streams {
		_ = fs.s.Reset()
	}
	for _, n := range f.nodes {
		_ = n.Close()
	}
}

// isTimeout reports a read deadline that passed (yamux's ErrTimeout is a
// net.Error with Timeout true).
func isTimeout(err error) bool {
	var t interface{ Timeout() bool }
	return errors.As(err, &t) && t.Timeout()
}
