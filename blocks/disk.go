package blocks

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/syndtr/goleveldb/leveldb"
	lerrors "github.com/syndtr/goleveldb/leveldb/errors"
	"github.com/syndtr/goleveldb/leveldb/filter"
	"github.com/syndtr/goleveldb/leveldb/opt"
	"github.com/syndtr/goleveldb/leveldb/storage"
	"github.com/syndtr/goleveldb/leveldb/util"
)

// ErrLocked is returned (wrapped) by OpenDisk when another process, or another
// Disk in this process, has the store open.
var ErrLocked = errors.New("store is in use by another blockmix process")

// ErrReadOnly: a write to a store opened with DiskOptions.ReadOnly.
var ErrReadOnly = errors.New("the store is open read-only")

// DefaultSegmentSize is the segment size OpenDisk uses when
// DiskOptions.SegmentSize is zero.
const DefaultSegmentSize = 256 << 20

// DiskOptions tunes OpenDisk. The zero value is ready to use.
type DiskOptions struct {
	// SegmentSize is the size at which a segment file is closed for appends
	// and the next one started (DefaultSegmentSize when zero). A segment holds
	// at least one block, so a block larger than SegmentSize gets a segment of
	// its own.
	SegmentSize int64
	// ReadOnly opens the store without writing anything: no index journal,
	// no compaction, no new segment. Reads work on a full or read-only
	// disk; every write fails with ErrReadOnly. The store must exist.
	ReadOnly bool
	// SmallIndex keeps the index's memory small, for boards with little
	// of it: a 1 MiB memtable and a 1 MiB block cache instead of 2 and
	// 4 MiB. Lookups in a big index then read the disk more often.
	SmallIndex bool

	// fs and index replace the operating system's file system for the
	// segments and goleveldb's file storage for the index (the power-cut
	// tests put a simulator there); nil: the real ones.
	fs    fileSystem
	index storage.Storage
}

// Disk is the on-disk Store. Block bytes are appended to segment files under
// dir/segments and never rewritten in place; the index (block → segment,
// offset, length, tag, refs, seq), the tag index, the file records and their
// reference counts and the quarantine list live in a goleveldb database under
// dir/index.
//
// A Put writes the block's bytes before its index entry, and Sync fsyncs the
// segments before it makes the index durable. So a killed process, or a
// power loss right after a Sync, leaves at worst bytes that no index entry
// points to. A power loss between Syncs may also keep index entries whose
// bytes never reached the disk: every Get re-reads the record and checks it
// (its header and CRC, see the record formats in disk_segments.go), so those
// read as ErrCorrupt, never as wrong data.
//
// Delete, Quarantine and a lost race between two Puts of the same block
// leave dead bytes in their segment, counted per segment (see Segments).
// Compact reclaims them: it copies the live records of mostly dead segments
// to the end of the append segment and removes the old files; see Compact for
// what a crash or a concurrent reader sees meanwhile. Nothing compacts on its
// own: the owner of the store calls Compact (after evicting blocks, say).
//
// Disk is safe for concurrent use. Only one Disk may have a directory open at
// a time; OpenDisk returns ErrLocked otherwise.
type Disk struct {
	dir      string
	fs       fileSystem
	db       *leveldb.DB
	segSize  int64
	readOnly bool
	writeBuf int // goleveldb's memtable size for the index (see flushIndex)

	// life guards closed and busy; Close waits for busy to reach zero.
	life   sync.Mutex
	idle   *sync.Cond
	busy   int
	closed bool

	// segMu guards the segment table and the append position.
	segMu sync.RWMutex
	segs  map[uint32]*segment
	cur   *segment // the segment appends go to
	// segDirDirty: a segment was created since the last Sync, whose
	// directory entry Sync must make durable.
	segDirDirty bool

	// closing is set when Close begins, so that a long Compact stops early.
	closing atomic.Bool
	// compacting holds a token while a Compact runs: one at a time.
	compacting chan struct{}

	// idxMu serialises every read-modify-write of the index, the counters
	// below, and the set of segments written since the last Sync. Sync holds
	// it while it fsyncs, so no index entry becomes durable before its bytes.
	idxMu   sync.Mutex
	seq     uint64 // last block Seq handed out
	fileSeq uint64 // last file order number handed out
	// cnt are the counters as the index has them; pend, as the batch
	// being built will leave them (see batch, write).
	cnt, pend counts
	// shown is cnt for Stats, which must not wait for idxMu (a Sync
	// holds it while it fsyncs). Guarded by shownMu.
	shownMu   sync.Mutex
	shown     counts
	dirty     map[uint32]*segment
	metaDirty bool // the index was written since the last Sync
	// unflushed counts the bytes of index writes since the last
	// flushIndex (see there), roughly: it only has to err upwards.
	unflushed int64

	// The files journal (see disk_journal.go): appends go to journalEnd;
	// journalDirty until the next Sync. Guarded by idxMu. Nil when
	// read-only.
	journal      segFile
	journalEnd   int64
	journalDirty bool

	// The gone log (see disk_gone.go), like the journal. scanFrom is the
	// scan mark (keyScanFrom). Guarded by idxMu.
	gone      segFile
	goneEnd   int64
	goneDirty bool
	scanFrom  uint32

	// dropTags are the tags whose t keys the batch being built deletes
	// (see dropHasTags). Guarded by idxMu.
	dropTags []uint64
	// tagScan: the index has no h keys (a read-only store of format 1
	// or 2), so HasTag walks the t keys.
	tagScan bool
	// heldTags are tags HasTag found held, at most heldTagsMax; tagGen
	// counts the calls of forgetTags. Guarded by tagMu.
	tagMu    sync.Mutex
	heldTags map[uint64]struct{}
	tagGen   uint64

	// rotated: a segment was started since the scan mark last moved
	// (guarded by segMu); the next Sync moves it.
	rotated bool

	recovered RecoveryInfo // what OpenDisk recovered
	fresh     bool         // the index was new when OpenDisk opened it
}

