package mixer

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"io"
	"runtime"
	"sync"

	"github.com/blockmix/blockmix/blocks"
)

// Store is what the mixer needs of a block store.
type Store interface {
	blocks.Getter
	blocks.BlockPutter
	blocks.Haver
	blocks.Enumerator
	blocks.TagIndex
	blocks.Candidates
}

// Progress receives the number of source bytes done, as they are done.
// Implementations must be safe for concurrent use.
type Progress interface {
	Add(n int64)
}

// Options tune a Mixer. The zero value is usable.
type Options struct {
	T       int       // tuple size, MinT..MaxT; 0 means DefaultT
	Rand    io.Reader // fresh randomness and padding; nil means crypto/rand
	Workers int       // blocks mixed at once; 0 means GOMAXPROCS
	// CacheBytes bounds the cache of randomizer bytes; 0 means 16 MiB.
	CacheBytes int
	// Uniform picks randomizers uniformly from the store, as the OFF System
	// did, instead of blockmix's policy. It exists to measure the policy
	// against (the noise rules hold either way).
	Uniform bool
}

// Tuple is the IDs whose XOR gives back one source block: the stored block
// first, then its randomizers.
type Tuple []blocks.ID

// Result describes one mixed stream.
type Result struct {
	Tuples    []Tuple
	Class     int
	T         int
	Size      int64    // source bytes read
	SHA256    [32]byte // of the source bytes
	NewBlocks int      // blocks this call added to the store
	NewBytes  int64    // their bytes
	// New lists the blocks this call added, fresh randomizers included:
	// what a caller that fails after the mix (a wrong size, a descriptor
	// that cannot be written) gives to Discard.
	New []blocks.ID
}

// Mixer mixes streams into a store. A Mixer is used by one goroutine at a
// time (its calls are sequential); it keeps its choice of randomizers across
// calls, so that later streams reuse the blocks of earlier ones. For a given
// Rand and store content its output is deterministic, whatever Workers is.
type Mixer struct {
	st    Store
	t     int
	rnd   io.Reader
	work  int
	cache *cache
	pick  *picker

	bufs map[int]*sync.Pool // block buffer pairs kept between calls, per class

	mixedBlocks int
	mixedBytes  int64
	// broken is set by a failed mix: the picker may then hold choices of
	// blocks that were never stored, so the Mixer refuses further work.
	broken error
}

// New returns a Mixer over st.
func New(st Store, opt Options) (*Mixer, error) {
	if opt.T == 0 {
		opt.T = DefaultT
	}
	if err := ValidT(opt.T); err != nil {
		return nil, err
	}
	if opt.Rand == nil {
		opt.Rand = rand.Reader
	}
	if opt.Workers <= 0 {
		opt.Workers = runtime.GOMAXPROCS(0)
	}
	if opt.CacheBytes <= 0 {
		opt.CacheBytes = 16 << 20
	}
	c := newCache(opt.CacheBytes)
	p, err := newPicker(st, opt.Rand)
	if err != nil {
		return nil, err
	}
	p.uniform = opt.Uniform
	return &Mixer{st: st, t: opt.T, rnd: opt.Rand, work: opt.Workers, cache: c, pick: p, bufs: map[int]*sync.Pool{}}, nil
}

// Rand returns the Mixer's source of randomness, for padding that callers
// add (descriptor nodes). Use it from the Mixer's goroutine only.
func (m *Mixer) Rand() io.Reader { return m.rnd }

// T returns the tuple size the Mixer uses for streams.
func (m *Mixer) T() int { return m.t }

// Added returns how many blocks and bytes the Mixer has added to the store
// so far: mixed blocks and fresh random ones.
func (m *Mixer) Added() (int, int64) {
	return m.mixedBlocks + m.pick.freshBlocks, m.mixedBytes + m.pick.freshBytes
}

