package net

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/libp2p/go-libp2p"
	dht "github.com/libp2p/go-libp2p-kad-dht"
	record "github.com/libp2p/go-libp2p-record"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/metrics"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"
	"github.com/libp2p/go-libp2p/core/pnet"
	"github.com/libp2p/go-libp2p/p2p/discovery/mdns"
	"github.com/libp2p/go-libp2p/p2p/host/autorelay"
	"github.com/libp2p/go-libp2p/p2p/net/connmgr"
	"github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/proto"
	relayv2 "github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/relay"
	"github.com/libp2p/go-libp2p/p2p/protocol/holepunch"
	quic "github.com/libp2p/go-libp2p/p2p/transport/quic"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
	ma "github.com/multiformats/go-multiaddr"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/blockmix/blockmix/blocks"
)

// DHTPrefix is blockmix's own DHT protocol prefix (/blockmix/kad/1.0.0):
// a blockmix node never joins the public IPFS DHT.
const DHTPrefix = "/blockmix"

// Config sets up a Node.
type Config struct {
	// Listen lists multiaddrs; empty means TCP on 127.0.0.1, any port.
	Listen []string
	// QUIC adds QUIC transport (listen addresses with /quic-v1 need it).
	QUIC bool
	// Key is the node's identity; nil makes a new one.
	Key crypto.PrivKey
	// Bootstrap peers to join the DHT through. There are no default ones.
	Bootstrap []peer.AddrInfo
	// LowPower keeps few connections (a small board): the connection
	// manager trims to 16 above 32.
	LowPower bool
	// GroupKey, when set (32 bytes), makes the node a member of a private
	// group: it talks only to nodes with the same key (libp2p's private
	// network). QUIC cannot carry the key, so such a node uses TCP only:
	// QUIC listen addresses are dropped.
	GroupKey []byte
	// Limits bounds what peers can make the node hold; zero:
	// DefaultLimits(LowPower).
	Limits Limits
	// Metrics, when set, gets libp2p's own metrics (resource manager,
	// swarm, identify…) for Prometheus.
	Metrics prometheus.Registerer
	// RelayService offers a circuit relay (v2, within RelayResources) to
	// nodes behind NAT while this node is reachable directly.
	RelayService bool
	// MDNS finds nodes on the local network (multicast DNS) and joins
	// them, with no address given.
	MDNS bool
	// Site is where the node stands (see SetSite); "" for none.
	Site string
	// Group names the private group the node is in ("" for none): a peer
	// whose home is another group is a partner donor (see HomeOf).
	Group string
	// Home, for a pooled node (see --pool), names the group of the donor
	// that runs it, which the node tells its peers (see HomeOf); "" for
	// none (a donor in no group is nobody's partner).
	Home string
	// PartnerCopies is how many of each block's copies placement puts on
	// partner donors when the network has them (see partnersFirst); 0:
	// none in particular.
	PartnerCopies int
	// Allow, when not empty, lists the only peers the node talks to
	// (see Allowlist); AllowRefused hears of the others it refuses.
	Allow        []peer.ID
	AllowRefused func(p peer.ID, dir network.Direction)
	// DirectWait bounds how long a block-protocol stream waits for a
	// direct connection to a peer reached only through a relay (hole
	// punching); 0: DefaultDirectWait.
	DirectWait time.Duration
	// Records are the DHT's value namespaces beyond libp2p's own ("pk",
	// "ipns"): each validator checks and orders the records stored under
	// "/namespace/…" (records of other namespaces are refused).
	Records map[string]record.Validator
}

// DefaultDirectWait is how long a block-protocol stream waits for a hole
// punch to turn a relayed connection into a direct one.
const DefaultDirectWait = 15 * time.Second

// MDNSService is the multicast DNS service name blockmix nodes announce
// and look for: never libp2p's default, so IPFS nodes stay apart.
const MDNSService = "_blockmix._udp"

// RelayResources are the limits of the relay a reachable node offers:
// few slots and circuits, and each circuit carries at most 128 KiB for
// two minutes each way (enough for control traffic: blocks never go
// through a relay).
func RelayResources() relayv2.Resources {
	r := relayv2.DefaultResources()
	r.MaxReservations = 64
	r.MaxCircuits = 8
	r.MaxReservationsPerIP = 4
	return r
}

// GroupKeySize is the size of a group key.
const GroupKeySize = 32