// OpenDisk opens the store in dir, creating it if needed. It returns an error
// wrapping ErrLocked when the store is already open. An index that goleveldb
// reports as corrupted is repaired with leveldb.RecoverFile; blocks whose index
// entries are lost that way are no longer reachable.
func OpenDisk(dir string, o DiskOptions) (*Disk, error) {
	if o.SegmentSize <= 0 {
		o.SegmentSize = DefaultSegmentSize
	}
	if o.fs == nil {
		o.fs = osFS{}
	}
	if !o.ReadOnly {
		if err := o.fs.MkdirAll(filepath.Join(dir, segmentsDir)); err != nil {
			return nil, fmt.Errorf("open store %s: %w", dir, err)
		}
	}
	sizes := indexSizes{writeBuffer: indexWriteBuffer, blockCache: indexBlockCache}
	if o.SmallIndex {
		sizes = indexSizes{writeBuffer: smallWriteBuffer, blockCache: smallBlockCache}
	}
	db, err := openIndex(filepath.Join(dir, indexDir), o.index, o.ReadOnly, sizes)
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", dir, err)
	}
	s := &Disk{
		dir:      dir,
		fs:       o.fs,
		db:       db,
		segSize:  o.SegmentSize,
		readOnly: o.ReadOnly,
		writeBuf: sizes.writeBuffer,
		segs:     map[uint32]*segment{},
		dirty:    map[uint32]*segment{},

		compacting: make(chan struct{}, 1),
		heldTags:   map[uint64]struct{}{},
	}
	s.idle = sync.NewCond(&s.life)
	err = s.load()
	if err == nil && !o.ReadOnly {
		err = s.openWritable()
	}
	if err != nil {
		s.closeFiles()
		db.Close()
		return nil, fmt.Errorf("open store %s: %w", dir, err)
	}
	return s, nil
}

// smallWrite is what unflushed counts for a write of one small key.
const smallWrite = 64

// indexWriteBuffer is goleveldb's memtable size for the index: it starts
// a new journal each time that much was written (see flushIndex).
// indexBlockCache bounds the index blocks goleveldb keeps in memory. The
// small ones are for DiskOptions.SmallIndex; a write buffer must stay at
// least twice closeFlush.
const (
	indexWriteBuffer = 2 << 20
	indexBlockCache  = 4 << 20
	smallWriteBuffer = 1 << 20
	smallBlockCache  = 1 << 20
)

