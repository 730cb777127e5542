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
	if len(tu) < MinT || len(tu) > MaxT {
		return nil, fmt.Errorf("%w: %d blocks", ErrBadTuple, len(tu))
	}
	// The blocks are fetched at once: over a network each is a round trip.
	v, _ := g.(Viewer)
	rest := make([][]byte, len(tu)-1)
	errs := make([]error, len(tu)-1)
	var wg sync.WaitGroup
	for i, id := range tu[1:] {
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
	out, err := g.Get(ctx, tu[0])
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