// ErrOtherGroup: the peer did not speak blockmix within the group's
// key: it is in another group, in none, or not a blockmix node.
var ErrOtherGroup = errors.New("this peer is in another group (or in none): it does not share this node's group key")

// Node is a libp2p host with blockmix's DHT (server mode) and the block
// protocol.
type Node struct {
	Host   host.Host
	DHT    *dht.IpfsDHT
	Blocks *Service
	bw     *metrics.BandwidthCounter
	reach  *reacher
	mdns   io.Closer
	// bootstrap are the relays to try first when behind NAT.
	bootstrap []peer.AddrInfo
	// site is where this node stands (see SetSite); "" for none.
	site string
	// group and home are HomeNames: this node's group, and the home it
	// tells (see HomeOf); partnerCopies is Config.PartnerCopies.
	group, home   string
	partnerCopies int
}

// NewNode starts a node that serves src and takes pushes into sink (nil:
// none).
func NewNode(cfg Config, src blocks.Getter, sink Sink) (*Node, error) {
	listen := cfg.Listen
	if len(listen) == 0 {
		listen = []string{"/ip4/127.0.0.1/tcp/0"}
	}
	if cfg.GroupKey != nil {
		if len(cfg.GroupKey) != GroupKeySize {
			return nil, fmt.Errorf("group key of %d bytes, want %d", len(cfg.GroupKey), GroupKeySize)
		}
		listen = TCPOnly(listen)
		if len(listen) == 0 {
			return nil, errors.New("a group node listens on TCP only (QUIC cannot carry the group key), and no TCP listen address is given")
		}
		cfg.QUIC = false
	}
	if cfg.Limits == (Limits{}) {
		cfg.Limits = DefaultLimits(cfg.LowPower)
	}
	rm, err := resourceManager(cfg.Limits, cfg.Metrics != nil)
	if err != nil {
		return nil, err
	}
	bw := metrics.NewBandwidthCounter()
	// The node behind the host, for the relay finder, which runs before
	// NewNode returns.
	var self atomic.Pointer[Node]
	r := &reacher{relayOn: cfg.RelayService, relayOpts: []relayv2.Option{relayv2.WithResources(RelayResources())}, listenPort: tcpPort(listen)}
	hpTrace := holepunch.WithTracer(r)
	if cfg.Metrics != nil {
		hpTrace = holepunch.WithMetricsAndEventTracer(holepunch.NewMetricsTracer(holepunch.WithRegisterer(cfg.Metrics)), r)
		r.relayOpts = append(r.relayOpts, relayv2.WithMetricsTracer(relayv2.NewMetricsTracer(relayv2.WithRegisterer(cfg.Metrics))))
	}
	opts := []libp2p.Option{
		libp2p.ResourceManager(rm),
		libp2p.ListenAddrStrings(listen...),
		libp2p.BandwidthReporter(bw),
		// Listing transports drops libp2p's defaults (websocket, webrtc…).
		libp2p.Transport(tcp.NewTCPTransport),
		// NAT traversal: learn whether this node is reachable (AutoNAT
		// v1 and v2, and answer other nodes' questions), map a port on
		// the router (UPnP, NAT-PMP), reserve a slot on a relay when
		// behind NAT, and punch holes (DCUtR) to turn relayed
		// connections into direct ones.
		libp2p.EnableRelay(),
		libp2p.EnableNATService(),
		libp2p.EnableAutoNATv2(),
		libp2p.NATPortMap(),
		libp2p.EnableHolePunching(hpTrace),
		libp2p.EnableAutoRelayWithPeerSource(func(ctx context.Context, num int) <-chan peer.AddrInfo {
			return relayCandidates(ctx, self.Load(), cfg.Bootstrap, num)
		}, autorelay.WithBootDelay(0), autorelay.WithMinCandidates(1), autorelay.WithNumRelays(2),
			autorelay.WithBackoff(time.Minute), autorelay.WithMinInterval(10*time.Second)),
	}
	if cfg.QUIC {
		opts = append(opts, libp2p.Transport(quic.NewTransport))
	}
	if cfg.Key != nil {
		opts = append(opts, libp2p.Identity(cfg.Key))
	}
	if cfg.GroupKey != nil {
		opts = append(opts, libp2p.PrivateNetwork(pnet.PSK(cfg.GroupKey)))
	}
	if len(cfg.Allow) > 0 {
		opts = append(opts, libp2p.ConnectionGater(NewAllowlist(cfg.Allow, cfg.AllowRefused)))
	}
	if cfg.Metrics != nil {
		opts = append(opts, libp2p.PrometheusRegisterer(cfg.Metrics))
	} else {
		opts = append(opts, libp2p.DisableMetrics())
	}
	if cfg.LowPower {
		cm, err := connmgr.NewConnManager(16, 32)
		if err != nil {
			return nil, fmt.Errorf("connection manager: %w", err)
		}
		opts = append(opts, libp2p.ConnectionManager(cm))
	}
	h, err := libp2p.New(opts...)
	if err != nil {
		return nil, fmt.Errorf("start libp2p host: %w", err)
	}
	n, err := NewNodeOn(h, cfg, src, sink)
	if err != nil {
		h.Close()
		return nil, err
	}
	n.bw = bw
	n.bootstrap = cfg.Bootstrap
	self.Store(n)
	r.h = h
	if err := r.start(); err != nil {
		n.Close()
		return nil, err
	}
	n.reach = r
	n.Blocks.PunchFailed = r.PunchFailed
	if cfg.MDNS {
		m := mdns.NewMdnsService(h, MDNSService, lanPeers{n})
		if err := m.Start(); err != nil {
			n.Close()
			return nil, fmt.Errorf("local network discovery (mDNS): %w", err)
		}
		n.mdns = m
	}
	return n, nil
}

