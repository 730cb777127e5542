package net

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/host/eventbus"
	relayv2 "github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/relay"
	"github.com/libp2p/go-libp2p/p2p/protocol/holepunch"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
)

// The ways other nodes reach this one (Reach.State).
const (
	// ReachDirect: a public address of this node answers dials from
	// outside (AutoNAT found it so).
	ReachDirect = "direct"
	// ReachRelay: behind NAT, reachable through a relay that holds a slot
	// for this node; direct connections come by hole punching.
	ReachRelay = "relay"
	// ReachUnreachable: behind NAT, and no relay holds a slot yet: only
	// connections this node makes work.
	ReachUnreachable = "unreachable"
	// ReachUnknown: not found out yet (no peer to ask).
	ReachUnknown = "unknown"
	// ReachLocal: the node listens on loopback only.
	ReachLocal = "local"
)

// Punch is one hole punch this node took part in.
type Punch struct {
	Peer  peer.ID
	OK    bool
	At    time.Time
	Error string // why it failed
}

// Reach is how other nodes reach this node, as AutoNAT, the relays and the
// hole punches found it.
type Reach struct {
	State string // one of the Reach constants
	// NAT is AutoNAT's verdict: "public", "private" or "unknown".
	NAT string
	// Reachable and Unreachable are public addresses that dials from
	// outside reached, or did not (AutoNAT v2).
	Reachable, Unreachable []string
	// Relays are the relays holding a slot for this node; RelayAddrs the
	// addresses through them.
	Relays     []peer.ID
	RelayAddrs []string
	// Relaying: this node offers a relay to nodes behind NAT (only while
	// it is reachable directly and its relay service is on).
	Relaying bool
	// Punches are the last hole punches, newest last.
	Punches []Punch
	// Words says State in plain words; Advice what to do ("" when
	// nothing).
	Words, Advice string
}

// maxPunches bounds the hole punches a node remembers.
const maxPunches = 32

// reacher follows the host's reachability events and runs the relay
// service while the node is reachable directly. Safe for concurrent use.
type reacher struct {
	h          host.Host
	relayOn    bool
	relayOpts  []relayv2.Option
	listenPort string // the TCP port, for the advice

	mu          sync.Mutex
	nat         network.Reachability
	reachable   []ma.Multiaddr
	unreachable []ma.Multiaddr
	relayAddrs  []ma.Multiaddr
	punches     []Punch
	relay       *relayv2.Relay
	relayErr    error

	cancel context.CancelFunc
	done   chan struct{}
}

// Trace implements holepunch.EventTracer: it keeps the ends of hole
// punches.
func (r *reacher) Trace(evt *holepunch.Event) {
	var p Punch
	switch e := evt.Evt.(type) {
	case *holepunch.EndHolePunchEvt:
		p = Punch{Peer: evt.Remote, OK: e.Success, Error: e.Error}
	case *holepunch.DirectDialEvt:
		if !e.Success {
			return // a hole punch follows
		}
		p = Punch{Peer: evt.Remote, OK: true}
	default:
		return
	}
	p.At = time.Unix(0, evt.Timestamp)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.punches = append(r.punches, p)
	if len(r.punches) > maxPunches {
		r.punches = slices.Delete(r.punches, 0, len(r.punches)-maxPunches)
	}
}

