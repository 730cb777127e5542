package net

import (
	"fmt"
	"sort"
	"strings"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
)

// A site is where a node stands ("east-office", "home"): placement spreads
// each block's copies over at least two sites when the network has two,
// so that a whole site stopping at once (a power cut, a fire, a broken
// uplink) loses no file.
//
// A node tells its site through identify: it registers the protocol
// SiteProtocolPrefix+NAME, which identify lists to every peer, and reads
// a peer's site from the protocols identify stored for it. So no extra
// round trip, and no state beyond libp2p's own peerstore (which bounds
// what it keeps of each peer). A peer's claim is a stranger's: a name
// that CleanSite would not give back unchanged counts as no site.

// SiteProtocolPrefix prefixes the protocol ID that names a node's site.
const SiteProtocolPrefix = "/blockmix/site/1/"

// MaxSiteLen bounds a site's name, in bytes.
const MaxSiteLen = 32

// CleanSite returns the site name s as a node uses it: trimmed, lower
// case, spaces as '-'. It fails with an error that says what is wrong
// unless the result is 1 to MaxSiteLen letters a-z, digits, '-', '_' or
// '.', starting with a letter or a digit.
func CleanSite(s string) (string, error) {
	c := strings.ToLower(strings.TrimSpace(s))
	c = strings.Join(strings.Fields(c), "-")
	bad := func(why string) error {
		return fmt.Errorf("site %q: %s; want 1 to %d letters a-z, digits, '-', '_' or '.' (for example east-office)", s, why, MaxSiteLen)
	}
	switch {
	case c == "":
		return "", bad("empty")
	case len(c) > MaxSiteLen:
		return "", bad(fmt.Sprintf("%d bytes long", len(c)))
	}
	for i, r := range c {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
		case (r == '-' || r == '_' || r == '.') && i > 0:
		default:
			return "", bad(fmt.Sprintf("%q is not allowed there", r))
		}
	}
	return c, nil
}

// SetSite makes the node tell its site (cleaned, see CleanSite) to its
// peers from now on; "" tells none. Call it before the node meets peers:
// those met before learn it at their next identify.
func (n *Node) SetSite(site string) error {
	if site != "" {
		c, err := CleanSite(site)
		if err != nil {
			return err
		}
		site = c
	}
	if n.site != "" {
		n.Host.RemoveStreamHandler(protocol.ID(SiteProtocolPrefix + n.site))
	}
	n.site = site
	if site != "" {
		// Nobody opens this protocol: it exists to be listed.
		n.Host.SetStreamHandler(protocol.ID(SiteProtocolPrefix+site), func(s network.Stream) { _ = s.Reset() })
	}
	return nil
}

// Site is this node's site ("" for none).
func (n *Node) Site() string { return n.site }

// SiteOf is p's site as p told it ("" when it told none, a name that is
// not clean, or more than one); this node's own for its ID.
func (n *Node) SiteOf(p peer.ID) string {
	if p == n.Host.ID() {
		return n.site
	}
	return n.claimOf(p, SiteProtocolPrefix)
}

// claimOf is the name p claims through identify with a protocol prefix+
// NAME ("" when it claims none, a name CleanSite would change, or more
// than one): a site, or a home group.
func (n *Node) claimOf(p peer.ID, prefix string) string {
	ps, err := n.Host.Peerstore().GetProtocols(p)
	if err != nil {
		return ""
	}
	claim := ""
	for _, id := range ps {
		name, ok := strings.CutPrefix(string(id), prefix)
		if !ok {
			continue
		}
		if c, err := CleanSite(name); err != nil || c != name || claim != "" {
			return "" // a claim that is not clean, or a second one: none
		}
		claim = name
	}
	return claim
}

// siteMap is the sites of ps (peers without one are left out).
func (n *Node) siteMap(ps []peer.ID) map[peer.ID]string {
	out := make(map[peer.ID]string, len(ps))
	for _, p := range ps {
		if s := n.SiteOf(p); s != "" {
			out[p] = s
		}
	}
	return out
}

// SiteCount is how many nodes stand in one site.
type SiteCount struct {
	Site  string `json:"site"`
	Nodes int    `json:"nodes"`
}

// Sites counts the nodes this node knows (itself and the candidates of
// placement) by site, most nodes first; nodes that told no site are not
// counted. At most maxSitesShown sites are listed (a stranger could claim
// a new one per identity).
func (n *Node) Sites() []SiteCount {
	by := map[string]int{}
	if n.site != "" {
		by[n.site]++
	}
	for _, s := range n.siteMap(n.candidates()) {
		by[s]++
	}
	out := make([]SiteCount, 0, len(by))
	for s, c := range by {
		out = append(out, SiteCount{s, c})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Nodes != out[j].Nodes {
			return out[i].Nodes > out[j].Nodes
		}
		return out[i].Site < out[j].Site
	})
	return out[:min(len(out), maxSitesShown)]
}

// maxSitesShown bounds the sites Sites lists.
const maxSitesShown = 64

// spread returns ps (closest first) reordered so that its first r hold
// copies in at least two sites, counting have (the site that already
// holds one, "" for none), whenever ps offers a second site: when the
// first r are all in one site (peers without a site do not count), the
// closest peer of another site moves up to place r-1 and the peers it
// passes move down one. Otherwise ps comes back as it is. With have ""
// and r < 2 there is nothing to spread. ps is not changed.
//
// Placement, Responsible, Copies and HandOff all order by spread (through
// layout.order), so that the nodes repair asks are the nodes placement
// chose: a node of another site that placement moved up is the closest of
// its site for everyone.
func spread(ps []peer.ID, r int, have string, site map[peer.ID]string) []peer.ID {
	return spreadKeeping(ps, r, have, site, nil, 0)
}

// spreadKeeping is spread that keeps want partner donors (see
// partnersFirst) among the first r: the peer of another site that moves
// up takes the place of the farthest of the first r that can go (a
// partner donor only while the first r hold more than want of them, or
// any when the peer moving up is a partner donor itself); when none can
// go, ps comes back as it is.
func spreadKeeping(ps []peer.ID, r int, have string, site map[peer.ID]string, partner map[peer.ID]bool, want int) []peer.ID {
	if r < 1 || len(ps) <= r || have == "" && r < 2 {
		return ps
	}
	if twoSites(ps[:r], have, site) {
		return ps
	}
	first := have // the one site of the first r, if any
	for _, p := range ps[:r] {
		if first == "" {
			first = site[p]
		}
	}
	if first == "" {
		return ps
	}
	got := 0
	for _, p := range ps[:r] {
		if partner[p] {
			got++
		}
	}
	for j := r; j < len(ps); j++ {
		if s := site[ps[j]]; s == "" || s == first {
			continue
		}
		i := r - 1 // the place it takes
		for !partner[ps[j]] && i >= 0 && partner[ps[i]] && got <= want {
			i--
		}
		if i < 0 {
			continue // only a partner donor may come in: look further
		}
		out := make([]peer.ID, 0, len(ps))
		out = append(out, ps[:i]...)
		out = append(out, ps[i+1:r]...)
		out = append(out, ps[j], ps[i])
		out = append(out, ps[r:j]...)
		return append(out, ps[j+1:]...)
	}
	return ps
}

// twoSites reports whether the sites of ps, with have, are at least two.
func twoSites(ps []peer.ID, have string, site map[peer.ID]string) bool {
	first := have
	for _, p := range ps {
		s := site[p]
		if s == "" {
			continue
		}
		if first == "" {
			first = s
		} else if s != first {
			return true
		}
	}
	return false
}
