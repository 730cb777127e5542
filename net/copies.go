package net

import (
	"context"
	"sync"

	kb "github.com/libp2p/go-libp2p-kbucket"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/blockmix/blockmix/blocks"
)

// Copies counts, for each block, the other nodes that say they hold it,
// asking the k known nodes closest to its key (where placement and repair
// put copies). The questions are batched: one has-list per peer and up to
// MaxWant IDs. A peer that cannot be reached counts as holding nothing.
func (n *Node) Copies(ctx context.Context, ids []blocks.ID, k int) []int {
	peers := n.candidates()
	ask := map[peer.ID][]int{}
	for i, id := range ids {
		ps := kb.SortClosestPeers(append([]peer.ID(nil), peers...), kb.ConvertKey(BlockKey(id)))
		for _, p := range ps[:min(k, len(ps))] {
			ask[p] = append(ask[p], i)
		}
	}
	out := make([]int, len(ids))
	var mu sync.Mutex
	var wg sync.WaitGroup
	for p, idx := range ask {
		wg.Add(1)
		go func() {
			defer wg.Done()
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
				mu.Lock()
				for j, i := range part {
					if have[j] {
						out[i]++
					}
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return out
}
