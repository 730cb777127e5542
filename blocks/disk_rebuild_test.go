package blocks_test

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/blockmix/blockmix/blocks"
)

// TestRebuildIndex: with the index directory gone, RebuildIndex brings
// back every block (bytes and tag), every file with its block list and
// references, and not the block deleted or the file removed before.
func TestRebuildIndex(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	o := blocks.DiskOptions{SegmentSize: 64 << 10} // several segments
	s := openDisk(t, dir, o)
	r := rand.New(rand.NewPCG(7, 7))
	type held struct {
		data []byte
		tag  uint64
	}
	want := map[blocks.ID]held{}
	var ids []blocks.ID
	for i := range 40 {
		tag := uint64(i)*7 + 1
		id, data := mustPut(t, s, r, []int{1 << 10, 16 << 10}[i%2], tag)
		want[id] = held{data, tag}
		ids = append(ids, id)
	}
	deleted := ids[3]
	if err := s.Delete(ctx, deleted); err != nil {
		t.Fatal(err)
	}
	delete(want, deleted)
	files := []blocks.FileRecord{
		{Key: "a", Name: "a.txt", Size: 10, Recipe: "blockmix:a", Blocks: ids[:10]},
		{Key: "b", Name: "b.bin", Size: 20, Recipe: "blockmix:b", Blocks: ids[5:20]},
		{Key: "c", Name: "c.bin", Size: 30, Recipe: "blockmix:c", Blocks: ids[30:]},
	}
	for _, f := range files {
		if err := s.AddFile(ctx, f); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.AddFile(ctx, blocks.FileRecord{Key: "a", Name: "renamed.txt", Recipe: "blockmix:a"}); err != nil {
		t.Fatal(err)
	}
	if err := s.RemoveFile(ctx, "c"); err != nil {
		t.Fatal(err)
	}
	before := map[blocks.ID]blocks.Meta{}
	if err := s.Enumerate(ctx, func(id blocks.ID, m blocks.Meta) error { before[id] = m; return nil }); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Join(dir, "index")); err != nil {
		t.Fatal(err)
	}
	info, err := blocks.RebuildIndex(dir, o)
	if err != nil {
		t.Fatal(err)
	}
	if info.Added != len(want) || info.Files != 2 || info.Scanned < 2 || info.Dropped != 0 {
		t.Fatalf("rebuild = %+v; want %d blocks from several segments, 2 files", info, len(want))
	}
	s = openDisk(t, dir, o)
	defer s.Close()
	n := 0
	if err := s.Enumerate(ctx, func(id blocks.ID, m blocks.Meta) error {
		n++
		w, ok := want[id]
		if !ok {
			t.Errorf("block %s is back, want it gone", id)
			return nil
		}
		if m.Tag != w.tag || m.Refs != before[id].Refs {
			t.Errorf("block %s: tag %d refs %d, want tag %d refs %d", id, m.Tag, m.Refs, w.tag, before[id].Refs)
		}
		got, err := s.Get(ctx, id)
		if err != nil || !bytes.Equal(got, w.data) {
			t.Errorf("block %s: %v", id, err)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if n != len(want) {
		t.Fatalf("%d blocks after the rebuild, want %d", n, len(want))
	}
	fs, err := s.Files(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(fs) != 2 || fs[0].Key != "a" || fs[0].Name != "renamed.txt" || fs[1].Key != "b" {
		t.Fatalf("files after the rebuild: %+v", fs)
	}
	b, err := s.File(ctx, "b")
	if err != nil || len(b.Blocks) != 15 {
		t.Fatalf("file b: %d blocks, %v", len(b.Blocks), err)
	}
	if _, err := s.File(ctx, "c"); !errors.Is(err, blocks.ErrNotFound) {
		t.Fatalf("removed file c: %v", err)
	}
	if old, _ := filepath.Glob(filepath.Join(dir, "index.old-*")); len(old) != 0 {
		t.Fatalf("an index that was gone was set aside: %v", old)
	}
}
