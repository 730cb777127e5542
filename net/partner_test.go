package net

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	kb "github.com/libp2p/go-libp2p-kbucket"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/blockmix/blockmix/blocks"
)

func TestHomeName(t *testing.T) {
	for in, want := range map[string]string{
		"":          "",
		"  ":        "",
		"East Club": "east-club",
		"b":         "b",
	} {
		if got := HomeName(in); got != want {
			t.Errorf("HomeName(%q) = %q, want %q", in, got, want)
		}
	}
	// A name CleanSite refuses goes by a hash of it: clean, and the same
	// for every member.
	for _, in := range []string{"Café club", strings.Repeat("x", 40)} {
		got := HomeName(in)
		if c, err := CleanSite(got); err != nil || c != got || !strings.HasPrefix(got, "g-") || got != HomeName(in) {
			t.Errorf("HomeName(%q) = %q (%v)", in, got, err)
		}
	}
	if HomeName("Café club") == HomeName("Cafe club") {
		t.Error("two names refused by CleanSite share a home name")
	}
}

func TestPartnersFirst(t *testing.T) {
	ps := []peer.ID{"a1", "a2", "p1", "a3", "p2", "a4", "p3"}
	partner := map[peer.ID]bool{"p1": true, "p2": true, "p3": true}
	for _, c := range []struct {
		r, want int
		out     []peer.ID
	}{
		// The first 2 hold no partner donor: the closest moves up to the
		// last place, the farthest other moves down just past it.
		{2, 1, []peer.ID{"a1", "p1", "a2", "a3", "p2", "a4", "p3"}},
		// Two wanted in the first 2: both places.
		{2, 2, []peer.ID{"p1", "p2", "a1", "a2", "a3", "a4", "p3"}},
		// Enough already.
		{3, 1, ps},
		{5, 2, ps},
		// One more wanted than the first 4 hold: p2 comes up, a3 goes down.
		{4, 2, []peer.ID{"a1", "a2", "p1", "p2", "a3", "a4", "p3"}},
		// Fewer partner donors than wanted: all of them, the closest first.
		{3, 3, []peer.ID{"p1", "p2", "p3", "a1", "a2", "a3", "a4"}},
		// None wanted, or everything fits in r.
		{2, 0, ps},
		{7, 3, ps},
	} {
		got := partnersFirst(ps, c.r, c.want, partner)
		if !slices.Equal(got, c.out) {
			t.Errorf("partnersFirst(r=%d, want=%d) = %v, want %v", c.r, c.want, got, c.out)
		}
	}
	if got := partnersFirst(ps, 2, 1, nil); !slices.Equal(got, ps) {
		t.Errorf("no partner donors: %v", got)
	}
	if !slices.Equal(ps, []peer.ID{"a1", "a2", "p1", "a3", "p2", "a4", "p3"}) {
		t.Errorf("partnersFirst changed its input: %v", ps)
	}
}

// TestLayoutOrder: the partner share and two sites together.
func TestLayoutOrder(t *testing.T) {
	ps := []peer.ID{"e1", "e2", "pe", "e3", "w1", "pw"}
	sites := map[peer.ID]string{"e1": "east", "e2": "east", "pe": "east", "e3": "east", "w1": "west", "pw": "west"}
	partner := map[peer.ID]bool{"pe": true, "pw": true}
	for _, c := range []struct {
		name     string
		r, share int
		have     string
		hp       bool
		sites    map[peer.ID]string
		out      []peer.ID
	}{
		{"no share: spread alone", 2, 0, "", false, sites, []peer.ID{"e1", "w1", "e2", "pe", "e3", "pw"}},
		{"share, no sites", 2, 1, "", false, nil, []peer.ID{"e1", "pe", "e2", "e3", "w1", "pw"}},
		// pe moved up to place 1 is the share's one partner donor:
		// west's w1 takes e1's place instead of pe's.
		{"share and sites", 2, 1, "", false, sites, []peer.ID{"pe", "w1", "e1", "e2", "e3", "pw"}},
		// Both places are the share's: pe and pw, who stand in two sites.
		{"share fills r", 2, 2, "", false, sites, []peer.ID{"pe", "pw", "e1", "e2", "e3", "w1"}},
		// This node is a partner donor holding a copy: none more needed.
		{"this node's copy counts", 2, 1, "east", true, sites, []peer.ID{"e1", "w1", "e2", "pe", "e3", "pw"}},
	} {
		l := layout{sites: c.sites, partner: partner, share: c.share}
		if got := l.order(ps, c.r, c.have, c.hp); !slices.Equal(got, c.out) {
			t.Errorf("%s: order = %v, want %v", c.name, got, c.out)
		}
	}
	// One site only and the share fills r with east's partner donors:
	// the share wins, the copies stay in one site.
	l := layout{sites: sites, partner: map[peer.ID]bool{"pe": true, "e3": true}, share: 2}
	if got, want := l.order(ps, 2, "", false), []peer.ID{"pe", "e3", "e1", "e2", "w1", "pw"}; !slices.Equal(got, want) {
		t.Errorf("share over sites: %v, want %v", got, want)
	}
}

