package main

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/blockmix/blockmix/blocks"
	bmnet "github.com/blockmix/blockmix/net"
	"github.com/blockmix/blockmix/webui/apiv1"
)

// keeper keeps the store within its quota. Blocks fall in three kinds:
// pinned (a file on this node's list uses them: never evicted), the
// network's (this node is one of the R closest to the block: handed to
// the next closest before it may go) and cached (everything else: evicted
// least recently used first).
type keeper struct {
	st       *blocks.Disk
	replicas int
	quota    int64        // 0: none
	stored   atomic.Int64 // bytes in the store, roughly (resynced by each eviction)
	node     *bmnet.Node  // set once the node runs

	mu   sync.Mutex // guards used
	used map[blocks.ID]int64

	evicting sync.Mutex // one eviction at a time
	wake     chan struct{}
	// hold, if set, is called before blocks are deleted and returns the
	// func that ends the hold (the daemon stops puts meanwhile).
	hold func() func()

	// fair is the fair-share allowance (0: off): a peer may store here at
	// most what it holds for this node plus fair. ledger keeps the
	// accounts (always, so that peers shows them).
	fair   int64
	ledger *ledger

	// failed is the last error storing a pushed block, and when ("" and
	// zero once a block was stored again).
	failMu   sync.Mutex
	failed   string
	failedAt time.Time
}

// storeFailed notes (err != nil) or clears (nil) a failure to store.
func (k *keeper) storeFailed(err error) {
	k.failMu.Lock()
	defer k.failMu.Unlock()
	if err == nil {
		k.failed, k.failedAt = "", time.Time{}
		return
	}
	k.failed, k.failedAt = err.Error(), time.Now()
}

// lastFailure returns the standing failure to store, if any.
func (k *keeper) lastFailure() string {
	k.failMu.Lock()
	defer k.failMu.Unlock()
	return k.failed
}

func newKeeper(st *blocks.Disk, replicas int, quota, stored int64) *keeper {
	k := &keeper{st: st, replicas: replicas, quota: quota, used: map[blocks.ID]int64{}, wake: make(chan struct{}, 1)}
	k.stored.Store(stored)
	return k
}

// touch notes a use of id (a read for a peer, a file or a mix).
func (k *keeper) touch(id blocks.ID) {
	k.mu.Lock()
	k.used[id] = time.Now().UnixNano()
	k.mu.Unlock()
}

// fits reports whether n more bytes fit under the quota; when they do not,
// it wakes the background eviction.
func (k *keeper) fits(n int64) bool {
	if k.quota <= 0 || k.stored.Load()+n <= k.quota {
		return true
	}
	select {
	case k.wake <- struct{}{}:
	default:
	}
	return false
}

// run evicts cached blocks in the background whenever the store is near
// its quota, down to 90 % of it, until ctx ends.
func (k *keeper) run(ctx context.Context, interval time.Duration) {
	if k.quota <= 0 {
		return
	}
	every(ctx, interval, k.wake, func() {
		if k.stored.Load() > k.quota*95/100 {
			_, _ = k.evict(ctx, k.stored.Load()-k.quota*90/100, false)
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

// evict frees at least need bytes (need < 0: every cached block): cached
// blocks first, least recently used first; then, when network is true, the
// network's blocks, each only after it was handed to the next closest
// nodes. Pinned blocks are never touched.
func (k *keeper) evict(ctx context.Context, need int64, network bool) (apiv1.GCInfo, error) {
	k.evicting.Lock()
	defer k.evicting.Unlock()
	if k.hold != nil {
		defer k.hold()()
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
		case k.node != nil && k.node.Responsible(id, k.replicas):
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
	enough := func() bool { return need >= 0 && freed >= need }
	for _, c := range cached {
		if enough() {
			break
		}
		if err := k.st.Delete(ctx, c.id); err != nil {
			return info, fmt.Errorf("evict: %w", err)
		}
		freed += int64(c.size)
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
			err = k.node.HandOff(ctx, b, k.replicas)
		}
		if err != nil {
			info.KeptBlocks++ // not handed off: it stays
			continue
		}
		if err := k.st.Delete(ctx, c.id); err != nil {
			return info, fmt.Errorf("evict: %w", err)
		}
		freed += int64(c.size)
		info.HandedOff++
		info.EvictedBlocks++
		info.EvictedBytes += int64(c.size)
	}
	k.stored.Store(total - freed)
	k.mu.Lock()
	for _, c := range cached {
		delete(k.used, c.id)
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
	if need >= 0 && freed < need {
		return info, fmt.Errorf("%w: freed %s of the %s needed; the rest is pinned or held for the network", errOverQuota, human(freed), human(need))
	}
	return info, nil
}

// errOverQuota: the store holds more than its quota and eviction cannot
// free enough.
var errOverQuota = errors.New("over quota")

// quotaSink takes pushed blocks within the quota and counts them; a push
// that does not fit is refused with a reason the pusher shows.
type quotaSink struct {
	*bmnet.StoreSink
	k *keeper
}

func (q quotaSink) Accept(ctx context.Context, peer string, id blocks.ID, data []byte) error {
	if !q.k.fits(int64(len(data))) {
		return &bmnet.Refusal{Code: bmnet.RefuseQuota, Text: fmt.Sprintf("quota full: %s of %s used", human(q.k.stored.Load()), human(q.k.quota))}
	}
	if q.k.fair > 0 && q.k.ledger != nil {
		if e := q.k.ledger.entry(peer); e.StoredHere+int64(len(data)) > e.HoldsForUs+q.k.fair {
			return &bmnet.Refusal{Code: bmnet.RefuseNotWanted, Text: fmt.Sprintf("fair share: you stored %s here and hold %s for this node; the allowance is %s",
				human(e.StoredHere), human(e.HoldsForUs), human(q.k.fair))}
		}
	}
	if err := q.StoreSink.Accept(ctx, peer, id, data); err != nil {
		q.k.storeFailed(err)
		return err
	}
	q.k.storeFailed(nil)
	q.k.stored.Add(int64(len(data)))
	if q.k.ledger != nil {
		q.k.ledger.received(peer, int64(len(data)))
	}
	return nil
}

// touchingStore is the store as peers read it: each block read is noted
// as used.
type touchingStore struct {
	*blocks.Disk
	k *keeper
}

func (t touchingStore) Get(ctx context.Context, id blocks.ID) ([]byte, error) {
	b, err := t.Disk.Get(ctx, id)
	if err == nil {
		t.k.touch(id)
	}
	return b, err
}
