// Package keeper keeps a node's store within its quota: it takes pushes
// from peers within the quota, the share and the fair share, notes which
// blocks are used, and evicts what may go (cached blocks least recently
// used first; the network's blocks only over quota or share, after handing
// them off). Every figure it keeps counts what blocks cost on disk
// (blocks.Cost), not their bytes alone.
package keeper

import (
	"container/heap"
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
	"github.com/blockmix/blockmix/mixer"
	bmnet "github.com/blockmix/blockmix/net"
	"github.com/blockmix/blockmix/webui/apiv1"
)

// Keeper keeps the store within its quota. Blocks fall in three kinds:
// pinned (a file on this node's list uses them: never evicted), the
// network's (a peer pushed them here to be held, blocks.HeldForNetwork, or
// this node is one of the R closest to the block: handed to the next
// closest before they may go) and cached (everything else: evicted least
// recently used first).
type Keeper struct {
	st       *blocks.Disk
	replicas int
	quota    int64        // 0: none
	stored   atomic.Int64 // what the store's blocks cost on disk (blocks.Cost)
	network  atomic.Int64 // of that, the blocks held for the network (pushed here)
	log      *slog.Logger
	m        *metrics.Metrics

	// Share bounds what the blocks pushed here (held for the network)
	// may cost on disk: a node that is not a donor gives others this much
	// (0: nothing). < 0: no bound of its own (a donor: its quota bounds
	// them). Set before the first push.
	Share int64

	// Node is the network the node's blocks are held for; set once the
	// node runs, before the first eviction.
	Node Network

	// The last uses of recent blocks, in two generations: when cur holds
	// usedGeneration blocks it becomes old and a new cur starts, so at
	// most twice that many are remembered (a block not among them counts
	// as not used in this run). Guarded by mu.
	mu      sync.Mutex
	usedCur map[blocks.ID]int64
	usedOld map[blocks.ID]int64

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

	// Fair is the fair-share allowance (0: off): a peer may store here
	// what it holds for this node; beyond that, all peers together draw
	// on one pool of Fair bytes (see ledger.Ledger.Reserve). Ledger keeps
	// the accounts (always, so that peers shows them).
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

// New returns a Keeper of st for a node that wants replicas copies of each
// block (quota 0: none), with no share bound (Share -1). Its counts start
// at zero: Count reads them from the store.
func New(st *blocks.Disk, replicas int, quota int64, log *slog.Logger, m *metrics.Metrics) *Keeper {
	return &Keeper{st: st, replicas: replicas, quota: quota, Share: -1, log: log, m: m, usedCur: map[blocks.ID]int64{}, wake: make(chan struct{}, 1)}
}

// Count sets the keeper's counts to what the store's blocks cost on disk,
// and of that, the blocks held for the network, from the store's counters
// (no walk). The node calls it once at start, before the first push; from
// then on every path that adds or evicts a block counts it.
func (k *Keeper) Count(ctx context.Context) error {
	st, err := k.st.Stats(ctx)
	if err != nil {
		return fmt.Errorf("count the store's blocks: %w", err)
	}
	// Cost is the bytes plus a fixed amount per block.
	per := k.st.Cost(0)
	k.stored.Store(st.Bytes + int64(st.Blocks)*per)
	k.network.Store(st.HeldBytes + int64(st.HeldBlocks)*per)
	return nil
}

// usedGeneration bounds the memory of last uses (see Keeper.usedCur).
var usedGeneration = 16384

// Touch notes a use of id (a read for a peer, a file or a mix).
func (k *Keeper) Touch(id blocks.ID) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if len(k.usedCur) >= usedGeneration {
		k.usedOld, k.usedCur = k.usedCur, make(map[blocks.ID]int64, usedGeneration)
	}
	k.usedCur[id] = time.Now().UnixNano()
}

