package blocks

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/syndtr/goleveldb/leveldb"
	"github.com/syndtr/goleveldb/leveldb/util"
)

// A file's block list is added in parts (AddFileList), so that nothing
// holds it whole: a put's memory stays flat in the file's size. A list of
// at most fileListChunk distinct blocks is written as it always was: one
// "add" record in the files journal and one index batch. A longer one is
// written a chunk at a time:
//
//   - the journal gets "begin" (the file's record), one "part" per chunk
//     and "commit";
//   - each chunk goes to the index in a batch of its own, with the
//     references it counts and the pending mark (p order → key);
//   - a later part finds a block the list already holds in a set in
//     memory while the list has at most memberAfter blocks, and past that
//     in the index, where each block has a member key (a order id),
//     written with its chunk (those of the first memberAfter at once);
//   - the commit's batch writes the record, its order and the counters
//     and drops the pending mark; the member keys go after it.
//
// A list that fails half-way is taken back at once (rollbackList), and one
// a crash cut short when the store opens next (rollbackPending): its
// chunks go, with the references they counted, then its member keys, then
// its mark. The journal's replay skips a begin without its commit.
const (
	prefixPending = 'p' // p order(8, big endian) → key: a list being added
	prefixMember  = 'a' // a order(8, big endian) id(32) → empty: in that list
)

func pendingKey(order uint64) []byte {
	return binary.BigEndian.AppendUint64([]byte{prefixPending}, order)
}

func memberPrefix(order uint64) []byte {
	return binary.BigEndian.AppendUint64([]byte{prefixMember}, order)
}

func memberKey(order uint64, id ID) []byte { return append(memberPrefix(order), id[:]...) }

// memberAfter is how many distinct blocks a list being added finds its
// repeats among in memory (about 2.5 MiB of map at most, a file of some
// 4 GiB); past it they go to the index. (A variable for the tests.)
var memberAfter = 1 << 15

// listWriter adds one new file's list, a chunk at a time. The caller
// holds idxMu from the first add to the end of finish (or of the
// rollback).
type listWriter struct {
	s       *Disk
	f       FileRecord
	order   uint64 // the file's order once committed; names its pending keys
	journal bool   // write journal records (false in a replay of it)
	part    []ID   // the chunk being gathered: distinct, in no earlier chunk
	inPart  map[ID]struct{}
	seen    map[ID]struct{} // every block listed, until spilled
	spilled bool            // the blocks of the chunks written have member keys
	chunks  uint32          // chunks written
	n       int             // distinct blocks in the chunks written
}

// add takes the next part of the list.
func (w *listWriter) add(ids []ID) error {
	for _, id := range ids {
		if _, ok := w.inPart[id]; ok {
			continue
		}
		if _, ok := w.seen[id]; ok {
			continue
		}
		if w.spilled {
			has, err := w.s.db.Has(memberKey(w.order, id), nil)
			if err != nil {
				return fmt.Errorf("read index: %w", err)
			}
			if has {
				continue
			}
		}
		if len(w.part) == fileListChunk {
			if err := w.flush(true); err != nil {
				return err
			}
		}
		w.part = append(w.part, id)
		w.inPart[id] = struct{}{}
	}
	return nil
}

// spill writes a member key for every block seen so far (all in written
// chunks), then drops the set: from now on the index finds repeats.
func (w *listWriter) spill() error {
	rw := rawWriter{s: w.s}
	for id := range w.seen {
		if err := rw.put(memberKey(w.order, id)); err != nil {
			return err
		}
	}
	if err := rw.flush(); err != nil {
		return err
	}
	w.seen, w.spilled = nil, true
	return nil
}

// flush writes the gathered chunk with the pending mark, the journal
// first, then the index; when more may follow (members), it notes the
// chunk's blocks, in the set or, once spilled, as member keys.
func (w *listWriter) flush(members bool) error {
	s := w.s
	if w.journal {
		if w.chunks == 0 {
			if err := s.appendJournal(journalOp{Op: "begin", File: w.f}); err != nil {
				return err
			}
		}
		if err := s.appendJournal(journalOp{Op: "part", File: FileRecord{Key: w.f.Key}, Blocks: idBytes(w.part)}); err != nil {
			return err
		}
	}
	b := s.batch()
	if err := w.putChunk(b); err != nil {
		return err
	}
	b.Put(pendingKey(w.order), []byte(w.f.Key))
	for _, id := range w.part {
		switch {
		case !members:
		case w.spilled:
			b.Put(memberKey(w.order, id), nil)
		default:
			w.seen[id] = struct{}{}
		}
	}
	if err := s.write(b); err != nil {
		return err
	}
	w.part = w.part[:0]
	clear(w.inPart)
	if !w.spilled && len(w.seen) > memberAfter {
		return w.spill()
	}
	return nil
}