// indexSizes are the memory sizes goleveldb's index is opened with.
type indexSizes struct{ writeBuffer, blockCache int }

// openIndex opens the goleveldb index at path, or in stor when it is not
// nil.
func openIndex(path string, stor storage.Storage, readOnly bool, sizes indexSizes) (*leveldb.DB, error) {
	o := &opt.Options{
		WriteBuffer:            sizes.writeBuffer,
		BlockCacheCapacity:     sizes.blockCache,
		Filter:                 filter.NewBloomFilter(10),
		DisableSeeksCompaction: true,
		Compression:            opt.NoCompression,
		ReadOnly:               readOnly,
		ErrorIfMissing:         readOnly,
	}
	open, recover := leveldb.OpenFile, leveldb.RecoverFile
	if stor != nil {
		open = func(string, *opt.Options) (*leveldb.DB, error) { return leveldb.Open(stor, o) }
		recover = func(string, *opt.Options) (*leveldb.DB, error) { return leveldb.Recover(stor, o) }
	}
	db, err := open(path, o)
	if err != nil && lerrors.IsCorrupted(err) && !readOnly {
		db, err = recover(path, o)
	}
	if err != nil {
		if isLockErr(err) {
			return nil, fmt.Errorf("index %s: %w", path, ErrLocked)
		}
		return nil, fmt.Errorf("index %s: %w", path, err)
	}
	return db, nil
}

// load checks the format marker, reads the counters and opens the segments.
func (s *Disk) load() error {
	v, err := s.db.Get(keyFormat, nil)
	switch {
	case errors.Is(err, leveldb.ErrNotFound):
		if s.readOnly {
			return fmt.Errorf("no format marker: %w", ErrNotFound)
		}
		b := new(leveldb.Batch)
		b.Put(keyFormat, []byte(formatVersion))
		b.Put(keyCounts, counts{}.encode())
		if err := s.db.Write(b, nil); err != nil {
			return fmt.Errorf("write format marker: %w", err)
		}
		s.fresh = true
	case err != nil:
		return fmt.Errorf("read format marker: %w", err)
	case string(v) == formatV1 || string(v) == formatV2 && !s.readOnly:
		// Format 1 was written before the index kept counters and
		// candidates, and before v2 records; format 2 before the h keys:
		// one walk adds what is missing, then the marker moves, durably,
		// before the first v2 record or the first block without its h
		// key (see formatVersion).
		if err := s.recountAll(keysWrite); err != nil {
			return err
		}
		if !s.readOnly {
			if err := s.db.Put(keyFormat, []byte(formatVersion), &opt.WriteOptions{Sync: true}); err != nil {
				return fmt.Errorf("write format marker: %w", err)
			}
		}
		s.tagScan = s.readOnly
	case string(v) == formatV2:
		// Read-only: the counters are there, the h keys are not.
		if err := s.loadCounts(); err != nil {
			return err
		}
		s.tagScan = true
	case string(v) == formatV3:
		if !s.readOnly {
			if err := s.db.Put(keyFormat, []byte(formatVersion), &opt.WriteOptions{Sync: true}); err != nil {
				return fmt.Errorf("write format marker: %w", err)
			}
		}
		if err := s.loadCounts(); err != nil {
			return err
		}
	case string(v) != formatVersion:
		return fmt.Errorf("unknown store format %q (want %q)", v, formatVersion)
	default:
		if err := s.loadCounts(); err != nil {
			return err
		}
	}
	if s.seq, err = s.counter(keySeq); err != nil {
		return err
	}
	if s.fileSeq, err = s.counter(keyFileSeq); err != nil {
		return err
	}
	return s.openSegments()
}

func (s *Disk) counter(key []byte) (uint64, error) {
	v, err := s.db.Get(key, nil)
	if errors.Is(err, leveldb.ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read counter %q: %w", key, err)
	}
	n, err := decodeUint64(v)
	if err != nil {
		return 0, fmt.Errorf("read counter %q: %w", key, err)
	}
	return n, nil
}

// enter registers an operation in flight; it fails with ErrClosed once Close
// has begun. Every successful enter must be paired with exit.
func (s *Disk) enter() error {
	s.life.Lock()
	defer s.life.Unlock()
	if s.closed {
		return ErrClosed
	}
	s.busy++
	return nil
}