type job struct {
	seq    int
	src    []byte // the source block, padded; read-only once queued
	out    []byte // the stored block is built here
	picks  []cand
	tag    uint64
	n      int           // source bytes in src (the rest is padding)
	hashed chan struct{} // closed once the file hash has taken src
	fresh  []freshBlock  // to store before this block
}

type done struct {
	job
	blk blocks.Block
	err error
}

// Mix reads r to EOF, cuts it into blocks of class bytes (the last one padded
// with random bytes), mixes each with t−1 randomizers and stores the result.
// Workers XOR and hash in parallel; blocks are stored in stream order, so
// the store's content and order do not depend on timing. At most
// 16·Workers+1 pairs of block buffers are in memory. On error the blocks
// already stored stay (they are valid, unreferenced blocks) and the Mixer
// refuses further calls: make a new one.
func (m *Mixer) Mix(ctx context.Context, r io.Reader, class int, prog Progress) (Result, error) {
	return m.mix(ctx, r, class, m.t, Stream{Progress: prog})
}

// Stream says what MixStream does with a stream besides mixing it.
type Stream struct {
	Progress Progress // may be nil
	// Tuple, when not nil, gets each tuple in stream order once its block
	// is stored, and Result.Tuples stays empty: a caller that writes the
	// tuples out keeps memory flat in the stream's length. An error from
	// Tuple fails the mix. The tuple is the caller's to keep.
	Tuple func(Tuple) error
	// NoHash leaves Result.SHA256 zero, for a caller that hashes the
	// stream itself (one part of a longer one).
	NoHash bool
	// Stored, when not nil, gets each block this call adds to the store
	// (fresh randomizers included), in the order they are stored, before
	// the tuple that names it. The block's bytes are valid only during
	// the call: copy what you keep.
	Stored func(blocks.Block)
}

// MixStream is Mix with the choices of s. For the same input, store and
// random source it stores the same blocks and yields the same tuples as
// Mix.
func (m *Mixer) MixStream(ctx context.Context, r io.Reader, class int, s Stream) (Result, error) {
	return m.mix(ctx, r, class, m.t, s)
}

// MixBlock mixes one source block (its length must be a class) with t−1
// randomizers and returns its tuple.
func (m *Mixer) MixBlock(ctx context.Context, src []byte, t int) (Tuple, error) {
	if err := ValidT(t); err != nil {
		return nil, err
	}
	if err := ValidClass(len(src)); err != nil {
		return nil, err
	}
	res, err := m.mix(ctx, bytesReader(src), len(src), t, Stream{NoHash: true})
	if err != nil {
		return nil, err
	}
	if len(res.Tuples) != 1 {
		return nil, fmt.Errorf("mix block: got %d tuples", len(res.Tuples))
	}
	return res.Tuples[0], nil
}