// lastUse returns when id was last used, or 0 when that is not known.
func (k *Keeper) lastUse(id blocks.ID) int64 {
	k.mu.Lock()
	defer k.mu.Unlock()
	if t, ok := k.usedCur[id]; ok {
		return t
	}
	return k.usedOld[id]
}

// forget drops the last use of id (evicted).
func (k *Keeper) forget(id blocks.ID) {
	k.mu.Lock()
	defer k.mu.Unlock()
	delete(k.usedCur, id)
	delete(k.usedOld, id)
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
func (k *Keeper) reserve(n, limit int64) bool { return reserve(&k.stored, n, limit) }

// reserve adds n to c if c then is at most limit (limit < 0: no limit),
// in one compare-and-swap step, and reports whether it did.
func reserve(c *atomic.Int64, n, limit int64) bool {
	for {
		cur := c.Load()
		if limit >= 0 && cur+n > limit {
			return false
		}
		if c.CompareAndSwap(cur, cur+n) {
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
	tag  uint64
	used int64 // last use in this run, else 0
	seq  uint64
}

// less reports whether a goes before b in eviction order, least recently
// used first: blocks not used in this run by arrival (oldest first), then
// the used ones by their last use.
func less(a, b candidate) bool {
	if (a.used == 0) != (b.used == 0) {
		return a.used == 0
	}
	if a.used != b.used {
		return a.used < b.used
	}
	return a.seq < b.seq
}

// lru sorts candidates least recently used first (see less).
func lru(cs []candidate) {
	sort.Slice(cs, func(i, j int) bool { return less(cs[i], cs[j]) })
}

// evictBatch is how many candidates of a kind one walk of the index keeps:
// the least recently used ones. Eviction's memory is bounded by it, not by
// the store; when a walk's batch does not free enough, the next walk
// takes the next batch.
var evictBatch = 4096

// oldest keeps the n candidates that go first in eviction order (a
// max-heap on less: its top is the one to drop when a better one comes).
type oldest struct {
	n  int
	cs []candidate
}

func (o *oldest) Len() int           { return len(o.cs) }
func (o *oldest) Less(i, j int) bool { return less(o.cs[j], o.cs[i]) }
func (o *oldest) Swap(i, j int)      { o.cs[i], o.cs[j] = o.cs[j], o.cs[i] }
func (o *oldest) Push(x any)         { o.cs = append(o.cs, x.(candidate)) }
func (o *oldest) Pop() any {
	c := o.cs[len(o.cs)-1]
	o.cs = o.cs[:len(o.cs)-1]
	return c
}

// offer keeps c if it is among the n oldest seen so far.
func (o *oldest) offer(c candidate) {
	switch {
	case len(o.cs) < o.n:
		heap.Push(o, c)
	case less(c, o.cs[0]):
		o.cs[0] = c
		heap.Fix(o, 0)
	}
}

// sorted returns the kept candidates, least recently used first.
func (o *oldest) sorted() []candidate {
	lru(o.cs)
	return o.cs
}

// Evict frees at least need bytes (as blocks.Cost counts them; need < 0:
// every cached block): cached blocks first, least recently used first;
// then, when network is true, the network's blocks, each only after it
// was handed to the next closest nodes (one whose hand-off fails stays).
// Pinned blocks are never touched. A pushed block that goes is taken off
// its pusher's account in the ledger. It walks the index in pages and
// keeps at most evictBatch candidates of each kind at a time.
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
	freed := int64(0)
	enough := func() bool { return need >= 0 && freed >= need }
	// drop deletes an evicted block and takes it off every count.
	drop := func(c candidate) error {
		if err := k.st.Delete(ctx, c.id); err != nil {
			return fmt.Errorf("evict: %w", err)
		}
		cost := k.st.Cost(c.size)
		freed += cost
		k.stored.Add(-cost)
		if blocks.HeldForNetwork(c.tag) {
			k.network.Add(-cost)
			if p, ok := blocks.Pusher(c.tag); ok && k.Ledger != nil {
				k.Ledger.Evicted(p, int64(c.size))
			}
		}
		k.forget(c.id)
		info.EvictedBlocks++
		info.EvictedBytes += int64(c.size)
		return nil
	}
	ours := 0
	// Each walk keeps the oldest batch of each kind; it counts the kinds
	// on the first walk only. A walk that evicts nothing ends it, so a
	// network whose hand-offs all fail costs one batch of tries, not one
	// per block.
	tried := map[blocks.ID]bool{} // network blocks whose hand-off failed
	for walk := 0; !enough(); walk++ {
		cached := &oldest{n: evictBatch}
		held := &oldest{n: evictBatch}
		err := blocks.EachPage(ctx, k.st, 1024, func(ids []blocks.ID, metas []blocks.Meta) error {
			for i, id := range ids {
				m := metas[i]
				c := candidate{id: id, size: m.Size, tag: m.Tag, used: k.lastUse(id), seq: m.Seq}
				switch {
				case m.Refs > 0:
					if walk == 0 {
						info.PinnedBlocks++
					}
				case busy[id]:
					if walk == 0 {
						info.UploadBlocks++
					}
				case blocks.HeldForNetwork(m.Tag) || k.Node != nil && k.Node.Responsible(id, k.replicas):
					// A pushed block is the network's even where this node
					// is not among the closest (a placement fallback took it).
					if walk == 0 {
						ours++
					}
					if !tried[id] {
						held.offer(c)
					}
				default:
					cached.offer(c)
				}
			}
			return nil
		})
		if err != nil {
			return info, fmt.Errorf("list blocks: %w", err)
		}
		before := info.EvictedBlocks
		for _, c := range cached.sorted() {
			if enough() {
				break
			}
			if err := drop(c); err != nil {
				return info, err
			}
		}
		if network && k.Node != nil {
			for _, c := range held.sorted() {
				if enough() {
					break
				}
				b, err := blocks.GetBlock(ctx, k.st, c.id)
				if err == nil {
					_, err = k.Node.HandOff(ctx, b, k.replicas)
				}
				if err != nil {
					tried[c.id] = true // not handed off: it stays
					continue
				}
				if err := drop(c); err != nil {
					return info, err
				}
				info.HandedOff++
			}
		}
		// Another walk only if this one freed something: blocks whose
		// hand-off failed are not tried again, and at most a few batches
		// of them are remembered.
		if info.EvictedBlocks == before || len(tried) >= 4*evictBatch || ctx.Err() != nil {
			break
		}
	}
	info.KeptBlocks = ours - info.HandedOff
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

// Sink takes pushed blocks within the quota, the share and the fair share,
// tagged as held for the network by their pusher (blocks.PushTag), and
// counts what they cost; inner makes them durable (its Flush). A push that
// does not fit, or is not of a block class, is refused with a reason the
// pusher shows, and the log says so. A block the store holds already is
// taken without counting it again.
func (k *Keeper) Sink(inner *bmnet.StoreSink) bmnet.Sink { return quotaSink{inner, k} }

type quotaSink struct {
	*bmnet.StoreSink // for Flush
	k                *Keeper
}

func (q quotaSink) Accept(ctx context.Context, peer string, b blocks.Block) error {
	k := q.k
	id, data := b.ID(), b.Data()
	if err := mixer.ValidClass(len(data)); err != nil {
		return q.refuse(ctx, peer, id, "class", &bmnet.Refusal{Code: bmnet.RefuseNotWanted,
			Text: fmt.Sprintf("only blocks of 1 KiB, 16 KiB or 128 KiB are taken: this one has %d bytes", len(data))})
	}
	if have, err := k.st.Has(ctx, id); err == nil && have {
		k.m.PushesAccepted.Inc()
		return nil // held already: nothing new to count
	}
	cost, n := k.st.Cost(len(data)), int64(len(data))
	// Each limit is checked and counted in one step; a later refusal
	// gives back what the earlier steps counted.
	if !k.reserve(cost, k.quotaLimit()) {
		k.wakeEviction()
		return q.refuse(ctx, peer, id, "quota", &bmnet.Refusal{Code: bmnet.RefuseQuota, Text: fmt.Sprintf("quota full: %s of %s used", size.Human(k.stored.Load()), size.Human(k.quota))})
	}
	if !reserve(&k.network, cost, k.Share) {
		k.stored.Add(-cost)
		return q.refuse(ctx, peer, id, "share", &bmnet.Refusal{Code: bmnet.RefuseQuota, Text: fmt.Sprintf("share full: this node is not a donor and keeps at most %s of other nodes' blocks (%s held)",
			size.Human(k.Share), size.Human(k.network.Load()))})
	}
	release := func() {
		k.stored.Add(-cost)
		k.network.Add(-cost)
	}
	if k.Ledger != nil {
		fair := k.Fair
		if fair <= 0 {
			fair = -1 // off: counted, never refused
		}
		if e, ok := k.Ledger.Reserve(peer, n, fair); !ok {
			release()
			return q.refuse(ctx, peer, id, "fair_share", &bmnet.Refusal{Code: bmnet.RefuseNotWanted, Text: fmt.Sprintf("fair share: you stored %s here and hold %s for this node; beyond that, peers share an allowance of %s, which is used up",
				size.Human(e.StoredHere), size.Human(e.HoldsForUs), size.Human(k.Fair))})
		}
		release = func() {
			k.stored.Add(-cost)
			k.network.Add(-cost)
			k.Ledger.Received(peer, -n)
		}
	}
	added, err := k.st.PutNewBlock(ctx, b, blocks.PushTag(peer, bmnet.FreshTag()))
	if err != nil {
		release()
		err = fmt.Errorf("store pushed block: %w", err)
		k.storeFailed(err)
		return q.refuse(ctx, peer, id, "error", err)
	}
	if !added {
		release() // a concurrent push of the same block stored it
	}
	k.storeFailed(nil)
	k.m.PushesAccepted.Inc()
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

// Stored is what the store's blocks cost on disk (blocks.Cost), as
// counted since Count.
func (k *Keeper) Stored() int64 { return k.stored.Load() }

// HeldForNetwork is, of Stored, what the blocks pushed here cost.
func (k *Keeper) HeldForNetwork() int64 { return k.network.Load() }

// Added counts n blocks of bytes bytes in all stored by the node itself
// (a put, a fetch), at what they cost on disk.
func (k *Keeper) Added(n int, bytes int64) { k.stored.Add(bytes + int64(n)*k.st.Cost(0)) }

// Keep says whether a fetched block of size bytes may stay in the store
// while the store's blocks cost less than cache and the quota allows, and
// counts it (at its cost on disk) when it may.
func (k *Keeper) Keep(cache int64, size int) bool {
	limit := cache
	if q := k.quotaLimit(); q >= 0 && q < limit {
		limit = q
	}
	cost := k.st.Cost(size)
	if k.reserve(cost, limit) {
		return true
	}
	if q := k.quotaLimit(); q >= 0 && k.stored.Load()+cost > q {
		k.wakeEviction()
	}
	return false
}

// GC evicts every cached block, and the network's blocks (after handing
// them off) only while the store is over its quota or the blocks pushed
// here are over the share.
func (k *Keeper) GC(ctx context.Context) (apiv1.GCInfo, error) {
	info, err := k.Evict(ctx, -1, false)
	if err != nil {
		return info, err
	}
	var over int64
	if k.quota > 0 {
		over = k.stored.Load() - k.quota
	}
	if k.Share >= 0 {
		over = max(over, k.network.Load()-k.Share)
	}
	if over > 0 {
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
	// HandOff gives b to the next closest nodes that lack it, until
	// replicas of them hold it, and returns how many pushes it made; an
	// error means fewer hold it.
	HandOff(ctx context.Context, b blocks.Block, replicas int) (pushed int, err error)
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
