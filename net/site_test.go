package net

import (
	"context"
	"fmt"
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

func TestCleanSite(t *testing.T) {
	for in, want := range map[string]string{
		"east":                          "east",
		"  East Office  ":               "east-office",
		"west_2.b":                      "west_2.b",
		"0-basement":                    "0-basement",
		strings.Repeat("a", MaxSiteLen): strings.Repeat("a", MaxSiteLen),
	} {
		got, err := CleanSite(in)
		if err != nil || got != want {
			t.Errorf("CleanSite(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"", "   ", "-east", ".x", "east/west", "ost\u00e9", strings.Repeat("a", MaxSiteLen+1), "a\x00b"} {
		if got, err := CleanSite(in); err == nil {
			t.Errorf("CleanSite(%q) = %q, want an error", in, got)
		} else if !strings.Contains(err.Error(), "for example") {
			t.Errorf("CleanSite(%q): error %q does not say what is wanted", in, err)
		}
	}
}

func TestSpread(t *testing.T) {
	ps := []peer.ID{"a1", "a2", "a3", "b1", "a4", "b2", "x"}
	site := map[peer.ID]string{"a1": "a", "a2": "a", "a3": "a", "a4": "a", "b1": "b", "b2": "b"}
	for _, c := range []struct {
		r    int
		have string
		want []peer.ID
	}{
		// The first r all in a: the closest of b moves up to place r-1.
		{3, "", []peer.ID{"a1", "a2", "b1", "a3", "a4", "b2", "x"}},
		{2, "", []peer.ID{"a1", "b1", "a2", "a3", "a4", "b2", "x"}},
		// Already over two sites: as it was.
		{4, "", ps},
		{2, "b", ps},
		{1, "b", ps},
		// One copy in a already (this node): the one other goes to b.
		{1, "a", []peer.ID{"b1", "a1", "a2", "a3", "a4", "b2", "x"}},
		// One copy alone, nothing held: nothing to spread.
		{1, "", ps},
		// Everything fits in r.
		{7, "", ps},
	} {
		got := spread(ps, c.r, c.have, site)
		if !slices.Equal(got, c.want) {
			t.Errorf("spread(r=%d, have=%q) = %v, want %v", c.r, c.have, got, c.want)
		}
	}
	// One site only, or none known: as it was.
	one := map[peer.ID]string{"a1": "a", "a2": "a", "b1": "a"}
	if got := spread(ps, 2, "", one); !slices.Equal(got, ps) {
		t.Errorf("one site: %v", got)
	}
	if got := spread(ps, 2, "", nil); !slices.Equal(got, ps) {
		t.Errorf("no sites: %v", got)
	}
	// Peers without a site do not count as a second site.
	unk := []peer.ID{"a1", "x", "y", "b1"}
	if got, want := spread(unk, 2, "", site), []peer.ID{"a1", "b1", "x", "y"}; !slices.Equal(got, want) {
		t.Errorf("unknown sites: %v, want %v", got, want)
	}
	if !slices.Equal(ps, []peer.ID{"a1", "a2", "a3", "b1", "a4", "b2", "x"}) {
		t.Errorf("spread changed its input: %v", ps)
	}
}

// startSites starts n real nodes on 127.0.0.1, with the sites siteFor
// gives their IDs, all connected, and waits until each knows every
// other's site.
func startSites(t *testing.T, ctx context.Context, n int, siteFor func([]peer.ID) []string) ([]*Node, []*blocks.Mem, []*quotaSink) {
	t.Helper()
	var nodes []*Node
	var stores []*blocks.Mem
	var sinks []*quotaSink
	var ids []peer.ID
	for range n {
		st := blocks.NewMem()
		sink := &quotaSink{st: st, left: 1 << 30}
		n, err := NewNode(Config{}, st, sink)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { n.Close() })
		nodes, stores, sinks, ids = append(nodes, n), append(stores, st), append(sinks, sink), append(ids, n.Host.ID())
	}
	for i, s := range siteFor(ids) {
		if err := nodes[i].SetSite(s); err != nil {
			t.Fatal(err)
		}
	}
	for i, a := range nodes {
		for _, b := range nodes[i+1:] {
			connect(t, ctx, a, b)
		}
	}
	for i, n := range nodes {
		for _, m := range nodes {
			for n.SiteOf(m.Host.ID()) != m.Site() || n.DHT.RoutingTable().Size() < len(nodes)-1 {
				if ctx.Err() != nil {
					t.Fatalf("node %d: site of %s is %q, want %q (routing table %d)", i, m.Host.ID(), n.SiteOf(m.Host.ID()), m.Site(), n.DHT.RoutingTable().Size())
				}
				time.Sleep(10 * time.Millisecond)
			}
		}
	}
	return nodes, stores, sinks
}

// fixedSites gives the nodes the sites in order.
func fixedSites(sites ...string) func([]peer.ID) []string {
	return func([]peer.ID) []string { return sites }
}

// sitesAround gives node 0 the site "east" and the others, from the
// closest to probe's key: r in east, then west, east, west…, so that
// probe's r closest other nodes all stand in east.
func sitesAround(probe blocks.ID, r int) func([]peer.ID) []string {
	return func(ids []peer.ID) []string {
		sorted := kb.SortClosestPeers(append([]peer.ID(nil), ids[1:]...), kb.ConvertKey(BlockKey(probe)))
		of := map[peer.ID]string{ids[0]: "east"}
		for i, p := range sorted {
			of[p] = "east"
			if i >= r && (i-r)%2 == 0 {
				of[p] = "west"
			}
		}
		out := make([]string, len(ids))
		for i, p := range ids {
			out[i] = of[p]
		}
		return out
	}
}

// siteSpan is the sites of the nodes whose stores hold id.
func siteSpan(t *testing.T, ctx context.Context, nodes []*Node, stores []*blocks.Mem, id blocks.ID) (holders int, sites map[string]bool) {
	sites = map[string]bool{}
	for i, st := range stores {
		if ok, _ := st.Has(ctx, id); ok {
			holders++
			sites[nodes[i].Site()] = true
		}
	}
	return holders, sites
}

func TestPlaceOverSites(t *testing.T) {
	for _, r := range []int{2, 3} {
		t.Run(fmt.Sprint("R=", r), func(t *testing.T) { placeOverSites(t, r) })
	}
}

func placeOverSites(t *testing.T, r int) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	var bs []blocks.Block
	for i := range 40 {
		bs = append(bs, block(1000*r+i))
	}
	// The uploader and most others in east, some in west; the sites are
	// such that bs[0]'s r closest others all stand in east: placement
	// must move one of its copies to west.
	nodes, stores, _ := startSites(t, ctx, 7, sitesAround(bs[0].ID(), r))
	// The uploader keeps what it puts, as a put does: a holder whose
	// closest others include the uploader counts its copy.
	uploader := nodes[0].Host.ID()
	for _, b := range bs {
		if err := stores[0].PutBlock(ctx, b, 0); err != nil {
			t.Fatal(err)
		}
	}
	pls, err := nodes[0].Place(ctx, bs, r)
	if err != nil {
		t.Fatal(err)
	}
	var others []peer.ID
	for _, n := range nodes[1:] {
		others = append(others, n.Host.ID())
	}
	moved, asked := 0, 0
	for i, pl := range pls {
		holders, sites := siteSpan(t, ctx, nodes[1:], stores[1:], bs[i].ID())
		if holders != r || len(pl.Holders) != r || !sites["east"] || !sites["west"] {
			t.Fatalf("block %d: %d holders (placement says %d) in sites %v, want %d over east and west", i, holders, len(pl.Holders), sites, r)
		}
		// The closest in XOR order, unless those stand in one site.
		if !slices.Equal(kb.SortClosestPeers(append([]peer.ID(nil), others...), kb.ConvertKey(BlockKey(bs[i].ID())))[:r], pl.Holders) {
			moved++
		} else if i == 0 {
			t.Fatalf("block 0: its r closest are in east, yet it went to them: %v", pl.Holders)
		}
		// Every holder finds the other holders where it asks (repair
		// from it has nothing to push), when placement took its first
		// choices (on a loaded machine a push can fail and fall back).
		if len(pl.Refused) > 0 {
			continue
		}
		asked++
		for k, n := range nodes {
			if ok, _ := stores[k].Has(ctx, bs[i].ID()); ok && k > 0 {
				// It asks r nodes; those of them that hold the block (the
				// uploader among them, which keeps what it put) are at
				// least the r-1 other copies placement made: repair from
				// it has nothing to push.
				want := 0
				for _, a := range n.copiesAsked(r)(bs[i].ID()) {
					if held, _ := stores[slices.IndexFunc(nodes, func(m *Node) bool { return m.Host.ID() == a })].Has(ctx, bs[i].ID()); held {
						want++
					}
				}
				if want < r-1 {
					t.Fatalf("block %d: holder %d asks %d holders, want at least %d", i, k, want, r-1)
				}
				// A has-list or proof that times out on a loaded
				// machine counts no copy: ask again, a few times.
				c := n.Copies(ctx, []blocks.ID{bs[i].ID()}, r)
				for try := 1; try < 5 && c[0] < want && ctx.Err() == nil; try++ {
					c = n.Copies(ctx, []blocks.ID{bs[i].ID()}, r)
				}
				if c[0] != want {
					t.Fatalf("block %d: holder %d counts %d other copies, want %d", i, k, c[0], want)
				}
			}
		}
	}
	t.Logf("%d of %d blocks had a copy moved to another site; %d placed at the first try", moved, len(bs), asked)
	if asked == 0 {
		t.Fatal("every block's placement fell back: the holders' view was never checked")
	}
	// Whoever asks finds every copy.
	for k, n := range nodes {
		// Placement's holders, that is, without the uploader's copy.
		sets := n.HolderSets(ctx, []blocks.ID{bs[0].ID()}, r+2)
		found := slices.DeleteFunc(sets[0], func(p peer.ID) bool { return p == uploader })
		held, _ := stores[k].Has(ctx, bs[0].ID())
		held = held && k > 0
		if held && len(found) != r-1 || !held && len(found) != r {
			t.Fatalf("node %d finds %d holders of block 0 besides the uploader (holds it: %v)", k, len(found), held)
		}
	}
	if got := nodes[0].Sites(); len(got) != 2 || got[0].Site != "east" || got[1].Site != "west" || got[0].Nodes+got[1].Nodes != 7 {
		t.Fatalf("Sites() = %v", got)
	}
}

func TestHandOffRestoresSpread(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	nodes, stores, _ := startSites(t, ctx, 6, fixedSites("east", "east", "east", "east", "west", "west"))
	// Blocks placed on east nodes only (as a put while west was away
	// leaves them).
	for i := range 10 {
		b := block(500 + i)
		for _, st := range stores[:3] {
			if err := st.PutBlock(ctx, b, 0); err != nil {
				t.Fatal(err)
			}
		}
		holders, sites := siteSpan(t, ctx, nodes, stores, b.ID())
		if holders != 3 || sites["west"] {
			t.Fatalf("setup: %d holders in %v", holders, sites)
		}
		// The holder hands off with two others wanted: they are there,
		// but all in east, so one west node gets a copy.
		pushed, err := nodes[0].HandOff(ctx, b, 2)
		if err != nil {
			t.Fatal(err)
		}
		holders, sites = siteSpan(t, ctx, nodes, stores, b.ID())
		if !sites["west"] || pushed < 1 {
			t.Fatalf("block %d: after the hand-off %d holders in %v (pushed %d), want one in west", i, holders, sites, pushed)
		}
		// A second hand-off finds the spread in place.
		if pushed, err := nodes[0].HandOff(ctx, b, 2); err != nil || pushed != 0 {
			t.Fatalf("block %d: second hand-off pushed %d, %v", i, pushed, err)
		}
	}
}

func TestSiteClaimsAreChecked(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	nodes, _, _ := startSites(t, ctx, 2, fixedSites("east", ""))
	liar := nodes[1]
	// A claim no clean name gives: counts as none.
	long := strings.Repeat("x", 200)
	for _, bad := range []string{"East Office", long, "../x"} {
		liar.Host.SetStreamHandler(protocol.ID(SiteProtocolPrefix+bad), func(s network.Stream) { _ = s.Reset() })
	}
	// Identify pushes the new protocols; wait for them to arrive.
	for {
		ps, _ := nodes[0].Host.Peerstore().GetProtocols(liar.Host.ID())
		if slices.Contains(ps, protocol.ID(SiteProtocolPrefix+"../x")) {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("the protocols never arrived: %v", ps)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if s := nodes[0].SiteOf(liar.Host.ID()); s != "" {
		t.Fatalf("a peer claiming unclean sites has site %q, want none", s)
	}
	if got := nodes[0].Sites(); len(got) != 1 || got[0].Site != "east" {
		t.Fatalf("Sites() = %v", got)
	}
	if err := nodes[0].SetSite("no/slash"); err == nil || nodes[0].Site() != "east" {
		t.Fatalf("SetSite of a bad name: %v, site now %q", err, nodes[0].Site())
	}
}

// TestPlaceSpreadsPastRefusal: when the node of another site placement
// moved up refuses (its quota is full), the block still gets a copy in
// that site: on the next node of it, one copy more than r.
func TestPlaceSpreadsPastRefusal(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	b := block(4242)
	nodes, stores, sinks := startSites(t, ctx, 7, sitesAround(b.ID(), 2))
	var others []peer.ID
	for _, n := range nodes[1:] {
		others = append(others, n.Host.ID())
	}
	sorted := kb.SortClosestPeers(others, kb.ConvertKey(BlockKey(b.ID())))
	// The closest west node (third closest, see sitesAround) refuses.
	for k, n := range nodes {
		if n.Host.ID() == sorted[2] {
			if n.Site() != "west" {
				t.Fatalf("the third closest stands in %q", n.Site())
			}
			sinks[k].mu.Lock()
			sinks[k].left = 0
			sinks[k].mu.Unlock()
		}
	}
	pls, err := nodes[0].Place(ctx, []blocks.Block{b}, 2)
	if err != nil {
		t.Fatal(err)
	}
	holders, sites := siteSpan(t, ctx, nodes[1:], stores[1:], b.ID())
	if !sites["east"] || !sites["west"] || holders != 3 || len(pls[0].Holders) != 3 || len(pls[0].Refused) != 1 {
		t.Fatalf("%d holders (placement: %v, refused %v) in sites %v, want 3 over east and west", holders, pls[0].Holders, pls[0].Refused, sites)
	}
}