func (m *Mixer) mix(ctx context.Context, r io.Reader, class, t int, s Stream) (res Result, err error) {
	var tokens chan [2][]byte
	if err := ValidClass(class); err != nil {
		return Result{}, err
	}
	if m.broken != nil {
		return Result{}, fmt.Errorf("mixer unusable after an earlier failure (%v): make a new one", m.broken)
	}
	defer func() {
		if err != nil {
			m.broken = err
		}
	}()
	m.pick.begin()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	// The stages: feed (read, pad, pick; sequential) → hasher (the file's
	// sha256; sequential) and workers (XOR, block hash; parallel) → commit
	// (store in stream order). A token is a pair of buffers: at most
	// inFlight pairs exist, which bounds memory. The pairs come from, and
	// go back to, the Mixer's pool for the class: a caller that mixes a
	// stream in many short calls (an Upload's parts) makes no garbage of
	// them.
	inFlight := 16*m.work + 1
	pool := m.bufs[class]
	if pool == nil {
		pool = &sync.Pool{}
		m.bufs[class] = pool
	}
	defer func() {
		// Every goroutine of this call has ended: the pairs back in tokens
		// are free.
		for len(tokens) > 0 {
			if b := <-tokens; b[0] != nil {
				pool.Put(&b)
			}
		}
	}()
	tokens = make(chan [2][]byte, inFlight)
	for i := 0; i < inFlight; i++ {
		tokens <- [2][]byte{}
	}
	jobs := make(chan job, inFlight)
	hashQ := make(chan job, inFlight)
	results := make(chan done, inFlight)

	var wg sync.WaitGroup
	for i := 0; i < m.work; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				results <- m.mixOne(ctx, j)
			}
		}()
	}

	res = Result{Class: class, T: t}
	hashDone := make(chan struct{})
	go func() {
		defer close(hashDone)
		h := sha256.New()
		for j := range hashQ {
			if !s.NoHash {
				h.Write(j.src[:j.n])
			}
			close(j.hashed)
		}
		if !s.NoHash {
			copy(res.SHA256[:], h.Sum(nil))
		}
	}()

	var feedErr error
	feedDone := make(chan struct{})
	go func() {
		defer close(feedDone)
		defer close(hashQ)
		defer close(jobs)
		for seq := 0; ; seq++ {
			var bufs [2][]byte
			select {
			case bufs = <-tokens:
			case <-ctx.Done():
				feedErr = ctx.Err()
				return
			}
			if bufs[0] == nil {
				if b, ok := pool.Get().(*[2][]byte); ok {
					bufs = *b
				} else {
					bufs = [2][]byte{make([]byte, class), make([]byte, class)}
				}
			}
			src := bufs[0]
			n, err := io.ReadFull(r, src)
			if err == io.EOF && seq > 0 {
				return
			}
			// An empty stream still gets one (all-padding) block, so that
			// every file has at least one tuple.
			if err != nil && err != io.EOF && err != io.ErrUnexpectedEOF {
				feedErr = fmt.Errorf("read source: %w", err)
				return
			}
			res.Size += int64(n)
			if n < class {
				if _, err := io.ReadFull(m.rnd, src[n:]); err != nil {
					feedErr = fmt.Errorf("read padding: %w", err)
					return
				}
			}
			picks, tag, err := m.pick.pick(ctx, class, t)
			if err != nil {
				feedErr = err
				return
			}
			j := job{seq: seq, src: src, out: bufs[1], picks: picks, tag: tag, n: n,
				hashed: make(chan struct{}), fresh: m.pick.takeUnstored()}
			hashQ <- j
			jobs <- j
			if n < class {
				return
			}
		}
	}()
	go func() { <-feedDone; wg.Wait(); close(results) }()

	// Commit in stream order.
	var added []cand // the first sessionQueued new blocks (see picker.added)
	addedMore := false
	var newIDs []blocks.ID // every block stored by this call
	var firstErr error
	pending := map[int]done{}
	next := 0
	for d := range results {
		if firstErr != nil {
			continue
		}
		if d.err != nil {
			firstErr = d.err
			cancel()
			continue
		}
		pending[d.seq] = d
		for {
			d, ok := pending[next]
			if !ok {
				break
			}
			delete(pending, next)
			next++
			isNew, err := m.store(ctx, d)
			for _, f := range d.fresh {
				newIDs = append(newIDs, f.blk.ID())
			}
			if err != nil {
				firstErr = err
				cancel()
				break
			}
			if isNew {
				newIDs = append(newIDs, d.blk.ID())
			}
			if s.Stored != nil {
				for _, f := range d.fresh {
					s.Stored(f.blk)
				}
				if isNew {
					s.Stored(d.blk)
				}
			}
			tu := make(Tuple, 0, t)
			tu = append(tu, d.blk.ID())
			for _, c := range d.picks {
				tu = append(tu, c.id)
			}
			if s.Tuple != nil {
				if err := s.Tuple(tu); err != nil {
					firstErr = err
					cancel()
					break
				}
			} else {
				res.Tuples = append(res.Tuples, tu)
			}
			if isNew {
				res.NewBlocks++
				res.NewBytes += int64(class)
				if len(added) < sessionQueued {
					added = append(added, cand{id: d.blk.ID(), tag: d.tag})
				} else {
					addedMore = true
				}
			}
			if s.Progress != nil && d.n > 0 {
				s.Progress.Add(int64(d.n))
			}
			<-d.hashed
			tokens <- [2][]byte{d.src, d.out}
		}
	}
	<-hashDone
	err = firstErr
	if err == nil {
		err = feedErr
	}
	if err == nil {
		err = ctx.Err()
	}
	if err != nil {
		// A put that does not finish leaves nothing behind (and the
		// Mixer is not used again: its pools name these blocks).
		Discard(ctx, m.st, newIDs)
		return Result{}, err
	}
	res.New = newIDs
	m.pick.added(class, added, addedMore)
	m.mixedBlocks += res.NewBlocks
	m.mixedBytes += res.NewBytes
	return res, nil
}