// LastSeq is the Seq of the newest block put so far (0: none): a put that
// notes it before it starts can tell its own blocks afterwards.
func (s *Disk) LastSeq() uint64 {
	s.idxMu.Lock()
	defer s.idxMu.Unlock()
	return s.seq
}

// enterWrite is enter for an operation that writes: it fails with
// ErrReadOnly on a read-only store.
func (s *Disk) enterWrite() error {
	if s.readOnly {
		return ErrReadOnly
	}
	return s.enter()
}

func (s *Disk) exit() {
	s.life.Lock()
	s.busy--
	if s.busy == 0 {
		s.idle.Broadcast()
	}
	s.life.Unlock()
}

// Sync makes every completed Put, AddFile, RemoveFile, Delete and Quarantine
// durable: it fsyncs every segment written since the last Sync, then writes
// the index with goleveldb's sync option. Concurrent Puts wait for it to
// finish before their index entries are written.
func (s *Disk) Sync() error {
	if err := s.enter(); err != nil {
		return err
	}
	defer s.exit()
	if s.readOnly {
		return nil // nothing was written
	}
	s.idxMu.Lock()
	defer s.idxMu.Unlock()
	return s.syncLocked()
}

func (s *Disk) syncLocked() error {
	// Segments are synced in parallel: the disk queues them together.
	errs := make(chan error, len(s.dirty))
	for _, seg := range s.dirty {
		go func() {
			if err := seg.f.Sync(); err != nil {
				errs <- fmt.Errorf("sync segment %s: %w", seg.f.Name(), err)
				return
			}
			errs <- nil
		}()
	}
	var firstErr error
	for range s.dirty {
		if err := <-errs; err != nil && firstErr == nil {
			firstErr = err
		}
	}
	if firstErr != nil {
		return firstErr
	}
	clear(s.dirty)
	s.segMu.Lock()
	dirDirty := s.segDirDirty
	s.segDirDirty = false
	s.segMu.Unlock()
	if dirDirty {
		if err := s.fs.SyncDir(filepath.Join(s.dir, segmentsDir)); err != nil {
			s.segMu.Lock()
			s.segDirDirty = true
			s.segMu.Unlock()
			return fmt.Errorf("sync segment directory: %w", err)
		}
	}
	if s.journalDirty {
		if err := s.journal.Sync(); err != nil {
			return fmt.Errorf("sync files journal: %w", err)
		}
		s.journalDirty = false
	}
	if s.goneDirty {
		if err := s.gone.Sync(); err != nil {
			return fmt.Errorf("sync gone log: %w", err)
		}
		s.goneDirty = false
	}
	if !s.metaDirty {
		return nil
	}
	// A synced write makes the earlier writes to the same goleveldb
	// journal durable (not those of a journal it started meanwhile: see
	// keyClean); rewriting the counter is a cheap one.
	s.unflushed += smallWrite
	if err := s.db.Put(keySeq, encodeUint64(s.seq), &opt.WriteOptions{Sync: true}); err != nil {
		return fmt.Errorf("sync index: %w", err)
	}
	s.metaDirty = false
	s.segMu.RLock()
	rotated := s.rotated
	s.segMu.RUnlock()
	if rotated {
		return s.checkpointLocked(int64(s.writeBuf / 2))
	}
	return nil
}

// Close waits for operations in flight (so it must not be called from an
// Enumerate callback), syncs, and closes the segment files and the index. A
// Compact in flight stops at its next record (it returns ErrClosed). Later
// calls to any other method return ErrClosed; calling Close again returns
// nil.
func (s *Disk) Close() error {
	s.life.Lock()
	if s.closed {
		s.life.Unlock()
		return nil
	}
	s.closed = true
	s.closing.Store(true)
	for s.busy > 0 {
		s.idle.Wait()
	}
	s.life.Unlock()

	var err error
	if !s.readOnly {
		s.idxMu.Lock()
		err = s.closeCleanly()
		s.idxMu.Unlock()
	}
	if cerr := s.closeFiles(); err == nil {
		err = cerr
	}
	if cerr := s.db.Close(); cerr != nil && err == nil {
		err = fmt.Errorf("close index: %w", cerr)
	}
	if err != nil {
		return fmt.Errorf("close store %s: %w", s.dir, err)
	}
	return nil
}

