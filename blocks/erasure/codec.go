package erasure

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/klauspost/reedsolomon"

	"github.com/blockmix/blockmix/blocks"
)

// encoders caches one Reed-Solomon encoder per scheme (they are safe for
// concurrent use and cost a matrix inversion to make).
var encoders sync.Map // Scheme -> reedsolomon.Encoder

func encoder(s Scheme) (reedsolomon.Encoder, error) {
	if e, ok := encoders.Load(s); ok {
		return e.(reedsolomon.Encoder), nil
	}
	if err := s.Valid(); err != nil {
		return nil, err
	}
	e, err := reedsolomon.New(s.K, s.M)
	if err != nil {
		return nil, fmt.Errorf("reed-solomon %s: %w", s, err)
	}
	encoders.Store(s, e)
	return e, nil
}

// Build cuts ids (the file's blocks, each once, read from g) into stripes
// of s.K blocks of one size, in the order given, computes each stripe's
// s.M parity blocks and hands them to store (which keeps them). A size
// group's last stripe may be short: its missing data blocks are fillers
// (see filler).
// It holds at most three stripes' blocks at a time (one per size).
func Build(ctx context.Context, g blocks.Getter, ids []blocks.ID, s Scheme, store func(blocks.Block) error) (Manifest, error) {
	enc, err := encoder(s)
	if err != nil {
		return Manifest{}, err
	}
	m := Manifest{Scheme: s}
	open := map[int][][]byte{} // size -> data of the stripe being filled
	openIDs := map[int][]blocks.ID{}
	var order []int // sizes in the order they first came (a stable manifest)
	flush := func(size int) error {
		data := open[size]
		if len(data) == 0 {
			return nil
		}
		shards := make([][]byte, s.K+s.M)
		copy(shards, data)
		for i := len(data); i < s.K; i++ {
			shards[i] = filler(size, i)
		}
		for i := s.K; i < s.K+s.M; i++ {
			shards[i] = make([]byte, size)
		}
		if err := enc.Encode(shards); err != nil {
			return fmt.Errorf("encode a stripe: %w", err)
		}
		st := Stripe{Size: size, Data: openIDs[size]}
		for _, p := range shards[s.K:] {
			b, err := blocks.NewBlock(p)
			if err != nil {
				return err
			}
			if err := store(b); err != nil {
				return fmt.Errorf("store a parity block: %w", err)
			}
			st.Parity = append(st.Parity, b.ID())
		}
		m.Stripes = append(m.Stripes, st)
		open[size], openIDs[size] = nil, nil
		return nil
	}
	for _, id := range blocks.Dedup(append([]blocks.ID(nil), ids...)) {
		if err := ctx.Err(); err != nil {
			return Manifest{}, err
		}
		data, err := g.Get(ctx, id)
		if err != nil {
			return Manifest{}, fmt.Errorf("read block %s for parity: %w", id.Short(), err)
		}
		size := len(data)
		if lg := log2(size); 1<<lg != size || lg < minSizeLog || lg > maxSizeLog {
			return Manifest{}, fmt.Errorf("block %s of %d bytes: not a block class", id.Short(), size)
		}
		if _, ok := openIDs[size]; !ok {
			order = append(order, size)
		}
		open[size] = append(open[size], append([]byte(nil), data...))
		openIDs[size] = append(openIDs[size], id)
		if len(open[size]) == s.K {
			if err := flush(size); err != nil {
				return Manifest{}, err
			}
		}
	}
	for _, size := range order {
		if err := flush(size); err != nil {
			return Manifest{}, err
		}
	}
	if len(m.Stripes) == 0 {
		return Manifest{}, errors.New("no blocks to protect")
	}
	return m, nil
}

// filler is the stand-in for data block i of a short stripe: a fixed
// pattern, stored nowhere. (Zeros would make a parity block of a stripe
// with one data block a multiple of it in GF(2^8), and for some schemes
// equal to it: one block, where two were meant.)
func filler(size, i int) []byte {
	b := make([]byte, size)
	for j := range b {
		b[j] = byte(j*131 + i*29 + 7)
	}
	return b
}

// ErrTooFew: fewer than K blocks of a stripe could be fetched.
var ErrTooFew = errors.New("too few blocks of the stripe are left")

