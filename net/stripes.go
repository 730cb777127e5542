package net

import (
	"context"
	"errors"
	"fmt"
	"sync"

	kb "github.com/libp2p/go-libp2p-kbucket"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/blockmix/blockmix/blocks"
)

// ErrStripeShort: some stripes could not have each of their blocks on a
// node of its own. The error says how many and why.
var ErrStripeShort = errors.New("not every stripe has its blocks on distinct nodes")

// PlaceStripes gives the blocks of each stripe (the K data and M parity
// blocks of an erasure-coded file) to distinct other nodes, one copy
// each, so that losing a node loses at most one block of a stripe. It
// prefers, for each block, a node that is not among the r nodes closest
// to the block's key (this node included): those replicate what they
// hold to r copies in their repair rounds, which would undo the savings
// of parity; a block goes to one of them only when the others cannot
// take it. A node that refuses or fails is replaced by the next unused
// one. taken, when not nil, names nodes that already hold some of a
// stripe's blocks (a repair places a stripe's lost blocks): they get none
// of its blocks. It returns one Placement per block, per stripe,
// and an error wrapping ErrStripeShort when some block has no holder.
func (n *Node) PlaceStripes(ctx context.Context, stripes [][]blocks.Block, r int, taken []map[peer.ID]bool) ([][]Placement, error) {
	var ids []blocks.ID
	for _, s := range stripes {
		for _, b := range s {
			ids = append(ids, b.ID())
		}
	}
	n.explore(ctx, ids)
	peers := n.candidates()
	out := make([][]Placement, len(stripes))
	order := make([][][]peer.ID, len(stripes)) // per stripe, per block: candidates, preferred first
	next := make([][]int, len(stripes))
	used := make([]map[peer.ID]bool, len(stripes))
	for si, s := range stripes {
		out[si] = make([]Placement, len(s))
		order[si] = make([][]peer.ID, len(s))
		next[si] = make([]int, len(s))
		used[si] = map[peer.ID]bool{}
		far := make([][]peer.ID, len(s))
		for bi, b := range s {
			out[si][bi].ID = b.ID()
			var nFar int
			order[si][bi], nFar = n.stripeOrder(peers, b.ID(), r)
			far[bi] = order[si][bi][:nFar]
		}
		for p := range taken0(taken, si) {
			used[si][p] = true
		}
		// Each block first asks the far node a matching gives it, so
		// that as many blocks as can be are away from their closest.
		for bi, p := range matchFar(far, used[si]) {
			if p != "" {
				order[si][bi] = append([]peer.ID{p}, order[si][bi]...)
			}
		}
	}
	for {
		// One round: each block without a holder asks the next
		// candidate no other block of its stripe has or asks now.
		type job struct{ s, b int }
		batches := map[peer.ID][]job{}
		for si, s := range stripes {
			for bi := range s {
				if len(out[si][bi].Holders) > 0 {
					continue
				}
				for ; next[si][bi] < len(order[si][bi]); next[si][bi]++ {
					p := order[si][bi][next[si][bi]]
					if used[si][p] || n.Blocks.Peers.Liar(p) {
						continue
					}
					used[si][p] = true
					batches[p] = append(batches[p], job{si, bi})
					next[si][bi]++
					break
				}
			}
		}
		if len(batches) == 0 {
			break
		}
		var mu sync.Mutex
		var wg sync.WaitGroup
		for p, jobs := range batches {
			wg.Add(1)
			go func() {
				defer wg.Done()
				push := make([]blocks.Block, len(jobs))
				for k, j := range jobs {
					push[k] = stripes[j.s][j.b]
				}
				res, proven, err := n.Blocks.PushProven(ctx, p, push, ProveSample)
				mu.Lock()
				defer mu.Unlock()
				for k, j := range jobs {
					pl := &out[j.s][j.b]
					switch {
					case err != nil:
						pl.Refused = append(pl.Refused, fmt.Sprintf("%s: %v", p.ShortString(), err))
					case res[k] != nil:
						pl.Refused = append(pl.Refused, fmt.Sprintf("%s: %v", p.ShortString(), res[k]))
					case !proven:
						pl.Refused = append(pl.Refused, fmt.Sprintf("%s: took the blocks but did not prove it holds them", p.ShortString()))
					default:
						pl.Holders = append(pl.Holders, p)
						continue
					}
					// A node that did not take this block takes no other
					// block of the stripe either (it stays used).
				}
			}()
		}
		wg.Wait()
		if ctx.Err() != nil {
			return out, ctx.Err()
		}
	}
	short, why, widest := 0, "", 0
	for _, s := range out {
		widest = max(widest, len(s))
		for _, pl := range s {
			if len(pl.Holders) == 0 {
				short++
				if why == "" && len(pl.Refused) > 0 {
					why = pl.Refused[0]
				}
			}
		}
	}
	if short == 0 {
		return out, nil
	}
	hint := ""
	if len(peers) < widest {
		hint = fmt.Sprintf(" (the network has only %s; these blocks want %d)", plural(len(peers), "other node"), widest)
	} else if why != "" {
		hint = fmt.Sprintf(" (for example %s)", why)
	}
	return out, fmt.Errorf("%w: %d blocks have no node of their own%s", ErrStripeShort, short, hint)
}

// Others is how many other nodes placement may use now (see candidates).
func (n *Node) Others() int { return len(n.candidates()) }

func taken0(taken []map[peer.ID]bool, i int) map[peer.ID]bool {
	if i < len(taken) {
		return taken[i]
	}
	return nil
}

// matchFar gives each block a distinct node among its far ones (and not
// in used), as many blocks as a maximum bipartite matching can (Kuhn's
// augmenting paths: a stripe has at most a few dozen blocks); "" for a
// block left without.
func matchFar(far [][]peer.ID, used map[peer.ID]bool) []peer.ID {
	owner := map[peer.ID]int{} // node -> block
	var try func(b int, seen map[peer.ID]bool) bool
	try = func(b int, seen map[peer.ID]bool) bool {
		for _, p := range far[b] {
			if used[p] || seen[p] {
				continue
			}
			seen[p] = true
			if o, ok := owner[p]; !ok || try(o, seen) {
				owner[p] = b
				return true
			}
		}
		return false
	}
	for b := range far {
		try(b, map[peer.ID]bool{})
	}
	out := make([]peer.ID, len(far))
	for p, b := range owner {
		out[b] = p
	}
	return out
}

// stripeOrder lists peers for a stripe's block id: those outside the r
// closest to its key (this node counted) first, closest first, then the
// r closest; and how many are of the first kind.
func (n *Node) stripeOrder(peers []peer.ID, id blocks.ID, r int) ([]peer.ID, int) {
	key := kb.ConvertKey(BlockKey(id))
	all := kb.SortClosestPeers(append(append([]peer.ID(nil), peers...), n.Host.ID()), key)
	closest := map[peer.ID]bool{}
	for _, p := range all[:min(r, len(all))] {
		closest[p] = true
	}
	var far, near []peer.ID
	for _, p := range all {
		switch {
		case p == n.Host.ID():
		case closest[p]:
			near = append(near, p)
		default:
			far = append(far, p)
		}
	}
	return append(far, near...), len(far)
}

// HoldersOf asks every known node (not only the closest: a stripe's
// blocks sit away from their keys) which of ids it holds, with the same
// proofs as Holders, and returns for each ID the nodes that hold it.
func (n *Node) HoldersOf(ctx context.Context, ids []blocks.ID) [][]peer.ID {
	peers := n.candidates()
	return n.holderSets(ctx, ids, func(blocks.ID) []peer.ID { return peers })
}
