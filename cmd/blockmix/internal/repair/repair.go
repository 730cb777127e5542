// Package repair keeps a node's blocks whole: the repair rounds give each
// block this node holds for the network its copies on the other closest
// nodes, and the scrub re-reads every local block and fetches a corrupt
// one again.
package repair

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"
	"golang.org/x/time/rate"

	"github.com/blockmix/blockmix/blocks"
	"github.com/blockmix/blockmix/cmd/blockmix/internal/metrics"
	"github.com/blockmix/blockmix/cmd/blockmix/internal/sched"
	"github.com/blockmix/blockmix/webui/apiv1"
)

// Repairer keeps the blocks this node holds for the network at their
// copies: every round it asks, for each block it is one of the R closest
// to, whether the other closest nodes still have it, and pushes it to the
// next closest that lack it. It needs nobody but the nodes near the block:
// never the uploader. Pushes are paced by a byte budget: each push, not
// each hand-off (one hand-off may push to R−1 nodes).
type Repairer struct {
	st       blocks.Resumable
	get      blocks.Getter
	node     Network
	replicas int
	limit    *rate.Limiter // bytes pushed per second; nil: no pacing
	log      *slog.Logger
	m        *metrics.Metrics

	mu   sync.Mutex
	last apiv1.RepairInfo
}

// Network is what repair needs of the node's network.
type Network interface {
	// Probe checks the peers that are not connected, so that the ones
	// gone stop counting as holders.
	Probe(ctx context.Context, timeout time.Duration)
	// Responsible reports whether this node is one of the replicas
	// closest to id.
	Responsible(id blocks.ID, replicas int) bool
	// Alone reports whether the node knows no other node that could take
	// a block.
	Alone() bool
	// Copies counts, for each ID, how many of the k other nodes closest
	// to it hold it.
	Copies(ctx context.Context, ids []blocks.ID, k int) []int
	// HandOff gives b to the next closest nodes that lack it, until
	// replicas of them hold it, and returns how many pushes it made.
	HandOff(ctx context.Context, b blocks.Block, replicas int) (pushed int, err error)
}

// NewRepairer returns a Repairer of the blocks in st (read through get)
// for a node that wants replicas copies, pushing at most bytesPerSec bytes
// per second (0: unpaced).
func NewRepairer(st blocks.Resumable, get blocks.Getter, node Network, replicas int, bytesPerSec int64, log *slog.Logger, m *metrics.Metrics) *Repairer {
	r := &Repairer{st: st, get: get, node: node, replicas: replicas, log: log, m: m}
	if bytesPerSec > 0 {
		// A token bucket of at most one second's bytes and one large
		// block: a round starts without a burst much above the rate.
		r.limit = rate.NewLimiter(rate.Limit(bytesPerSec), int(min(bytesPerSec, maxBurst)))
	}
	return r
}

// maxBurst bounds the limiter's bucket: one 128 KiB block.
const maxBurst = 128 << 10

// pace waits until n more bytes may be pushed, or ctx ends.
func (r *Repairer) pace(ctx context.Context, n int) {
	if r.limit == nil {
		return
	}
	for n > 0 && ctx.Err() == nil {
		k := min(n, r.limit.Burst())
		if r.limit.WaitN(ctx, k) != nil {
			return
		}
		n -= k
	}
}

// Run repairs every interval until ctx ends (interval 0: never). Each
// round is one line in the log.
func (r *Repairer) Run(ctx context.Context, interval time.Duration) {
	sched.Every(ctx, interval, nil, func() {
		info := r.Round(ctx)
		if ctx.Err() != nil {
			return // cut short by the node's end: not a round to report
		}
		r.mu.Lock()
		r.last = info
		r.mu.Unlock()
		r.m.RepairRounds.Inc()
		r.m.RepairShort.Set(float64(info.Short))
		r.m.RepairPushed.Add(float64(info.Repaired))
		level := slog.LevelInfo
		if info.StillShort > 0 {
			level = slog.LevelWarn
		}
		r.log.Log(ctx, level, "repair round", slog.Int("checked", info.Checked), slog.Int("short", info.Short),
			slog.Int("pushed", info.Repaired), slog.Int("still_short", info.StillShort), slog.Int64("bytes", info.BytesPushed),
			slog.Duration("took", info.Finished.Sub(info.Started).Round(time.Millisecond)))
	})
}