// start subscribes to the host's events; stop ends it.
func (r *reacher) start() error {
	sub, err := r.h.EventBus().Subscribe([]any{new(event.EvtLocalReachabilityChanged), new(event.EvtHostReachableAddrsChanged),
		new(event.EvtAutoRelayAddrsUpdated)}, eventbus.Name("blockmix reach"))
	if err != nil {
		return fmt.Errorf("follow reachability: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel, r.done = cancel, make(chan struct{})
	go func() {
		defer close(r.done)
		defer sub.Close()
		for {
			select {
			case <-ctx.Done():
				return
			case e, ok := <-sub.Out():
				if !ok {
					return
				}
				r.mu.Lock()
				switch e := e.(type) {
				case event.EvtLocalReachabilityChanged:
					r.nat = e.Reachability
				case event.EvtHostReachableAddrsChanged:
					r.reachable, r.unreachable = e.Reachable, e.Unreachable
				case event.EvtAutoRelayAddrsUpdated:
					r.relayAddrs = e.RelayAddrs
				}
				r.updateRelay()
				r.mu.Unlock()
			}
		}
	}()
	return nil
}

// updateRelay starts the relay service when the node is reachable
// directly and its relay is on, and stops it otherwise. Called with r.mu
// held.
func (r *reacher) updateRelay() {
	want := r.relayOn && r.direct()
	switch {
	case want && r.relay == nil:
		r.relay, r.relayErr = relayv2.New(r.h, r.relayOpts...)
	case !want && r.relay != nil:
		_ = r.relay.Close()
		r.relay = nil
	}
}

// direct reports whether AutoNAT found the node reachable from outside.
// Called with r.mu held.
func (r *reacher) direct() bool {
	return r.nat == network.ReachabilityPublic || len(r.reachable) > 0
}

func (r *reacher) stop() {
	if r.cancel != nil {
		r.cancel()
		<-r.done
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.relay != nil {
		_ = r.relay.Close()
		r.relay = nil
	}
}

// reach sums up what r knows; listen are the host's listen addresses.
func (r *reacher) reach(listen []ma.Multiaddr) Reach {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := Reach{NAT: strings.ToLower(r.nat.String()), Relaying: r.relay != nil, Punches: slices.Clone(r.punches)}
	for _, a := range r.reachable {
		out.Reachable = append(out.Reachable, a.String())
	}
	for _, a := range r.unreachable {
		out.Unreachable = append(out.Unreachable, a.String())
	}
	seen := map[peer.ID]bool{}
	for _, a := range r.relayAddrs {
		out.RelayAddrs = append(out.RelayAddrs, a.String())
		if id, err := relayOf(a); err == nil && !seen[id] {
			seen[id] = true
			out.Relays = append(out.Relays, id)
		}
	}
	loopback := len(listen) > 0
	for _, a := range listen {
		loopback = loopback && manet.IsIPLoopback(a)
	}
	port := r.listenPort
	if port == "" {
		port = "4001"
	}
	forward := fmt.Sprintf("forward TCP port %s on your router to this machine (or turn on UPnP in the router)", port)
	switch {
	case loopback:
		out.State = ReachLocal
		out.Words = "listening on loopback only: reachable from this machine alone"
		out.Advice = "listen on a network address (--listen /ip4/0.0.0.0/tcp/4001) to join other machines"
	case r.direct():
		out.State = ReachDirect
		if len(out.Reachable) > 0 {
			out.Words = "reachable directly at " + strings.Join(out.Reachable, ", ")
		} else {
			out.Words = "reachable directly (a public address)"
		}
		if out.Relaying {
			out.Words += "; relaying for nodes behind NAT"
		}
	case len(out.Relays) > 0:
		out.State = ReachRelay
		ids := make([]string, len(out.Relays))
		for i, id := range out.Relays {
			ids[i] = Short(id)
		}
		out.Words = "behind NAT: reachable through relay " + strings.Join(ids, ", ") + "; blocks go over direct connections, made by hole punching"
		out.Advice = "nothing is needed; for faster transfers " + forward
	case r.nat == network.ReachabilityPrivate || len(r.unreachable) > 0:
		out.State = ReachUnreachable
		out.Words = "behind NAT and unreachable: no relay holds a slot for this node yet, so only connections it makes work"
		out.Advice = "give --bootstrap a node with a public address (it relays), or " + forward
	default:
		out.State = ReachUnknown
		out.Words = "reachability not known yet: no peer has checked it"
		out.Advice = "give --bootstrap a node with a public address; reachability is checked within a minute of joining"
	}
	if last := lastPunch(out.Punches); last != nil {
		if last.OK {
			out.Words += "; hole punched to " + Short(last.Peer)
		} else {
			out.Words += "; hole punch to " + Short(last.Peer) + " failed"
		}
	}
	return out
}

// Short is a peer ID cut for people: its last 8 characters, which tell
// the peers of one network apart ("…9QWrRg1a").
func Short(p peer.ID) string {
	s := p.String()
	if len(s) <= 8 {
		return s
	}
	return "…" + s[len(s)-8:]
}

func lastPunch(ps []Punch) *Punch {
	if len(ps) == 0 {
		return nil
	}
	return &ps[len(ps)-1]
}

// relayOf returns the relay's peer ID in a /p2p/RELAY/p2p-circuit address.
func relayOf(a ma.Multiaddr) (peer.ID, error) {
	relay, _ := ma.SplitFunc(a, func(c ma.Component) bool { return c.Protocol().Code == ma.P_CIRCUIT })
	v, err := relay.ValueForProtocol(ma.P_P2P)
	if err != nil {
		return "", fmt.Errorf("no relay in %s: %w", a, err)
	}
	return peer.Decode(v)
}

// Punched reports whether this node punched a hole to p, and when.
func (r *reacher) Punched(p peer.ID) (time.Time, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := len(r.punches) - 1; i >= 0; i-- {
		if r.punches[i].Peer == p && r.punches[i].OK {
			return r.punches[i].At, true
		}
	}
	return time.Time{}, false
}

// PunchFailed reports when the last hole punch to p failed; false when
// the last one worked or there was none.
func (r *reacher) PunchFailed(p peer.ID) (time.Time, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := len(r.punches) - 1; i >= 0; i-- {
		if r.punches[i].Peer == p {
			return r.punches[i].At, !r.punches[i].OK
		}
	}
	return time.Time{}, false
}

// ConnKind says in plain words how c reaches its peer: "direct",
// "hole punched", or "relayed through RELAY (control only)".
func (n *Node) ConnKind(c network.Conn) string {
	if c.Stat().Limited {
		if id, err := relayOf(c.RemoteMultiaddr()); err == nil {
			return "relayed through " + Short(id) + " (control only)"
		}
		return "relayed (control only)"
	}
	if n.reach != nil {
		if _, ok := n.reach.Punched(c.RemotePeer()); ok {
			return "hole punched"
		}
	}
	return "direct"
}

// Reach returns how other nodes reach this one, in plain words.
func (n *Node) Reach() Reach {
	if n.reach == nil {
		return Reach{State: ReachUnknown, NAT: "unknown", Words: "reachability not followed (a node made elsewhere)"}
	}
	return n.reach.reach(n.Host.Network().ListenAddresses())
}
