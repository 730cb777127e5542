// Package storetest is the conformance suite every blocks.Store must pass.
// Call Run from a test of the implementation:
//
//	func TestMemConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) blocks.Store { return blocks.NewMem() })
//	}
package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/blockmix/blockmix/blocks"
)

// Run runs every conformance test as a subtest. open must return a new,
// empty store for each call; Run closes it when the subtest ends (Close may
// therefore be called twice on a store a test closed itself).
func Run(t *testing.T, open func(t *testing.T) blocks.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s blocks.Store)
	}{
		{"PutGet", testPutGet},
		{"PutCorrupt", testPutCorrupt},
		{"PutTooLarge", testPutTooLarge},
		{"PutDuplicate", testPutDuplicate},
		{"PutBlock", testPutBlock},
		{"Missing", testMissing},
		{"Seq", testSeq},
		{"Delete", testDelete},
		{"Enumerate", testEnumerate},
		{"EnumerateStop", testEnumerateStop},
		{"EnumerateCancel", testEnumerateCancel},
		{"HasTag", testHasTag},
		{"FileRefs", testFileRefs},
		{"FileList", testFileList},
		{"FileReAdd", testFileReAdd},
		{"FilesOrder", testFilesOrder},
		{"FileMissingBlocks", testFileMissingBlocks},
		{"Stats", testStats},
		{"Quarantine", testQuarantine},
		{"Sync", testSync},
		{"Closed", testClosed},
		{"Concurrent", testConcurrent},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := open(t)
			t.Cleanup(func() { s.Close() })
			tc.fn(t, s)
		})
	}
}

