package blocks

import (
	"context"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// logsOpts gives the logs tests' stores segments of 64 KiB.
var logsOpts = DiskOptions{SegmentSize: 64 << 10}

// logsStore opens a store in dir holding n random 1 KiB blocks.
func logsStore(t *testing.T, dir string, n int) (*Disk, []ID) {
	t.Helper()
	s, err := OpenDisk(dir, logsOpts)
	if err != nil {
		t.Fatal(err)
	}
	var ids []ID
	for range n {
		data := make([]byte, 1<<10)
		_, _ = rand.Read(data)
		b, _ := NewBlock(data)
		if err := s.PutBlock(context.Background(), b, 1); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, b.ID())
	}
	return s, ids
}

// rebuildIndex closes s, rebuilds its index in dir from the segments and
// the logs alone, and opens the store again.
func rebuildIndex(t *testing.T, s *Disk, dir string) *Disk {
	t.Helper()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Join(dir, indexDir)); err != nil {
		t.Fatal(err)
	}
	if _, err := RebuildIndex(dir, logsOpts); err != nil {
		t.Fatal(err)
	}
	s, err := OpenDisk(dir, logsOpts)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestLogsRewritten: the files journal rewritten to its live files and the
// gone log trimmed still rebuild the same store: the removed file stays
// removed, the deleted block stays deleted, the rest comes back.
func TestLogsRewritten(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, ids := logsStore(t, dir, 20)
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
	s = rebuildIndex(t, s, dir)
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

// TestJournalRefusesLongRecord: a file whose record the journal's reader
// would take for a torn tail is refused, and the journal stays whole: the
// files added before and after it come back from it alone.
func TestJournalRefusesLongRecord(t *testing.T) {
	defer func(n int) { maxJournalRecord = n }(maxJournalRecord)
	maxJournalRecord = 4 << 10 // about 90 blocks
	ctx := context.Background()
	dir := t.TempDir()
	s, ids := logsStore(t, dir, 120)
	if err := s.AddFile(ctx, FileRecord{Key: "a", Name: "a", Blocks: ids[:5]}); err != nil {
		t.Fatal(err)
	}
	if err := s.AddFile(ctx, FileRecord{Key: "big", Name: "big", Blocks: ids}); !errors.Is(err, ErrFileTooLarge) {
		t.Fatalf("a file of %d blocks: %v, want ErrFileTooLarge", len(ids), err)
	}
	if _, err := s.File(ctx, "big"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("the refused file is recorded: %v", err)
	}
	if err := s.AddFile(ctx, FileRecord{Key: "b", Name: "b", Blocks: ids[5:10]}); err != nil {
		t.Fatal(err)
	}
	s = rebuildIndex(t, s, dir)
	defer s.Close()
	fs, err := s.Files(ctx)
	if err != nil || len(fs) != 2 || fs[0].Key != "a" || fs[1].Key != "b" {
		t.Fatalf("files rebuilt from the journal %+v, %v; want a and b", fs, err)
	}
}
