package blocks

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
)

// TestWalkResumes: a pass that stops part way leaves its mark, a store
// reopened resumes from it, and the passes together see every block
// once; a finished pass starts the next one over.
func TestWalkResumes(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, err := OpenDisk(dir, DiskOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { s.Close() }()
	var all []ID
	for i := range 100 {
		b, _ := NewBlock([]byte(fmt.Sprintf("walk %d", i)))
		if err := s.PutBlock(ctx, b, uint64(i+1)); err != nil {
			t.Fatal(err)
		}
		all = append(all, b.ID())
	}
	slices.SortFunc(all, func(a, b ID) int { return slices.Compare(a[:], b[:]) })

	stop := errors.New("stop")
	var seen []ID
	pages := 0
	from, err := Walk(ctx, s, "test", 16, func(ids []ID, _ []Meta) error {
		if pages == 3 {
			return stop // this page is not done: the mark stays before it
		}
		pages++
		seen = append(seen, ids...)
		return nil
	})
	if !errors.Is(err, stop) || !from.IsZero() {
		t.Fatalf("first pass: from %v, err %v; want the start and stop", from, err)
	}
	if len(seen) != 48 {
		t.Fatalf("first pass saw %d blocks, want 48", len(seen))
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if s, err = OpenDisk(dir, DiskOptions{}); err != nil {
		t.Fatal(err)
	}
	from, err = Walk(ctx, s, "test", 16, func(ids []ID, _ []Meta) error {
		seen = append(seen, ids...)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if want, _ := all[47].after(); from != want {
		t.Fatalf("second pass started at %v, want just after block 47 (%v)", from, want)
	}
	if !slices.Equal(seen, all) {
		t.Fatalf("the two passes saw %d blocks, not each of the %d once in order", len(seen), len(all))
	}
	if f := Fraction(from); f <= 0 || f >= 1 {
		t.Fatalf("Fraction(%v) = %v", from, f)
	}
	n := 0
	from, err = Walk(ctx, s, "test", 16, func(ids []ID, _ []Meta) error { n += len(ids); return nil })
	if err != nil || !from.IsZero() || n != len(all) {
		t.Fatalf("third pass: from %v, %d blocks, %v; want the start and all %d", from, n, err, len(all))
	}
}

func TestIDAfter(t *testing.T) {
	id := ID{31: 0xff}
	next, ok := id.after()
	if !ok || next != (ID{30: 1}) {
		t.Fatalf("after %x = %x %v", id, next, ok)
	}
	var last ID
	for i := range last {
		last[i] = 0xff
	}
	if _, ok := last.after(); ok {
		t.Fatal("the last ID has one after it")
	}
}
