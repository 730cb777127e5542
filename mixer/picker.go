package mixer

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"sync"

	"github.com/blockmix/blockmix/blocks"
)

// The randomizer policy. For each tuple of t blocks the mixer picks t−1
// randomizers of the same class:
//
//   - slot A takes the oldest block that serves fewer than two files (the
//     "under-shared" queue: last file's new blocks, mostly), so that every
//     block comes to serve a second file: reuse;
//   - the other slots take one of the most-shared blocks (the "popular" set),
//     which anyone who fetched an earlier file already holds: cheap downloads.
//
// A choice is allowed only if the XOR of the chosen tags is non-zero and new
// (see the package comment). When a few tries find no allowed choice, one
// fresh random block is made and joins the popular set; that happens mostly
// in an empty store, about √(2n) times for n blocks. The set keeps its
// newest popularMax: every non-A slot draws from it, so it must fit the
// mixer's randomizer cache with room to spare, or its blocks come back from
// disk (a 4 GiB put grew it to about 290 blocks, 36 MiB).
const (
	popularK   = 32      // size of the popular set per class, as loaded
	popularMax = 48      // and at most, with the fresh blocks that joined it
	allK       = 1 << 16 // candidates kept for random fallback per class
	underPeek  = 4       // under-shared candidates tried in slot A
	// under-shared candidates read from the store at a time: a pool's
	// first page is small (a small put needs a few; each costs an index
	// read), and each next one twice as big, up to underPage.
	underFirstPage = 32
	underPage      = 1024
	// this session's new blocks held in an under-shared queue at most; the
	// rest are read back from the store's queue (blocks.Candidates) as it
	// runs low, once their file is recorded: a put's memory stays flat
	// in the file's size.
	sessionQueued = 2 * underPage
	maxTries      = 96 // tries before a fresh block is made
	tagBytes      = 8
	seedBytes     = 16
	freshLimit    = 1 << 20 // sanity bound on fresh blocks per pick loop
)

type cand struct {
	id   blocks.ID
	tag  uint64
	refs int
	seq  uint64
}

// pool is the picker's view of one block class.
type pool struct {
	class int
	// under is the under-shared queue, oldest first: pages of the store's
	// (blocks.Candidates.UnderShared, up to Seq after; drained when the
	// store has no more), then this session's new blocks. Entries before
	// head, and served ones, are used up.
	under   []cand
	head    int
	queued  map[blocks.ID]bool // the IDs in under
	after   uint64
	page    int // the size of the next page read
	drained bool
	popular []cand
	all     []cand // fresh blocks, and for the uniform policy every block
}

// picker chooses randomizers. It is used by one goroutine at a time (the
// mixer's feeding loop) and is deterministic for a given random source and
// store content.
type picker struct {
	st     Store
	rnd    io.Reader
	rng    *rand.Rand
	pools  map[int]*pool
	served map[blocks.ID]bool // used as a randomizer in this session
	// uniform picks every randomizer uniformly from the store, as OFF
	// did; only for comparisons.
	uniform bool
	tags    map[uint64]bool // tags made in this Mix call (see begin), not yet seen stored
	// pruneAt is the size of tags at which remember drops the tags the
	// store holds by now.
	pruneAt int

	unstored []freshBlock // fresh blocks made since the last takeUnstored
	pending  *pendingSet  // fresh blocks not stored yet, for the workers

	freshBlocks int   // fresh random blocks made
	freshBytes  int64 // their bytes
}

type freshBlock struct {
	blk blocks.Block
	tag uint64
}

// takeUnstored returns the fresh blocks made since the last call.
func (p *picker) takeUnstored() []freshBlock {
	f := p.unstored
	p.unstored = nil
	return f
}

// pendingSet holds fresh blocks between their making and their storing.
// Safe for concurrent use.
type pendingSet struct {
	mu sync.Mutex
	m  map[blocks.ID][]byte
}

