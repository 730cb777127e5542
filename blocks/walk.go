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

// page returns up to n blocks from from on, in ID order, and the ID a next
// page starts at; more is false when the store has no block past the page.
func page(ctx context.Context, st Ranger, from ID, n int) (ids []ID, metas []Meta, next ID, more bool, err error) {
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
	err = pages(ctx, st, from, n, func(ids []ID, metas []Meta, next ID, more bool) error {
		if len(ids) > 0 {
			if err := fn(ids, metas); err != nil {
				return err
			}
		}
		mark := next[:]
		if !more {
			mark = nil // the pass is done: the next one starts over
		}
		if err := st.SetMark(key, mark); err != nil {
			return fmt.Errorf("round %s: %w", name, err)
		}
		return nil
	})
	var re *rangeErr
	if errors.As(err, &re) {
		err = fmt.Errorf("round %s: %w", name, re.err)
	}
	return from, err
}

// EachPage calls fn with every block of st, in ID order, in pages of up
// to n: a walk of the whole store in memory bounded by n. It returns
// fn's error, or ctx's.
func EachPage(ctx context.Context, st Ranger, n int, fn func(ids []ID, metas []Meta) error) error {
	err := pages(ctx, st, ID{}, n, func(ids []ID, metas []Meta, _ ID, _ bool) error {
		if len(ids) == 0 {
			return nil
		}
		return fn(ids, metas)
	})
	var re *rangeErr
	if errors.As(err, &re) {
		err = re.err
	}
	return err
}

// rangeErr is a failure to read st (not one of fn's) in pages.
type rangeErr struct{ err error }

func (e *rangeErr) Error() string { return e.err.Error() }

// pages calls fn with the blocks of st from from on, a page of up to n at
// a time, with where the next page starts and whether there is one; the
// last page may be empty. A failure to read st comes back as a rangeErr.
func pages(ctx context.Context, st Ranger, from ID, n int, fn func(ids []ID, metas []Meta, next ID, more bool) error) error {
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		ids, metas, next, more, err := page(ctx, st, from, n)
		if err != nil {
			return &rangeErr{err}
		}
		if len(ids) > 0 || !more {
			if err := fn(ids, metas, next, more); err != nil {
				return err
			}
		}
		if !more {
			return nil
		}
		from = next
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