// Get implements Getter. The bytes are checked against the block's record:
// a record written by this version carries a CRC32C of its header (which
// names id) and bytes, and Get checks that, not the sha256 (see the record
// formats in disk_segments.go); a record of a format 1 store has no CRC and
// is checked against id with sha256. Either way, bytes damaged on the disk,
// a torn or lost write, or an entry that points to the wrong record read as
// an error wrapping ErrCorrupt (or ErrNotFound for a block not held), never
// as wrong bytes. GetVerified hashes the bytes too.
//
// A Get that runs while Compact moves the block reads either the old record
// (Compact does not close a segment while a read on it is in flight) or,
// when the old segment is already gone, looks the entry up again and reads
// the new one.
func (s *Disk) Get(_ context.Context, id ID) ([]byte, error) {
	data, _, err := s.get(id, nil)
	return data, err
}

// GetInto implements IntoGetter: Get, reading the record into buf when it
// has room for it (the block's size plus ReadSlack).
func (s *Disk) GetInto(_ context.Context, id ID, buf []byte) ([]byte, error) {
	data, _, err := s.get(id, buf)
	return data, err
}

// Prefetch implements Prefetcher: it looks up the blocks' records and asks
// the OS to start reading them (posix_fadvise WILLNEED, records next to each
// other in one call). A read from a cold cache then streams from the disk
// ahead of the Gets instead of waiting for it one record at a time.
func (s *Disk) Prefetch(_ context.Context, ids []ID) {
	if err := s.enter(); err != nil {
		return
	}
	defer s.exit()
	type span struct {
		seg      uint32
		off, end int64
	}
	spans := make([]span, 0, len(ids))
	for _, id := range ids {
		e, err := s.entry(id)
		if err != nil {
			continue
		}
		spans = append(spans, span{e.Seg, e.Off, e.Off + e.recordSize()})
	}
	slices.SortFunc(spans, func(a, b span) int {
		if a.seg != b.seg {
			return cmp.Compare(a.seg, b.seg)
		}
		return cmp.Compare(a.off, b.off)
	})
	// Spans closer than this are read as one: the gap costs less than
	// another seek.
	const gap = 256 << 10
	for i := 0; i < len(spans); {
		sp := spans[i]
		for i++; i < len(spans) && spans[i].seg == sp.seg && spans[i].off <= sp.end+gap; i++ {
			sp.end = max(sp.end, spans[i].end)
		}
		seg := s.segment(sp.seg)
		if seg == nil {
			continue
		}
		seg.use.RLock()
		if !seg.gone {
			willNeed(seg.f, sp.off, sp.end-sp.off)
		}
		seg.use.RUnlock()
	}
}

// GetVerified implements Verifier: Get, and the bytes are hashed and
// checked against id whatever the record's format.
func (s *Disk) GetVerified(_ context.Context, id ID) ([]byte, error) {
	data, e, err := s.get(id, nil)
	if err != nil {
		return nil, err
	}
	if e.Rec != recordV1 { // a v1 record was hashed by the read
		if err := Check(id, data); err != nil {
			return nil, err
		}
	}
	return data, nil
}

// get reads and checks id's record (see readRecordInto) into buf when it
// has room for it, else into a new buffer, and returns its bytes and the
// entry it read them by.
func (s *Disk) get(id ID, buf []byte) ([]byte, entry, error) {
	if err := s.enter(); err != nil {
		return nil, entry{}, err
	}
	defer s.exit()
	e, err := s.entry(id)
	if err != nil {
		return nil, entry{}, err
	}
	hook("get-looked-up")
	for tries := 1; ; tries++ {
		data, err := s.readRecord(id, e, buf)
		if errors.Is(err, errSegmentMissing) && tries < maxGetTries {
			// Compact repoints an entry before it removes the segment,
			// so a removed segment means the entry has changed.
			e2, err2 := s.entry(id)
			if err2 != nil {
				return nil, entry{}, err2
			}
			if e2.Seg != e.Seg || e2.Off != e.Off {
				e = e2
				continue
			}
		}
		if err != nil {
			return nil, entry{}, err
		}
		return data, e, nil
	}
}

