package blocks

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
)

// listParts gives ids to add in parts of 700, with some IDs given again in
// later parts (across chunk boundaries), as a put's tuples name their
// shared randomizers again and again.
func listParts(ids []ID) func(add func([]ID) error) error {
	return func(add func([]ID) error) error {
		all := append(append(append([]ID(nil), ids...), ids[10:20]...), ids[len(ids)-100:]...)
		all = slices.Insert(all, 3000, ids[:50]...)
		for len(all) > 0 {
			n := min(700, len(all))
			if err := add(all[:n]); err != nil {
				return err
			}
			all = all[n:]
		}
		return nil
	}
}

// setMemberAfter sets memberAfter for the test.
func setMemberAfter(t testing.TB, n int) {
	old := memberAfter
	memberAfter = n
	t.Cleanup(func() { memberAfter = old })
}

// checkFile checks that key lists exactly ids, in order, and that each of
// them has refs references.
func checkFile(t *testing.T, s *Disk, key string, ids []ID, refs int) {
	t.Helper()
	ctx := context.Background()
	var got []ID
	parts := 0
	if err := s.FileBlocks(ctx, key, func(p []ID) error { got = append(got, p...); parts++; return nil }); err != nil {
		t.Fatalf("FileBlocks(%s): %v", key, err)
	}
	if !slices.Equal(got, ids) {
		t.Fatalf("FileBlocks(%s): %d blocks, want the %d added, in order", key, len(got), len(ids))
	}
	if want := (len(ids) + fileListChunk - 1) / fileListChunk; parts != want {
		t.Fatalf("FileBlocks(%s) gave %d parts, want %d", key, parts, want)
	}
	f, err := s.File(ctx, key)
	if err != nil || f.NBlock != len(ids) || !slices.Equal(f.Blocks, ids) {
		t.Fatalf("File(%s): %d blocks, NBlock %d, %v; want %d", key, len(f.Blocks), f.NBlock, err, len(ids))
	}
	checkRefs(t, s, ids, refs)
}

func checkRefs(t *testing.T, s *Disk, ids []ID, refs int) {
	t.Helper()
	for _, id := range ids {
		m, err := s.Stat(context.Background(), id)
		if err != nil || m.Refs != refs {
			t.Fatalf("block %s: %d references (%v), want %d", id, m.Refs, err, refs)
		}
	}
	s.idxMu.Lock()
	err := s.checkLists(true)
	s.idxMu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
}

// journalOps counts the files journal's records by op.
func journalOps(t *testing.T, s *Disk) map[string]int {
	t.Helper()
	size, err := s.journal.Size()
	if err != nil {
		t.Fatal(err)
	}
	ops := map[string]int{}
	jr := newJournalReader(s.journal, 0, size)
	for op, _, ok := jr.next(); ok; op, _, ok = jr.next() {
		ops[op.Op]++
	}
	return ops
}

// TestFileListInParts: a list longer than a chunk, given in parts that
// repeat blocks, is recorded once per block, in order, in chunks; the
// journal holds it as begin, parts and commit, from which a rebuilt index
// gets the same list and references; removing the file takes them back.
func TestFileListInParts(t *testing.T) {
	// Repeats found in memory, and (past 1000 blocks) in the index.
	for _, after := range []int{memberAfter, 1000} {
		t.Run(fmt.Sprintf("memberAfter=%d", after), func(t *testing.T) {
			setMemberAfter(t, after)
			testFileListInParts(t)
		})
	}
}

func testFileListInParts(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, ids := logsStore(t, dir, 2*fileListChunk+400)
	n, err := s.AddFileList(ctx, FileRecord{Key: "big", Name: "big", Size: 1}, listParts(ids))
	if err != nil || n != len(ids) {
		t.Fatalf("AddFileList: %d, %v; want %d", n, err, len(ids))
	}
	checkFile(t, s, "big", ids, 1)
	if ops := journalOps(t, s); ops["begin"] != 1 || ops["part"] != 3 || ops["commit"] != 1 || ops["add"] != 0 {
		t.Fatalf("journal records %v, want a begin, 3 parts and a commit", ops)
	}
	// Known: a new name, no new references, and list is not called.
	n, err = s.AddFileList(ctx, FileRecord{Key: "big", Name: "renamed"}, func(func([]ID) error) error {
		t.Fatal("list called for a known file")
		return nil
	})
	if err != nil || n != len(ids) {
		t.Fatalf("AddFileList of a known file: %d, %v", n, err)
	}
	s = rebuildIndex(t, s, dir)
	checkFile(t, s, "big", ids, 1)
	if f, err := s.File(ctx, "big"); err != nil || f.Name != "renamed" {
		t.Fatalf("rebuilt record %+v, %v; want the new name", f.Name, err)
	}
	// The journal rewritten copies the list in parts.
	s.idxMu.Lock()
	files, _, err := s.readJournal()
	if err == nil {
		err = s.rewriteJournal(files)
	}
	s.idxMu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	if ops := journalOps(t, s); ops["begin"] != 1 || ops["part"] != 3 || ops["commit"] != 1 {
		t.Fatalf("rewritten journal records %v, want a begin, 3 parts and a commit", ops)
	}
	s = rebuildIndex(t, s, dir)
	checkFile(t, s, "big", ids, 1)
	if err := s.RemoveFile(ctx, "big"); err != nil {
		t.Fatal(err)
	}
	checkRefs(t, s, ids, 0)
	s = rebuildIndex(t, s, dir)
	defer s.Close()
	checkRefs(t, s, ids, 0)
	if _, err := s.File(ctx, "big"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("removed file after a rebuild: %v", err)
	}
}

