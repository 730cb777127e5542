package recipe

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync"

	"github.com/blockmix/blockmix/blocks"
	"github.com/blockmix/blockmix/mixer"
)

// ErrHashMismatch: the rebuilt file does not have the hash its descriptor
// records.
var ErrHashMismatch = errors.New("rebuilt file does not match its recorded sha256")

// Reader rebuilds a file. It is an io.ReadSeeker and io.ReaderAt for random
// access (a browser seeking in a video), and an io.WriterTo that streams the
// whole file with blocks fetched in parallel and checks the whole-file hash
// at the end. ReadAt is safe for concurrent use; Read and Seek are not.
type Reader struct {
	ctx     context.Context
	g       blocks.Getter
	rc      Recipe
	root    node
	workers int
	prog    mixer.Progress

	mu      sync.Mutex
	nodes   map[[2]int64]node      // (level, index) -> decoded node
	loading map[[2]int64]*nodeLoad // nodes being read
	off     int64

	attach    Recipe // the attachment's recipe (see attach.go)
	hasAttach bool
}

// Options tune Open.
type Options struct {
	Workers  int            // blocks fetched at once; 0 means 2×GOMAXPROCS
	Progress mixer.Progress // gets source bytes as WriteTo delivers them
}

// Open reads the recipe's descriptor root from g and returns a Reader. A
// missing block is an error wrapping blocks.ErrNotFound; a root that does
// not decode or does not fit the recipe wraps ErrBadDescriptor.
func Open(ctx context.Context, g blocks.Getter, rc Recipe, opt Options) (*Reader, error) {
	if opt.Workers <= 0 {
		opt.Workers = 2 * runtime.GOMAXPROCS(0)
	}
	b, err := mixer.Unmix(ctx, g, rc.Root)
	if err != nil {
		return nil, fmt.Errorf("descriptor root: %w", err)
	}
	if len(b) != rc.DescClass {
		return nil, fmt.Errorf("%w: root is %d bytes, recipe says %d", ErrBadDescriptor, len(b), rc.DescClass)
	}
	root, err := decodeNode(b)
	if err != nil {
		return nil, err
	}
	if root.size != rc.Size {
		return nil, fmt.Errorf("%w: descriptor says %d bytes, recipe says %d", ErrBadDescriptor, root.size, rc.Size)
	}
	if want := tuplesFor(root.size, root.dataClass); root.total != want {
		return nil, fmt.Errorf("%w: %d tuples for %d bytes", ErrBadDescriptor, root.total, root.size)
	}
	r := &Reader{ctx: ctx, g: g, rc: rc, root: root, workers: opt.Workers, prog: opt.Progress, nodes: map[[2]int64]node{}, loading: map[[2]int64]*nodeLoad{}}
	r.attach, r.hasAttach = decodeTrailer(b, headerSize+len(root.entries)*root.entryT*32)
	if root.level > 0 && root.entryClass != rc.DescClass {
		return nil, fmt.Errorf("%w: inner nodes of %d bytes under a %d-byte root", ErrBadDescriptor, root.entryClass, rc.DescClass)
	}
	// The tree must be just deep enough for the tuple count.
	if cov := r.coverage(root.level); cov < root.total || (root.level > 0 && r.coverage(root.level-1) >= root.total) {
		return nil, fmt.Errorf("%w: depth %d for %d tuples", ErrBadDescriptor, root.level, root.total)
	}
	return r, nil
}

func tuplesFor(size int64, class int) int64 {
	if size == 0 {
		return 1
	}
	return (size + int64(class) - 1) / int64(class)
}

// Size returns the file size.
func (r *Reader) Size() int64 { return r.root.size }

// SHA256 returns the whole-file hash the descriptor records.
func (r *Reader) SHA256() [32]byte { return r.root.sha }

// BlockSize returns the file's block class.
func (r *Reader) BlockSize() int { return r.root.dataClass }

// coverage returns how many data tuples one node of the level covers.
func (r *Reader) coverage(level int) int64 {
	cov := int64(capacity(r.rc.DescClass, r.root.dataT))
	for l := 0; l < level; l++ {
		cov *= int64(capacity(r.rc.DescClass, DescT))
		if cov > 1<<62/int64(capacity(r.rc.DescClass, DescT)) {
			break
		}
	}
	return cov
}