// LastRound is what the last round found.
func (r *Repairer) LastRound() apiv1.RepairInfo {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.last
}

// pageSize is how many blocks a round reads from the index at a time.
const pageSize = 512

// handOffs is how many hand-offs of a round run at once (so at most that
// many blocks are in memory): each mostly waits on round trips to peers,
// so after a node is lost a few at once shorten the round, most of all
// on a busy machine where each round trip waits for a core.
const handOffs = 4

// Round checks and repairs the network's blocks held here once: the rest
// of the pass the last round left unfinished, or a whole pass.
func (r *Repairer) Round(ctx context.Context) apiv1.RepairInfo {
	info := apiv1.RepairInfo{Started: time.Now().UTC()}
	// Who left? A peer that is gone must not keep this node from seeing
	// that it is now one of the closest.
	r.node.Probe(ctx, 3*time.Second)
	// The round walks the index a page at a time and resumes where the
	// last one stopped (a restart, say): memory is one page, not the store.
	_, err := blocks.Walk(ctx, r.st, "repair", pageSize, func(page []blocks.ID, _ []blocks.Meta) error {
		if r.node.Alone() {
			// The node is the only one it knows: every block is short
			// and none can be handed off. A node cut off from the
			// network (its router down, say) counts them without
			// reading each one in vain.
			info.Checked += len(page)
			info.Short += len(page)
			info.StillShort += len(page)
			return ctx.Err()
		}
		var ids []blocks.ID
		for _, id := range page {
			if r.node.Responsible(id, r.replicas) {
				ids = append(ids, id)
			}
		}
		if len(ids) == 0 {
			return nil
		}
		// This node is one of the R closest: the R-1 others closest to
		// the block should hold it. Asking exactly those, a node that
		// joined near the block gets it, and a holder that left is
		// replaced by the next closest (HandOff pushes in that order).
		counts := r.node.Copies(ctx, ids, r.replicas-1)
		var mu sync.Mutex // info, while the hand-offs run
		var g errgroup.Group
		g.SetLimit(handOffs)
		for i, id := range ids {
			info.Checked++
			if counts[i] >= r.replicas-1 {
				continue
			}
			info.Short++
			g.Go(func() error {
				b, err := blocks.GetBlock(ctx, r.get, id)
				if err != nil {
					return nil // corrupt or gone here: the scrub deals with it
				}
				pushed, err := r.node.HandOff(ctx, b, r.replicas-1)
				mu.Lock()
				if pushed > 0 {
					// Counted and paced by what was pushed: a hand-off
					// that found the copies in place pushed nothing.
					info.Repaired++
					info.BytesPushed += int64(pushed * len(b.Data()))
				}
				if err != nil {
					info.StillShort++
				}
				mu.Unlock()
				r.pace(ctx, pushed*len(b.Data()))
				return nil
			})
		}
		_ = g.Wait() // (the hand-offs return no error: each is counted)
		return ctx.Err()
	})
	if err != nil && ctx.Err() == nil {
		r.log.Error("repair round: cannot read the store", slog.Any("err", err))
	}
	info.Finished = time.Now().UTC()
	return info
}

// Scrubber re-reads every local block, paced; a block whose bytes no
// longer match its ID is quarantined and fetched again from a peer, so
// that the node keeps serving what it held.
type Scrubber struct {
	st     Scrubbed
	refill func(ctx context.Context, id blocks.ID) error
	rate   int64
	log    *slog.Logger
	m      *metrics.Metrics
	healed atomic.Int64
	// pending are quarantined blocks no peer gave back yet, oldest first
	// (at most maxPending): each round asks for them again. Only Round
	// uses it, and rounds run one at a time.
	pending []blocks.ID
}

// maxPending bounds the quarantined blocks the scrub keeps asking for; past
// it the oldest is given up (repair rounds of the nodes that hold a copy
// still push it back when this node is one of the closest).
const maxPending = 256