// TestFileListTakenBack: a list whose giver fails after two chunks were
// written leaves nothing (no record, no reference, no chunk, no pending
// key), now and after a rebuild from the journal, and the same file can
// then be added.
func TestFileListTakenBack(t *testing.T) {
	setMemberAfter(t, 1000) // member keys are written, and must go
	ctx := context.Background()
	dir := t.TempDir()
	s, ids := logsStore(t, dir, 2*fileListChunk+400)
	boom := errors.New("the tuple log failed")
	list := func(add func([]ID) error) error {
		if err := add(ids[:2*fileListChunk+100]); err != nil {
			return err
		}
		return boom
	}
	if _, err := s.AddFileList(ctx, FileRecord{Key: "f", Name: "f"}, list); !errors.Is(err, boom) {
		t.Fatalf("AddFileList: %v, want the list's error", err)
	}
	if _, err := s.File(ctx, "f"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("File after a failed add: %v", err)
	}
	checkRefs(t, s, ids, 0)
	s = rebuildIndex(t, s, dir)
	checkRefs(t, s, ids, 0)
	if _, err := s.File(ctx, "f"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("File after a failed add and a rebuild: %v", err)
	}
	if _, err := s.AddFileList(ctx, FileRecord{Key: "f", Name: "f"}, listParts(ids)); err != nil {
		t.Fatal(err)
	}
	checkFile(t, s, "f", ids, 1)
	s.Close()
}

// TestFileListCrashTakenBack: a list a crash cut short (here: the giver
// panics, so no rollback runs) is taken back when the store opens next;
// a replay of the journal skips it.
func TestFileListCrashTakenBack(t *testing.T) {
	setMemberAfter(t, 1000) // member keys are written, and must go
	ctx := context.Background()
	dir := t.TempDir()
	s, ids := logsStore(t, dir, 2*fileListChunk+400)
	func() {
		defer func() { _ = recover() }()
		_, _ = s.AddFileList(ctx, FileRecord{Key: "f", Name: "f"}, func(add func([]ID) error) error {
			_ = add(ids[:2*fileListChunk+100])
			panic("power cut")
		})
	}()
	s.idxMu.Lock()
	half := s.checkLists(true)
	s.idxMu.Unlock()
	if half == nil {
		t.Fatal("the cut list left nothing behind: the test cuts too early")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err := OpenDisk(dir, logsOpts)
	if err != nil {
		t.Fatal(err)
	}
	checkRefs(t, s, ids, 0)
	if _, err := s.File(ctx, "f"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("File after the cut: %v", err)
	}
	if err := s.AddFile(ctx, FileRecord{Key: "g", Name: "g", Blocks: ids[:3]}); err != nil {
		t.Fatal(err)
	}
	s = rebuildIndex(t, s, dir)
	defer s.Close()
	if fs, err := s.Files(ctx); err != nil || len(fs) != 1 || fs[0].Key != "g" {
		t.Fatalf("files after a rebuild: %+v, %v; want g alone", fs, err)
	}
	checkRefs(t, s, ids[3:], 0)
}

// TestRecoveryMendsCutList: after a crash, a file whose index kept its
// record but lost a chunk of its list (goleveldb kept a later batch of its
// journal and lost an earlier one) gets its whole list back from the files
// journal.
func TestRecoveryMendsCutList(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, ids := logsStore(t, dir, 2*fileListChunk+400)
	defer func() { s.Close() }()
	if _, err := s.AddFileList(ctx, FileRecord{Key: "f", Name: "f"}, listParts(ids)); err != nil {
		t.Fatal(err)
	}
	if err := s.Sync(); err != nil {
		t.Fatal(err)
	}
	// The first chunk's batch lost: its chunk and its references.
	s.idxMu.Lock()
	b := s.batch()
	err := s.addRefs(b, ids[:fileListChunk], -1)
	if err == nil {
		b.Delete(listKey("f", 0))
		err = s.write(b)
	}
	s.idxMu.Unlock()
	if err == nil {
		_, err = s.recover(s.scanFrom)
	}
	if err != nil {
		t.Fatal(err)
	}
	checkFile(t, s, "f", ids, 1)
}