// tuple returns the data tuple i, reading descriptor nodes as needed.
func (r *Reader) tuple(ctx context.Context, i int64) (mixer.Tuple, error) {
	n := r.root
	idx := int64(0) // index of n within its level
	for lv := r.root.level; lv > 0; lv-- {
		child := i / r.coverage(lv-1)
		k := child - idx*int64(capacity(r.rc.DescClass, DescT))
		if k < 0 || k >= int64(len(n.entries)) {
			return nil, fmt.Errorf("%w: tuple %d not under node %d/%d", ErrBadDescriptor, i, lv, idx)
		}
		next, err := r.node(ctx, lv-1, child, n.entries[k])
		if err != nil {
			return nil, err
		}
		n, idx = next, child
	}
	k := i - idx*int64(capacity(r.rc.DescClass, r.root.dataT))
	if k < 0 || k >= int64(len(n.entries)) {
		return nil, fmt.Errorf("%w: tuple %d missing", ErrBadDescriptor, i)
	}
	return n.entries[k], nil
}

// node returns the descriptor node at (level, idx), whose tuple is tu.
// Workers that need one node at the same time share one read of it.
func (r *Reader) node(ctx context.Context, level int, idx int64, tu mixer.Tuple) (node, error) {
	key := [2]int64{int64(level), idx}
	r.mu.Lock()
	if n, ok := r.nodes[key]; ok {
		r.mu.Unlock()
		return n, nil
	}
	if l, ok := r.loading[key]; ok {
		r.mu.Unlock()
		select {
		case <-l.done:
			return l.n, l.err
		case <-ctx.Done():
			return node{}, ctx.Err()
		}
	}
	l := &nodeLoad{done: make(chan struct{})}
	r.loading[key] = l
	r.mu.Unlock()

	l.n, l.err = r.readNode(ctx, level, idx, tu)
	r.mu.Lock()
	delete(r.loading, key)
	if l.err == nil {
		if len(r.nodes) > 256 { // a small bound: a path and its neighbours
			clear(r.nodes)
		}
		r.nodes[key] = l.n
	}
	r.mu.Unlock()
	close(l.done)
	return l.n, l.err
}

// nodeLoad is one read of a descriptor node that several workers wait for.
type nodeLoad struct {
	done chan struct{} // closed when n and err are set
	n    node
	err  error
}

// readNode unmixes and decodes the descriptor node at (level, idx) and
// checks that it fits the root.
func (r *Reader) readNode(ctx context.Context, level int, idx int64, tu mixer.Tuple) (node, error) {
	b, err := mixer.Unmix(ctx, r.g, tu)
	if err != nil {
		return node{}, fmt.Errorf("descriptor node: %w", err)
	}
	n, err := decodeNode(b)
	if err != nil {
		return node{}, err
	}
	if n.level != level || n.size != r.root.size || n.sha != r.root.sha || n.total != r.root.total ||
		n.dataClass != r.root.dataClass || n.dataT != r.root.dataT || len(b) != r.rc.DescClass {
		return node{}, fmt.Errorf("%w: node %d/%d does not fit its root", ErrBadDescriptor, level, idx)
	}
	return n, nil
}

// Blocks lists every block the file needs, descriptor included, each
// once: what a health check counts the copies of. It reads the descriptor
// nodes (a few blocks per million), never the file's data.
func (r *Reader) Blocks(ctx context.Context) ([]blocks.ID, error) {
	seen := map[blocks.ID]bool{}
	var out []blocks.ID
	add := func(tu mixer.Tuple) {
		for _, id := range tu {
			if !seen[id] {
				seen[id] = true
				out = append(out, id)
			}
		}
	}
	add(r.rc.Root)
	var walk func(n node, level int, idx int64) error
	walk = func(n node, level int, idx int64) error {
		for k, tu := range n.entries {
			add(tu)
			if level == 0 {
				continue
			}
			if err := ctx.Err(); err != nil {
				return err
			}
			child := idx*int64(capacity(r.rc.DescClass, DescT)) + int64(k)
			c, err := r.readNode(ctx, level-1, child, tu)
			if err != nil {
				return err
			}
			if err := walk(c, level-1, child); err != nil {
				return err
			}
		}
		return nil
	}
	if err := walk(r.root, r.root.level, 0); err != nil {
		return nil, err
	}
	return out, nil
}

