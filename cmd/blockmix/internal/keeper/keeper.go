// Package keeper keeps a node's store within its quota: it takes pushes
// from peers within the quota and the fair share, notes which blocks are
// used, and evicts what may go (cached blocks least recently used first;
// the network's blocks only over quota, after handing them off).
package keeper

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/blockmix/blockmix/blocks"
	"github.com/blockmix/blockmix/cmd/blockmix/internal/ledger"
	"github.com/blockmix/blockmix/cmd/blockmix/internal/metrics"
	"github.com/blockmix/blockmix/cmd/blockmix/internal/sched"
	"github.com/blockmix/blockmix/cmd/blockmix/internal/size"
	bmnet "github.com/blockmix/blockmix/net"
	"github.com/blockmix/blockmix/webui/apiv1"
)

// Keeper keeps the store within its quota. Blocks fall in three kinds:
// pinned (a file on this node's list uses them: never evicted), the
// network's (this node is one of the R closest to the block: handed to
// the next closest before it may go) and cached (everything else: evicted
// least recently used first).
type Keeper struct {
	st       *blocks.Disk
	replicas int
	quota    int64        // 0: none
	stored   atomic.Int64 // bytes in the store, roughly (resynced by each eviction)
	log      *slog.Logger
	m        *metrics.Metrics

	// Node is the network the node's blocks are held for; set once the
	// node runs, before the first eviction.
	Node Network

	mu   sync.Mutex // guards used
	used map[blocks.ID]int64

	evicting sync.Mutex // one eviction at a time
	refusals limiter
	served   atomic.Int64 // blocks read for peers
	wake     chan struct{}
	// Hold, if set, is called before blocks are deleted and returns the
	// func that ends the hold (the node stops puts meanwhile).
	Hold func() func()
	// Busy, if set, is called during the hold and returns the blocks that
	// stay although no file references them (the running puts').
	Busy func() map[blocks.ID]bool

	// Fair is the fair-share allowance (0: off): a peer may store here at
	// most what it holds for this node plus Fair. Ledger keeps the
	// accounts (always, so that peers shows them).
	Fair   int64
	Ledger *ledger.Ledger

	// failed is the last error storing a pushed block, and when ("" and
	// zero once a block was stored again).
	failMu   sync.Mutex
	failed   string
	failedAt time.Time
}

// storeFailed notes (err != nil) or clears (nil) a failure to store; the
// log says when one starts and when it ends.
func (k *Keeper) storeFailed(err error) {
	k.failMu.Lock()
	defer k.failMu.Unlock()
	if err == nil {
		if k.failed != "" {
			k.log.Info("blocks can be stored again", slog.Duration("after", time.Since(k.failedAt)))
		}
		k.failed, k.failedAt = "", time.Time{}
		return
	}
	if k.failed == "" {
		k.log.Error("cannot store blocks: the disk that holds the repo may be full, read-only or gone", slog.Any("err", err))
	}
	k.failed, k.failedAt = err.Error(), time.Now()
}

// LastFailure returns the standing failure to store, if any.
func (k *Keeper) LastFailure() string {
	k.failMu.Lock()
	defer k.failMu.Unlock()
	return k.failed
}

// New returns a Keeper of st, which holds stored bytes now, for a node
// that wants replicas copies of each block (quota 0: none).
func New(st *blocks.Disk, replicas int, quota, stored int64, log *slog.Logger, m *metrics.Metrics) *Keeper {
	k := &Keeper{st: st, replicas: replicas, quota: quota, log: log, m: m, used: map[blocks.ID]int64{}, wake: make(chan struct{}, 1)}
	k.stored.Store(stored)
	return k
}

// Touch notes a use of id (a read for a peer, a file or a mix).
func (k *Keeper) Touch(id blocks.ID) {
	k.mu.Lock()
	k.used[id] = time.Now().UnixNano()
	k.mu.Unlock()
}

// wakeEviction wakes the background eviction (the store is near its
// quota).
func (k *Keeper) wakeEviction() {
	select {
	case k.wake <- struct{}{}:
	default:
	}
}

// reserve counts n bytes as stored if the store then holds at most limit
// (limit < 0: no limit), in one step: blocks stored at the same time
// cannot pass the limit together. It reports whether it did.
func (k *Keeper) reserve(n, limit int64) bool {
	for {
		cur := k.stored.Load()
		if limit >= 0 && cur+n > limit {
			return false
		}
		if k.stored.CompareAndSwap(cur, cur+n) {
			return true
		}
	}
}

// quotaLimit is the quota as a reserve limit.
func (k *Keeper) quotaLimit() int64 {
	if k.quota <= 0 {
		return -1
	}
	return k.quota
}

// Run evicts cached blocks in the background whenever the store is near
// its quota, down to 90 % of it, until ctx ends.
func (k *Keeper) Run(ctx context.Context, interval time.Duration) {
	if k.quota <= 0 {
		return
	}
	sched.Every(ctx, interval, k.wake, func() {
		if k.stored.Load() > k.quota*95/100 {
			_, _ = k.Evict(ctx, k.stored.Load()-k.quota*90/100, false)
		}
	})
}

