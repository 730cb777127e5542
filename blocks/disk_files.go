package blocks

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/syndtr/goleveldb/leveldb"
	"github.com/syndtr/goleveldb/leveldb/util"
)

// diskFile is a file record as the index keeps it; its Blocks are stored
// apart, in list chunks.
type diskFile struct {
	FileRecord
	Order uint64 `json:"order"`
}

// readFile reads the record of key from r, or returns an error wrapping
// ErrNotFound.
func readFile(r leveldb.Reader, key string) (diskFile, error) {
	v, err := r.Get(fileKey(key), nil)
	if errors.Is(err, leveldb.ErrNotFound) {
		return diskFile{}, fmt.Errorf("file %q: %w", key, ErrNotFound)
	}
	if err != nil {
		return diskFile{}, fmt.Errorf("file %q: read index: %w", key, err)
	}
	return decodeFile(fileKey(key), v)
}

// decodeFile decodes the file record v stored under k.
func decodeFile(k, v []byte) (diskFile, error) {
	var f diskFile
	if err := json.Unmarshal(v, &f); err != nil {
		return diskFile{}, fmt.Errorf("file %q: %w: %v", k[1:], errIndex, err)
	}
	return f, nil
}

func (s *Disk) putFile(b *leveldb.Batch, f diskFile) error {
	f.Blocks = nil
	v, err := json.Marshal(f)
	if err != nil {
		return fmt.Errorf("file %q: %w", f.Key, err)
	}
	b.Put(fileKey(f.Key), v)
	return nil
}

// walkList calls fn with each list chunk of key in r, in order.
func walkList(r leveldb.Reader, key string, fn func([]ID) error) error {
	it := r.NewIterator(util.BytesPrefix(listPrefix(key)), nil)
	defer it.Release()
	for it.Next() {
		v := it.Value()
		if len(v)%len(ID{}) != 0 {
			return fmt.Errorf("file %q: block list: %w", key, errIndex)
		}
		if err := fn(bytesIDs(v)); err != nil {
			return err
		}
	}
	if err := it.Error(); err != nil {
		return fmt.Errorf("file %q: read index: %w", key, err)
	}
	return nil
}

// readList reads the record of key and calls fn with its list a chunk at
// a time, both from one snapshot of the index.
func (s *Disk) readList(key string, fn func([]ID) error) (FileRecord, error) {
	if err := s.enter(); err != nil {
		return FileRecord{}, err
	}
	defer s.exit()
	snap, err := s.db.GetSnapshot()
	if err != nil {
		return FileRecord{}, fmt.Errorf("file %q: %w", key, err)
	}
	defer snap.Release()
	f, err := readFile(snap, key)
	if err != nil {
		return FileRecord{}, err
	}
	return f.FileRecord, walkList(snap, key, fn)
}

// AddFile implements Filer: it is AddFileList with f.Blocks as the one
// part.
func (s *Disk) AddFile(ctx context.Context, f FileRecord) error {
	ids := f.Blocks
	_, err := s.AddFileList(ctx, f, func(add func([]ID) error) error { return add(ids) })
	return err
}

// AddFileList implements Filer. A list of up to fileListChunk distinct
// blocks is written as one journal record and one atomic batch (record,
// list and references); a longer one a chunk at a time, taken back on
// error and after a crash before its commit (see disk_filelist.go). The
// store holds one chunk of it at a time, and the blocks listed so far in a
// set of at most memberAfter (past that, in the index until the commit).
// Only blocks the store holds when a chunk is written get a reference.
func (s *Disk) AddFileList(_ context.Context, f FileRecord, list func(add func([]ID) error) error) (int, error) {
	if err := s.enterWrite(); err != nil {
		return 0, err
	}
	defer s.exit()
	s.idxMu.Lock()
	defer s.idxMu.Unlock()
	f.Blocks = nil
	old, err := readFile(s.db, f.Key)
	switch {
	case err == nil:
		// Known: a new name and recipe, no new references.
		if err := s.appendJournal(journalOp{Op: "add", File: f}); err != nil {
			return 0, fmt.Errorf("add file %q: %w", f.Key, err)
		}
		old.Name, old.Recipe, old.Type = f.Name, f.Recipe, f.Type
		b := s.batch()
		if err := s.putFile(b, old); err != nil {
			return 0, err
		}
		if err := s.write(b); err != nil {
			return 0, fmt.Errorf("add file %q: %w", f.Key, err)
		}
		return old.NBlock, nil
	case !errors.Is(err, ErrNotFound):
		return 0, err
	}
	return s.addListLocked(f, list, true)
}

// addRefs adds delta to the Refs of every held block of ids (which must not
// repeat), never going below zero. The caller holds idxMu and got b from
// batch.
func (s *Disk) addRefs(b *leveldb.Batch, ids []ID, delta int) error {
	for _, id := range ids {
		e, err := s.entry(id)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return err
		}
		if e.Refs+delta < 0 {
			continue
		}
		was := e
		e.Refs += delta
		s.setEntry(b, id, &was, &e)
	}
	return nil
}

// RemoveFile implements Filer, after a record in the files journal (see
// removeFileLocked).
func (s *Disk) RemoveFile(_ context.Context, key string) error {
	if err := s.enterWrite(); err != nil {
		return err
	}
	defer s.exit()
	s.idxMu.Lock()
	defer s.idxMu.Unlock()
	if _, err := readFile(s.db, key); err != nil {
		return err
	}
	if err := s.appendJournal(journalOp{Op: "remove", File: FileRecord{Key: key}}); err != nil {
		return fmt.Errorf("remove file %q: %w", key, err)
	}
	return s.removeFileLocked(key)
}

