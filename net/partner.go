package net

import (
	"crypto/sha256"
	"encoding/hex"
	"sort"
	"strings"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
)

// A partner donor is a node that serves this node's group from a donor
// whose own home is another group: a pooled node (see --pool) tells the
// group of the donor that runs it, its home. A group can ask placement
// to put a share of each block's copies (its partner copies) on partner
// donors, so that its files outlive the loss of all its own nodes.
//
// A node tells its home the way it tells its site: it registers the
// protocol HomeProtocolPrefix+NAME, which identify lists to every peer,
// and HomeOf reads it from the protocols identify stored for a peer. No
// extra round trip, nothing kept beyond libp2p's peerstore; a claim that
// is not clean counts as none.

// HomeProtocolPrefix prefixes the protocol ID that names a pooled node's
// home group.
const HomeProtocolPrefix = "/blockmix/home/1/"

// HomeName is the name a group goes by as a home (see HomeOf): its name
// cleaned as CleanSite cleans a site, or, for a name CleanSite refuses (too
// long, or letters beyond a-z), "g-" and 16 hex digits of its SHA-256;
// "" for no group. Two groups of the same name are one home: they do not
// count as each other's partners.
func HomeName(group string) string {
	if strings.TrimSpace(group) == "" {
		return ""
	}
	if c, err := CleanSite(group); err == nil {
		return c
	}
	h := sha256.Sum256([]byte(group))
	return "g-" + hex.EncodeToString(h[:8])
}

// setHome makes the node tell home (a HomeName, "" for none) from now on.
// Call it before the node meets peers: those met before learn it at their
// next identify.
func (n *Node) setHome(home string) {
	if n.home != "" {
		n.Host.RemoveStreamHandler(protocol.ID(HomeProtocolPrefix + n.home))
	}
	n.home = home
	if home != "" {
		// Nobody opens this protocol: it exists to be listed.
		n.Host.SetStreamHandler(protocol.ID(HomeProtocolPrefix+home), func(s network.Stream) { _ = s.Reset() })
	}
}

// Home is the home group this node tells ("" for none).
func (n *Node) Home() string { return n.home }

// PartnerCopies is how many of each block's copies placement puts on
// partner donors (see Config.PartnerCopies).
func (n *Node) PartnerCopies() int { return n.partnerCopies }

// HomeOf is p's home group as p told it ("" when it told none, a name
// that is not clean, or more than one); this node's own for its ID.
func (n *Node) HomeOf(p peer.ID) string {
	if p == n.Host.ID() {
		return n.home
	}
	return n.claimOf(p, HomeProtocolPrefix)
}

// IsPartner reports whether p (this node included) is a partner donor:
// its home is a group, and not this node's.
func (n *Node) IsPartner(p peer.ID) bool {
	h := n.HomeOf(p)
	return h != "" && h != n.group
}

// partnerMap is the partner donors among ps.
func (n *Node) partnerMap(ps []peer.ID) map[peer.ID]bool {
	out := map[peer.ID]bool{}
	for _, p := range ps {
		if n.IsPartner(p) {
			out[p] = true
		}
	}
	return out
}

// PartnerCount is how many partner donors one home group has.
type PartnerCount struct {
	Home  string `json:"home"`
	Nodes int    `json:"nodes"`
}

// Partners counts the partner donors this node knows (itself, when it is
// one, and the candidates of placement) by home group, most first; at
// most maxSitesShown homes are listed (a stranger could claim a new one
// per identity).
func (n *Node) Partners() []PartnerCount {
	by := map[string]int{}
	for _, p := range append(n.candidates(), n.Host.ID()) {
		if n.IsPartner(p) {
			by[n.HomeOf(p)]++
		}
	}
	out := make([]PartnerCount, 0, len(by))
	for h, c := range by {
		out = append(out, PartnerCount{h, c})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Nodes != out[j].Nodes {
			return out[i].Nodes > out[j].Nodes
		}
		return out[i].Home < out[j].Home
	})
	return out[:min(len(out), maxSitesShown)]
}

// layout is what orders a block's candidates for placement: the peers'
// sites, the partner donors, and how many copies go to partner donors.
type layout struct {
	sites   map[peer.ID]string
	partner map[peer.ID]bool
	share   int
}

// layoutOf is the layout of this node's placement over ps.
func (n *Node) layoutOf(ps []peer.ID) layout {
	l := layout{sites: n.siteMap(ps), share: n.partnerCopies}
	if l.share > 0 {
		l.partner = n.partnerMap(ps)
	}
	return l
}

// order returns ps (closest first) as placement orders them for copies on
// r nodes, counting this node's site have and, when havePartner, this
// node as a partner donor holding one: first the partner share (see
// partnersFirst), then two sites (see spread), without giving up a
// partner copy the share needs. Placement, Responsible, Copies and
// HandOff all order by it, so that the nodes repair asks are the nodes
// placement chose. ps is not changed.
//
// Partners and sites combine so: the partner share comes first; two
// sites then come from a peer of the missing site that takes the place
// of the farthest peer of the first r that the share can spare (a
// partner donor, which any place suits, or else a peer that is not one
// of the partner copies the share needs). When every one of the first r
// is a needed partner donor and no partner donor stands in another site,
// the copies stay in one site.
func (l layout) order(ps []peer.ID, r int, have string, havePartner bool) []peer.ID {
	want := l.share
	if havePartner {
		want--
	}
	ps = partnersFirst(ps, r, want, l.partner)
	return spreadKeeping(ps, r, have, l.sites, l.partner, want)
}

// partnersFirst returns ps (closest first) reordered so that its first r
// hold at least want partner donors whenever ps has them: when they hold
// fewer, the closest partner donors past r move up into the last places
// of the first r, and the farthest peers of the first r that are not
// partner donors move down, just past them (the peers the partner donors
// pass move down too, in order). Otherwise ps comes back as it is. ps is
// not changed.
func partnersFirst(ps []peer.ID, r, want int, partner map[peer.ID]bool) []peer.ID {
	r = min(r, len(ps))
	if want <= 0 || r < 1 || len(partner) == 0 {
		return ps
	}
	want = min(want, r)
	got := 0
	for _, p := range ps[:r] {
		if partner[p] {
			got++
		}
	}
	var up []int // indexes past r of the partner donors that move up
	for j := r; j < len(ps) && got+len(up) < want; j++ {
		if partner[ps[j]] {
			up = append(up, j)
		}
	}
	if len(up) == 0 {
		return ps
	}
	// The first r keep their partner donors and their closest others;
	// the last len(up) others go down.
	drop := map[int]bool{}
	for i := r - 1; i >= 0 && len(drop) < len(up); i-- {
		if !partner[ps[i]] {
			drop[i] = true
		}
	}
	moved := map[int]bool{}
	for _, j := range up {
		moved[j] = true
	}
	out := make([]peer.ID, 0, len(ps))
	for i := 0; i < r; i++ {
		if !drop[i] {
			out = append(out, ps[i])
		}
	}
	for _, j := range up {
		out = append(out, ps[j])
	}
	for i := 0; i < r; i++ {
		if drop[i] {
			out = append(out, ps[i])
		}
	}
	for j := r; j < len(ps); j++ {
		if !moved[j] {
			out = append(out, ps[j])
		}
	}
	return out
}
