package blocks

import (
	"context"
	"errors"
	"fmt"
)

// Candidates lists the blocks the mixer may reuse as randomizers without
// a walk of the whole store: own blocks (no ForeignTag) of one size that
// one file or more use. A block no file uses yet (an upload in flight) is
// not listed.
type Candidates interface {
	// UnderShared calls fn, oldest first (by Seq), with the blocks of size
	// bytes that exactly one file uses and whose Seq is above after, until
	// fn returns false.
	UnderShared(ctx context.Context, size int, after uint64, fn func(ID, Meta) bool) error
	// Shared calls fn with the blocks of size bytes that two or more files
	// use, most used first and older first among equals, until fn returns
	// false.
	Shared(ctx context.Context, size int, fn func(ID, Meta) bool) error
}

// Ranger enumerates part of a store: EnumerateFrom is Enumerate over the
// blocks whose IDs are from or above.
type Ranger interface {
	EnumerateFrom(ctx context.Context, from ID, fn func(ID, Meta) error) error
}

// Marker keeps small named values beside the blocks (the point a round
// reached, say): SetMark's value is durable with the store's next Sync;
// Mark returns nil when name has none. SetMark with nil removes it.
type Marker interface {
	Mark(name string) ([]byte, error)
	SetMark(name string, v []byte) error
}

// errPageFull stops an EnumerateFrom once a page is full.
var errPageFull = errors.New("page full")

// Page returns up to n blocks from from on, in ID order, and the ID a next
// page starts at; more is false when the store has no block past the page.
func Page(ctx context.Context, st Ranger, from ID, n int) (ids []ID, metas []Meta, next ID, more bool, err error) {
	err = st.EnumerateFrom(ctx, from, func(id ID, m Meta) error {
		if len(ids) == n {
			more = true
			return errPageFull
		}
		ids, metas = append(ids, id), append(metas, m)
		return nil
	})
	if errors.Is(err, errPageFull) {
		err = nil
	}
	if err != nil {
		return nil, nil, ID{}, false, err
	}
	if more {
		next = ids[len(ids)-1]
		next, more = next.after()
	}
	return ids, metas, next, more, nil
}

// after returns the ID that follows id in order, and false when id is the
// last one there can be.
func (id ID) after() (ID, bool) {
	for i := len(id) - 1; i >= 0; i-- {
		id[i]++
		if id[i] != 0 {
			return id, true
		}
	}
	return id, false
}

// Resumable is a store a round can walk in pages and resume after a
// restart.
type Resumable interface {
	Ranger
	Marker
}

// Walk is one pass of a resumable round named name over st: it calls fn
// with the blocks in pages of up to n, in ID order, from where the last
// pass of that name stopped (the start when it finished or never ran), and
// moves the mark past each page fn returns nil for. At the end of the
// store it clears the mark, so the next pass starts over. It returns
// fn's error, or ctx's; the mark then stays where the pass stopped. from
// is where this pass started (the zero ID: the start), so that a caller
// can say how much of the store it covers.
func Walk(ctx context.Context, st Resumable, name string, n int, fn func(ids []ID, metas []Meta) error) (from ID, err error) {
	key := roundKey(name)
	if from, err = NextPass(st, name); err != nil {
		return ID{}, err
	}
	at := from
	for {
		if err := ctx.Err(); err != nil {
			return from, err
		}
		ids, metas, next, more, err := Page(ctx, st, at, n)
		if err != nil {
			return from, fmt.Errorf("round %s: %w", name, err)
		}
		if len(ids) > 0 {
			if err := fn(ids, metas); err != nil {
				return from, err
			}
		}
		if !more {
			if err := st.SetMark(key, nil); err != nil {
				return from, fmt.Errorf("round %s: %w", name, err)
			}
			return from, nil
		}
		if err := st.SetMark(key, next[:]); err != nil {
			return from, fmt.Errorf("round %s: %w", name, err)
		}
		at = next
	}
}

func roundKey(name string) string { return "round/" + name }

// NextPass returns where the next Walk of the round name starts: the zero
// ID when the last pass finished or none ran.
func NextPass(st Marker, name string) (ID, error) {
	v, err := st.Mark(roundKey(name))
	if err != nil {
		return ID{}, fmt.Errorf("round %s: %w", name, err)
	}
	if len(v) != len(ID{}) {
		return ID{}, nil
	}
	return ID(v), nil
}

// Fraction is how far through the ID space id is, from 0 to 1: IDs are
// hashes, so about that share of a store's blocks comes before id.
func Fraction(id ID) float64 {
	var f float64
	for i := 7; i >= 0; i-- {
		f = (f + float64(id[i])) / 256
	}
	return f
}
