package mixer

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"sync"

	"github.com/blockmix/blockmix/blocks"
)

// ErrBadTuple: a tuple is malformed (empty, too long, mixed sizes).
var ErrBadTuple = errors.New("bad tuple")

// Viewer returns a block's verified bytes without copying them; the caller
// must not modify the slice.
type Viewer interface {
	View(ctx context.Context, id blocks.ID) ([]byte, error)
}

// Unmix fetches the blocks of tu from g and returns their XOR: the source
// block. Every block must have the same size. The stored block (tu[0]) is
// read with Get into the returned slice; when g is also a Viewer, the
// randomizers, which many tuples share, are read with View.
func Unmix(ctx context.Context, g blocks.Getter, tu Tuple) ([]byte, error) {
	return UnmixInto(ctx, g, tu, nil)
}

// UnmixInto is Unmix with the stored block read by blocks.GetInto into
// buf: the source block is then in buf when cap(buf) is at least the
// block's size plus blocks.ReadSlack.
func UnmixInto(ctx context.Context, g blocks.Getter, tu Tuple, buf []byte) ([]byte, error) {
	if len(tu) < MinT || len(tu) > MaxT {
		return nil, fmt.Errorf("%w: %d blocks", ErrBadTuple, len(tu))
	}
	// The blocks are fetched at once: over a network each is a round trip.
	// Randomizers already in a cache are taken at once.
	v, _ := g.(Viewer)
	p, _ := g.(peeker)
	var restA [MaxT - 1][]byte
	var errsA [MaxT - 1]error
	rest, errs := restA[:len(tu)-1], errsA[:len(tu)-1]
	var wg sync.WaitGroup
	for i, id := range tu[1:] {
		if p != nil {
			if b, ok := p.peek(id); ok {
				rest[i] = b
				continue
			}
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if v != nil {
				rest[i], errs[i] = v.View(ctx, id)
			} else {
				rest[i], errs[i] = g.Get(ctx, id)
			}
		}()
	}
	out, err := blocks.GetInto(ctx, g, tu[0], buf)
	wg.Wait()
	if err != nil {
		return nil, err
	}
	for i, b := range rest {
		if errs[i] != nil {
			return nil, errs[i]
		}
		if len(b) != len(out) {
			return nil, fmt.Errorf("%w: block %s has %d bytes, want %d", ErrBadTuple, tu[i+1], len(b), len(out))
		}
		subtle.XORBytes(out, out, b)
	}
	return out, nil
}

// CachedGetter wraps a Getter with a bounded cache of verified blocks, so
// that randomizers many tuples share are read once. View fills the cache;
// Get does not (it serves blocks read once). Safe for concurrent use.
type CachedGetter struct {
	g blocks.Getter
	c *cache
}

// NewCachedGetter returns g behind a cache of at most maxBytes.
func NewCachedGetter(g blocks.Getter, maxBytes int) *CachedGetter {
	return &CachedGetter{g: g, c: newCache(maxBytes)}
}

// Get implements blocks.Getter: a copy from the cache, or a read from g that
// is not cached.
func (cg *CachedGetter) Get(ctx context.Context, id blocks.ID) ([]byte, error) {
	if b, ok := cg.c.get(id); ok {
		return append([]byte(nil), b...), nil
	}
	return cg.g.Get(ctx, id)
}

// GetInto implements blocks.IntoGetter: Get, with a block from the cache
// copied into buf and one read from g read into buf when g can.
func (cg *CachedGetter) GetInto(ctx context.Context, id blocks.ID, buf []byte) ([]byte, error) {
	if b, ok := cg.c.get(id); ok {
		return append(buf[:0], b...), nil
	}
	return blocks.GetInto(ctx, cg.g, id, buf)
}

// Prefetch implements blocks.Prefetcher: the blocks not in the cache are
// passed on when g is a Prefetcher.
func (cg *CachedGetter) Prefetch(ctx context.Context, ids []blocks.ID) {
	pf, ok := cg.g.(blocks.Prefetcher)
	if !ok {
		return
	}
	want := ids[:0:0]
	for _, id := range ids {
		if _, ok := cg.c.get(id); !ok {
			want = append(want, id)
		}
	}
	if len(want) > 0 {
		pf.Prefetch(ctx, want)
	}
}

// peeker is a Viewer with a cache it can answer from without waiting.
type peeker interface {
	peek(id blocks.ID) ([]byte, bool)
}

// peek returns id's bytes when the cache holds them (do not modify them).
func (cg *CachedGetter) peek(id blocks.ID) ([]byte, bool) { return cg.c.get(id) }

// View implements Viewer.
func (cg *CachedGetter) View(ctx context.Context, id blocks.ID) ([]byte, error) {
	if b, ok := cg.c.get(id); ok {
		return b, nil
	}
	b, err := cg.g.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	cg.c.add(id, b)
	return b, nil
}