// maxGetTries bounds how often Get follows a block that Compact moved while
// Get was reading it (each Compact moves a block at most once).
const maxGetTries = 4

// Put implements Putter. The bytes are written before the index entry, and
// neither is fsynced; call Sync for durability.
func (s *Disk) Put(_ context.Context, id ID, data []byte, tag uint64) error {
	if err := Check(id, data); err != nil {
		return err
	}
	_, err := s.put(id, data, tag)
	return err
}

// PutBlock implements BlockPutter: Put without hashing again. The zero Block
// is refused with an error wrapping ErrCorrupt.
func (s *Disk) PutBlock(_ context.Context, b Block, tag uint64) error {
	if b.ID().IsZero() {
		return Check(b.ID(), b.Data())
	}
	_, err := s.put(b.ID(), b.Data(), tag)
	return err
}

// PutNew is Put that also reports whether the block is new: false when
// the store already held it (or a concurrent Put of it won), in which case
// nothing was added and the tag given is not kept. A caller that counts
// stored bytes counts only added ones.
func (s *Disk) PutNew(_ context.Context, id ID, data []byte, tag uint64) (added bool, err error) {
	if err := Check(id, data); err != nil {
		return false, err
	}
	return s.put(id, data, tag)
}

// PutNewBlock is PutNew without hashing again (see BlockPutter). The zero
// Block is refused with an error wrapping ErrCorrupt.
func (s *Disk) PutNewBlock(_ context.Context, b Block, tag uint64) (added bool, err error) {
	if b.ID().IsZero() {
		return false, Check(b.ID(), b.Data())
	}
	return s.put(b.ID(), b.Data(), tag)
}

// indexEntryEstimate is what one block's index entries cost on disk,
// roughly: its entry (33-byte key, about 22-byte value) and its tag entry
// (41-byte key), each with goleveldb's 8-byte sequence number, the table's
// framing, index and filter. Measured: about 115 bytes per block once
// goleveldb has written and compacted its tables, as a clean Close makes
// it (TestCostMatchesDisk); 176 before.
const indexEntryEstimate = 120

// Cost is what a block of n bytes costs on disk: its segment record (the
// bytes and a 52-byte header) and an estimate of its index entries. A
// quota counts Cost, so that many small blocks cannot hold far more disk
// than it says.
func Cost(n int) int64 { return recordSize(n) + indexEntryEstimate }

// Cost is the package's Cost (a method, for callers that hold a Disk).
func (s *Disk) Cost(n int) int64 { return Cost(n) }

// put stores data, which the caller has checked against id, and reports
// whether it added it.
func (s *Disk) put(id ID, data []byte, tag uint64) (bool, error) {
	if err := s.enterWrite(); err != nil {
		return false, err
	}
	defer s.exit()
	key := blockKey(id)
	if ok, err := s.db.Has(key, nil); err != nil {
		return false, fmt.Errorf("put block %s: %w", id, err)
	} else if ok {
		return false, nil
	}

	seg, off, n, err := s.writeRecord(id, data, tag)
	if err != nil {
		return false, fmt.Errorf("put block %s: %w", id, err)
	}
	// After the index is written (deferred calls run last in, first out).
	defer seg.writers.Add(-1)

	s.idxMu.Lock()
	defer s.idxMu.Unlock()
	// The bytes are in the segment; from here on the next Sync must fsync it.
	s.dirty[seg.num] = seg
	b := s.batch()
	if ok, err := s.db.Has(key, nil); err != nil {
		return false, fmt.Errorf("put block %s: %w", id, err)
	} else if ok {
		// A concurrent Put of the same block won; ours are dead bytes.
		if err := s.addDead(b, seg.num, n); err != nil {
			return false, fmt.Errorf("put block %s: %w", id, err)
		}
		return false, s.write(b)
	}
	s.seq++
	e := entry{Seg: seg.num, Off: off, Len: len(data), Tag: tag, Seq: s.seq}
	s.setEntry(b, id, nil, &e)
	b.Put(keySeq, encodeUint64(s.seq))
	if err := s.unquarantine(b, id); err != nil {
		return false, fmt.Errorf("put block %s: %w", id, err)
	}
	if err := s.write(b); err != nil {
		return false, fmt.Errorf("put block %s: %w", id, err)
	}
	return true, nil
}

