package net

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	kb "github.com/libp2p/go-libp2p-kbucket"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/blockmix/blockmix/blocks"
)

// Placement is where one block went.
type Placement struct {
	ID      blocks.ID
	Holders []peer.ID // peers that accepted it, closest first
	Refused []string  // why others did not take it
}

// ErrUnderReplicated: some blocks have fewer than R holders. The error
// says how many and why.
var ErrUnderReplicated = errors.New("not every block has its copies")

// BlockKey is a block's key in the DHT keyspace: its multihash.
func BlockKey(id blocks.ID) string { return string(id.CID().Hash()) }

// candidates returns the other peers this node knows: the DHT's routing
// table and the open connections, without the peers that are not
// connected and whose last request failed (likely gone: a node that left
// must not count as a holder or keep its blocks from being repaired), and
// without liars (their claims count for nothing).
func (n *Node) candidates() []peer.ID {
	seen := map[peer.ID]bool{n.Host.ID(): true}
	now := time.Now()
	var out []peer.ID
	for _, p := range append(n.DHT.RoutingTable().ListPeers(), n.Host.Network().Peers()...) {
		if seen[p] {
			continue
		}
		seen[p] = true
		st := n.Blocks.Peers.Stats(p)
		if st.Liar(now) || n.Host.Network().Connectedness(p) != network.Connected && st.Down(now) {
			continue
		}
		out = append(out, p)
	}
	return out
}

// maxWalks bounds the DHT walks of one Place call.
const maxWalks = 16

// explore walks the DHT towards the regions of the keyspace the blocks'
// keys fall in, at most maxWalks walks (one per region, by the keys' first
// byte), so that in a network larger than the routing table the closest
// nodes become known: one walk per region, never one per block (see
// go-libp2p-kad-dht#824). Walks that fail are skipped: placement then uses
// the peers already known.
func (n *Node) explore(ctx context.Context, ids []blocks.ID) {
	if n.DHT.RoutingTable().Size() == 0 {
		return
	}
	regions := map[byte]blocks.ID{}
	for _, id := range ids {
		k := kb.ConvertKey(BlockKey(id))
		if _, ok := regions[k[0]]; !ok && len(regions) < maxWalks {
			regions[k[0]] = id
		}
	}
	var wg sync.WaitGroup
	for _, id := range regions {
		wg.Add(1)
		go func() {
			defer wg.Done()
			wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			_, _ = n.Closest(wctx, id, 20) // fills the routing table
		}()
	}
	wg.Wait()
}

// Place gives each block to the r other nodes closest to its key, falling
// back to the next closest when one refuses or cannot be reached. Blocks
// are grouped by peer: one stream per peer and round, many pushes in
// flight, and no DHT walk per block (a few walks find the nodes near the
// blocks' keys; the candidates are then the peers this node knows, sorted
// by XOR distance to each key). It returns one Placement per block, in
// order, and an error wrapping ErrUnderReplicated when a block has fewer
// than r holders.
func (n *Node) Place(ctx context.Context, bs []blocks.Block, r int) ([]Placement, error) {
	ids := make([]blocks.ID, len(bs))
	for i, b := range bs {
		ids[i] = b.ID()
	}
	n.explore(ctx, ids)
	return n.place(ctx, bs, r)
}

// place is Place without the DHT walks.
func (n *Node) place(ctx context.Context, bs []blocks.Block, r int) ([]Placement, error) {
	peers := n.candidates()
	out := make([]Placement, len(bs))
	order := make([][]peer.ID, len(bs)) // candidates per block, closest first
	next := make([]int, len(bs))        // next candidate to try
	for i, b := range bs {
		out[i].ID = b.ID()
		order[i] = kb.SortClosestPeers(append([]peer.ID(nil), peers...), kb.ConvertKey(BlockKey(b.ID())))
	}
	for {
		// One round: every short block asks its next candidates (not
		// those caught lying meanwhile).
		batches := map[peer.ID][]int{}
		for i := range bs {
			need := r - len(out[i].Holders)
			for ; need > 0 && next[i] < len(order[i]); next[i]++ {
				p := order[i][next[i]]
				if n.Blocks.Peers.Liar(p) {
					continue
				}
				batches[p] = append(batches[p], i)
				need--
			}
		}
		if len(batches) == 0 {
			break
		}
		var mu sync.Mutex
		var wg sync.WaitGroup
		for p, idx := range batches {
			wg.Add(1)
			go func() {
				defer wg.Done()
				push := make([]blocks.Block, len(idx))
				for k, i := range idx {
					push[k] = bs[i]
				}
				res, err := n.Blocks.Push(ctx, p, push)
				// An accept is a claim: a sample of the accepted blocks
				// must be proven before any counts.
				proven := err == nil && n.proveSample(ctx, p, push, res)
				mu.Lock()
				defer mu.Unlock()
				for k, i := range idx {
					switch {
					case err != nil:
						// The stream failed: count none of the batch, even
						// those the peer may have taken (a spare copy is
						// harmless, a missing one is not).
						out[i].Refused = append(out[i].Refused, fmt.Sprintf("%s: %v", p.ShortString(), err))
					case res[k] != nil:
						out[i].Refused = append(out[i].Refused, fmt.Sprintf("%s: %v", p.ShortString(), res[k]))
					case !proven:
						out[i].Refused = append(out[i].Refused, fmt.Sprintf("%s: took the blocks but did not prove it holds them", p.ShortString()))
					default:
						out[i].Holders = append(out[i].Holders, p)
					}
				}
			}()
		}
		wg.Wait()
		if ctx.Err() != nil {
			return out, ctx.Err()
		}
	}
	for i := range out {
		out[i].Holders = kb.SortClosestPeers(out[i].Holders, kb.ConvertKey(BlockKey(bs[i].ID())))
	}
	return out, shortfall(out, r, len(peers))
}

