package net

import (
	"context"
	"slices"
	"sync"
	"time"

	kb "github.com/libp2p/go-libp2p-kbucket"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/blockmix/blockmix/blocks"
)

// Copies counts, for each block, the other nodes that hold it, asking the
// k known nodes closest to its key (where placement and repair put
// copies; with the partner share and over two sites, counting this
// node's site and, when it is a partner donor, its copy: see
// layout.order). The questions are batched: one has-list per peer and
// up to MaxWant IDs. A peer's claims count only once it proved a sample of
// them (see verifyClaims); a peer that cannot be reached, or is caught
// lying, counts as holding nothing.
func (n *Node) Copies(ctx context.Context, ids []blocks.ID, k int) []int {
	sets := n.holderSets(ctx, ids, n.copiesAsked(k))
	out := make([]int, len(ids))
	for i, s := range sets {
		out[i] = len(s)
	}
	return out
}

// copiesAsked returns, for a block's ID, the peers Copies asks about it:
// the first k of the known nodes in placement's order (see Copies).
func (n *Node) copiesAsked(k int) func(blocks.ID) []peer.ID {
	peers := n.candidates()
	l := n.layoutOf(peers)
	self := n.IsPartner(n.Host.ID())
	return func(id blocks.ID) []peer.ID {
		ps := l.order(kb.SortClosestPeers(append([]peer.ID(nil), peers...), kb.ConvertKey(BlockKey(id))), k, n.site, self)
		return ps[:min(k, len(ps))]
	}
}

// Holders is Copies that also tells which peers hold how many of ids (a
// peer that holds none is left out).
func (n *Node) Holders(ctx context.Context, ids []blocks.ID, k int) ([]int, map[peer.ID]int) {
	return Tally(n.HolderSets(ctx, ids, k))
}

// Tally counts the holders of each block of sets, and the blocks each
// peer holds (a peer that holds none is left out).
func Tally(sets [][]peer.ID) (counts []int, by map[peer.ID]int) {
	counts = make([]int, len(sets))
	by = map[peer.ID]int{}
	for i, s := range sets {
		counts[i] = len(s)
		for _, p := range s {
			by[p]++
		}
	}
	return counts, by
}

// HolderSets tells, for each block, which other nodes hold it: it asks
// the k known nodes closest to its key and, so that a copy placement
// moved to another site is found whoever asks, the closest node of each
// site not among them (at most maxSitesShown sites), and, as placement
// moves partner donors up (see partnersFirst), the closest partner
// donors, as many as this node's partner share. Claims are checked as
// for Copies.
func (n *Node) HolderSets(ctx context.Context, ids []blocks.ID, k int) [][]peer.ID {
	peers := n.candidates()
	sites := n.siteMap(peers)
	partner := n.partnerMap(peers)
	return n.holderSets(ctx, ids, func(id blocks.ID) []peer.ID {
		ps := kb.SortClosestPeers(append([]peer.ID(nil), peers...), kb.ConvertKey(BlockKey(id)))
		ask := ps[:min(k, len(ps)):min(k, len(ps))]
		seen := map[string]bool{}
		for _, p := range ask {
			seen[sites[p]] = true
		}
		for _, p := range ps[len(ask):] {
			if s := sites[p]; s != "" && !seen[s] && len(seen) <= maxSitesShown {
				seen[s] = true
				ask = append(ask, p)
			}
		}
		for i, need := 0, n.partnerCopies; need > 0 && i < len(ps); i++ {
			if partner[ps[i]] {
				if !slices.Contains(ask, ps[i]) {
					ask = append(ask, ps[i])
				}
				need--
			}
		}
		return ask
	})
}

// holderSets asks, for each of ids, the peers ask names, and returns the
// peers that proved their claim to hold it, per block.
func (n *Node) holderSets(ctx context.Context, ids []blocks.ID, ask func(blocks.ID) []peer.ID) [][]peer.ID {
	byPeer := map[peer.ID][]int{}
	for i, id := range ids {
		for _, p := range ask(id) {
			byPeer[p] = append(byPeer[p], i)
		}
	}
	out := make([][]peer.ID, len(ids))
	var mu sync.Mutex
	var wg sync.WaitGroup
	for p, idx := range byPeer {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var claimed []int
			for start := 0; start < len(idx); start += MaxWant {
				part := idx[start:min(start+MaxWant, len(idx))]
				q := make([]blocks.ID, len(part))
				for j, i := range part {
					q[j] = ids[i]
				}
				have, err := n.Blocks.Has(ctx, p, q)
				if err != nil {
					return
				}
				for j, i := range part {
					if have[j] {
						claimed = append(claimed, i)
					}
				}
			}
			cl := make([]blocks.ID, len(claimed))
			for j, i := range claimed {
				cl[j] = ids[i]
			}
			if !n.verifyClaims(ctx, p, cl) {
				return
			}
			mu.Lock()
			for _, i := range claimed {
				out[i] = append(out[i], p)
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	return out
}

// verifyClaims checks p's claim to hold ids on a sample: up to ProveSample
// of those this node holds too are proven (see Service.Prove), and when it
// holds none of them one is fetched from p (a block that comes back is
// proof; a don't-have after a have is a lie). It reports whether p passed.
func (n *Node) verifyClaims(ctx context.Context, p peer.ID, ids []blocks.ID) bool {
	if len(ids) == 0 {
		return true
	}
	var mine []blocks.Block
	for _, id := range sample(ids, 4*ProveSample) {
		if b, err := n.local(ctx, id); err == nil {
			mine = append(mine, b)
			if len(mine) == ProveSample {
				break
			}
		}
	}
	if len(mine) > 0 {
		return n.Blocks.Proven(ctx, p, mine)
	}
	one := sample(ids, 1)
	missing, err := n.Blocks.Fetch(ctx, p, one, func(blocks.Block) error { return nil })
	if err != nil {
		return false
	}
	if len(missing) > 0 {
		n.Blocks.Peers.Lie(p, time.Now())
		return false
	}
	return true
}

// local reads id from the store this node serves, if it holds it.
func (n *Node) local(ctx context.Context, id blocks.ID) (blocks.Block, error) {
	src := n.Blocks.srv.Src
	if h, ok := src.(blocks.Haver); ok {
		if ok, err := h.Has(ctx, id); err != nil || !ok {
			return blocks.Block{}, blocks.ErrNotFound
		}
	}
	return blocks.GetBlock(ctx, src, id)
}