// write applies b, which the caller got from batch, to the index without
// syncing, with the counters its changes moved. The caller holds idxMu.
func (s *Disk) write(b *leveldb.Batch) error {
	if s.pend != s.cnt {
		b.Put(keyCounts, s.pend.encode())
	}
	s.unflushed += int64(len(b.Dump()))
	if err := s.db.Write(b, nil); err != nil {
		s.pend = s.cnt
		return fmt.Errorf("write index: %w", err)
	}
	s.setCounts(s.pend)
	s.metaDirty = true
	s.dropHasTags()
	return nil
}

// setCounts sets cnt (and pend, and what Stats shows) to c. The caller
// holds idxMu, or has the Disk to itself.
func (s *Disk) setCounts(c counts) {
	s.cnt, s.pend = c, c
	s.shownMu.Lock()
	s.shown = c
	s.shownMu.Unlock()
}

// unquarantine takes id off the quarantine list, in b, when it is on it:
// a good copy is back and the block is in service again. The caller holds
// idxMu and got b from batch.
func (s *Disk) unquarantine(b *leveldb.Batch, id ID) error {
	ok, err := s.db.Has(quarKey(id), nil)
	if err != nil {
		return fmt.Errorf("read index: %w", err)
	}
	if ok {
		b.Delete(quarKey(id))
		s.pend.Quarantined--
	}
	return nil
}

