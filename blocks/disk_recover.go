package blocks

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/syndtr/goleveldb/leveldb"
	"github.com/syndtr/goleveldb/leveldb/opt"
	"github.com/syndtr/goleveldb/leveldb/util"
)

// A store closed by Close writes the clean mark (the files journal's end)
// after everything is durable, and OpenDisk deletes it: a store opened
// without it was not closed cleanly (a crash, a power cut), and OpenDisk
// recovers it before anything else runs.
//
// goleveldb makes a synced write durable together with the earlier writes
// of the same journal file only; when its memtable fills it starts a new
// journal without syncing the old one. So after a power cut the index may
// have lost entries that a Sync acknowledged, and it may hold entries whose
// bytes never reached the disk. The segments describe themselves, though,
// and Sync writes them before the index: recovery scans the segments that
// may hold such records (from the scan mark on: every earlier segment was
// whole and its index flushed to goleveldb's tables, which it syncs, when
// the mark moved past it), checks every index entry that points into them,
// adds the records the index lost, and replays the files journal.
// closeFlush is how much index written since the last flush makes a clean
// close flush it (see flushIndex).
const closeFlush = 256 << 10

var (
	keyClean    = []byte("cclean")
	keyScanFrom = []byte("cscan")
	keyFlush    = []byte("cflush")
)

// flushIndex makes every write to the index so far durable, whichever
// goleveldb journal it went to: it writes a key and compacts the range of
// that one key, which makes goleveldb write its memtable to a table file
// (synced, and recorded in its synced manifest) and then compact the few
// tables holding that key.
//
// It is needed only when goleveldb may have started a new journal since
// the last flush, or since OpenDisk (goleveldb's open writes what it
// recovered to a table and starts an empty journal): that happens when
// its memtable fills, after writeBuf bytes of writes. While
// s.unflushed (what this Disk wrote since, counted upwards) is below min,
// which callers keep at or below half of that, every write since is in
// the one journal that a synced write makes durable, and flushIndex does
// nothing: the compaction rewrites some of the index's tables, which on a
// big store cost a small put most of its time. A clean close flushes from
// closeFlush on, so that it does not leave much in goleveldb's journal,
// where it takes more room than in a table.
func (s *Disk) flushIndex(min int64) error {
	if s.unflushed < min {
		return nil
	}
	if err := s.db.Put(keyFlush, nil, nil); err != nil {
		return fmt.Errorf("flush index: %w", err)
	}
	if err := s.db.CompactRange(util.Range{Start: keyFlush, Limit: append(append([]byte(nil), keyFlush...), 0)}); err != nil {
		return fmt.Errorf("flush index: %w", err)
	}
	s.unflushed = 0
	return nil
}

// RecoveryInfo says what opening a store that was not closed cleanly
// changed, or what RebuildIndex found.
type RecoveryInfo struct {
	Unclean  bool `json:"unclean"`  // the store was not closed cleanly (false for a rebuild)
	Scanned  int  `json:"scanned"`  // segments read
	Added    int  `json:"added"`    // blocks found in the segments that the index had lost
	Dropped  int  `json:"dropped"`  // index entries whose bytes were not on disk
	Files    int  `json:"files"`    // files the journal holds
	Restored int  `json:"restored"` // files the index had lost (or still had, removed)
}

// Recovered returns what OpenDisk did to a store that was not closed
// cleanly (the zero value after a clean close).
func (s *Disk) Recovered() RecoveryInfo { return s.recovered }

// openWritable finishes OpenDisk for a writable store: the journal, and a
// recovery unless the store was closed cleanly.
func (s *Disk) openWritable() error {
	if err := s.openJournal(); err != nil {
		return err
	}
	s.idxMu.Lock()
	err := s.rollbackPending()
	s.idxMu.Unlock()
	if err != nil {
		return err
	}
	from, err := s.counter(keyScanFrom)
	if err != nil {
		return err
	}
	s.scanFrom = uint32(from)
	if err := s.openGone(); err != nil {
		return err
	}
	v, err := s.db.Get(keyClean, nil)
	switch {
	case err == nil:
		end, err := decodeUint64(v)
		if err != nil {
			return fmt.Errorf("clean mark: %w", err)
		}
		s.journalEnd = int64(end)
		if err := s.db.Delete(keyClean, &opt.WriteOptions{Sync: true}); err != nil {
			return fmt.Errorf("clean mark: %w", err)
		}
		return nil
	case !errors.Is(err, leveldb.ErrNotFound):
		return fmt.Errorf("clean mark: %w", err)
	}
	// Even a store whose index looks new: goleveldb reads on past a
	// damaged journal block, so it may have lost its format marker and
	// kept later entries.
	info, err := s.recover(s.scanFrom)
	if err != nil {
		return fmt.Errorf("recover after an unclean shutdown: %w", err)
	}
	// A new index is a new store or a rebuild, not an unclean shutdown.
	info.Unclean = !s.fresh
	s.recovered = info
	return nil
}