// tcpPort returns the port of the first TCP listen address, or "".
func tcpPort(listen []string) string {
	for _, l := range listen {
		a, err := ma.NewMultiaddr(l)
		if err != nil {
			continue
		}
		if p, err := a.ValueForProtocol(ma.P_TCP); err == nil && p != "0" {
			return p
		}
	}
	return ""
}

// relayCandidates sends up to num peers that may relay for this node: the
// bootstrap peers first, then the connected peers (met directly or
// through the DHT) that speak the relay protocol.
func relayCandidates(ctx context.Context, n *Node, bootstrap []peer.AddrInfo, num int) <-chan peer.AddrInfo {
	out := make(chan peer.AddrInfo, num)
	defer close(out)
	seen := map[peer.ID]bool{}
	send := func(ai peer.AddrInfo) {
		if len(out) < num && !seen[ai.ID] && len(ai.Addrs) > 0 {
			seen[ai.ID] = true
			out <- ai
		}
	}
	for _, ai := range bootstrap {
		send(ai)
	}
	if n == nil {
		return out
	}
	for _, p := range n.Host.Network().Peers() {
		if ok, _ := n.Host.Peerstore().SupportsProtocols(p, proto.ProtoIDv2Hop); len(ok) > 0 {
			send(n.Host.Peerstore().PeerInfo(p))
		}
	}
	return out
}

// lanPeers joins the nodes mDNS finds on the local network.
type lanPeers struct{ n *Node }

// HandlePeerFound implements mdns.Notifee.
func (l lanPeers) HandlePeerFound(ai peer.AddrInfo) {
	if ai.ID == l.n.Host.ID() || l.n.Host.Network().Connectedness(ai.ID) == network.Connected {
		return
	}
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = l.n.Host.Connect(ctx, ai) // the DHT adds it once identify ran
	}()
}

// NewNodeOn runs blockmix's DHT and block protocol on a host made
// elsewhere (for example by mocknet in tests), with cfg's Bootstrap peers
// and Limits (zero: DefaultLimits(cfg.LowPower)); the host's own settings
// (transports, resource manager) are the maker's. Its Bandwidth stays
// zero.
func NewNodeOn(h host.Host, cfg Config, src blocks.Getter, sink Sink) (*Node, error) {
	if cfg.Limits == (Limits{}) {
		cfg.Limits = DefaultLimits(cfg.LowPower)
	}
	bootstrap := cfg.Bootstrap
	opts := []dht.Option{
		dht.ProtocolPrefix(DHTPrefix),
		// Server mode: on loopback and private networks, client mode leaves
		// the routing tables empty.
		dht.Mode(dht.ModeServer),
		dht.BootstrapPeers(bootstrap...),
	}
	for ns, v := range cfg.Records {
		opts = append(opts, dht.NamespacedValidator(ns, v))
	}
	d, err := dht.New(h, opts...)
	if err != nil {
		return nil, fmt.Errorf("start DHT: %w", err)
	}
	svc := NewService(h, src, sink, cfg.Limits)
	svc.DirectWait = cfg.DirectWait
	n := &Node{Host: h, DHT: d, Blocks: svc, bw: metrics.NewBandwidthCounter()}
	if err := n.SetSite(cfg.Site); err != nil {
		_ = d.Close()
		return nil, err
	}
	n.group, n.partnerCopies = HomeName(cfg.Group), max(cfg.PartnerCopies, 0)
	n.setHome(HomeName(cfg.Home))
	return n, nil
}