// block returns n deterministic pseudo-random bytes for seed, and their ID.
func block(seed uint64, n int) (blocks.ID, []byte) {
	r := rand.New(rand.NewPCG(seed, 0x626c6f636b6d6978))
	b := make([]byte, n)
	for i := 0; i < n; i += 8 {
		v := r.Uint64()
		for j := 0; j < 8 && i+j < n; j++ {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	return blocks.Sum(b), b
}

func put(t *testing.T, s blocks.Store, seed uint64, n int, tag uint64) (blocks.ID, []byte) {
	t.Helper()
	id, b := block(seed, n)
	if err := s.Put(context.Background(), id, b, tag); err != nil {
		t.Fatalf("Put(%s): %v", id.Short(), err)
	}
	return id, b
}

func stat(t *testing.T, s blocks.Store, id blocks.ID) blocks.Meta {
	t.Helper()
	m, err := s.Stat(context.Background(), id)
	if err != nil {
		t.Fatalf("Stat(%s): %v", id.Short(), err)
	}
	return m
}

func has(t *testing.T, s blocks.Store, id blocks.ID) bool {
	t.Helper()
	ok, err := s.Has(context.Background(), id)
	if err != nil {
		t.Fatalf("Has(%s): %v", id.Short(), err)
	}
	return ok
}

func hasTag(t *testing.T, s blocks.Store, tag uint64) bool {
	t.Helper()
	ok, err := s.HasTag(context.Background(), tag)
	if err != nil {
		t.Fatalf("HasTag(%d): %v", tag, err)
	}
	return ok
}

func stats(t *testing.T, s blocks.Store) blocks.Stats {
	t.Helper()
	st, err := s.Stats(context.Background())
	if err != nil {
		t.Fatalf("Stats: %v", err)
	}
	return st
}

func enumerate(t *testing.T, s blocks.Store) ([]blocks.ID, map[blocks.ID]blocks.Meta) {
	t.Helper()
	var ids []blocks.ID
	metas := map[blocks.ID]blocks.Meta{}
	err := s.Enumerate(context.Background(), func(id blocks.ID, m blocks.Meta) error {
		ids = append(ids, id)
		metas[id] = m
		return nil
	})
	if err != nil {
		t.Fatalf("Enumerate: %v", err)
	}
	return ids, metas
}

func testPutGet(t *testing.T, s blocks.Store) {
	ctx := context.Background()
	for i, n := range []int{0, 1, 1000, 128 << 10, blocks.MaxBlockSize} {
		id, b := block(uint64(i), n)
		orig := bytes.Clone(b)
		if err := s.Put(ctx, id, b, uint64(i)); err != nil {
			t.Fatalf("Put %d bytes: %v", n, err)
		}
		// The store must not keep the caller's slice.
		if n > 0 {
			b[0] ^= 0xff
		}
		got, err := s.Get(ctx, id)
		if err != nil {
			t.Fatalf("Get %d bytes: %v", n, err)
		}
		if !bytes.Equal(got, orig) {
			t.Fatalf("Get %d bytes: wrong bytes", n)
		}
		if got, err := blocks.GetVerified(ctx, s, id); err != nil || !bytes.Equal(got, orig) {
			t.Fatalf("GetVerified %d bytes: %v, equal=%v", n, err, bytes.Equal(got, orig))
		}
		// The caller may modify what Get returned.
		if n > 0 {
			got[0] ^= 0xff
			again, err := s.Get(ctx, id)
			if err != nil || !bytes.Equal(again, orig) {
				t.Fatalf("Get after modifying the returned slice: %v, equal=%v", err, bytes.Equal(again, orig))
			}
		}
		if !has(t, s, id) {
			t.Fatalf("Has(%d bytes) = false after Put", n)
		}
		if m := stat(t, s, id); m.Size != n || m.Tag != uint64(i) || m.Refs != 0 {
			t.Fatalf("Stat(%d bytes) = %+v", n, m)
		}
	}
}

func testPutCorrupt(t *testing.T, s blocks.Store) {
	ctx := context.Background()
	id, b := block(1, 4096)
	b[100] ^= 1
	err := s.Put(ctx, id, b, 7)
	if !errors.Is(err, blocks.ErrCorrupt) {
		t.Fatalf("Put of wrong bytes: err = %v, want ErrCorrupt", err)
	}
	if has(t, s, id) {
		t.Fatal("a block refused as corrupt is held")
	}
	if hasTag(t, s, 7) {
		t.Fatal("the tag of a block refused as corrupt is indexed")
	}
	if st := stats(t, s); st.Blocks != 0 || st.Bytes != 0 {
		t.Fatalf("Stats after a refused Put = %+v", st)
	}
}

func testPutTooLarge(t *testing.T, s blocks.Store) {
	id, b := block(1, blocks.MaxBlockSize+1)
	if err := s.Put(context.Background(), id, b, 0); !errors.Is(err, blocks.ErrTooLarge) {
		t.Fatalf("Put of %d bytes: err = %v, want ErrTooLarge", len(b), err)
	}
	if has(t, s, id) {
		t.Fatal("a block refused as too large is held")
	}
}

func testPutDuplicate(t *testing.T, s blocks.Store) {
	id, b := put(t, s, 1, 4096, 11)
	m1 := stat(t, s, id)
	put(t, s, 2, 4096, 12) // something in between, so Seq moves on
	if err := s.Put(context.Background(), id, b, 99); err != nil {
		t.Fatalf("second Put: %v", err)
	}
	m2 := stat(t, s, id)
	if m2 != m1 {
		t.Fatalf("second Put changed Meta: %+v -> %+v", m1, m2)
	}
	if m2.Tag != 11 {
		t.Fatalf("Tag = %d, want the first tag 11", m2.Tag)
	}
	if hasTag(t, s, 99) {
		t.Fatal("HasTag(second tag) = true after a duplicate Put")
	}
	if st := stats(t, s); st.Blocks != 2 || st.Bytes != 2*4096 {
		t.Fatalf("Stats = %+v, want 2 blocks of 4096 bytes", st)
	}
}

// testPutBlock runs when the store also implements blocks.BlockPutter.
func testPutBlock(t *testing.T, s blocks.Store) {
	bp, ok := s.(blocks.BlockPutter)
	if !ok {
		t.Skip("not a BlockPutter")
	}
	ctx := context.Background()
	_, data := block(1, 128<<10)
	orig := bytes.Clone(data)
	b, err := blocks.NewBlock(data)
	if err != nil {
		t.Fatal(err)
	}
	if err := bp.PutBlock(ctx, b, 21); err != nil {
		t.Fatalf("PutBlock: %v", err)
	}
	got, err := s.Get(ctx, b.ID())
	if err != nil || !bytes.Equal(got, orig) {
		t.Fatalf("Get after PutBlock: %v", err)
	}
	m1 := stat(t, s, b.ID())
	if m1.Tag != 21 || m1.Size != len(orig) {
		t.Fatalf("Stat after PutBlock = %+v", m1)
	}
	if err := bp.PutBlock(ctx, b, 22); err != nil {
		t.Fatalf("second PutBlock: %v", err)
	}
	if err := s.Put(ctx, b.ID(), orig, 23); err != nil {
		t.Fatalf("Put after PutBlock: %v", err)
	}
	if m2 := stat(t, s, b.ID()); m2 != m1 {
		t.Fatalf("a duplicate PutBlock or Put changed Meta: %+v -> %+v", m1, m2)
	}
	if st := stats(t, s); st.Blocks != 1 {
		t.Fatalf("Stats.Blocks = %d, want 1", st.Blocks)
	}
}

func testMissing(t *testing.T, s blocks.Store) {
	ctx := context.Background()
	id, _ := block(1, 10)
	if _, err := s.Get(ctx, id); !errors.Is(err, blocks.ErrNotFound) {
		t.Fatalf("Get(missing): err = %v, want ErrNotFound", err)
	}
	if _, err := blocks.GetVerified(ctx, s, id); !errors.Is(err, blocks.ErrNotFound) {
		t.Fatalf("GetVerified(missing): err = %v, want ErrNotFound", err)
	}
	if _, err := s.Stat(ctx, id); !errors.Is(err, blocks.ErrNotFound) {
		t.Fatalf("Stat(missing): err = %v, want ErrNotFound", err)
	}
	if has(t, s, id) {
		t.Fatal("Has(missing) = true")
	}
	if hasTag(t, s, 0) {
		t.Fatal("HasTag(0) = true in an empty store")
	}
	if _, err := s.File(ctx, "nope"); !errors.Is(err, blocks.ErrNotFound) {
		t.Fatalf("File(missing): err = %v, want ErrNotFound", err)
	}
	if err := s.RemoveFile(ctx, "nope"); !errors.Is(err, blocks.ErrNotFound) {
		t.Fatalf("RemoveFile(missing): err = %v, want ErrNotFound", err)
	}
	files, err := s.Files(ctx)
	if err != nil || len(files) != 0 {
		t.Fatalf("Files of an empty store = %v, %v", files, err)
	}
	if st := stats(t, s); st != (blocks.Stats{DiskBytes: st.DiskBytes}) {
		t.Fatalf("Stats of an empty store = %+v", st)
	}
}

func testSeq(t *testing.T, s blocks.Store) {
	var last uint64
	for i := range 20 {
		id, _ := put(t, s, uint64(i), 100, 0)
		m := stat(t, s, id)
		if i > 0 && m.Seq <= last {
			t.Fatalf("Seq of put %d = %d, not larger than the previous %d", i, m.Seq, last)
		}
		last = m.Seq
	}
}

func testDelete(t *testing.T, s blocks.Store) {
	ctx := context.Background()
	a, _ := put(t, s, 1, 1000, 5)
	b, _ := put(t, s, 2, 1000, 5)
	if err := s.Delete(ctx, a); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if has(t, s, a) {
		t.Fatal("Has = true after Delete")
	}
	if _, err := s.Get(ctx, a); !errors.Is(err, blocks.ErrNotFound) {
		t.Fatalf("Get after Delete: err = %v, want ErrNotFound", err)
	}
	if _, err := s.Stat(ctx, a); !errors.Is(err, blocks.ErrNotFound) {
		t.Fatalf("Stat after Delete: err = %v, want ErrNotFound", err)
	}
	if !hasTag(t, s, 5) {
		t.Fatal("HasTag = false while another block still carries the tag")
	}
	if err := s.Delete(ctx, a); err != nil {
		t.Fatalf("Delete of a missing block: %v", err)
	}
	if err := s.Delete(ctx, b); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if hasTag(t, s, 5) {
		t.Fatal("HasTag = true after every block with the tag was deleted")
	}
	if ids, _ := enumerate(t, s); len(ids) != 0 {
		t.Fatalf("Enumerate after deleting everything: %d blocks", len(ids))
	}
	if st := stats(t, s); st.Blocks != 0 || st.Bytes != 0 {
		t.Fatalf("Stats after deleting everything = %+v", st)
	}
	// A deleted block can be put again.
	put(t, s, 1, 1000, 6)
	if !has(t, s, a) || !hasTag(t, s, 6) {
		t.Fatal("a deleted block put again is not held under its new tag")
	}
}

func testEnumerate(t *testing.T, s blocks.Store) {
	want := map[blocks.ID]blocks.Meta{}
	for i := range 50 {
		id, _ := put(t, s, uint64(i), 10+i, uint64(i%7))
		want[id] = stat(t, s, id)
	}
	ids, metas := enumerate(t, s)
	if len(ids) != len(want) {
		t.Fatalf("Enumerate: %d blocks, want %d", len(ids), len(want))
	}
	if !sort.SliceIsSorted(ids, func(i, j int) bool { return bytes.Compare(ids[i][:], ids[j][:]) < 0 }) {
		t.Fatal("Enumerate: IDs not in ascending order")
	}
	for id, m := range want {
		if metas[id] != m {
			t.Fatalf("Enumerate: Meta of %s = %+v, Stat says %+v", id.Short(), metas[id], m)
		}
	}
}

func testEnumerateStop(t *testing.T, s blocks.Store) {
	for i := range 10 {
		put(t, s, uint64(i), 100, 0)
	}
	stop := errors.New("stop here")
	calls := 0
	err := s.Enumerate(context.Background(), func(blocks.ID, blocks.Meta) error {
		calls++
		if calls == 3 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) {
		t.Fatalf("Enumerate returned %v, want fn's error", err)
	}
	if calls != 3 {
		t.Fatalf("fn called %d times after returning an error at call 3", calls)
	}
}

func testEnumerateCancel(t *testing.T, s blocks.Store) {
	for i := range 10 {
		put(t, s, uint64(i), 100, 0)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	calls := 0
	err := s.Enumerate(ctx, func(blocks.ID, blocks.Meta) error { calls++; return nil })
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Enumerate with a canceled context: err = %v, want context.Canceled", err)
	}
	if calls == 10 {
		t.Fatal("Enumerate with a canceled context visited every block")
	}
}

func testHasTag(t *testing.T, s blocks.Store) {
	const tagA, tagB = 1 << 63, 42
	put(t, s, 1, 100, tagA)
	put(t, s, 2, 100, tagA)
	put(t, s, 3, 100, tagB)
	for _, tc := range []struct {
		tag  uint64
		want bool
	}{{tagA, true}, {tagB, true}, {0, false}, {tagA + 1, false}, {tagA - 1, false}, {tagB + 1, false}, {^uint64(0), false}} {
		if got := hasTag(t, s, tc.tag); got != tc.want {
			t.Errorf("HasTag(%#x) = %v, want %v", tc.tag, got, tc.want)
		}
	}
}

func refs(t *testing.T, s blocks.Store, ids ...blocks.ID) []int {
	t.Helper()
	out := make([]int, len(ids))
	for i, id := range ids {
		out[i] = stat(t, s, id).Refs
	}
	return out
}

func sameSet(a, b []blocks.ID) bool {
	if len(a) != len(b) {
		return false
	}
	m := map[blocks.ID]int{}
	for _, id := range a {
		m[id]++
	}
	for _, id := range b {
		if m[id] != 1 {
			return false
		}
		m[id]--
	}
	return true
}

// testFileList: AddFileList takes the list in parts, counts a block
// named in two parts once, and FileBlocks gives the list back in order; a
// failed list records nothing; for a known file the list is not read.
func testFileList(t *testing.T, s blocks.Store) {
	ctx := context.Background()
	x, _ := put(t, s, 1, 100, 0)
	y, _ := put(t, s, 2, 100, 0)
	z, _ := put(t, s, 3, 100, 0)
	boom := errors.New("boom")
	_, err := s.AddFileList(ctx, blocks.FileRecord{Key: "a"}, func(add func([]blocks.ID) error) error {
		if err := add([]blocks.ID{x}); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("AddFileList with a failing list: %v, want its error", err)
	}
	if _, err := s.File(ctx, "a"); !errors.Is(err, blocks.ErrNotFound) {
		t.Fatalf("File after a failed AddFileList: %v, want ErrNotFound", err)
	}
	if got := refs(t, s, x, y, z); fmt.Sprint(got) != "[0 0 0]" {
		t.Fatalf("refs after a failed AddFileList = %v, want [0 0 0]", got)
	}
	n, err := s.AddFileList(ctx, blocks.FileRecord{Key: "a", Name: "a", Size: 3}, func(add func([]blocks.ID) error) error {
		if err := add([]blocks.ID{z, x}); err != nil {
			return err
		}
		return add([]blocks.ID{x, y, z})
	})
	if err != nil || n != 3 {
		t.Fatalf("AddFileList: %d, %v; want 3", n, err)
	}
	if got := refs(t, s, x, y, z); fmt.Sprint(got) != "[1 1 1]" {
		t.Fatalf("refs after AddFileList = %v, want [1 1 1]", got)
	}
	var got []blocks.ID
	if err := s.FileBlocks(ctx, "a", func(p []blocks.ID) error { got = append(got, p...); return nil }); err != nil || fmt.Sprint(got) != fmt.Sprint([]blocks.ID{z, x, y}) {
		t.Fatalf("FileBlocks = %v, %v; want z, x, y", got, err)
	}
	if err := s.FileBlocks(ctx, "nope", func([]blocks.ID) error { return nil }); !errors.Is(err, blocks.ErrNotFound) {
		t.Fatalf("FileBlocks of an unknown file: %v, want ErrNotFound", err)
	}
	if err := s.FileBlocks(ctx, "a", func([]blocks.ID) error { return boom }); !errors.Is(err, boom) {
		t.Fatalf("FileBlocks with a failing fn: %v, want its error", err)
	}
	n, err = s.AddFileList(ctx, blocks.FileRecord{Key: "a", Name: "b"}, func(func([]blocks.ID) error) error {
		t.Fatal("list read for a known file")
		return nil
	})
	if err != nil || n != 3 {
		t.Fatalf("AddFileList of a known file: %d, %v; want 3", n, err)
	}
	if f, err := s.File(ctx, "a"); err != nil || f.Name != "b" || f.NBlock != 3 {
		t.Fatalf("File after a new name: %+v, %v", f, err)
	}
}

func testFileRefs(t *testing.T, s blocks.Store) {
	ctx := context.Background()
	x, _ := put(t, s, 1, 100, 0)
	y, _ := put(t, s, 2, 100, 0)
	z, _ := put(t, s, 3, 100, 0)
	fa := blocks.FileRecord{Key: "a", Name: "a.txt", Size: 1000, Recipe: "r-a", Blocks: []blocks.ID{x, y, x, x}}
	if err := s.AddFile(ctx, fa); err != nil {
		t.Fatalf("AddFile(a): %v", err)
	}
	if got := refs(t, s, x, y, z); fmt.Sprint(got) != "[1 1 0]" {
		t.Fatalf("refs after AddFile(a) with a repeated block = %v, want [1 1 0]", got)
	}
	if err := s.AddFile(ctx, blocks.FileRecord{Key: "b", Name: "b", Size: 10, Blocks: []blocks.ID{y, z}}); err != nil {
		t.Fatalf("AddFile(b): %v", err)
	}
	if got := refs(t, s, x, y, z); fmt.Sprint(got) != "[1 2 1]" {
		t.Fatalf("refs after AddFile(b) = %v, want [1 2 1]", got)
	}
	if st := stats(t, s); st.SharedBlocks != 1 || st.Files != 2 || st.FileBytes != 1010 {
		t.Fatalf("Stats = %+v, want 1 shared block, 2 files, 1010 file bytes", st)
	}
	_, metas := enumerate(t, s)
	if metas[y].Refs != 2 {
		t.Fatalf("Enumerate: Refs of a shared block = %d, want 2", metas[y].Refs)
	}
	f, err := s.File(ctx, "a")
	if err != nil {
		t.Fatalf("File(a): %v", err)
	}
	if !sameSet(f.Blocks, []blocks.ID{x, y}) {
		t.Fatalf("File(a).Blocks = %v, want each of x, y once", f.Blocks)
	}
	if f.Name != "a.txt" || f.Size != 1000 || f.Recipe != "r-a" || f.NBlock != 2 {
		t.Fatalf("File(a) = %+v", f)
	}

	if err := s.RemoveFile(ctx, "a"); err != nil {
		t.Fatalf("RemoveFile(a): %v", err)
	}
	if got := refs(t, s, x, y, z); fmt.Sprint(got) != "[0 1 1]" {
		t.Fatalf("refs after RemoveFile(a) = %v, want [0 1 1]", got)
	}
	if !has(t, s, x) {
		t.Fatal("RemoveFile removed a block")
	}
	if _, err := s.File(ctx, "a"); !errors.Is(err, blocks.ErrNotFound) {
		t.Fatalf("File after RemoveFile: err = %v, want ErrNotFound", err)
	}
	if err := s.RemoveFile(ctx, "a"); !errors.Is(err, blocks.ErrNotFound) {
		t.Fatalf("second RemoveFile: err = %v, want ErrNotFound", err)
	}
	if st := stats(t, s); st.SharedBlocks != 0 || st.Files != 1 || st.FileBytes != 10 {
		t.Fatalf("Stats after RemoveFile = %+v", st)
	}
	if err := s.RemoveFile(ctx, "b"); err != nil {
		t.Fatalf("RemoveFile(b): %v", err)
	}
	if got := refs(t, s, x, y, z); fmt.Sprint(got) != "[0 0 0]" {
		t.Fatalf("refs after removing every file = %v", got)
	}
}

func testFileReAdd(t *testing.T, s blocks.Store) {
	ctx := context.Background()
	x, _ := put(t, s, 1, 100, 0)
	y, _ := put(t, s, 2, 100, 0)
	added := time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)
	if err := s.AddFile(ctx, blocks.FileRecord{Key: "k", Name: "old", Recipe: "r1", Size: 5, Added: added, Blocks: []blocks.ID{x}}); err != nil {
		t.Fatalf("AddFile: %v", err)
	}
	if err := s.AddFile(ctx, blocks.FileRecord{Key: "k", Name: "new", Recipe: "r2", Size: 5, Added: added, Blocks: []blocks.ID{x, y}}); err != nil {
		t.Fatalf("AddFile again: %v", err)
	}
	if got := refs(t, s, x, y); fmt.Sprint(got) != "[1 0]" {
		t.Fatalf("refs after re-adding a key = %v, want [1 0]", got)
	}
	f, err := s.File(ctx, "k")
	if err != nil {
		t.Fatalf("File: %v", err)
	}
	if f.Name != "new" || f.Recipe != "r2" {
		t.Fatalf("File after re-adding: name %q recipe %q, want the new ones", f.Name, f.Recipe)
	}
	files, err := s.Files(ctx)
	if err != nil || len(files) != 1 {
		t.Fatalf("Files = %v, %v; want one file", files, err)
	}
	if st := stats(t, s); st.Files != 1 || st.FileBytes != 5 {
		t.Fatalf("Stats = %+v, want one file of 5 bytes", st)
	}
}

func testFilesOrder(t *testing.T, s blocks.Store) {
	ctx := context.Background()
	x, _ := put(t, s, 1, 100, 0)
	base := time.Date(2025, 1, 2, 3, 4, 5, 6, time.UTC)
	// Keys in an order that is neither sorted nor reverse sorted.
	keys := []string{"m", "b", "z", "a", "q"}
	for i, k := range keys {
		f := blocks.FileRecord{
			Key: k, Name: "name-" + k, Size: int64(i), Type: "text/plain",
			Recipe: "recipe-" + k, Added: base.Add(time.Duration(i) * time.Second),
			Blocks: []blocks.ID{x},
		}
		if err := s.AddFile(ctx, f); err != nil {
			t.Fatalf("AddFile(%s): %v", k, err)
		}
	}
	if err := s.RemoveFile(ctx, "z"); err != nil {
		t.Fatalf("RemoveFile: %v", err)
	}
	keys = []string{"m", "b", "a", "q"}
	if err := s.AddFile(ctx, blocks.FileRecord{Key: "c", Name: "name-c", Blocks: []blocks.ID{x}}); err != nil {
		t.Fatalf("AddFile(c): %v", err)
	}
	keys = append(keys, "c")
	files, err := s.Files(ctx)
	if err != nil {
		t.Fatalf("Files: %v", err)
	}
	var got []string
	for _, f := range files {
		got = append(got, f.Key)
		if f.Blocks != nil {
			t.Errorf("Files: %q has Blocks", f.Key)
		}
		if f.NBlock != 1 {
			t.Errorf("Files: %q has NBlock %d, want 1", f.Key, f.NBlock)
		}
		if f.Name != "name-"+f.Key {
			t.Errorf("Files: %q has Name %q", f.Key, f.Name)
		}
		if f.Key != "c" && (f.Type != "text/plain" || f.Recipe != "recipe-"+f.Key || !f.Added.Equal(base.Add(time.Duration(f.Size)*time.Second))) {
			t.Errorf("Files: record %+v does not round-trip", f)
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(keys) {
		t.Fatalf("Files order = %v, want oldest first %v", got, keys)
	}
	if got := refs(t, s, x); got[0] != len(keys) {
		t.Fatalf("refs = %d, want %d", got[0], len(keys))
	}
}

func testFileMissingBlocks(t *testing.T, s blocks.Store) {
	ctx := context.Background()
	x, _ := put(t, s, 1, 100, 0)
	absent, _ := block(2, 100)
	if err := s.AddFile(ctx, blocks.FileRecord{Key: "k", Blocks: []blocks.ID{x, absent}}); err != nil {
		t.Fatalf("AddFile with a block the store does not hold: %v", err)
	}
	f, err := s.File(ctx, "k")
	if err != nil || !sameSet(f.Blocks, []blocks.ID{x, absent}) {
		t.Fatalf("File = %+v, %v; want both blocks listed", f, err)
	}
	if has(t, s, absent) {
		t.Fatal("AddFile created a block")
	}
	if err := s.RemoveFile(ctx, "k"); err != nil {
		t.Fatalf("RemoveFile: %v", err)
	}
	if got := refs(t, s, x); got[0] != 0 {
		t.Fatalf("refs = %d after RemoveFile, want 0", got[0])
	}
}

func testStats(t *testing.T, s blocks.Store) {
	ctx := context.Background()
	var ids []blocks.ID
	var total int64
	for i := range 6 {
		n := 1000 * (i + 1)
		id, _ := put(t, s, uint64(i), n, 0)
		ids = append(ids, id)
		total += int64(n)
	}
	add := func(key string, size int64, ids ...blocks.ID) {
		if err := s.AddFile(ctx, blocks.FileRecord{Key: key, Size: size, Blocks: ids}); err != nil {
			t.Fatalf("AddFile(%s): %v", key, err)
		}
	}
	add("f1", 100, ids[0], ids[1], ids[2])
	add("f2", 200, ids[1], ids[2], ids[3])
	add("f3", 300, ids[2])
	st := stats(t, s)
	// ids 0-3 are used by a file: 1000+2000+3000+4000 bytes.
	want := blocks.Stats{Blocks: 6, Bytes: total, Files: 3, FileBytes: 600, SharedBlocks: 2, UsedBlocks: 4, UsedBytes: 10000, DiskBytes: st.DiskBytes}
	if st != want {
		t.Fatalf("Stats = %+v, want %+v", st, want)
	}
	if st.DiskBytes < 0 {
		t.Fatalf("DiskBytes = %d", st.DiskBytes)
	}
	if err := s.Quarantine(ctx, ids[5], "test"); err != nil {
		t.Fatalf("Quarantine: %v", err)
	}
	if err := s.Delete(ctx, ids[4]); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	st = stats(t, s)
	want = blocks.Stats{Blocks: 4, Bytes: total - 5000 - 6000, Files: 3, FileBytes: 600, SharedBlocks: 2, Quarantined: 1, UsedBlocks: 4, UsedBytes: 10000, DiskBytes: st.DiskBytes}
	if st != want {
		t.Fatalf("Stats after Quarantine and Delete = %+v, want %+v", st, want)
	}
}

func testQuarantine(t *testing.T, s blocks.Store) {
	ctx := context.Background()
	a, _ := put(t, s, 1, 4096, 3)
	b, _ := put(t, s, 2, 4096, 4)
	if err := s.Quarantine(ctx, a, "bytes did not match on read"); err != nil {
		t.Fatalf("Quarantine: %v", err)
	}
	if has(t, s, a) {
		t.Fatal("Has = true for a quarantined block")
	}
	if _, err := s.Get(ctx, a); !errors.Is(err, blocks.ErrNotFound) {
		t.Fatalf("Get of a quarantined block: err = %v, want ErrNotFound", err)
	}
	if ids, _ := enumerate(t, s); len(ids) != 1 || ids[0] != b {
		t.Fatalf("Enumerate after Quarantine = %v, want only the other block", ids)
	}
	if hasTag(t, s, 3) {
		t.Fatal("HasTag = true for the tag of a quarantined block")
	}
	if st := stats(t, s); st.Quarantined != 1 || st.Blocks != 1 {
		t.Fatalf("Stats after Quarantine = %+v, want 1 block, 1 quarantined", st)
	}
	if err := s.Quarantine(ctx, a, "again"); !errors.Is(err, blocks.ErrNotFound) {
		t.Fatalf("Quarantine of a block not held: err = %v, want ErrNotFound", err)
	}
	if _, err := s.Get(ctx, b); err != nil {
		t.Fatalf("Get of the other block: %v", err)
	}
	// A good copy comes back (from a peer): the block is in service again
	// and off the quarantine list.
	_, data := block(1, 4096)
	if err := s.Put(ctx, a, data, 7); err != nil {
		t.Fatalf("Put of a quarantined block's good copy: %v", err)
	}
	if got, err := s.Get(ctx, a); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("Get after the good copy came back: %v", err)
	}
	if st := stats(t, s); st.Quarantined != 0 || st.Blocks != 2 {
		t.Fatalf("Stats after the good copy came back = %+v, want 2 blocks, none quarantined", st)
	}
}

func testSync(t *testing.T, s blocks.Store) {
	if err := s.Sync(); err != nil {
		t.Fatalf("Sync of an empty store: %v", err)
	}
	put(t, s, 1, 100, 0)
	if err := s.AddFile(context.Background(), blocks.FileRecord{Key: "k"}); err != nil {
		t.Fatalf("AddFile: %v", err)
	}
	if err := s.Sync(); err != nil {
		t.Fatalf("Sync: %v", err)
	}
	if err := s.Sync(); err != nil {
		t.Fatalf("second Sync: %v", err)
	}
}

func testClosed(t *testing.T, s blocks.Store) {
	ctx := context.Background()
	id, b := put(t, s, 1, 100, 0)
	if err := s.AddFile(ctx, blocks.FileRecord{Key: "k", Blocks: []blocks.ID{id}}); err != nil {
		t.Fatalf("AddFile: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	check := func(name string, err error) {
		t.Helper()
		if !errors.Is(err, blocks.ErrClosed) {
			t.Errorf("%s after Close: err = %v, want ErrClosed", name, err)
		}
	}
	_, err := s.Get(ctx, id)
	check("Get", err)
	check("Put", s.Put(ctx, id, b, 0))
	_, err = s.Has(ctx, id)
	check("Has", err)
	_, err = s.Stat(ctx, id)
	check("Stat", err)
	check("Delete", s.Delete(ctx, id))
	check("Enumerate", s.Enumerate(ctx, func(blocks.ID, blocks.Meta) error { return nil }))
	_, err = s.HasTag(ctx, 0)
	check("HasTag", err)
	check("AddFile", s.AddFile(ctx, blocks.FileRecord{Key: "x"}))
	check("RemoveFile", s.RemoveFile(ctx, "k"))
	_, err = s.Files(ctx)
	check("Files", err)
	_, err = s.File(ctx, "k")
	check("File", err)
	check("Quarantine", s.Quarantine(ctx, id, "x"))
	_, err = s.Stats(ctx)
	check("Stats", err)
}

func testConcurrent(t *testing.T, s blocks.Store) {
	ctx := context.Background()
	const workers, perWorker, size = 8, 40, 8 << 10
	// Workers overlap: worker w puts seeds w*perWorker/2 … so that half of
	// its blocks are also put by its neighbour, at about the same time.
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(w), 1))
			var mine []blocks.ID
			for i := range perWorker {
				seed := uint64(w*perWorker/2 + i)
				id, b := block(seed, size)
				if err := s.Put(ctx, id, b, seed%5); err != nil {
					errs <- fmt.Errorf("worker %d: Put: %w", w, err)
					return
				}
				mine = append(mine, id)
				got, err := s.Get(ctx, mine[r.IntN(len(mine))])
				if err != nil {
					errs <- fmt.Errorf("worker %d: Get: %w", w, err)
					return
				}
				if len(got) != size {
					errs <- fmt.Errorf("worker %d: Get returned %d bytes", w, len(got))
					return
				}
				if i%10 == 9 {
					if err := s.AddFile(ctx, blocks.FileRecord{Key: fmt.Sprintf("w%d-%d", w, i), Size: 1, Blocks: mine[len(mine)-10:]}); err != nil {
						errs <- fmt.Errorf("worker %d: AddFile: %w", w, err)
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if t.Failed() {
		return
	}
	distinct := workers*perWorker/2 + perWorker/2
	ids, metas := enumerate(t, s)
	if len(ids) != distinct {
		t.Fatalf("Enumerate: %d blocks, want %d distinct", len(ids), distinct)
	}
	tags := map[blocks.ID]uint64{}
	for seed := range uint64(distinct) {
		id, _ := block(seed, size)
		tags[id] = seed % 5
	}
	seqs := map[uint64]bool{}
	totalRefs := 0
	for id, m := range metas {
		if seqs[m.Seq] {
			t.Fatalf("Seq %d used twice", m.Seq)
		}
		seqs[m.Seq] = true
		totalRefs += m.Refs
		if tag, ok := tags[id]; !ok || m.Tag != tag {
			t.Fatalf("block %s has tag %d, not the one every Put used", id.Short(), m.Tag)
		}
	}
	if want := workers * perWorker; totalRefs != want {
		t.Fatalf("sum of Refs = %d, want %d (one per block per file)", totalRefs, want)
	}
	if st := stats(t, s); st.Blocks != distinct || st.Bytes != int64(distinct*size) || st.Files != workers*perWorker/10 {
		t.Fatalf("Stats = %+v", st)
	}
}