// entry reads the index entry of id, or returns an error wrapping ErrNotFound.
func (s *Disk) entry(id ID) (entry, error) {
	v, err := s.db.Get(blockKey(id), nil)
	if errors.Is(err, leveldb.ErrNotFound) {
		return entry{}, fmt.Errorf("block %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return entry{}, fmt.Errorf("block %s: read index: %w", id, err)
	}
	e, err := decodeEntry(v)
	if err != nil {
		return entry{}, fmt.Errorf("block %s: %w", id, err)
	}
	return e, nil
}

// Has implements Haver.
func (s *Disk) Has(_ context.Context, id ID) (bool, error) {
	if err := s.enter(); err != nil {
		return false, err
	}
	defer s.exit()
	ok, err := s.db.Has(blockKey(id), nil)
	if err != nil {
		return false, fmt.Errorf("block %s: read index: %w", id, err)
	}
	return ok, nil
}

// Stat implements Stater.
func (s *Disk) Stat(_ context.Context, id ID) (Meta, error) {
	if err := s.enter(); err != nil {
		return Meta{}, err
	}
	defer s.exit()
	e, err := s.entry(id)
	if err != nil {
		return Meta{}, err
	}
	return e.meta(), nil
}

// Delete implements Deleter. The block's bytes stay in their segment as dead
// bytes until Compact reclaims them.
func (s *Disk) Delete(_ context.Context, id ID) error {
	if err := s.enterWrite(); err != nil {
		return err
	}
	defer s.exit()
	s.idxMu.Lock()
	defer s.idxMu.Unlock()
	e, err := s.entry(id)
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if err := s.noteGone(id); err != nil {
		return fmt.Errorf("delete block %s: %w", id, err)
	}
	b := s.batch()
	s.setEntry(b, id, &e, nil)
	if err := s.addDead(b, e.Seg, e.recordSize()); err != nil {
		return fmt.Errorf("delete block %s: %w", id, err)
	}
	if err := s.write(b); err != nil {
		return fmt.Errorf("delete block %s: %w", id, err)
	}
	return nil
}

// Enumerate implements Enumerator. It walks a consistent snapshot of the
// index, so fn may call back into the store (writes are not seen).
func (s *Disk) Enumerate(ctx context.Context, fn func(ID, Meta) error) error {
	return s.EnumerateFrom(ctx, ID{}, fn)
}

// EnumerateFrom implements Ranger, as Enumerate does.
func (s *Disk) EnumerateFrom(ctx context.Context, from ID, fn func(ID, Meta) error) error {
	if err := s.enter(); err != nil {
		return err
	}
	defer s.exit()
	r := util.BytesPrefix([]byte{prefixBlock})
	r.Start = blockKey(from)
	it := s.db.NewIterator(r, nil)
	defer it.Release()
	for it.Next() {
		if err := ctx.Err(); err != nil {
			return err
		}
		id, err := blockKeyID(it.Key())
		if err != nil {
			return err
		}
		e, err := decodeEntry(it.Value())
		if err != nil {
			return fmt.Errorf("block %s: %w", id, err)
		}
		if err := fn(id, e.meta()); err != nil {
			return err
		}
	}
	if err := it.Error(); err != nil {
		return fmt.Errorf("enumerate: read index: %w", err)
	}
	return nil
}

// Mark implements Marker.
func (s *Disk) Mark(name string) ([]byte, error) {
	if err := s.enter(); err != nil {
		return nil, err
	}
	defer s.exit()
	v, err := s.db.Get(markKey(name), nil)
	if errors.Is(err, leveldb.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("mark %q: read index: %w", name, err)
	}
	return v, nil
}

// SetMark implements Marker; on a read-only store it does nothing (a round
// there starts over every time).
func (s *Disk) SetMark(name string, v []byte) error {
	if s.readOnly {
		return nil
	}
	if err := s.enter(); err != nil {
		return err
	}
	defer s.exit()
	s.idxMu.Lock()
	defer s.idxMu.Unlock()
	b := s.batch()
	if v == nil {
		b.Delete(markKey(name))
	} else {
		b.Put(markKey(name), v)
	}
	if err := s.write(b); err != nil {
		return fmt.Errorf("mark %q: %w", name, err)
	}
	return nil
}

// HasTag implements TagIndex. After a crash it may answer true for a tag
// that no block carries any more (see hasTagKey), never false for one that
// a block carries.
func (s *Disk) HasTag(_ context.Context, tag uint64) (bool, error) {
	if err := s.enter(); err != nil {
		return false, err
	}
	defer s.exit()
	if s.tagScan {
		return s.scanTag(tag)
	}
	s.tagMu.Lock()
	_, held := s.heldTags[tag]
	gen := s.tagGen
	s.tagMu.Unlock()
	if held {
		return true, nil
	}
	// One point lookup (see hasTagKey); when the key is absent, the
	// Bloom filter mostly answers without a read.
	ok, err := s.db.Has(hasTagKey(tag), nil)
	if err != nil {
		return false, fmt.Errorf("tag %d: read index: %w", tag, err)
	}
	if ok {
		s.tagMu.Lock()
		// Unless an h key was deleted since the look (see forgetTags).
		if s.tagGen == gen {
			if len(s.heldTags) >= heldTagsMax {
				clear(s.heldTags)
			}
			s.heldTags[tag] = struct{}{}
		}
		s.tagMu.Unlock()
	}
	return ok, nil
}

// heldTagsMax bounds the tags HasTag remembers as held (about 1.5 MiB).
// The picker asks mostly about tags that are held, and about the same
// ones again and again (98 % of the lookups of a put of 10,000 small
// files asked again about a held tag).
const heldTagsMax = 1 << 16

// forgetTags drops tags from what HasTag remembers as held. It is called
// after their h keys are deleted: a lookup that began before does not
// remember what it found.
func (s *Disk) forgetTags(tags []uint64) {
	s.tagMu.Lock()
	for _, t := range tags {
		delete(s.heldTags, t)
	}
	s.tagGen++
	s.tagMu.Unlock()
}

// scanTag reports whether a t key of tag is in the index.
func (s *Disk) scanTag(tag uint64) (bool, error) {
	it := s.db.NewIterator(util.BytesPrefix(tagPrefix(tag)), nil)
	defer it.Release()
	ok := it.Next()
	if err := it.Error(); err != nil {
		return false, fmt.Errorf("tag %d: read index: %w", tag, err)
	}
	return ok, nil
}

// addDead adds n bytes to the dead-byte count of segment seg, in b. The
// caller holds idxMu.
func (s *Disk) addDead(b *leveldb.Batch, seg uint32, n int64) error {
	dead, err := s.counter(deadKey(seg))
	if err != nil {
		return err
	}
	b.Put(deadKey(seg), encodeUint64(dead+uint64(n)))
	return nil
}

var (
	_ Store       = (*Disk)(nil)
	_ BlockPutter = (*Disk)(nil)
	_ Candidates  = (*Disk)(nil)
	_ Resumable   = (*Disk)(nil)
	_ Verifier    = (*Disk)(nil)
)