// block returns the source bytes of data block i (without padding), in
// buf when it has room for a block (see mixer.UnmixInto).
func (r *Reader) block(ctx context.Context, i int64, buf []byte) ([]byte, error) {
	tu, err := r.tuple(ctx, i)
	if err != nil {
		return nil, err
	}
	b, err := mixer.UnmixInto(ctx, r.g, tu, buf)
	if err != nil {
		return nil, fmt.Errorf("block %d of the file: %w", i, err)
	}
	if len(b) != r.root.dataClass {
		return nil, fmt.Errorf("%w: data block %d is %d bytes", ErrBadDescriptor, i, len(b))
	}
	end := min(int64(len(b)), r.root.size-i*int64(r.root.dataClass))
	return b[:max(end, 0)], nil
}

// ReadAt implements io.ReaderAt.
func (r *Reader) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("read at %d: negative offset", off)
	}
	n := 0
	cls := int64(r.root.dataClass)
	for n < len(p) {
		pos := off + int64(n)
		if pos >= r.root.size {
			return n, io.EOF
		}
		b, err := r.block(r.ctx, pos/cls, nil)
		if err != nil {
			return n, err
		}
		n += copy(p[n:], b[pos%cls:])
	}
	return n, nil
}

// Read implements io.Reader.
func (r *Reader) Read(p []byte) (int, error) {
	n, err := r.ReadAt(p, r.off)
	r.off += int64(n)
	if err == io.EOF && n > 0 {
		err = nil
	}
	return n, err
}

// Seek implements io.Seeker.
func (r *Reader) Seek(offset int64, whence int) (int64, error) {
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		offset += r.off
	case io.SeekEnd:
		offset += r.root.size
	default:
		return r.off, fmt.Errorf("seek: bad whence %d", whence)
	}
	if offset < 0 {
		return r.off, fmt.Errorf("seek to %d: negative position", offset)
	}
	r.off = offset
	return offset, nil
}