// recover brings the index in line with the segments from segment from on
// and with the files journal (see keyClean), makes it durable and moves
// the scan mark to the current segment.
func (s *Disk) recover(from uint32) (RecoveryInfo, error) {
	var info RecoveryInfo
	s.idxMu.Lock()
	defer s.idxMu.Unlock()
	gone, _, err := s.readGone()
	if err != nil {
		return info, err
	}
	// 1. Entries that point into the scanned segments must read back.
	b := s.batch()
	it := s.db.NewIterator(util.BytesPrefix([]byte{prefixBlock}), nil)
	for it.Next() {
		id, err := blockKeyID(it.Key())
		if err != nil {
			it.Release()
			return info, err
		}
		e, err := decodeEntry(it.Value())
		if err == nil && e.Seg < from {
			continue
		}
		if g, ok := gone[id]; err == nil && ok && (place{e.Seg, e.Off}).before(g) {
			err = errors.New("deleted") // the delete's index write was lost
		}
		if err == nil {
			// The header, and the CRC (v2) or the hash (v1): the entry
			// points to a record this store wrote for id, or it goes.
			_, err = s.readRecord(id, e, nil)
		}
		if err != nil {
			if _, derr := decodeEntry(it.Value()); derr != nil {
				b.Delete(append([]byte(nil), it.Key()...)) // not even an entry
			} else {
				s.setEntry(b, id, &e, nil)
			}
			info.Dropped++
		}
	}
	it.Release()
	if err := it.Error(); err != nil {
		return info, fmt.Errorf("read index: %w", err)
	}
	if err := s.write(b); err != nil {
		return info, err
	}
	// 2. Records the index lost come back, in segment order.
	var nums []uint32
	for n := range s.segs {
		if n >= from {
			nums = append(nums, n)
		}
	}
	sort.Slice(nums, func(i, j int) bool { return nums[i] < nums[j] })
	added := map[ID]bool{}
	for _, n := range nums {
		info.Scanned++
		if err := s.scanSegment(s.segs[n], gone, added); err != nil {
			return info, err
		}
	}
	info.Added = len(added)
	// 3. The files are what the journal says.
	files, end, err := s.readJournal()
	if err != nil {
		return info, err
	}
	s.journalEnd = end
	info.Files = len(files)
	restored, err := s.reconcileFiles(files)
	if err != nil {
		return info, err
	}
	info.Restored = restored
	// 4. The blocks that came back count the files that use them, and
	// the counters count what is there now.
	if err := s.recount(added); err != nil {
		return info, err
	}
	if err := s.recountAll(keysRepair); err != nil {
		return info, err
	}
	if err := s.checkpointLocked(0); err != nil {
		return info, err
	}
	if live := journalSize(files); s.journalEnd > 1<<20 && s.journalEnd > 2*live {
		if err := s.rewriteJournal(files); err != nil {
			return info, err
		}
	}
	return info, nil
}

// journalSize estimates what files take as journal records.
func journalSize(files []journalFile) int64 {
	var n int64
	for _, f := range files {
		n += 512 + int64(f.N*len(ID{}))*4/3
	}
	return n
}

