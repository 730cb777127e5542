package blocks

import (
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/syndtr/goleveldb/leveldb"
	"github.com/syndtr/goleveldb/leveldb/util"
)

// checkDerived compares what the index keeps beside the entries (the
// counters, the candidate keys and the tag keys) with a walk of the
// entries: every candidate key belongs to an entry that makes it, every
// entry that makes one has it, the t keys are the entries' tags, every
// entry's tag has its h key, and the counters are the walk's.
func (s *Disk) checkDerived() error {
	if err := s.enter(); err != nil {
		return err
	}
	defer s.exit()
	s.idxMu.Lock()
	defer s.idxMu.Unlock()
	var want counts
	keys := map[string]string{}
	tagKeys := map[string]bool{}
	err := s.walkPrefix(prefixBlock, func(k, v []byte) error {
		id, err := blockKeyID(k)
		if err != nil {
			return err
		}
		e, err := decodeEntry(v)
		if err != nil {
			return err
		}
		want.add(e, +1)
		tagKeys[string(tagKey(e.Tag, id))] = true
		if !s.tagScan {
			if ok, err := s.db.Has(hasTagKey(e.Tag), nil); err != nil || !ok {
				return fmt.Errorf("block %s: no h key for its tag %#x (%v)", id, e.Tag, err)
			}
		}
		if key, val := candidateKey(id, e); key != nil {
			keys[string(key)] = string(val)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if err := s.walkPrefix(prefixFile, func(k, v []byte) error {
		f, err := decodeFile(k, v)
		want.Files++
		want.FileBytes += f.Size
		return err
	}); err != nil {
		return err
	}
	if err := s.walkPrefix(prefixQuar, func(_, _ []byte) error { want.Quarantined++; return nil }); err != nil {
		return err
	}
	if s.cnt != want {
		return fmt.Errorf("counters %+v, a walk counts %+v", s.cnt, want)
	}
	if !s.readOnly {
		v, err := s.db.Get(keyCounts, nil)
		if err != nil {
			return fmt.Errorf("counters in the index: %w", err)
		}
		if c, err := decodeCounts(v); err != nil || c != want {
			return fmt.Errorf("counters in the index %+v (%v), a walk counts %+v", c, err, want)
		}
	}
	for _, p := range []byte{prefixUnder, prefixShared} {
		it := s.db.NewIterator(util.BytesPrefix([]byte{p}), nil)
		for it.Next() {
			k := string(it.Key())
			if v, ok := keys[k]; !ok || v != string(it.Value()) {
				it.Release()
				return fmt.Errorf("candidate key %x → %x matches no entry", k, it.Value())
			}
			delete(keys, k)
		}
		it.Release()
		if err := it.Error(); err != nil {
			return err
		}
	}
	for k := range keys {
		return fmt.Errorf("candidate key %x is missing (and %d more)", k, len(keys)-1)
	}
	n := 0
	if err := s.walkPrefix(prefixTag, func(k, _ []byte) error {
		if !tagKeys[string(k)] {
			return fmt.Errorf("tag key %x matches no entry", k)
		}
		n++
		return nil
	}); err != nil {
		return err
	}
	if n != len(tagKeys) {
		return fmt.Errorf("%d tag keys, want %d", n, len(tagKeys))
	}
	// Not the references: after a power cut goleveldb may keep a later
	// batch that wrote an entry's count with an earlier, lost one's in it.
	return s.checkLists(false)
}

// checkLists checks the file lists: every list chunk belongs to a
// recorded file whose NBlock its chunks add up to, no list is left half
// added (no pending mark, no member key) and, with refs, no block has more
// references than lists name it (fewer is allowed: a block put after its
// file was recorded counts none). The caller holds idxMu.
func (s *Disk) checkLists(refs bool) error {
	named := map[ID]int{}
	listed := map[string]int{}
	if err := s.walkPrefix(prefixList, func(k, v []byte) error {
		key, _ := listKeyFile(k)
		listed[key] += len(v) / len(ID{})
		for _, id := range bytesIDs(v) {
			named[id]++
		}
		return nil
	}); err != nil {
		return err
	}
	if err := s.walkPrefix(prefixFile, func(k, v []byte) error {
		f, err := decodeFile(k, v)
		if err != nil {
			return err
		}
		if listed[f.Key] != f.NBlock {
			return fmt.Errorf("file %q lists %d blocks, its record says %d", f.Key, listed[f.Key], f.NBlock)
		}
		delete(listed, f.Key)
		return nil
	}); err != nil {
		return err
	}
	for key, n := range listed {
		return fmt.Errorf("%d list chunks' blocks under %q, which no file record names", n, key)
	}
	if err := s.walkPrefix(prefixBlock, func(k, v []byte) error {
		id, _ := blockKeyID(k)
		if e, err := decodeEntry(v); refs && err == nil && e.Refs > named[id] {
			return fmt.Errorf("block %s has %d references, %d lists name it", id, e.Refs, named[id])
		}
		return nil
	}); err != nil {
		return err
	}
	for _, p := range []byte{prefixPending, prefixMember} {
		if err := s.walkPrefix(p, func(k, _ []byte) error {
			return fmt.Errorf("key %x of a list half added is left", k)
		}); err != nil {
			return err
		}
	}
	return nil
}

// strayHasTags returns the h keys of tags that no block carries (which
// only a crash, or an error, should leave behind).
func (s *Disk) strayHasTags() ([]uint64, error) {
	var stray []uint64
	err := s.walkPrefix(prefixHasTag, func(k, _ []byte) error {
		tag := binary.BigEndian.Uint64(k[1:])
		held, err := s.scanTag(tag)
		if !held {
			stray = append(stray, tag)
		}
		return err
	})
	return stray, err
}

// TestCountersFollowEveryChange runs random puts, deletes, files added and
// removed, quarantines and compactions, and after each step (and across
// reopening) compares the counters and candidate keys with a walk.
func TestCountersFollowEveryChange(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, err := OpenDisk(dir, DiskOptions{SegmentSize: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { s.Close() }()
	rng := rand.New(rand.NewPCG(7, 7))
	var held []ID
	files := []string{}
	for step := 0; step < 400; step++ {
		var what string
		switch op := rng.IntN(10); {
		case op < 4 || len(held) < 4:
			data := make([]byte, []int{1 << 10, 16 << 10}[rng.IntN(2)])
			for i := range data {
				data[i] = byte(rng.Uint32())
			}
			b, _ := NewBlock(data)
			tag := rng.Uint64() &^ ForeignTag
			switch rng.IntN(3) {
			case 0:
				// Few push tags, so that blocks share them.
				tag = PushTag("peer", rng.Uint64()%4)
			case 1:
				tag |= ForeignTag // fetched: no candidate
			}
			what = "put"
			if err := s.PutBlock(ctx, b, tag); err != nil {
				t.Fatal(err)
			}
			held = append(held, b.ID())
		case op == 4:
			i := rng.IntN(len(held))
			what = "delete"
			if err := s.Delete(ctx, held[i]); err != nil {
				t.Fatal(err)
			}
			held = slices.Delete(held, i, i+1)
		case op <= 6:
			key := fmt.Sprintf("file-%d", step)
			var ids []ID
			for range 1 + rng.IntN(6) {
				ids = append(ids, held[rng.IntN(len(held))])
			}
			what = "add file"
			if err := s.AddFile(ctx, FileRecord{Key: key, Name: key, Size: int64(rng.IntN(1 << 20)), Blocks: ids}); err != nil {
				t.Fatal(err)
			}
			files = append(files, key)
		case op == 7 && len(files) > 0:
			i := rng.IntN(len(files))
			what = "remove file"
			if err := s.RemoveFile(ctx, files[i]); err != nil {
				t.Fatal(err)
			}
			files = slices.Delete(files, i, i+1)
		case op == 8:
			i := rng.IntN(len(held))
			what = "quarantine"
			if err := s.Quarantine(ctx, held[i], "test"); err != nil {
				t.Fatal(err)
			}
			held = slices.Delete(held, i, i+1)
		default:
			what = "compact"
			if _, err := s.Compact(ctx, 0.1); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.checkDerived(); err != nil {
			t.Fatalf("step %d (%s): %v", step, what, err)
		}
		if stray, err := s.strayHasTags(); err != nil || len(stray) > 0 {
			t.Fatalf("step %d (%s): h keys of tags no block carries: %#x (%v)", step, what, stray, err)
		}
		if step%100 == 99 {
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			if s, err = OpenDisk(dir, DiskOptions{SegmentSize: 64 << 10}); err != nil {
				t.Fatal(err)
			}
			if err := s.checkDerived(); err != nil {
				t.Fatalf("reopened after step %d: %v", step, err)
			}
		}
	}
	st, err := s.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Blocks != len(held) || st.Files != len(files) {
		t.Fatalf("Stats: %d blocks and %d files, want %d and %d", st.Blocks, st.Files, len(held), len(files))
	}
}

// TestFormat1Upgrades opens a store as the previous version left it (no
// counters, no candidate keys, format marker 1): OpenDisk adds them, and a
// read-only open counts without writing.
func TestFormat1Upgrades(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, err := OpenDisk(dir, DiskOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var ids []ID
	for i := range 50 {
		b, _ := NewBlock([]byte(fmt.Sprintf("block %d", i)))
		if err := s.PutBlock(ctx, b, uint64(i+1)); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, b.ID())
	}
	if err := s.AddFile(ctx, FileRecord{Key: "a", Size: 10, Blocks: ids[:30]}); err != nil {
		t.Fatal(err)
	}
	if err := s.AddFile(ctx, FileRecord{Key: "b", Size: 20, Blocks: ids[20:40]}); err != nil {
		t.Fatal(err)
	}
	want, err := s.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// Back to format 1.
	b := new(leveldb.Batch)
	for _, p := range []byte{prefixUnder, prefixShared} {
		it := s.db.NewIterator(util.BytesPrefix([]byte{p}), nil)
		for it.Next() {
			b.Delete(append([]byte(nil), it.Key()...))
		}
		it.Release()
	}
	if b.Len() != 40 {
		t.Fatalf("%d candidate keys, want 40 (the blocks files use)", b.Len())
	}
	dropHasTagKeys(t, s, b)
	b.Delete(keyCounts)
	b.Put(keyFormat, []byte(formatV1))
	if err := s.db.Write(b, nil); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	ro, err := OpenDisk(dir, DiskOptions{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	got, err := ro.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got.DiskBytes, want.DiskBytes = 0, 0
	if got != want {
		t.Fatalf("read-only open of format 1: Stats %+v, want %+v", got, want)
	}
	ro.Close()

	s, err = OpenDisk(dir, DiskOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.checkDerived(); err != nil {
		t.Fatal(err)
	}
	if v, _ := s.db.Get(keyFormat, nil); string(v) != formatVersion {
		t.Fatalf("format marker %q after the upgrade, want %q", v, formatVersion)
	}
	var shared []ID
	if err := s.Shared(ctx, len("block 20"), func(id ID, m Meta) bool { shared = append(shared, id); return true }); err != nil {
		t.Fatal(err)
	}
	if len(shared) != 10 {
		t.Fatalf("%d shared candidates after the upgrade, want 10", len(shared))
	}
}

// dropHasTagKeys deletes, in b, every h key of s (as a store of format 1
// or 2 has none).
func dropHasTagKeys(t *testing.T, s *Disk, b *leveldb.Batch) {
	t.Helper()
	n := 0
	if err := s.walkPrefix(prefixHasTag, func(k, _ []byte) error {
		b.Delete(append([]byte(nil), k...))
		n++
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if n == 0 {
		t.Fatal("no h keys to drop")
	}
}

// TestFormat2Upgrades opens a store of format 2 (no h keys): a read-only
// open answers HasTag from the t keys, and a writable one adds the h keys
// before its marker moves to 3.
func TestFormat2Upgrades(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, err := OpenDisk(dir, DiskOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		b, _ := NewBlock([]byte(fmt.Sprintf("block %d", i)))
		if err := s.PutBlock(ctx, b, uint64(i%5+1)); err != nil {
			t.Fatal(err)
		}
	}
	b := new(leveldb.Batch)
	dropHasTagKeys(t, s, b)
	b.Put(keyFormat, []byte(formatV2))
	if err := s.db.Write(b, nil); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	hasTags := func(s *Disk) {
		t.Helper()
		for tag := range uint64(7) {
			got, err := s.HasTag(ctx, tag)
			if want := tag >= 1 && tag <= 5; err != nil || got != want {
				t.Fatalf("HasTag(%d) = %v, %v; want %v", tag, got, err, want)
			}
		}
	}

	ro, err := OpenDisk(dir, DiskOptions{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	hasTags(ro)
	if v, _ := ro.db.Get(keyFormat, nil); string(v) != formatV2 {
		t.Fatalf("format marker %q after a read-only open, want %q", v, formatV2)
	}
	ro.Close()

	s, err = OpenDisk(dir, DiskOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if v, _ := s.db.Get(keyFormat, nil); string(v) != formatVersion {
		t.Fatalf("format marker %q after the upgrade, want %q", v, formatVersion)
	}
	if err := s.checkDerived(); err != nil {
		t.Fatal(err)
	}
	hasTags(s)
}

// TestCandidatesOrder: UnderShared lists the blocks one file uses oldest
// first from a given Seq on; Shared lists the blocks several files use
// most used first; neither lists foreign blocks, unused blocks or blocks
// of other sizes.
func TestCandidatesOrder(t *testing.T) {
	ctx := context.Background()
	s, err := OpenDisk(t.TempDir(), DiskOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	put := func(data []byte, tag uint64) ID {
		b, _ := NewBlock(data)
		if err := s.PutBlock(ctx, b, tag); err != nil {
			t.Fatal(err)
		}
		return b.ID()
	}
	const size = 64
	var own []ID
	for i := range 8 {
		own = append(own, put(slices.Repeat([]byte{byte(i)}, size), uint64(100+i)))
	}
	foreign := put(slices.Repeat([]byte{'f'}, size), ForeignTag|5)
	other := put(slices.Repeat([]byte{'o'}, size/2), 7)
	unused := put(slices.Repeat([]byte{'u'}, size), 9)
	_ = unused
	// own[0..5] in file a; own[2..5] also in b; own[4..5] also in c.
	for _, f := range []struct {
		key string
		ids []ID
	}{{"a", append(slices.Clone(own[:6]), foreign, other)}, {"b", own[2:6]}, {"c", own[4:6]}} {
		if err := s.AddFile(ctx, FileRecord{Key: f.key, Blocks: f.ids}); err != nil {
			t.Fatal(err)
		}
	}
	var under []ID
	var seqs []uint64
	if err := s.UnderShared(ctx, size, 0, func(id ID, m Meta) bool {
		under, seqs = append(under, id), append(seqs, m.Seq)
		return true
	}); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(under, own[:2]) {
		t.Fatalf("UnderShared = %v, want own[0:2] %v", under, own[:2])
	}
	var rest []ID
	if err := s.UnderShared(ctx, size, seqs[0], func(id ID, m Meta) bool { rest = append(rest, id); return true }); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(rest, own[1:2]) {
		t.Fatalf("UnderShared after the first = %v, want %v", rest, own[1:2])
	}
	var shared []ID
	var refs []int
	if err := s.Shared(ctx, size, func(id ID, m Meta) bool {
		shared, refs = append(shared, id), append(refs, m.Refs)
		return true
	}); err != nil {
		t.Fatal(err)
	}
	if want := []ID{own[4], own[5], own[2], own[3]}; !slices.Equal(shared, want) || !slices.Equal(refs, []int{3, 3, 2, 2}) {
		t.Fatalf("Shared = %v refs %v, want %v refs [3 3 2 2]", shared, refs, want)
	}
	// Stopping early stops.
	n := 0
	if err := s.Shared(ctx, size, func(ID, Meta) bool { n++; return false }); err != nil || n != 1 {
		t.Fatalf("Shared stopped after %d calls (%v), want 1", n, err)
	}
}