// WriteTo streams the file from the current position to the end into w,
// many blocks in flight, in order. When it wrote the whole file it checks
// the whole-file hash and returns ErrHashMismatch if it differs. When the
// Reader's context ends first it returns the context's error at once.
//
// Three stages run at once: workers that read and unmix blocks ahead, this
// goroutine writing them to w in order, and one hashing what was written
// (the hash, one core's worth of work, bounds a local read). They share a
// fixed set of block buffers (about 2×workers+4 blocks), so that a read of
// any size allocates no memory per block when the Getter is a
// blocks.IntoGetter.
func (r *Reader) WriteTo(w io.Writer) (int64, error) {
	ctx, cancel := context.WithCancel(r.ctx)
	defer cancel()
	cls := int64(r.root.dataClass)
	first := r.off / cls
	skip := r.off % cls
	whole := r.off == 0
	count := tuplesFor(r.root.size, r.root.dataClass)
	if r.off >= r.root.size {
		return 0, nil
	}

	// Every block in flight holds one buffer from bufs, from before its
	// worker starts until it is hashed (or written, when nothing is
	// hashed), so bufs bounds the memory and how far the workers run ahead.
	nbuf := 2*r.workers + 4
	bufs := make(chan []byte, nbuf)
	for range nbuf {
		bufs <- nil // allocated on first use: a small file needs few
	}
	bufSize := r.root.dataClass + blocks.ReadSlack

	type result struct {
		buf []byte // from bufs
		b   []byte // the block's bytes, maybe in buf
		err error
	}
	type job struct {
		i   int64
		buf []byte
		ch  chan result
	}
	// The workers live as long as the call: a goroutine per block would
	// grow a new stack for each one.
	jobs := make(chan job)
	for range r.workers {
		go func() {
			for j := range jobs {
				b, err := r.block(ctx, j.i, j.buf)
				j.ch <- result{j.buf, b, err}
			}
		}()
	}
	tell, stop := r.prefetch(ctx, first, count)
	// One slot per block in flight, handed out in order.
	slots := make(chan chan result, nbuf)
	go func() {
		defer close(slots)
		defer close(jobs)
		defer stop()
		for i := first; i < count; i++ {
			if (i-first)%prefetchBatch == 0 {
				tell(i)
			}
			var buf []byte
			select {
			case buf = <-bufs:
			case <-ctx.Done():
				return
			}
			if buf == nil {
				buf = make([]byte, bufSize)
			}
			ch := make(chan result, 1)
			select {
			case slots <- ch:
			case <-ctx.Done():
				return
			}
			select {
			case jobs <- job{i, buf, ch}:
			case <-ctx.Done():
				return
			}
		}
	}()

	// The hasher takes blocks once they are written, in order, and gives
	// their buffers back.
	type hashed struct {
		buf, b []byte
	}
	toHash := make(chan hashed, nbuf)
	var sum [32]byte
	hashDone := make(chan struct{})
	go func() {
		defer close(hashDone)
		h := sha256.New()
		for x := range toHash {
			h.Write(x.b)
			bufs <- x.buf
		}
		h.Sum(sum[:0])
	}()
	hashing := true
	defer func() {
		if hashing {
			close(toHash)
		}
	}()

	var written int64
	for ch := range slots {
		var res result
		select {
		case res = <-ch:
		case <-ctx.Done():
			// A slot handed out just before the cancel may have no worker.
			return written, ctx.Err()
		}
		if res.err != nil {
			return written, res.err
		}
		b := res.b
		if skip > 0 {
			b, skip = b[skip:], 0
		}
		n, err := w.Write(b)
		written += int64(n)
		r.off += int64(n)
		if err != nil {
			return written, err
		}
		if whole {
			toHash <- hashed{res.buf, b}
		} else {
			bufs <- res.buf
		}
		if r.prog != nil {
			r.prog.Add(int64(n))
		}
	}
	if err := ctx.Err(); err != nil {
		// Cancelled: the slots stopped early, the file is not whole.
		return written, err
	}
	if whole {
		close(toHash)
		hashing = false
		<-hashDone
		if sum != r.root.sha {
			return written, ErrHashMismatch
		}
	}
	return written, nil
}

// What WriteTo asks a blocks.Prefetcher for: the blocks of prefetchBatch
// tuples at a time, up to prefetchWindow tuples ahead of the workers
// (with 128 KiB blocks, 4 MiB at a time, up to 16 MiB ahead).
const (
	prefetchBatch  = 32
	prefetchWindow = 128
)

// prefetch starts a goroutine that, when r's Getter is a
// blocks.Prefetcher, tells it the blocks of the tuples up to
// prefetchWindow past each index passed to tell, until stop is called;
// stop returns once the goroutine has ended.
func (r *Reader) prefetch(ctx context.Context, first, count int64) (tell func(int64), stop func()) {
	pf, ok := r.g.(blocks.Prefetcher)
	if !ok {
		return func(int64) {}, func() {}
	}
	ahead := make(chan int64, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		next := first
		ids := make([]blocks.ID, 0, prefetchBatch*mixer.MaxT)
		for at := range ahead {
			for next < min(at+prefetchWindow, count) && ctx.Err() == nil {
				end := min(next+prefetchBatch, count)
				ids = ids[:0]
				for k := next; k < end; k++ {
					tu, err := r.tuple(ctx, k)
					if err != nil {
						break // the worker that needs it reports it
					}
					ids = append(ids, tu...)
				}
				pf.Prefetch(ctx, ids)
				next = end
			}
		}
	}()
	return func(i int64) { latest(ahead, i) }, func() { close(ahead); <-done }
}

// latest puts v on ch (of capacity 1), replacing a value not yet taken.
func latest(ch chan int64, v int64) {
	for {
		select {
		case ch <- v:
			return
		default:
		}
		select {
		case <-ch:
		default:
		}
	}
}