// scanSegment adds to the index every whole record of seg whose block it
// does not hold, noting it in added. Bytes that are not a whole record (a
// torn write, a hole a lost write left) are skipped up to the next record
// marker.
//
// A record found here is hashed against the ID in its header even when its
// CRC matches: the scan also looks inside the bytes of torn records, and a
// block's bytes (a peer's, say) may hold a well-formed v2 record, CRC and
// all, of other bytes under another block's ID.
func (s *Disk) scanSegment(seg *segment, gone map[ID]place, added map[ID]bool) error {
	r := bufio.NewReaderSize(io.NewSectionReader(seg.f, 0, seg.size), 1<<20)
	var off int64
	hdr := make([]byte, recordHeaderSize)
	for off+recordHeaderV1 <= seg.size {
		p, err := r.Peek(recordHeaderV1)
		if err != nil {
			return fmt.Errorf("scan segment %s: %w", segmentName(seg.num), err)
		}
		rec, isRecord := recordV2, true
		switch {
		case bytes.Equal(p[:4], recordMagic[:]):
			p, err = r.Peek(min(recordHeaderSize, int(seg.size-off)))
			if err != nil {
				return fmt.Errorf("scan segment %s: %w", segmentName(seg.num), err)
			}
		case bytes.Equal(p[:4], recordMagicV1[:]):
			rec = recordV1
		default:
			isRecord = false
		}
		hs := rec.headerSize()
		n := int64(binary.BigEndian.Uint32(p[4:]))
		if !isRecord || len(p) < hs || n > MaxBlockSize || off+int64(hs)+n > seg.size {
			skip := 1
			// Jump to the next marker (of either format: they differ
			// in the last byte only) in what is buffered.
			if w, _ := r.Peek(min(r.Buffered(), 64<<10)); len(w) > 1 {
				if i := bytes.Index(w[1:], recordMagic[:3]); i >= 0 {
					skip = 1 + i
				} else {
					skip = max(1, len(w)-3+1)
				}
			}
			if _, err := r.Discard(skip); err != nil {
				return fmt.Errorf("scan segment %s: %w", segmentName(seg.num), err)
			}
			off += int64(skip)
			continue
		}
		hdr = append(hdr[:0], p[:hs]...)
		data := make([]byte, n)
		if _, err := r.Discard(hs); err != nil {
			return fmt.Errorf("scan segment %s: %w", segmentName(seg.num), err)
		}
		if _, err := io.ReadFull(r, data); err != nil {
			return fmt.Errorf("scan segment %s: %w", segmentName(seg.num), err)
		}
		var id ID
		copy(id[:], hdr[16:recordHeaderV1])
		if (rec == recordV2 && binary.BigEndian.Uint32(hdr[recordHeaderV1:]) != recordCRC(hdr, data)) || Check(id, data) != nil {
			// Not a record after all (or a torn one): look again one
			// byte further on.
			r.Reset(io.NewSectionReader(seg.f, off+1, seg.size-off-1))
			off++
			continue
		}
		if ok, err := s.db.Has(blockKey(id), nil); err != nil {
			return fmt.Errorf("scan segment %s: %w", segmentName(seg.num), err)
		} else if g, wentAfter := gone[id]; !ok && !(wentAfter && (place{seg.num, off}).before(g)) {
			tag := binary.BigEndian.Uint64(hdr[8:])
			s.seq++
			e := entry{Seg: seg.num, Off: off, Len: int(n), Rec: rec, Tag: tag, Seq: s.seq}
			wb := s.batch()
			s.setEntry(wb, id, nil, &e)
			wb.Put(keySeq, encodeUint64(s.seq))
			if err := s.unquarantine(wb, id); err != nil {
				return err
			}
			if err := s.write(wb); err != nil {
				return err
			}
			added[id] = true
		}
		off += int64(hs) + n
	}
	return nil
}

// reconcileFiles makes the index's files those of the journal: files it
// lost are added back (with their references), files it still has but the
// journal removed are removed. It returns how many it changed.
func (s *Disk) reconcileFiles(files []journalFile) (int, error) {
	want := map[string]journalFile{}
	for _, f := range files {
		want[f.File.Key] = f
	}
	changed := 0
	it := s.db.NewIterator(util.BytesPrefix([]byte{prefixFile}), nil)
	var gone []string
	for it.Next() {
		key := string(it.Key()[1:])
		jf, ok := want[key]
		if !ok {
			gone = append(gone, key)
			continue
		}
		// A list written in parts may have lost some (goleveldb kept a
		// later batch and lost an earlier one): such a file is added
		// again from the journal.
		if n, err := s.listLen(key); err != nil {
			it.Release()
			return 0, err
		} else if n == jf.N {
			delete(want, key)
		} else {
			gone = append(gone, key)
		}
	}
	it.Release()
	if err := it.Error(); err != nil {
		return 0, fmt.Errorf("read index: %w", err)
	}
	for _, key := range gone {
		if err := s.removeFileLocked(key); err != nil {
			return changed, err
		}
		changed++
	}
	if err := s.dropOrphanLists(); err != nil {
		return changed, err
	}
	for _, f := range files { // in the journal's order
		if _, ok := want[f.File.Key]; !ok {
			continue
		}
		list := func(add func([]ID) error) error { return journalBlocks(s.journal, s.journalEnd, f.At, add) }
		if _, err := s.addListLocked(f.File, list, false); err != nil {
			return changed, err
		}
		changed++
	}
	return changed, nil
}