// putChunk adds the gathered chunk and its references to b.
func (w *listWriter) putChunk(b *leveldb.Batch) error {
	if len(w.part) == 0 {
		return nil
	}
	if err := w.s.addRefs(b, w.part, +1); err != nil {
		return err
	}
	b.Put(listKey(w.f.Key, w.chunks), idBytes(w.part))
	w.chunks++
	w.n += len(w.part)
	return nil
}

// finish records the file: in one journal record and one batch when its
// list fits one chunk, else after its last chunk and a commit.
func (w *listWriter) finish() error {
	s := w.s
	if w.chunks == 0 {
		if w.journal {
			if err := s.appendJournal(journalOp{Op: "add", File: w.f, Blocks: idBytes(w.part)}); err != nil {
				return err
			}
		}
		b := s.batch()
		if err := w.putChunk(b); err != nil {
			return err
		}
		s.putRecord(b, w.f, w.n, w.order)
		if err := s.write(b); err != nil {
			return err
		}
		s.fileSeq = w.order
		return nil
	}
	if err := w.flush(false); err != nil {
		return err
	}
	if w.journal {
		if err := s.appendJournal(journalOp{Op: "commit", File: FileRecord{Key: w.f.Key}}); err != nil {
			return err
		}
	}
	b := s.batch()
	s.putRecord(b, w.f, w.n, w.order)
	b.Delete(pendingKey(w.order))
	if err := s.write(b); err != nil {
		if w.journal {
			// The journal says committed: it says removed too, or a
			// replay would bring back what the index takes back now.
			err = errors.Join(err, s.appendJournal(journalOp{Op: "remove", File: FileRecord{Key: w.f.Key}}))
		}
		return err
	}
	s.fileSeq = w.order
	// Left behind by a failure or a crash, rollbackPending drops them.
	_ = s.dropPrefix(memberPrefix(w.order))
	return nil
}

// putRecord adds the record of a new file f listing n blocks, its order
// and the counters to b.
func (s *Disk) putRecord(b *leveldb.Batch, f FileRecord, n int, order uint64) {
	f.NBlock = n
	if err := s.putFile(b, diskFile{FileRecord: f, Order: order}); err != nil {
		panic(err) // a FileRecord always encodes
	}
	b.Put(orderKey(order), []byte(f.Key))
	b.Put(keyFileSeq, encodeUint64(order))
	s.pend.Files++
	s.pend.FileBytes += f.Size
}

// addListLocked adds the new file f (its key not in the index) with the
// list that list gives, journalling it when journal is set. On error it
// takes back what it wrote. The caller holds idxMu.
func (s *Disk) addListLocked(f FileRecord, list func(add func([]ID) error) error, journal bool) (int, error) {
	f.Blocks = nil
	w := &listWriter{s: s, f: f, order: s.fileSeq + 1, journal: journal, inPart: map[ID]struct{}{}, seen: map[ID]struct{}{}}
	err := list(w.add)
	if err == nil {
		err = w.finish()
	}
	if err != nil {
		if w.chunks > 0 {
			err = errors.Join(err, s.rollbackList(w.order, f.Key))
		}
		return 0, fmt.Errorf("add file %q: %w", f.Key, err)
	}
	return w.n, nil
}

// rollbackList takes back the chunks a list being added under order wrote
// for key, with the references they counted, then its member keys and its
// pending mark. Each chunk goes in one batch with its references, so a
// crash part-way leaves the mark, and the rest, for rollbackPending. The
// caller holds idxMu.
func (s *Disk) rollbackList(order uint64, key string) error {
	if err := s.dropListChunks(key); err != nil {
		return fmt.Errorf("take back list of %q: %w", key, err)
	}
	if err := s.dropPrefix(memberPrefix(order)); err != nil {
		return fmt.Errorf("take back list of %q: %w", key, err)
	}
	b := new(leveldb.Batch)
	b.Delete(pendingKey(order))
	if err := s.writeRaw(b); err != nil {
		return fmt.Errorf("take back list of %q: %w", key, err)
	}
	return nil
}

// dropListChunks deletes the list chunks stored under key, each in one
// batch with the references it counted. The caller holds idxMu.
func (s *Disk) dropListChunks(key string) error {
	for {
		it := s.db.NewIterator(util.BytesPrefix(listPrefix(key)), nil)
		found := it.Next()
		var k, v []byte
		if found {
			k, v = append([]byte(nil), it.Key()...), append([]byte(nil), it.Value()...)
		}
		it.Release()
		if err := it.Error(); err != nil {
			return fmt.Errorf("read index: %w", err)
		}
		if !found {
			return nil
		}
		if len(v)%len(ID{}) != 0 {
			return fmt.Errorf("list chunk of %q: %w", key, errIndex)
		}
		b := s.batch()
		if err := s.addRefs(b, bytesIDs(v), -1); err != nil {
			return err
		}
		b.Delete(k)
		if err := s.write(b); err != nil {
			return err
		}
	}
}