func (ps *pendingSet) add(b blocks.Block) {
	ps.mu.Lock()
	ps.m[b.ID()] = b.Data()
	ps.mu.Unlock()
}

func (ps *pendingSet) get(id blocks.ID) ([]byte, bool) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	b, ok := ps.m[id]
	return b, ok
}

func (ps *pendingSet) remove(id blocks.ID) {
	ps.mu.Lock()
	delete(ps.m, id)
	ps.mu.Unlock()
}

func newPicker(st Store, rnd io.Reader) (*picker, error) {
	var seed [seedBytes]byte
	if _, err := io.ReadFull(rnd, seed[:]); err != nil {
		return nil, fmt.Errorf("read random seed: %w", err)
	}
	return &picker{
		st:      st,
		rnd:     rnd,
		rng:     rand.New(rand.NewPCG(binary.LittleEndian.Uint64(seed[:8]), binary.LittleEndian.Uint64(seed[8:]))),
		pools:   map[int]*pool{},
		served:  map[blocks.ID]bool{},
		tags:    map[uint64]bool{},
		pending: &pendingSet{m: map[blocks.ID][]byte{}},
	}, nil
}

// begin starts a Mix call: the tags of earlier calls are in the store by
// now (their blocks are stored, their tags indexed), so the session's own
// memory of them goes, and so do the used-up head of each under-shared
// queue and the served marks of blocks no longer queued. The picker's
// memory stays bounded by its queues: about one page of the store's and
// the blocks of the last puts not yet reused.
func (p *picker) begin() {
	clear(p.tags)
	p.pruneAt = 0
	for _, pl := range p.pools {
		for _, c := range pl.under[:pl.head] {
			delete(pl.queued, c.id)
		}
		pl.under = slices.Delete(pl.under, 0, pl.head)
		pl.head = 0
	}
	// served matters only for blocks still queued (underAt skips them).
	for id := range p.served {
		if !p.queuedAnywhere(id) {
			delete(p.served, id)
		}
	}
}

// queuedAnywhere reports whether id is in an under-shared queue.
func (p *picker) queuedAnywhere(id blocks.ID) bool {
	for _, pl := range p.pools {
		if pl.queued[id] {
			return true
		}
	}
	return false
}

// pool returns the pool of class, loaded from the store the first time:
// the first page of the under-shared queue and the popular set, read from
// the store's candidate lists (blocks.Candidates) without a walk of the
// whole store.
func (p *picker) pool(ctx context.Context, class int) (*pool, error) {
	if pl := p.pools[class]; pl != nil {
		return pl, nil
	}
	if p.uniform {
		if err := p.loadAll(ctx); err != nil {
			return nil, err
		}
		return p.pools[class], nil
	}
	pl := &pool{class: class, queued: map[blocks.ID]bool{}}
	if err := p.st.Shared(ctx, class, func(id blocks.ID, m blocks.Meta) bool {
		pl.popular = append(pl.popular, cand{id: id, tag: m.Tag, refs: m.Refs, seq: m.Seq})
		return len(pl.popular) < popularK
	}); err != nil {
		return nil, fmt.Errorf("load randomizer candidates: %w", err)
	}
	if err := p.refill(ctx, pl); err != nil {
		return nil, err
	}
	// Too few shared blocks: the oldest of the others fill the set, as
	// the most shared of what there is.
	for _, c := range pl.under {
		if len(pl.popular) >= popularK {
			break
		}
		pl.popular = append(pl.popular, c)
	}
	p.pools[class] = pl
	return pl, nil
}