// TCPOnly returns the addresses that are not QUIC (nor WebTransport).
func TCPOnly(addrs []string) []string {
	var out []string
	for _, a := range addrs {
		if !strings.Contains(a, "/quic") && !strings.Contains(a, "/udp/") {
			out = append(out, a)
		}
	}
	return out
}

// Join dials a peer within timeout. For a group node, a peer that does not
// complete the handshake in time, or answers garbage, is in another group:
// the error wraps ErrOtherGroup (with mismatched keys a dial would
// otherwise wait for its whole timeout, or fail with a cryptic error).
func (n *Node) Join(ctx context.Context, ai peer.AddrInfo, timeout time.Duration, grouped bool) error {
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	err := n.Host.Connect(cctx, ai)
	if err == nil || !grouped || ctx.Err() != nil || unreachable(err) {
		return err
	}
	return fmt.Errorf("%w (%v)", ErrOtherGroup, err)
}

// unreachable reports a dial that found nobody listening: not a question
// of groups.
func unreachable(err error) bool {
	if errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.EHOSTUNREACH) || errors.Is(err, syscall.ENETUNREACH) {
		return true
	}
	s := err.Error()
	return strings.Contains(s, "connection refused") || strings.Contains(s, "no route to host") || strings.Contains(s, "network is unreachable")
}

// Bandwidth returns the bytes this node sent and received over libp2p
// since it started (all protocols, after encryption and multiplexing
// framing), with the current rates in bytes per second. libp2p updates
// the figures once a second.
func (n *Node) Bandwidth() metrics.Stats { return n.bw.GetBandwidthTotals() }

// AddrInfo returns how other nodes reach this one.
func (n *Node) AddrInfo() peer.AddrInfo {
	return peer.AddrInfo{ID: n.Host.ID(), Addrs: n.Host.Addrs()}
}

// Closest returns up to k peers the DHT finds closest to the block's key
// (its multihash), this node excluded.
func (n *Node) Closest(ctx context.Context, id blocks.ID, k int) ([]peer.ID, error) {
	ps, err := n.DHT.GetClosestPeers(ctx, string(id.CID().Hash()))
	if err != nil {
		return nil, fmt.Errorf("closest peers to %s: %w", id, err)
	}
	if len(ps) > k {
		ps = ps[:k]
	}
	return ps, nil
}

// ProvideFile announces in the DHT that this node holds a whole file, by a
// provider record for the file's root block (one record per file, not per
// block: providing every block cannot keep up, see kubo#6382).
func (n *Node) ProvideFile(ctx context.Context, root blocks.ID) error {
	if err := n.DHT.Provide(ctx, root.CID(), true); err != nil {
		return fmt.Errorf("provide %s: %w", root, err)
	}
	return nil
}

// FileProviders asks the DHT for up to max nodes that hold the file whose
// root block is root; the channel closes when the search ends or ctx does.
// Their addresses go into the peerstore, so they can be asked at once.
func (n *Node) FileProviders(ctx context.Context, root blocks.ID, max int) <-chan peer.ID {
	out := make(chan peer.ID)
	go func() {
		defer close(out)
		for ai := range n.DHT.FindProvidersAsync(ctx, root.CID(), max) {
			if ai.ID == n.Host.ID() {
				continue
			}
			n.Host.Peerstore().AddAddrs(ai.ID, ai.Addrs, peerstore.TempAddrTTL)
			select {
			case out <- ai.ID:
			case <-ctx.Done():
				return
			}
		}
	}()
	return out
}

// Close stops the node.
func (n *Node) Close() error {
	n.Blocks.Close()
	var errs []error
	if n.mdns != nil {
		errs = append(errs, n.mdns.Close())
	}
	if n.reach != nil {
		n.reach.stop()
	}
	return errors.Join(append(errs, n.DHT.Close(), n.Host.Close())...)
}
