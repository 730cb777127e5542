package main

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/blockmix/blockmix/blocks"
	bmnet "github.com/blockmix/blockmix/net"
	"github.com/blockmix/blockmix/webui/apiv1"
)

// repairer keeps the blocks this node holds for the network at their
// copies: every round it asks, for each block it is one of the R closest
// to, whether the other closest nodes still have it, and pushes it to the
// next closest that lack it. It needs nobody but the nodes near the block:
// never the uploader. Pushes are paced by a byte budget.
type repairer struct {
	st       *blocks.Disk
	node     *bmnet.Node
	replicas int
	rate     int64 // bytes per second pushed at most; 0: no pacing

	mu   sync.Mutex
	last apiv1.RepairInfo
}

func newRepairer(st *blocks.Disk, node *bmnet.Node, replicas int, rate int64) *repairer {
	return &repairer{st: st, node: node, replicas: replicas, rate: rate}
}

// run repairs every interval until ctx ends (interval 0: never).
func (r *repairer) run(ctx context.Context, interval time.Duration) {
	every(ctx, interval, nil, func() {
		info := r.round(ctx)
		r.mu.Lock()
		r.last = info
		r.mu.Unlock()
	})
}

// lastRound is what the last round found.
func (r *repairer) lastRound() apiv1.RepairInfo {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.last
}

// round checks and repairs the network's blocks held here once.
func (r *repairer) round(ctx context.Context) apiv1.RepairInfo {
	info := apiv1.RepairInfo{Started: time.Now().UTC()}
	// Who left? A peer that is gone must not keep this node from seeing
	// that it is now one of the closest.
	r.node.Probe(ctx, 3*time.Second)
	var ours []blocks.ID
	_ = r.st.Enumerate(ctx, func(id blocks.ID, _ blocks.Meta) error {
		if r.node.Responsible(id, r.replicas) {
			ours = append(ours, id)
		}
		return nil
	})
	const batch = 512
	for start := 0; start < len(ours) && ctx.Err() == nil; start += batch {
		ids := ours[start:min(start+batch, len(ours))]
		// This node is one of the R closest: the R-1 others closest to
		// the block should hold it. Asking exactly those, a node that
		// joined near the block gets it, and a holder that left is
		// replaced by the next closest (HandOff pushes in that order).
		counts := r.node.Copies(ctx, ids, r.replicas-1)
		for i, id := range ids {
			info.Checked++
			if counts[i] >= r.replicas-1 {
				continue
			}
			info.Short++
			b, err := blocks.GetBlock(ctx, r.st, id)
			if err != nil {
				continue // corrupt or gone here: the scrub deals with it
			}
			err = r.node.HandOff(ctx, b, r.replicas-1)
			if err == nil || errors.Is(err, bmnet.ErrUnderReplicated) {
				info.Repaired++
				info.BytesPushed += int64(len(b.Data()))
				pace(ctx, r.rate, len(b.Data()))
			}
			if err != nil {
				info.StillShort++
			}
		}
	}
	info.Finished = time.Now().UTC()
	return info
}

// scrub re-reads every local block each interval, paced at rate bytes per
// second (0: no pacing), until ctx ends. A block whose bytes no longer
// match its ID is quarantined and fetched again from a peer, so that the
// node keeps serving what it held. interval 0: never.
func (d *daemonNode) scrub(ctx context.Context, interval time.Duration, rate int64) {
	every(ctx, interval, nil, func() {
		var ids []blocks.ID
		_ = d.st.Enumerate(ctx, func(id blocks.ID, _ blocks.Meta) error {
			ids = append(ids, id)
			return nil
		})
		for _, id := range ids {
			if ctx.Err() != nil {
				return
			}
			b, err := d.st.Get(ctx, id)
			if errors.Is(err, blocks.ErrCorrupt) || errors.Is(err, blocks.ErrTooLarge) {
				d.healCorrupt(ctx, id, err)
				continue
			}
			pace(ctx, rate, len(b))
		}
	})
}

// healCorrupt quarantines a corrupt block and fetches it again.
func (d *daemonNode) healCorrupt(ctx context.Context, id blocks.ID, why error) {
	if err := d.st.Quarantine(ctx, id, why.Error()); err != nil {
		fmt.Fprintf(d.e.stderr, "blockmix: scrub: quarantine %s: %v\n", id, err)
		return
	}
	f := bmnet.NewFetcher(d.node, d.st)
	f.Near = d.replicas
	if _, err := f.Get(ctx, id); err != nil {
		fmt.Fprintf(d.e.stderr, "blockmix: scrub: block %s was corrupt here and is quarantined; no peer gave it back yet: %v\n", id, err)
		return
	}
	d.scrubHealed.Add(1)
	fmt.Fprintf(d.e.stderr, "blockmix: scrub: block %s was corrupt here: quarantined and fetched again from a peer\n", id)
}