// candidate is a block that may be evicted.
type candidate struct {
	id   blocks.ID
	size int
	used int64 // last use in this run, else 0
	seq  uint64
}

// lru sorts candidates least recently used first: blocks not used in this
// run by arrival (oldest first), then the used ones by their last use.
func lru(cs []candidate) {
	sort.Slice(cs, func(i, j int) bool {
		a, b := cs[i], cs[j]
		if (a.used == 0) != (b.used == 0) {
			return a.used == 0
		}
		if a.used != b.used {
			return a.used < b.used
		}
		return a.seq < b.seq
	})
}

// Evict frees at least need bytes (need < 0: every cached block): cached
// blocks first, least recently used first; then, when network is true, the
// network's blocks, each only after it was handed to the next closest
// nodes. Pinned blocks are never touched.
func (k *Keeper) Evict(ctx context.Context, need int64, network bool) (apiv1.GCInfo, error) {
	k.evicting.Lock()
	defer k.evicting.Unlock()
	if k.Hold != nil {
		defer k.Hold()()
	}
	var busy map[blocks.ID]bool
	if k.Busy != nil {
		busy = k.Busy()
	}
	var info apiv1.GCInfo
	var cached, ours []candidate
	k.mu.Lock()
	used := make(map[blocks.ID]int64, len(k.used))
	for id, t := range k.used {
		used[id] = t
	}
	k.mu.Unlock()
	var total int64
	err := k.st.Enumerate(ctx, func(id blocks.ID, m blocks.Meta) error {
		total += int64(m.Size)
		c := candidate{id: id, size: m.Size, used: used[id], seq: m.Seq}
		switch {
		case m.Refs > 0:
			info.PinnedBlocks++
		case busy[id]:
			info.UploadBlocks++
		case k.Node != nil && k.Node.Responsible(id, k.replicas):
			ours = append(ours, c)
		default:
			cached = append(cached, c)
		}
		return nil
	})
	if err != nil {
		return info, fmt.Errorf("list blocks: %w", err)
	}
	lru(cached)
	lru(ours)
	freed := int64(0)
	var gone []blocks.ID // evicted: their last use is forgotten
	enough := func() bool { return need >= 0 && freed >= need }
	for _, c := range cached {
		if enough() {
			break
		}
		if err := k.st.Delete(ctx, c.id); err != nil {
			return info, fmt.Errorf("evict: %w", err)
		}
		freed += int64(c.size)
		gone = append(gone, c.id)
		info.EvictedBlocks++
		info.EvictedBytes += int64(c.size)
	}
	for _, c := range ours {
		if !network || enough() {
			info.KeptBlocks++
			continue
		}
		b, err := blocks.GetBlock(ctx, k.st, c.id)
		if err == nil {
			err = k.Node.HandOff(ctx, b, k.replicas)
		}
		if err != nil {
			info.KeptBlocks++ // not handed off: it stays
			continue
		}
		if err := k.st.Delete(ctx, c.id); err != nil {
			return info, fmt.Errorf("evict: %w", err)
		}
		freed += int64(c.size)
		gone = append(gone, c.id)
		info.HandedOff++
		info.EvictedBlocks++
		info.EvictedBytes += int64(c.size)
	}
	k.stored.Store(total - freed)
	k.mu.Lock()
	for _, id := range gone {
		delete(k.used, id)
	}
	k.mu.Unlock()
	if err := k.st.Sync(); err != nil {
		return info, fmt.Errorf("sync store: %w", err)
	}
	if info.EvictedBlocks > 0 {
		// Evicted bytes are dead in their segments until compacted.
		cs, err := k.st.Compact(ctx, 0.5)
		if err != nil {
			return info, fmt.Errorf("reclaim space: %w", err)
		}
		info.ReclaimedBytes = cs.Freed
	}
	k.m.Evicted.Add(float64(info.EvictedBlocks))
	k.m.HandedOff.Add(float64(info.HandedOff))
	if info.EvictedBlocks > 0 {
		k.log.Info("evicted", slog.Int("blocks", info.EvictedBlocks), slog.Int64("bytes", info.EvictedBytes),
			slog.Int("handed_off", info.HandedOff), slog.Int64("reclaimed", info.ReclaimedBytes),
			slog.Int("kept_for_network", info.KeptBlocks), slog.Int("pinned", info.PinnedBlocks))
	}
	if need >= 0 && freed < need {
		err := fmt.Errorf("%w: freed %s of the %s needed; the rest is pinned or held for the network", ErrOverQuota, size.Human(freed), size.Human(need))
		k.log.Warn("over quota", slog.Any("err", err))
		return info, err
	}
	return info, nil
}

// ErrOverQuota: the store holds more than its quota and eviction cannot
// free enough.
var ErrOverQuota = errors.New("over quota")

// Sink takes pushed blocks into inner within the quota and the fair share
// and counts them; a push that does not fit is refused with a reason the
// pusher shows, and the log says so.
func (k *Keeper) Sink(inner *bmnet.StoreSink) bmnet.Sink { return quotaSink{inner, k} }

type quotaSink struct {
	*bmnet.StoreSink
	k *Keeper
}