// removeFileLocked is RemoveFile without the journal: the record goes in
// one batch, then its list a chunk at a time with the references each
// counted (a crash part-way leaves chunks no record names, which a
// recovery takes back: see dropOrphanLists). The caller holds idxMu.
func (s *Disk) removeFileLocked(key string) error {
	f, err := readFile(s.db, key)
	if err != nil {
		return err
	}
	b := s.batch()
	b.Delete(fileKey(key))
	b.Delete(orderKey(f.Order))
	s.pend.Files--
	s.pend.FileBytes -= f.Size
	if err := s.write(b); err != nil {
		return fmt.Errorf("remove file %q: %w", key, err)
	}
	if err := s.dropListChunks(key); err != nil {
		return fmt.Errorf("remove file %q: %w", key, err)
	}
	return nil
}

// Files implements Filer.
func (s *Disk) Files(_ context.Context) ([]FileRecord, error) {
	if err := s.enter(); err != nil {
		return nil, err
	}
	defer s.exit()
	snap, err := s.db.GetSnapshot()
	if err != nil {
		return nil, fmt.Errorf("files: %w", err)
	}
	defer snap.Release()
	it := snap.NewIterator(util.BytesPrefix([]byte{prefixOrder}), nil)
	defer it.Release()
	out := []FileRecord{}
	for it.Next() {
		f, err := readFile(snap, string(it.Value()))
		if err != nil {
			return nil, err
		}
		out = append(out, f.FileRecord)
	}
	if err := it.Error(); err != nil {
		return nil, fmt.Errorf("files: read index: %w", err)
	}
	return out, nil
}

// File implements Filer.
func (s *Disk) File(_ context.Context, key string) (FileRecord, error) {
	var ids []ID
	f, err := s.readList(key, func(p []ID) error { ids = append(ids, p...); return nil })
	if err != nil {
		return FileRecord{}, err
	}
	f.Blocks = ids
	return f, nil
}

// Record implements Filer.
func (s *Disk) Record(_ context.Context, key string) (FileRecord, error) {
	if err := s.enter(); err != nil {
		return FileRecord{}, err
	}
	defer s.exit()
	f, err := readFile(s.db, key)
	return f.FileRecord, err
}

// Quarantine implements Store. It removes the block from the index, records
// reason under the block's ID, and copies whatever bytes are where the block
// was to dir/quarantine/<cid> for audit. A failed copy does not stop the
// quarantine; it is noted in the recorded reason. It returns an error
// wrapping ErrNotFound when the block is not held. The block's record in its
// segment becomes dead bytes, which Compact reclaims; the audit copy stays.
func (s *Disk) Quarantine(_ context.Context, id ID, reason string) error {
	if err := s.enterWrite(); err != nil {
		return err
	}
	defer s.exit()
	s.idxMu.Lock()
	defer s.idxMu.Unlock()
	e, err := s.entry(id)
	if err != nil {
		return err
	}
	return s.quarantineLocked(id, e, reason)
}

// quarantineLocked quarantines id, whose current entry is e. The caller holds
// idxMu.
func (s *Disk) quarantineLocked(id ID, e entry, reason string) error {
	if err := s.saveQuarantined(id, e); err != nil {
		reason += fmt.Sprintf(" (audit copy failed: %v)", err)
	}
	if err := s.noteGone(id); err != nil {
		return fmt.Errorf("quarantine block %s: %w", id, err)
	}
	b := s.batch()
	s.setEntry(b, id, &e, nil)
	b.Put(quarKey(id), []byte(reason))
	s.pend.Quarantined++
	if err := s.addDead(b, e.Seg, e.recordSize()); err != nil {
		return fmt.Errorf("quarantine block %s: %w", id, err)
	}
	if err := s.write(b); err != nil {
		return fmt.Errorf("quarantine block %s: %w", id, err)
	}
	return nil
}

func (s *Disk) saveQuarantined(id ID, e entry) error {
	data, err := s.readRaw(e)
	if err != nil {
		return err
	}
	dir := filepath.Join(s.dir, quarantineDir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, ".tmp-*")
	if err != nil {
		return err
	}
	_, err = tmp.Write(data)
	if serr := tmp.Sync(); err == nil {
		err = serr
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), filepath.Join(dir, id.String()))
	}
	if err != nil {
		os.Remove(tmp.Name())
	}
	return err
}

// Stats implements Store. Its counts are kept in the index beside the
// entries they count (no walk); DiskBytes is the sum of the segments' sizes
// and of the files in the index and quarantine directories.
func (s *Disk) Stats(_ context.Context) (Stats, error) {
	if err := s.enter(); err != nil {
		return Stats{}, err
	}
	defer s.exit()
	s.shownMu.Lock()
	c := s.shown
	s.shownMu.Unlock()
	return Stats{
		Blocks:       int(c.Blocks),
		Bytes:        c.Bytes,
		Files:        int(c.Files),
		FileBytes:    c.FileBytes,
		SharedBlocks: int(c.Shared),
		Quarantined:  int(c.Quarantined),
		HeldBlocks:   int(c.Held),
		HeldBytes:    c.HeldBytes,
		UsedBlocks:   int(c.Used),
		UsedBytes:    c.UsedBytes,
		DiskBytes: s.segmentBytes() +
			dirSize(filepath.Join(s.dir, indexDir)) +
			dirSize(filepath.Join(s.dir, quarantineDir)),
	}, nil
}

// dirSize sums the sizes of the regular files under dir, ignoring errors
// (goleveldb may remove a file while we walk).
func dirSize(dir string) int64 {
	var n int64
	filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return nil
		}
		if fi, err := d.Info(); err == nil {
			n += fi.Size()
		}
		return nil
	})
	return n
}