// Scrubbed is the store as the scrub needs it.
type Scrubbed interface {
	blocks.Getter
	blocks.Resumable
	Quarantine(ctx context.Context, id blocks.ID, why string) error
}

// NewScrubber returns a Scrubber of st that reads at most rate bytes per
// second (0: unpaced) and gets a corrupt block back with refill.
func NewScrubber(st Scrubbed, refill func(ctx context.Context, id blocks.ID) error, rate int64, log *slog.Logger, m *metrics.Metrics) *Scrubber {
	return &Scrubber{st: st, refill: refill, rate: rate, log: log, m: m}
}

// Healed counts the corrupt blocks fetched again since the start.
func (s *Scrubber) Healed() int64 { return s.healed.Load() }

// Run scrubs every interval until ctx ends (interval 0: never).
func (s *Scrubber) Run(ctx context.Context, interval time.Duration) {
	sched.Every(ctx, interval, nil, func() { s.Round(ctx) })
}

// Round re-reads every block once (the rest of the pass the last round
// left unfinished, or a whole pass), a page of the index at a time.
func (s *Scrubber) Round(ctx context.Context) {
	start := time.Now()
	s.retry(ctx)
	checked, corrupt := 0, 0
	from, err := blocks.Walk(ctx, s.st, "scrub", pageSize, func(ids []blocks.ID, _ []blocks.Meta) error {
		for _, id := range ids {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			b, err := blocks.GetVerified(ctx, s.st, id)
			checked++
			if errors.Is(err, blocks.ErrCorrupt) || errors.Is(err, blocks.ErrTooLarge) {
				corrupt++
				s.heal(ctx, id, err)
				continue
			}
			sched.Pace(ctx, s.rate, len(b))
		}
		return nil
	})
	if err != nil {
		if ctx.Err() == nil {
			s.log.Error("scrub: cannot read the store", slog.Any("err", err))
		}
		return
	}
	s.log.Info("scrub round", slog.Int("checked", checked), slog.Int("corrupt", corrupt),
		slog.Float64("resumed_at", blocks.Fraction(from)), slog.Duration("took", time.Since(start).Round(time.Millisecond)))
}

// heal quarantines a corrupt block and fetches it again.
func (s *Scrubber) heal(ctx context.Context, id blocks.ID, why error) {
	s.m.ScrubCorrupt.Inc()
	if err := s.st.Quarantine(ctx, id, why.Error()); err != nil {
		s.log.Error("scrub: cannot quarantine a corrupt block", slog.String("block", id.String()), slog.Any("err", err))
		return
	}
	if err := s.refill(ctx, id); err != nil {
		s.log.Warn("scrub: a corrupt block is quarantined; no peer gave it back yet", slog.String("block", id.String()), slog.Any("err", err))
		if len(s.pending) == maxPending {
			s.log.Warn("scrub: too many quarantined blocks to keep asking for; giving up the oldest", slog.String("block", s.pending[0].String()))
			s.pending = s.pending[1:]
		}
		s.pending = append(s.pending, id)
		return
	}
	s.fetched(id)
}

// fetched counts a corrupt block fetched again.
func (s *Scrubber) fetched(id blocks.ID) {
	s.healed.Add(1)
	s.m.ScrubHealed.Inc()
	s.log.Info("scrub: a corrupt block was quarantined and fetched again from a peer", slog.String("block", id.String()))
}

// retryPerRound bounds the pending blocks one round asks for again: a
// block no peer holds costs a fetch's timeout each time, and must not
// hold up the round's scrub.
const retryPerRound = 16

// retry asks again for the oldest quarantined blocks no peer gave back
// before (a fetch that timed out on a busy network, say), at most
// retryPerRound of them; those still missing go to the back of pending.
func (s *Scrubber) retry(ctx context.Context) {
	n := min(len(s.pending), retryPerRound)
	tried := slices.Clone(s.pending[:n])
	s.pending = append(s.pending[:0], s.pending[n:]...)
	for _, id := range tried {
		if ctx.Err() != nil || s.refill(ctx, id) != nil {
			s.pending = append(s.pending, id)
			continue
		}
		s.fetched(id)
	}
}