// Rebuild returns the bytes of the stripe's block want, rebuilt from the
// others read through g: it asks for all of them at once and takes the
// first K that arrive and check out (a short stripe's fillers count as
// there), then stops the rest. It fails wrapping ErrTooFew when fewer
// than K arrive.
func Rebuild(ctx context.Context, g blocks.Getter, s Scheme, st Stripe, want blocks.ID) ([]byte, error) {
	enc, err := encoder(s)
	if err != nil {
		return nil, err
	}
	ids := st.Shards()
	pos := map[blocks.ID]int{}
	for i, id := range st.Data {
		pos[id] = i
	}
	for i, id := range st.Parity {
		pos[id] = s.K + i
	}
	target, ok := pos[want]
	if !ok {
		return nil, fmt.Errorf("block %s is not in the stripe", want.Short())
	}
	shards := make([][]byte, s.K+s.M)
	have := 0
	for i := len(st.Data); i < s.K; i++ {
		shards[i] = filler(st.Size, i)
		have++
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type got struct {
		i    int
		data []byte
	}
	ch := make(chan got, len(ids))
	asked := 0
	for _, id := range ids {
		if id == want {
			continue
		}
		asked++
		go func() {
			data, err := g.Get(ctx, id)
			if err != nil || len(data) != st.Size || blocks.Check(id, data) != nil {
				data = nil
			}
			ch <- got{pos[id], data}
		}()
	}
	for ; asked > 0 && have < s.K; asked-- {
		select {
		case r := <-ch:
			if r.data != nil {
				shards[r.i] = append([]byte(nil), r.data...)
				have++
			}
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if have < s.K {
		return nil, fmt.Errorf("%w: block %s: %d of the %d needed", ErrTooFew, want.Short(), have, s.K)
	}
	cancel() // the slower ones are not needed
	if target < s.K {
		err = enc.ReconstructData(shards)
	} else {
		err = enc.Reconstruct(shards)
	}
	if err != nil {
		return nil, fmt.Errorf("rebuild block %s: %w", want.Short(), err)
	}
	out := shards[target]
	if err := blocks.Check(want, out); err != nil {
		return nil, fmt.Errorf("rebuilt block %s: %w", want.Short(), err)
	}
	return out, nil
}

// Getter reads blocks through G and rebuilds those of its manifest's
// stripes that G cannot give (or that take longer than Hedge, when set)
// from the rest of their stripe. Blocks outside the stripes go to G
// alone. Safe for concurrent use.
type Getter struct {
	G     blocks.Getter
	Hedge time.Duration // 0: rebuild only once G fails

	m       Manifest
	idx     map[blocks.ID]int // block -> stripe
	rebuilt atomic.Int64
}

// NewGetter returns a Getter over g for the stripes of m.
func NewGetter(g blocks.Getter, m Manifest) *Getter {
	idx := make(map[blocks.ID]int, len(m.Stripes)*(m.K+m.M))
	for i, s := range m.Stripes {
		for _, id := range s.Shards() {
			idx[id] = i
		}
	}
	return &Getter{G: g, m: m, idx: idx}
}

// Rebuilt counts the blocks this Getter rebuilt.
func (g *Getter) Rebuilt() int64 { return g.rebuilt.Load() }

// Stripe returns the stripe that holds id.
func (g *Getter) Stripe(id blocks.ID) (Stripe, bool) {
	i, ok := g.idx[id]
	if !ok {
		return Stripe{}, false
	}
	return g.m.Stripes[i], true
}

// Get implements blocks.Getter. When G fails for a striped block and the
// stripe cannot give it back either, G's error comes back (so a block
// lost everywhere still wraps blocks.ErrNotFound).
func (g *Getter) Get(ctx context.Context, id blocks.ID) ([]byte, error) {
	st, ok := g.Stripe(id)
	if !ok {
		return g.G.Get(ctx, id)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type res struct {
		data    []byte
		err     error
		rebuilt bool
	}
	ch := make(chan res, 2)
	go func() {
		data, err := g.G.Get(ctx, id)
		ch <- res{data, err, false}
	}()
	var hedge <-chan time.Time
	if g.Hedge > 0 {
		t := time.NewTimer(g.Hedge)
		defer t.Stop()
		hedge = t.C
	}
	rebuild := func() {
		go func() {
			data, err := Rebuild(ctx, g.G, g.m.Scheme, st, id)
			ch <- res{data, err, true}
		}()
	}
	started, pending := false, 1
	var first error
	for pending > 0 {
		select {
		case r := <-ch:
			pending--
			if r.err == nil {
				if r.rebuilt {
					g.rebuilt.Add(1)
				}
				return r.data, nil
			}
			if !r.rebuilt {
				first = r.err
			}
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			if !started {
				started = true
				pending++
				rebuild()
			}
		case <-hedge:
			hedge = nil
			if !started {
				started = true
				pending++
				rebuild()
			}
		}
	}
	if first == nil {
		first = fmt.Errorf("block %s: %w", id.Short(), blocks.ErrNotFound)
	}
	return nil, first
}

// CanLose says how many more nodes a stripe can lose and still give back
// every block: holders[i] are the nodes holding shard i (data, then
// parity; a shard with no holder is lost already), zeros the stripe's
// fillers (K minus its data blocks). It removes, one at a time, the node whose loss leaves the
// fewest shards, until fewer than K remain: the count before that. It
// returns −1 when fewer than K shards are held now.
func CanLose(holders [][]string, zeros, k int) int {
	alive := func(gone map[string]bool) int {
		n := zeros
		for _, hs := range holders {
			for _, h := range hs {
				if !gone[h] {
					n++
					break
				}
			}
		}
		return n
	}
	gone := map[string]bool{}
	if alive(gone) < k {
		return -1
	}
	nodes := map[string]bool{}
	for _, hs := range holders {
		for _, h := range hs {
			nodes[h] = true
		}
	}
	for lost := 0; ; lost++ {
		worst, left := "", -1
		for p := range nodes {
			if gone[p] {
				continue
			}
			gone[p] = true
			if a := alive(gone); left < 0 || a < left || a == left && p < worst {
				worst, left = p, a
			}
			delete(gone, p)
		}
		if left < 0 || left < k {
			return lost
		}
		gone[worst] = true
	}
}