// refill adds the next page of the under-shared queue from the store, in
// arrival order, skipping blocks it already holds (this session's own,
// which added queued).
func (p *picker) refill(ctx context.Context, pl *pool) error {
	if pl.drained {
		return nil
	}
	page := max(pl.page, underFirstPage)
	n := 0
	err := p.st.UnderShared(ctx, pl.class, pl.after, func(id blocks.ID, m blocks.Meta) bool {
		pl.after = m.Seq
		n++
		if !pl.queued[id] && m.Tag&blocks.ForeignTag == 0 {
			pl.queued[id] = true
			pl.under = append(pl.under, cand{id: id, tag: m.Tag, refs: m.Refs, seq: m.Seq})
		}
		return n < page
	})
	if err != nil {
		return fmt.Errorf("load randomizer candidates: %w", err)
	}
	pl.drained = n < page
	pl.page = min(2*page, underPage)
	return nil
}

// loadAll reads every class's candidates with one walk of the store, for
// the uniform policy (a comparison, not a request path).
func (p *picker) loadAll(ctx context.Context) error {
	for _, c := range Classes {
		p.pools[c] = &pool{class: c, queued: map[blocks.ID]bool{}, drained: true}
	}
	err := p.st.Enumerate(ctx, func(id blocks.ID, m blocks.Meta) error {
		pl, ok := p.pools[m.Size]
		if !ok || m.Tag&blocks.ForeignTag != 0 {
			return nil
		}
		if len(pl.all) < allK {
			pl.all = append(pl.all, cand{id: id, tag: m.Tag, refs: m.Refs, seq: m.Seq})
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("load randomizer candidates: %w", err)
	}
	return nil
}

// tagFree reports whether a new block may carry tag.
func (p *picker) tagFree(ctx context.Context, tag uint64) (bool, error) {
	if tag == 0 || p.tags[tag] {
		return false, nil
	}
	held, err := p.st.HasTag(ctx, tag)
	if err != nil {
		return false, fmt.Errorf("look up tag: %w", err)
	}
	return !held, nil
}

// underAt returns the k-th unserved under-shared candidate. The served
// entries it passes leave the queue's live part at once (see dropServed):
// a head candidate that no choice accepts (every XOR of its tag with the
// popular set's is taken: the tags span a space that fills up) stays
// unserved for long, and the blocks served after it would otherwise be
// passed again by every call, quadratic in a long put.
func (pl *pool) underAt(served map[blocks.ID]bool, k int) (cand, bool) {
	for pl.head < len(pl.under) && served[pl.under[pl.head].id] {
		pl.head++
	}
	passed := false
	for i := pl.head; i < len(pl.under); i++ {
		if served[pl.under[i].id] {
			passed = true
			continue
		}
		if k == 0 {
			c := pl.under[i]
			if passed {
				pl.dropServed(served, i)
			}
			return c, true
		}
		k--
	}
	if passed {
		pl.dropServed(served, len(pl.under))
	}
	return cand{}, false
}

// dropServed moves the served entries of under[head:end] before the
// unserved ones there (which keep their order) and head past them: used
// up, they go at the next begin.
func (pl *pool) dropServed(served map[blocks.ID]bool, end int) {
	w := end
	for j := end - 1; j >= pl.head; j-- {
		if !served[pl.under[j].id] {
			w--
			pl.under[j], pl.under[w] = pl.under[w], pl.under[j]
		}
	}
	pl.head = w
}

// other picks a candidate for a non-A slot: popular first, else any.
func (p *picker) other(pl *pool) (cand, bool) {
	if len(pl.popular) > 0 {
		return pl.popular[p.rng.IntN(len(pl.popular))], true
	}
	if len(pl.all) > 0 {
		return pl.all[p.rng.IntN(len(pl.all))], true
	}
	return cand{}, false
}

// choose fills slots candidates for one try: slot A is first, or the k-th
// unserved under-shared block (k < underPeek), or else a popular one; slot B
// is the popular block at index rot (mod the set's size); later slots are
// random popular ones. It reports false when the candidates run out.
func (p *picker) choose(pl *pool, slots, k, rot int, first *cand) ([]cand, bool) {
	out := make([]cand, 0, slots)
	if p.uniform {
		if first != nil {
			out = append(out, *first)
		}
		for len(out) < slots {
			if len(pl.all) == 0 {
				return nil, false
			}
			out = append(out, pl.all[p.rng.IntN(len(pl.all))])
		}
		return out, !hasDup(out)
	}
	if first != nil {
		out = append(out, *first)
	} else if c, ok := pl.underAt(p.served, k); ok && k < underPeek {
		out = append(out, c)
	} else if c, ok := p.other(pl); ok {
		out = append(out, c)
	} else {
		return nil, false
	}
	for len(out) < slots {
		var c cand
		switch {
		case len(out) == 1 && len(pl.popular) > 0:
			c = pl.popular[rot%len(pl.popular)]
		default:
			var ok bool
			if c, ok = p.other(pl); !ok {
				return nil, false
			}
		}
		out = append(out, c)
	}
	if hasDup(out) {
		return nil, false
	}
	return out, true
}

func hasDup(cs []cand) bool {
	for i := range cs {
		for j := i + 1; j < len(cs); j++ {
			if cs[i].id == cs[j].id {
				return true
			}
		}
	}
	return false
}

func xorTags(cs []cand) uint64 {
	var t uint64
	for _, c := range cs {
		t ^= c.tag
	}
	return t
}

// pick returns t−1 randomizers for one block of the class and the new
// block's tag, making fresh random blocks when it must.
func (p *picker) pick(ctx context.Context, class, t int) ([]cand, uint64, error) {
	pl, err := p.pool(ctx, class)
	if err != nil {
		return nil, 0, err
	}
	for !pl.drained && len(pl.under)-pl.head < 2*underPeek {
		if err := p.refill(ctx, pl); err != nil {
			return nil, 0, err
		}
	}
	slots := t - 1
	if slots > 1 {
		tries := 0
		for k := 0; k < underPeek && tries < maxTries; k++ {
			start := 0
			if n := len(pl.popular); n > 0 {
				start = p.rng.IntN(n)
			}
			for r := 0; r < max(len(pl.popular), 1) && tries < maxTries; r++ {
				tries++
				cs, ok := p.choose(pl, slots, k, start+r, nil)
				if !ok {
					continue
				}
				if ok, tag, err := p.accept(ctx, cs); ok || err != nil {
					return cs, tag, err
				}
			}
		}
	}
	// No allowed choice: make a fresh block.
	if slots == 1 {
		// t = 2: the tuple is the stored block and one fresh pad, whose XOR
		// is the source by design; the pad is never used again, and the
		// stored block carries the pad's tag, so no other pair can cancel.
		// This costs 2× the storage.
		f, err := p.fresh(ctx, pl, false)
		if err != nil {
			return nil, 0, err
		}
		return p.commit(ctx, []cand{f}, f.tag), f.tag, nil
	}
	for i := 0; i < freshLimit; i++ {
		f, err := p.fresh(ctx, pl, true)
		if err != nil {
			return nil, 0, err
		}
		// The fresh block takes slot B while slot A still drains the
		// under-shared queue; with no queue it takes slot A and the other
		// slots go round the popular set. Only when every choice fails
		// (a pool of one) is another fresh block made, so none is wasted.
		for r := 0; r <= len(pl.popular); r++ {
			// (When slot A came out as f itself, f leads instead: putting
			// it in slot B too made a duplicate, and one time in eight a
			// first put made a third fresh block that no tuple used.)
			cs, ok := p.choose(pl, slots, 0, r, nil)
			if ok && cs[0].id != f.id {
				cs[1] = f
			} else if cs, ok = p.choose(pl, slots, 0, r, &f); !ok {
				continue
			}
			if hasDup(cs) {
				continue
			}
			if ok, tag, err := p.accept(ctx, cs); ok || err != nil {
				return cs, tag, err
			}
		}
	}
	return nil, 0, fmt.Errorf("no randomizer choice found for a %d-byte block", class)
}

// accept commits cs and reports true with its tag when the tag is free.
func (p *picker) accept(ctx context.Context, cs []cand) (bool, uint64, error) {
	tag := xorTags(cs)
	free, err := p.tagFree(ctx, tag)
	if err != nil || !free {
		return false, 0, err
	}
	p.commit(ctx, cs, tag)
	return true, tag, nil
}

func (p *picker) commit(ctx context.Context, cs []cand, tag uint64) []cand {
	for _, c := range cs {
		p.served[c.id] = true
	}
	p.remember(ctx, tag)
	return cs
}

// tagsPruneMin is the least size of the picker's tag memory at which it
// drops the tags the store holds by now (see remember).
const tagsPruneMin = 4096

// remember notes that a block of this Mix call carries tag. The store
// knows a stored block's tag (HasTag), so the picker's memory needs only
// those of blocks not stored yet, which the mixer's pipeline bounds: once
// the memory reaches pruneAt, the tags the store holds leave it (one
// index lookup each, a few per block made), and pruneAt becomes twice
// what is left. A long put's tag memory stays flat in the file's size.
func (p *picker) remember(ctx context.Context, tag uint64) {
	p.tags[tag] = true
	if len(p.tags) < max(p.pruneAt, tagsPruneMin) {
		return
	}
	for t := range p.tags {
		if held, err := p.st.HasTag(ctx, t); err == nil && held {
			delete(p.tags, t)
		}
	}
	p.pruneAt = 2 * len(p.tags)
}

// fresh makes a fresh random block of the pool's class and queues it for
// storing (see takeUnstored); with share it joins the popular set.
func (p *picker) fresh(ctx context.Context, pl *pool, share bool) (cand, error) {
	data := make([]byte, pl.class)
	if _, err := io.ReadFull(p.rnd, data); err != nil {
		return cand{}, fmt.Errorf("read random block: %w", err)
	}
	var tag uint64
	var b [tagBytes]byte
	for {
		if _, err := io.ReadFull(p.rnd, b[:]); err != nil {
			return cand{}, fmt.Errorf("read random tag: %w", err)
		}
		// Own blocks' tags never carry ForeignTag; XORs of them neither.
		tag = binary.LittleEndian.Uint64(b[:]) &^ blocks.ForeignTag
		free, err := p.tagFree(ctx, tag)
		if err != nil {
			return cand{}, err
		}
		if free {
			break
		}
	}
	blk, err := blocks.NewBlock(data)
	if err != nil {
		return cand{}, err
	}
	id := blk.ID()
	// The block is stored by the mixer's commit stage, in stream order,
	// before the first block that uses it; until then workers read it here.
	p.unstored = append(p.unstored, freshBlock{blk, tag})
	p.pending.add(blk)
	p.remember(ctx, tag)
	p.freshBlocks++
	p.freshBytes += int64(len(data))
	c := cand{id: id, tag: tag}
	if share {
		pl.popular = append([]cand{c}, pl.popular[:min(len(pl.popular), popularMax-1)]...)
		if len(pl.all) < allK {
			pl.all = append(pl.all, c)
		}
	}
	return c, nil
}

// added tells the picker about blocks this session stored, in order, so that
// later puts can use them: up to sessionQueued of them wait in the
// under-shared queue; the rest, and more when more is set (the caller kept
// only the first ones), are left to the store's queue.
func (p *picker) added(class int, cs []cand, more bool) {
	pl := p.pools[class]
	if pl == nil {
		return
	}
	for _, c := range cs {
		switch {
		case pl.queued[c.id]:
		case len(pl.under)-pl.head >= sessionQueued:
			more = true
		default:
			pl.queued[c.id] = true
			pl.under = append(pl.under, c)
		}
		if len(pl.all) < allK {
			pl.all = append(pl.all, c)
		}
	}
	if more {
		pl.drained = false
	}
}