// recount sets the Refs of every block of ids to the number of files that
// list it.
func (s *Disk) recount(ids map[ID]bool) error {
	if len(ids) == 0 {
		return nil
	}
	refs := map[ID]int{}
	it := s.db.NewIterator(util.BytesPrefix([]byte{prefixList}), nil)
	for it.Next() {
		for v := it.Value(); len(v) >= len(ID{}); v = v[len(ID{}):] {
			if id := ID(v[:len(ID{})]); ids[id] {
				refs[id]++
			}
		}
	}
	it.Release()
	if err := it.Error(); err != nil {
		return fmt.Errorf("read index: %w", err)
	}
	b := s.batch()
	for id := range ids {
		e, err := s.entry(id)
		if err != nil {
			return err
		}
		was := e
		e.Refs = refs[id]
		s.setEntry(b, id, &was, &e)
	}
	return s.write(b)
}

// checkpointLocked makes the index durable as a whole (segments and
// journal first, then goleveldb's memtable flushed to its synced tables)
// and moves the scan mark to the lowest segment that may still get records
// whose index entries are not yet durable. The caller holds idxMu.
func (s *Disk) checkpointLocked(flushMin int64) error {
	if err := s.syncLocked(); err != nil {
		return err
	}
	s.segMu.Lock()
	from := s.cur.num
	for n, seg := range s.segs {
		if seg.writers.Load() > 0 && n < from {
			from = n
		}
	}
	s.rotated = false
	s.segMu.Unlock()
	if err := s.flushIndex(flushMin); err != nil {
		return err
	}
	s.unflushed += smallWrite
	if err := s.db.Put(keyScanFrom, encodeUint64(uint64(from)), &opt.WriteOptions{Sync: true}); err != nil {
		return fmt.Errorf("write scan mark: %w", err)
	}
	s.scanFrom = from
	if s.goneEnd > 256<<10 {
		return s.trimGone()
	}
	return nil
}

// closeCleanly makes everything durable and writes the clean mark. The
// caller holds idxMu.
func (s *Disk) closeCleanly() error {
	if err := s.checkpointLocked(closeFlush); err != nil {
		return err
	}
	s.unflushed += smallWrite
	if err := s.db.Put(keyClean, encodeUint64(uint64(s.journalEnd)), &opt.WriteOptions{Sync: true}); err != nil {
		return fmt.Errorf("write clean mark: %w", err)
	}
	return errors.Join(s.journal.Close(), s.gone.Close())
}

// RebuildIndex builds the store's index in dir anew from the segments and
// the files journal: every whole block record (with its tag), every file
// and its references. The old index, if any, is kept beside it as
// index.old-<time>. Blocks deleted long ago whose records Compact had not
// yet reclaimed come back (as blocks no file uses: eviction takes them
// again). It returns an error wrapping ErrLocked while the store is open
// elsewhere.
func RebuildIndex(dir string, o DiskOptions) (RecoveryInfo, error) {
	if o.ReadOnly {
		return RecoveryInfo{}, fmt.Errorf("rebuild index: %w", ErrReadOnly)
	}
	idx := filepath.Join(dir, indexDir)
	if o.index == nil {
		if _, err := os.Stat(idx); err == nil {
			// Open it once only to learn that no one else has it open.
			db, err := openIndex(idx, nil, true, indexSizes{writeBuffer: indexWriteBuffer, blockCache: indexBlockCache})
			if errors.Is(err, ErrLocked) {
				return RecoveryInfo{}, fmt.Errorf("rebuild index: %w", err)
			}
			if err == nil {
				db.Close()
			}
			old := fmt.Sprintf("%s.old-%s", idx, time.Now().UTC().Format("20060102T150405Z"))
			if err := os.Rename(idx, old); err != nil {
				return RecoveryInfo{}, fmt.Errorf("rebuild index: set the old one aside: %w", err)
			}
		}
	}
	s, err := OpenDisk(dir, o)
	if err != nil {
		return RecoveryInfo{}, fmt.Errorf("rebuild index: %w", err)
	}
	info := s.Recovered()
	return info, s.Close()
}
