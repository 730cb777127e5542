package blocks

import (
	"context"
	"crypto/rand"
	"os"
	"path/filepath"
	"testing"
)

// TestLogsRewritten: the files journal rewritten to its live files and the
// gone log trimmed still rebuild the same store: the removed file stays
// removed, the deleted block stays deleted, the rest comes back.
func TestLogsRewritten(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	o := DiskOptions{SegmentSize: 64 << 10}
	s, err := OpenDisk(dir, o)
	if err != nil {
		t.Fatal(err)
	}
	var ids []ID
	for range 20 {
		data := make([]byte, 1<<10)
		_, _ = rand.Read(data)
		b, _ := NewBlock(data)
		if err := s.PutBlock(ctx, b, 1); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, b.ID())
	}
	for _, f := range []FileRecord{{Key: "a", Name: "a", Blocks: ids[:10]}, {Key: "b", Name: "b", Blocks: ids[10:]}} {
		if err := s.AddFile(ctx, f); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.RemoveFile(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, ids[3]); err != nil {
		t.Fatal(err)
	}
	before := s.journalEnd
	s.idxMu.Lock()
	files, _, err := s.readJournal()
	if err == nil {
		err = s.rewriteJournal(files)
	}
	if err == nil {
		err = s.trimGone()
	}
	s.idxMu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	if s.journalEnd >= before || len(files) != 1 {
		t.Fatalf("journal of %d bytes rewritten to %d, %d live files; want smaller, 1", before, s.journalEnd, len(files))
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Join(dir, indexDir)); err != nil {
		t.Fatal(err)
	}
	if _, err := RebuildIndex(dir, o); err != nil {
		t.Fatal(err)
	}
	s, err = OpenDisk(dir, o)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	fs, err := s.Files(ctx)
	if err != nil || len(fs) != 1 || fs[0].Key != "b" {
		t.Fatalf("files %+v, %v; want only b", fs, err)
	}
	for i, id := range ids {
		ok, err := s.Has(ctx, id)
		if err != nil || ok == (i == 3) {
			t.Fatalf("block %d: held %v (%v); only block 3 was deleted", i, ok, err)
		}
	}
}