// ProveSample is how many of the blocks a peer claims (accepted, or says
// it has) it is asked to prove at a time. A peer that keeps none of what
// it claims is caught by the first; one that keeps a share f of them
// passes with probability f^ProveSample.
const ProveSample = 4

// proveSample asks p to prove up to ProveSample of the blocks of bs it
// accepted (res[k] == nil), chosen at random; it reports whether p did (a
// peer that accepted none has nothing to prove).
func (n *Node) proveSample(ctx context.Context, p peer.ID, bs []blocks.Block, res []error) bool {
	var took []blocks.Block
	for k, b := range bs {
		if res[k] == nil {
			took = append(took, b)
		}
	}
	if len(took) == 0 {
		return true
	}
	return n.Blocks.Proven(ctx, p, sample(took, ProveSample))
}

// sample returns up to k elements of xs, chosen at random.
func sample[T any](xs []T, k int) []T {
	if len(xs) <= k {
		return xs
	}
	out := make([]T, 0, k)
	for _, i := range rand.Perm(len(xs))[:k] {
		out = append(out, xs[i])
	}
	return out
}

// shortfall returns an error wrapping ErrUnderReplicated that says how many
// of pls have fewer than r holders and why, or nil when none has.
func shortfall(pls []Placement, r, others int) error {
	short := 0
	var why string
	for _, pl := range pls {
		if len(pl.Holders) < r {
			short++
			if why == "" && len(pl.Refused) > 0 {
				why = pl.Refused[0]
			}
		}
	}
	if short == 0 {
		return nil
	}
	hint := ""
	if others < r {
		hint = fmt.Sprintf(" (the network has only %s)", plural(others, "other node"))
	} else if why != "" {
		hint = fmt.Sprintf(" (for example %s)", why)
	}
	return fmt.Errorf("%w: %d of %d blocks have fewer than %d copies%s", ErrUnderReplicated, short, len(pls), r, hint)
}

// PlaceSlice is how many blocks PlaceAll reads and places at a time, and
// placeSlices how many such slices are in flight.
const (
	PlaceSlice  = 64
	placeSlices = 4
)

// PlaceAll places the blocks ids from g (see Place), a few slices of
// PlaceSlice blocks at a time, so that a big file never sits in memory
// whole while the pushes of one slice overlap the rounds of another. done,
// if not nil, gets the number of blocks placed so far after each slice. It
// returns how many blocks have fewer than r holders and how many distinct
// nodes took blocks, and an error wrapping ErrUnderReplicated when a block
// is short.
func (n *Node) PlaceAll(ctx context.Context, g blocks.Getter, ids []blocks.ID, r int, done func(int)) (short, nodes int, err error) {
	n.explore(ctx, ids)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	all := make([]Placement, len(ids)) // IDs and holders only: the bytes are gone
	var (
		mu     sync.Mutex
		placed int
		first  error
		wg     sync.WaitGroup
	)
	sem := make(chan struct{}, placeSlices)
	for start := 0; start < len(ids); start += PlaceSlice {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Add(1)
		go func(start int) {
			defer func() { <-sem; wg.Done() }()
			slice := ids[start:min(start+PlaceSlice, len(ids))]
			pls, err := n.placeFrom(ctx, g, slice, r)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				if first == nil {
					first = err
				}
				cancel()
				return
			}
			copy(all[start:], pls)
			placed += len(slice)
			if done != nil {
				done(placed)
			}
		}(start)
	}
	wg.Wait()
	if first == nil && ctx.Err() != nil {
		first = ctx.Err()
	}
	if first != nil {
		return 0, 0, first
	}
	holders := map[peer.ID]bool{}
	for _, pl := range all {
		if len(pl.Holders) < r {
			short++
		}
		for _, p := range pl.Holders {
			holders[p] = true
		}
	}
	return short, len(holders), shortfall(all, r, len(n.candidates()))
}

// placeFrom reads ids from g and places them.
func (n *Node) placeFrom(ctx context.Context, g blocks.Getter, ids []blocks.ID, r int) ([]Placement, error) {
	bs := make([]blocks.Block, len(ids))
	for i, id := range ids {
		b, err := blocks.GetBlock(ctx, g, id)
		if err != nil {
			return nil, fmt.Errorf("read block to place: %w", err)
		}
		bs[i] = b
	}
	pls, err := n.place(ctx, bs, r)
	if err != nil && !errors.Is(err, ErrUnderReplicated) {
		return nil, err
	}
	return pls, nil
}
