package node

import (
	"slices"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/blockmix/blockmix/webui/apiv1"
)

// sites counts the nodes this node knows by site, for status.
func (n *Node) sites() []apiv1.SiteInfo {
	var out []apiv1.SiteInfo
	for _, s := range n.net.Sites() {
		out = append(out, apiv1.SiteInfo{Site: s.Site, Nodes: s.Nodes})
	}
	return out
}

// siteRisk fills in h.Sites and h.OneSite (see oneSite).
func (n *Node) siteRisk(h *apiv1.HealthInfo, sets [][]peer.ID, here func(i int) bool) {
	h.Sites = len(n.net.Sites())
	for _, one := range n.oneSite(sets, here) {
		if one {
			h.OneSite++
		}
	}
}

// oneSite tells, for each block held by the peers sets[i] and by this
// node where here(i), whether the network has two sites and the block's
// copies, though it has some, do not stand in two of them (copies on
// peers that said no site count in none). All false when the network has
// fewer than two sites.
func (n *Node) oneSite(sets [][]peer.ID, here func(i int) bool) []bool {
	out := make([]bool, len(sets))
	if len(n.net.Sites()) < 2 {
		return out
	}
	for i, set := range sets {
		var first string
		two := false
		note := func(s string) {
			switch {
			case s == "":
			case first == "":
				first = s
			case s != first:
				two = true
			}
		}
		if here(i) {
			note(n.net.Site())
		}
		for _, p := range set {
			note(n.net.SiteOf(p))
		}
		out[i] = !two && (len(set) > 0 || here(i))
	}
	return out
}

// partners counts the partner donors this node knows by home group, for
// status.
func (n *Node) partners() []apiv1.PartnerInfo {
	var out []apiv1.PartnerInfo
	for _, p := range n.net.Partners() {
		out = append(out, apiv1.PartnerInfo{Home: p.Home, Nodes: p.Nodes})
	}
	return out
}

// partnerRisk fills in h.PartnerCopies, h.Partners and h.NoPartner (see
// noPartner).
func (n *Node) partnerRisk(h *apiv1.HealthInfo, sets [][]peer.ID, here func(i int) bool) {
	h.PartnerCopies = n.cfg.PartnerCopies
	for _, p := range n.net.Partners() {
		h.Partners += p.Nodes
	}
	for _, none := range n.noPartner(sets, here) {
		if none {
			h.NoPartner++
		}
	}
}

// noPartner tells, for each block held by the peers sets[i] and by this
// node where here(i), whether the node wants partner copies, knows
// partner donors, and the block, though it has copies, has none on a
// partner donor. All false when the node wants no partner copies or
// knows no partner donor.
func (n *Node) noPartner(sets [][]peer.ID, here func(i int) bool) []bool {
	out := make([]bool, len(sets))
	if n.cfg.PartnerCopies == 0 || len(n.net.Partners()) == 0 {
		return out
	}
	self := n.net.IsPartner(n.net.Host.ID())
	for i, set := range sets {
		has := here(i) && self || slices.ContainsFunc(set, n.net.IsPartner)
		out[i] = !has && (len(set) > 0 || here(i))
	}
	return out
}
