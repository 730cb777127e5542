package net

import (
	"context"
	"sync"
	"time"

	kb "github.com/libp2p/go-libp2p-kbucket"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/blockmix/blockmix/blocks"
)

// Copies counts, for each block, the other nodes that hold it, asking the
// k known nodes closest to its key (where placement and repair put
// copies). The questions are batched: one has-list per peer and up to
// MaxWant IDs. A peer's claims count only once it proved a sample of them
// (see verifyClaims); a peer that cannot be reached, or is caught lying,
// counts as holding nothing.
func (n *Node) Copies(ctx context.Context, ids []blocks.ID, k int) []int {
	out, _ := n.Holders(ctx, ids, k)
	return out
}

// Holders is Copies that also tells which peers hold how many of ids (a
// peer that holds none is left out).
func (n *Node) Holders(ctx context.Context, ids []blocks.ID, k int) ([]int, map[peer.ID]int) {
	peers := n.candidates()
	ask := map[peer.ID][]int{}
	for i, id := range ids {
		ps := kb.SortClosestPeers(append([]peer.ID(nil), peers...), kb.ConvertKey(BlockKey(id)))
		for _, p := range ps[:min(k, len(ps))] {
			ask[p] = append(ask[p], i)
		}
	}
	out := make([]int, len(ids))
	by := map[peer.ID]int{}
	n.claims(ctx, ids, ask, func(p peer.ID, claimed []int) {
		for _, i := range claimed {
			out[i]++
		}
		if len(claimed) > 0 {
			by[p] = len(claimed)
		}
	})
	return out, by
}

// claims asks each peer of ask whether it holds the ids it is given
// (indexes into ids), in has-lists of up to MaxWant, and has it prove a
// sample of its claims (see verifyClaims); for each peer that answers and
// passes, got gets the indexes it claims, one call at a time.
func (n *Node) claims(ctx context.Context, ids []blocks.ID, ask map[peer.ID][]int, got func(p peer.ID, claimed []int)) {
	var mu sync.Mutex
	var wg sync.WaitGroup
	for p, idx := range ask {
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
			got(p, claimed)
			mu.Unlock()
		}()
	}
	wg.Wait()
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