func (q quotaSink) Accept(ctx context.Context, peer string, id blocks.ID, data []byte) error {
	n := int64(len(data))
	if !q.k.reserve(n, q.k.quotaLimit()) {
		q.k.wakeEviction()
		return q.refuse(ctx, peer, id, "quota", &bmnet.Refusal{Code: bmnet.RefuseQuota, Text: fmt.Sprintf("quota full: %s of %s used", size.Human(q.k.stored.Load()), size.Human(q.k.quota))})
	}
	if q.k.Fair > 0 && q.k.Ledger != nil {
		if e := q.k.Ledger.Entry(peer); e.StoredHere+int64(len(data)) > e.HoldsForUs+q.k.Fair {
			q.k.stored.Add(-n)
			return q.refuse(ctx, peer, id, "fair_share", &bmnet.Refusal{Code: bmnet.RefuseNotWanted, Text: fmt.Sprintf("fair share: you stored %s here and hold %s for this node; the allowance is %s",
				size.Human(e.StoredHere), size.Human(e.HoldsForUs), size.Human(q.k.Fair))})
		}
	}
	if err := q.StoreSink.Accept(ctx, peer, id, data); err != nil {
		q.k.stored.Add(-n)
		q.k.storeFailed(err)
		return q.refuse(ctx, peer, id, "error", err)
	}
	q.k.storeFailed(nil)
	q.k.m.PushesAccepted.Inc()
	if q.k.Ledger != nil {
		q.k.Ledger.Received(peer, int64(len(data)))
	}
	return nil
}

// refuse counts and logs a refused push and returns err. After the first
// refusal of a reason within a minute the rest are logged at debug level:
// a peer pushing into a full store does not flood the log.
func (q quotaSink) refuse(ctx context.Context, peer string, id blocks.ID, reason string, err error) error {
	q.k.m.PushesRefused.WithLabelValues(reason).Inc()
	level := slog.LevelWarn
	if !q.k.refusals.first(reason) {
		level = slog.LevelDebug
	}
	q.k.log.Log(ctx, level, "push refused", slog.String("reason", reason), slog.String("peer", peer),
		slog.String("block", id.String()), slog.Any("err", err))
	return err
}

// Store returns the store as peers read it: each block read is noted as
// used.
func (k *Keeper) Store() blocks.Getter { return touchingStore{k.st, k} }

type touchingStore struct {
	*blocks.Disk
	k *Keeper
}

func (t touchingStore) Get(ctx context.Context, id blocks.ID) ([]byte, error) {
	b, err := t.Disk.Get(ctx, id)
	if err == nil {
		t.k.Touch(id)
		t.k.served.Add(1)
	}
	return b, err
}

// Quota is the store's quota in bytes (0: none).
func (k *Keeper) Quota() int64 { return k.quota }

// Stored is the block bytes in the store, roughly.
func (k *Keeper) Stored() int64 { return k.stored.Load() }

// Added counts n bytes stored by the node itself (a put, a fetch).
func (k *Keeper) Added(n int64) { k.stored.Add(n) }

// Keep says whether a fetched block of size bytes may stay in the store
// while it holds less than cache bytes and the quota allows, and counts it
// when it may.
func (k *Keeper) Keep(cache int64, size int) bool {
	limit := cache
	if q := k.quotaLimit(); q >= 0 && q < limit {
		limit = q
	}
	if k.reserve(int64(size), limit) {
		return true
	}
	if q := k.quotaLimit(); q >= 0 && k.stored.Load()+int64(size) > q {
		k.wakeEviction()
	}
	return false
}

// GC evicts every cached block, and the network's blocks (after handing
// them off) only while the store is over its quota.
func (k *Keeper) GC(ctx context.Context) (apiv1.GCInfo, error) {
	info, err := k.Evict(ctx, -1, false)
	if err != nil {
		return info, err
	}
	if over := k.stored.Load() - k.quota; k.quota > 0 && over > 0 {
		more, err := k.Evict(ctx, over, true)
		info.EvictedBlocks += more.EvictedBlocks
		info.EvictedBytes += more.EvictedBytes
		info.HandedOff, info.KeptBlocks = more.HandedOff, more.KeptBlocks
		if err != nil {
			return info, err
		}
	}
	return info, nil
}

// Network is what the Keeper needs of the node's network.
type Network interface {
	// Responsible reports whether this node is one of the replicas
	// closest to id.
	Responsible(id blocks.ID, replicas int) bool
	// HandOff gives b to the next closest nodes that lack it.
	HandOff(ctx context.Context, b blocks.Block, replicas int) error
}

// limiter tells the first event of a kind within a minute from the rest.
type limiter struct {
	mu   sync.Mutex
	last map[string]time.Time
}

func (l *limiter) first(kind string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := time.Now()
	if t, ok := l.last[kind]; ok && now.Sub(t) < time.Minute {
		return false
	}
	if l.last == nil {
		l.last = map[string]time.Time{}
	}
	l.last[kind] = now
	return true
}

// Served counts the blocks read for peers since the start.
func (k *Keeper) Served() int64 { return k.served.Load() }