// Break marks the Mixer unusable after a caller's failure that made the
// blocks it mixed go away (see Discard): its pools name them.
func (m *Mixer) Break(err error) {
	if m.broken == nil {
		m.broken = err
	}
}

// Discard deletes the blocks a failed put stored (Result.New), when st
// can delete: a put that does not finish leaves nothing behind. It runs
// even when ctx is cancelled (an interrupted put is what it cleans up).
// Best effort: a block it cannot delete stays, unreferenced.
func Discard(ctx context.Context, st blocks.Getter, ids []blocks.ID) {
	d, ok := st.(blocks.Deleter)
	if !ok {
		return
	}
	ctx = context.WithoutCancel(ctx)
	for _, id := range ids {
		_ = d.Delete(ctx, id)
	}
}

// mixOne XORs the source block and its randomizers into j.out and hashes
// the result.
func (m *Mixer) mixOne(ctx context.Context, j job) done {
	for i, c := range j.picks {
		data, err := m.block(ctx, c.id)
		if err != nil {
			return done{job: j, err: fmt.Errorf("randomizer %s: %w", c.id, err)}
		}
		if len(data) != len(j.out) {
			return done{job: j, err: fmt.Errorf("randomizer %s has %d bytes, want %d", c.id, len(data), len(j.out))}
		}
		if i == 0 {
			subtle.XORBytes(j.out, j.src, data)
		} else {
			subtle.XORBytes(j.out, j.out, data)
		}
	}
	blk, err := blocks.NewBlock(j.out)
	return done{job: j, blk: blk, err: err}
}

// store writes the fresh blocks a job made, then its mixed block unless the
// store holds it already.
func (m *Mixer) store(ctx context.Context, d done) (bool, error) {
	for _, f := range d.fresh {
		if err := m.st.PutBlock(ctx, f.blk, f.tag); err != nil {
			return false, fmt.Errorf("store fresh block: %w", err)
		}
		m.cache.add(f.blk.ID(), f.blk.Data())
		m.pick.pending.remove(f.blk.ID())
	}
	have, err := m.st.Has(ctx, d.blk.ID())
	if err != nil {
		return false, fmt.Errorf("store block: %w", err)
	}
	if have {
		return false, nil
	}
	if err := m.st.PutBlock(ctx, d.blk, d.tag); err != nil {
		return false, fmt.Errorf("store block: %w", err)
	}
	return true, nil
}

// block returns a block's verified bytes, from the cache or the store.
func (m *Mixer) block(ctx context.Context, id blocks.ID) ([]byte, error) {
	if b, ok := m.pick.pending.get(id); ok {
		return b, nil
	}
	if b, ok := m.cache.get(id); ok {
		return b, nil
	}
	b, err := m.st.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	m.cache.add(id, b)
	return b, nil
}

type sliceReader struct{ b []byte }

func bytesReader(b []byte) io.Reader { return &sliceReader{b} }

func (s *sliceReader) Read(p []byte) (int, error) {
	if len(s.b) == 0 {
		return 0, io.EOF
	}
	n := copy(p, s.b)
	s.b = s.b[n:]
	return n, nil
}