// rollbackPending takes back every list a crash cut short (see
// rollbackList) and drops any member key left behind; no list is being
// added while the store opens. The caller holds idxMu.
func (s *Disk) rollbackPending() error {
	type pending struct {
		order uint64
		key   string
	}
	var ps []pending
	it := s.db.NewIterator(util.BytesPrefix([]byte{prefixPending}), nil)
	for it.Next() {
		if len(it.Key()) != 9 {
			continue
		}
		ps = append(ps, pending{binary.BigEndian.Uint64(it.Key()[1:]), string(it.Value())})
	}
	it.Release()
	if err := it.Error(); err != nil {
		return fmt.Errorf("pending lists: read index: %w", err)
	}
	for _, p := range ps {
		if _, err := readFile(s.db, p.key); err == nil {
			// Committed (the mark's delete was lost): keep the list.
			b := new(leveldb.Batch)
			b.Delete(pendingKey(p.order))
			if err := s.writeRaw(b); err != nil {
				return fmt.Errorf("pending lists: %w", err)
			}
			continue
		}
		if err := s.rollbackList(p.order, p.key); err != nil {
			return err
		}
	}
	return s.dropPrefix([]byte{prefixMember})
}

// dropPrefix deletes every key under prefix, in batches of bounded size.
func (s *Disk) dropPrefix(prefix []byte) error {
	it := s.db.NewIterator(util.BytesPrefix(prefix), nil)
	defer it.Release()
	rw := rawWriter{s: s}
	for it.Next() {
		if err := rw.delete(it.Key()); err != nil {
			return err
		}
	}
	if err := it.Error(); err != nil {
		return fmt.Errorf("read index: %w", err)
	}
	return rw.flush()
}

// rawWriter writes many index changes that touch no counter (keys with
// empty values, and deletes) in batches of at most 4096, with writeRaw.
type rawWriter struct {
	s *Disk
	b leveldb.Batch
}

func (w *rawWriter) put(k []byte) error    { w.b.Put(k, nil); return w.full() }
func (w *rawWriter) delete(k []byte) error { w.b.Delete(k); return w.full() }

func (w *rawWriter) full() error {
	if w.b.Len() < 4096 {
		return nil
	}
	return w.flush()
}

// flush writes what is pending.
func (w *rawWriter) flush() error {
	if w.b.Len() == 0 {
		return nil
	}
	err := w.s.writeRaw(&w.b)
	w.b.Reset()
	return err
}

// writeRaw writes b, which changes no counter, to the index, counting its
// bytes towards the next flush (see flushIndex: a write it did not count
// could fill goleveldb's memtable unseen, and a Sync would then leave the
// journal that filled unsynced).
func (s *Disk) writeRaw(b *leveldb.Batch) error {
	s.unflushed += int64(len(b.Dump()))
	if err := s.db.Write(b, nil); err != nil {
		return fmt.Errorf("write index: %w", err)
	}
	return nil
}

// listLen counts the blocks in the list chunks stored under key.
func (s *Disk) listLen(key string) (int, error) {
	n := 0
	err := walkList(s.db, key, func(p []ID) error { n += len(p); return nil })
	return n, err
}

// dropOrphanLists takes back the list chunks (and their references) of
// every key that has no file record: what a crash leaves of a list when a
// later batch of its rollback, or of a remove, outlived an earlier one in
// goleveldb's journal. The caller holds idxMu.
func (s *Disk) dropOrphanLists() error {
	var orphans []string
	it := s.db.NewIterator(util.BytesPrefix([]byte{prefixList}), nil)
	last := ""
	for it.Next() {
		key, ok := listKeyFile(it.Key())
		if !ok || key == last {
			continue
		}
		last = key
		if has, err := s.db.Has(fileKey(key), nil); err == nil && !has {
			orphans = append(orphans, key)
		}
	}
	it.Release()
	if err := it.Error(); err != nil {
		return fmt.Errorf("orphan lists: read index: %w", err)
	}
	for _, key := range orphans {
		if err := s.dropListChunks(key); err != nil {
			return fmt.Errorf("orphan list of %q: %w", key, err)
		}
	}
	return nil
}

// FileBlocks implements Filer: the list is read a chunk at a time from
// one snapshot of the index.
func (s *Disk) FileBlocks(_ context.Context, key string, fn func([]ID) error) error {
	_, err := s.readList(key, fn)
	return err
}