// startPartners starts n real nodes of group "a" on 127.0.0.1, the last
// partners of them pooled by donors of group "b", node 0 with share
// partner copies; all connected, each knowing every other's home.
func startPartners(t *testing.T, ctx context.Context, n, partners, share int) ([]*Node, []*blocks.Mem) {
	t.Helper()
	var nodes []*Node
	var stores []*blocks.Mem
	for i := range n {
		st := blocks.NewMem()
		cfg := Config{Group: "A", PartnerCopies: share}
		if i >= n-partners {
			cfg.Home = "B"
		}
		nd, err := NewNode(cfg, st, &quotaSink{st: st, left: 1 << 30})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { nd.Close() })
		nodes, stores = append(nodes, nd), append(stores, st)
	}
	for i, a := range nodes {
		for _, b := range nodes[i+1:] {
			connect(t, ctx, a, b)
		}
	}
	for i, nd := range nodes {
		for _, m := range nodes {
			for nd.HomeOf(m.Host.ID()) != m.Home() || nd.DHT.RoutingTable().Size() < len(nodes)-1 {
				if ctx.Err() != nil {
					t.Fatalf("node %d: home of %s is %q, want %q", i, m.Host.ID(), nd.HomeOf(m.Host.ID()), m.Home())
				}
				time.Sleep(10 * time.Millisecond)
			}
		}
	}
	return nodes, stores
}

// TestPlaceOnPartners: with a partner share of 1, every block gets a copy
// on a partner donor, HolderSets finds it, and a block whose partner
// copy is gone gets it back from HandOff; without the share, distance
// alone leaves some blocks without one.
func TestPlaceOnPartners(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	const r = 3
	// Whether distance alone misses the partner donors depends on the
	// random identities: when each half of the key space has a partner
	// among its three closest nodes, every block gets a partner copy by
	// distance and the test would prove nothing. So a few networks are
	// started until one leaves some of the blocks without.
	var nodes []*Node
	var stores []*blocks.Mem
	var partners map[peer.ID]bool
	var bs []blocks.Block
	missed := 0 // blocks whose r closest hold no partner donor
	for try := 0; try < 8 && missed == 0; try++ {
		nodes, stores = startPartners(t, ctx, 7, 2, 1)
		partners = map[peer.ID]bool{nodes[5].Host.ID(): true, nodes[6].Host.ID(): true}
		var others []peer.ID
		for _, nd := range nodes[1:] {
			others = append(others, nd.Host.ID())
		}
		bs = nil
		for i := range 40 {
			b := block(7000 + i)
			bs = append(bs, b)
			if !slices.ContainsFunc(kb.SortClosestPeers(append([]peer.ID(nil), others...), kb.ConvertKey(BlockKey(b.ID())))[:r], func(p peer.ID) bool { return partners[p] }) {
				missed++
			}
		}
	}
	if missed == 0 {
		t.Fatal("in 8 networks distance alone gave every block a partner copy: the test proves nothing")
	}
	if got := nodes[0].Partners(); len(got) != 1 || got[0] != (PartnerCount{"b", 2}) {
		t.Fatalf("Partners() = %v", got)
	}
	if !nodes[5].IsPartner(nodes[6].Host.ID()) || !nodes[5].IsPartner(nodes[5].Host.ID()) || nodes[0].IsPartner(nodes[1].Host.ID()) {
		t.Fatal("IsPartner")
	}
	pls, err := nodes[0].Place(ctx, bs, r)
	if err != nil {
		t.Fatal(err)
	}
	for i, pl := range pls {
		if len(pl.Holders) != r || !slices.ContainsFunc(pl.Holders, func(p peer.ID) bool { return partners[p] }) {
			t.Fatalf("block %d: holders %v, want %d with a partner donor", i, pl.Holders, r)
		}
		sets := nodes[0].HolderSets(ctx, []blocks.ID{bs[i].ID()}, r)
		if !slices.ContainsFunc(sets[0], func(p peer.ID) bool { return partners[p] }) {
			t.Fatalf("block %d: HolderSets asking %d finds no partner copy: %v", i, r, sets[0])
		}
	}
	t.Logf("%d of %d blocks would have had no partner copy by distance alone", missed, len(bs))

	// A partner copy lost: HandOff from a holder puts it back on the
	// closest partner donor.
	b := bs[0]
	var lost int
	for k := 5; k < 7; k++ {
		if ok, _ := stores[k].Has(ctx, b.ID()); ok {
			lost = k
			if err := stores[k].Delete(ctx, b.ID()); err != nil {
				t.Fatal(err)
			}
		}
	}
	if _, err := nodes[0].HandOff(ctx, b, r); err != nil {
		t.Fatal(err)
	}
	if ok, _ := stores[lost].Has(ctx, b.ID()); !ok {
		t.Fatalf("HandOff did not give the block back to partner donor %d", lost)
	}
}

func TestHomeClaimsAreChecked(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	nodes, _ := startPartners(t, ctx, 2, 1, 1)
	liar := nodes[1]
	liar.Host.SetStreamHandler(protocol.ID(HomeProtocolPrefix+"../x"), func(s network.Stream) { _ = s.Reset() })
	for {
		ps, _ := nodes[0].Host.Peerstore().GetProtocols(liar.Host.ID())
		if slices.Contains(ps, protocol.ID(HomeProtocolPrefix+"../x")) {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("the protocols never arrived: %v", ps)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if h := nodes[0].HomeOf(liar.Host.ID()); h != "" || nodes[0].IsPartner(liar.Host.ID()) || len(nodes[0].Partners()) != 0 {
		t.Fatalf("a peer claiming two homes, one unclean, has home %q", h)
	}
}
