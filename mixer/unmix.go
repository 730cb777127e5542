package mixer

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"

	"github.com/blockmix/blockmix/blocks"
)

// ErrBadTuple: a tuple is malformed (empty, too long, mixed sizes).
var ErrBadTuple = errors.New("bad tuple")

// Unmix fetches the blocks of tu from g and returns their XOR: the source
// block. Every block must have the same size.
func Unmix(ctx context.Context, g blocks.Getter, tu Tuple) ([]byte, error) {
	if len(tu) < MinT || len(tu) > MaxT {
		return nil, fmt.Errorf("%w: %d blocks", ErrBadTuple, len(tu))
	}
	var out []byte
	for _, id := range tu {
		b, err := g.Get(ctx, id)
		if err != nil {
			return nil, err
		}
		if out == nil {
			out = b
			continue
		}
		if len(b) != len(out) {
			return nil, fmt.Errorf("%w: block %s has %d bytes, want %d", ErrBadTuple, id, len(b), len(out))
		}
		subtle.XORBytes(out, out, b)
	}
	return out, nil
}

// CachedGetter wraps a Getter with a bounded cache of verified blocks, so
// that randomizers many tuples share are read once. Safe for concurrent use.
type CachedGetter struct {
	g blocks.Getter
	c *cache
}

// NewCachedGetter returns g behind a cache of at most maxBytes.
func NewCachedGetter(g blocks.Getter, maxBytes int) *CachedGetter {
	return &CachedGetter{g: g, c: newCache(maxBytes)}
}

// Get implements blocks.Getter. The returned slice is a copy.
func (cg *CachedGetter) Get(ctx context.Context, id blocks.ID) ([]byte, error) {
	if b, ok := cg.c.get(id); ok {
		return append([]byte(nil), b...), nil
	}
	b, err := cg.g.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	cg.c.add(id, append([]byte(nil), b...))
	return b, nil
}
