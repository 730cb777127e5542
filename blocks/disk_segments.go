package blocks

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
)

// Directory layout of a Disk store.
const (
	segmentsDir   = "segments"   // 00000001.seg, 00000002.seg, …
	indexDir      = "index"      // goleveldb
	quarantineDir = "quarantine" // <cid>: copies of quarantined blocks
	segmentExt    = ".seg"
)

// A segment is a sequence of records, each a header followed by the block's
// bytes. Every header starts with the same 48 bytes:
//
//	magic | length uint32 BE | tag uint64 BE | id [32]byte
//
// Two formats follow from there:
//
//	v1, magic "bmx1": the bytes follow. Stores of format 1 wrote these;
//	    they are still read, and checked against id with sha256.
//	v2, magic "bmx2": crc uint32 BE, then the bytes. crc is the CRC32C
//	    (Castagnoli) of the 48 bytes before it followed by the block's
//	    bytes. Every record written now is a v2 one.
//
// The CRC is what a local read checks: it costs a small fraction of a
// sha256 (crc32 uses the CPU's CRC32 instructions on amd64 and arm64) and
// catches damage on the disk or in the read path: a flipped or torn byte,
// zeros where a write was lost, a record of another block (the id is in
// what it covers). It does not prove that the bytes hash to id: that was
// checked when the block was put (Put hashes, a Block was hashed by whoever
// made it), and the CRC keeps it true as long as the bytes stay as written.
// Where the bytes must be bound to id afresh, they are hashed: GetVerified,
// and the recovery's scan of a segment, which must not take a forged record
// embedded in a block's bytes for a real one.
//
// The header makes a segment self-describing (an index could be rebuilt from
// the segments alone) and lets Get notice an index entry that points to the
// wrong place. Records are never rewritten; bytes between records that no
// index entry points to (a crash mid-Put, a lost race) are ignored.
const (
	recordHeaderV1   = 4 + 4 + 8 + 32
	recordHeaderSize = recordHeaderV1 + 4 // v2, what is written now
)

// recordFormat is the format of a record; the zero value is v2.
type recordFormat uint8

const (
	recordV2 recordFormat = iota
	recordV1
)

var (
	recordMagicV1 = [4]byte{'b', 'm', 'x', '1'}
	recordMagic   = [4]byte{'b', 'm', 'x', '2'}
)

func (f recordFormat) headerSize() int {
	if f == recordV1 {
		return recordHeaderV1
	}
	return recordHeaderSize
}

func (f recordFormat) magic() []byte {
	if f == recordV1 {
		return recordMagicV1[:]
	}
	return recordMagic[:]
}

// recordSize is the size of a new (v2) record of an n-byte block.
func recordSize(n int) int64 { return int64(recordHeaderSize + n) }

// recordCRC is the CRC32C a v2 record with header hdr (its first 48 bytes)
// and bytes data carries. (castagnoli, the table, is in disk_journal.go.)
func recordCRC(hdr, data []byte) uint32 {
	return crc32.Update(crc32.Checksum(hdr[:recordHeaderV1], castagnoli), castagnoli, data)
}

// newRecordHeader returns the header of a v2 record of the block.
func newRecordHeader(id ID, data []byte, tag uint64) [recordHeaderSize]byte {
	var hdr [recordHeaderSize]byte
	copy(hdr[:], recordMagic[:])
	binary.BigEndian.PutUint32(hdr[4:], uint32(len(data)))
	binary.BigEndian.PutUint64(hdr[8:], tag)
	copy(hdr[16:], id[:])
	binary.BigEndian.PutUint32(hdr[recordHeaderV1:], recordCRC(hdr[:], data))
	return hdr
}

type segment struct {
	num  uint32
	f    segFile
	size int64 // append position; guarded by Disk.segMu

	// writers counts Puts that reserved space here and have not yet written
	// their index entry. Compact takes only segments that appends no longer
	// go to and that have no writers, so that it sees every entry that will
	// ever point into them.
	writers atomic.Int32

	// use guards reads of f against its removal by Compact: a reader holds
	// it shared while it reads, Compact exclusively while it sets gone and
	// closes f.
	use  sync.RWMutex
	gone bool

	wbMu      sync.Mutex
	wbDone    int64          // bytes before this offset were handed to startWriteback
	wbRunning sync.WaitGroup // writebacks in flight; wait before closing f
}

// writebackChunk is how much a segment gathers before its writeback starts.
const writebackChunk = 8 << 20

// wrote notes that the segment holds bytes up to end and, for every whole
// chunk since the last one, starts writeback in the background: the call
// can block while the disk's queue is full, and the writer must not wait.
func (g *segment) wrote(end int64) {
	g.wbMu.Lock()
	defer g.wbMu.Unlock()
	if end-g.wbDone >= writebackChunk {
		off, n := g.wbDone, end-g.wbDone
		g.wbDone = end
		g.wbRunning.Add(1)
		go func() {
			defer g.wbRunning.Done()
			startWriteback(g.f, off, n)
		}()
	}
}

func segmentName(n uint32) string { return fmt.Sprintf("%08d%s", n, segmentExt) }

// openSegments opens every segment file; appends go to the highest-numbered
// one, at its current size.
func (s *Disk) openSegments() error {
	dir := filepath.Join(s.dir, segmentsDir)
	names, err := s.fs.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("list segments: %w", err)
	}
	for _, name := range names {
		if !strings.HasSuffix(name, segmentExt) {
			continue
		}
		n, err := strconv.ParseUint(strings.TrimSuffix(name, segmentExt), 10, 32)
		if err != nil || n == 0 || segmentName(uint32(n)) != name {
			continue
		}
		f, err := s.fs.Open(filepath.Join(dir, name), s.readOnly)
		if err != nil {
			return fmt.Errorf("open segment: %w", err)
		}
		size, err := f.Size()
		if err != nil {
			f.Close()
			return fmt.Errorf("open segment: %w", err)
		}
		seg := &segment{num: uint32(n), f: f, size: size}
		s.segs[seg.num] = seg
		if s.cur == nil || seg.num > s.cur.num {
			s.cur = seg
		}
	}
	if s.cur == nil && !s.readOnly {
		seg, err := s.createSegment(1)
		if err != nil {
			return err
		}
		s.cur = seg
	}
	return nil
}

// createSegment creates segment n and makes its directory entry durable.
func (s *Disk) createSegment(n uint32) (*segment, error) {
	dir := filepath.Join(s.dir, segmentsDir)
	f, err := s.fs.Create(filepath.Join(dir, segmentName(n)))
	if err != nil {
		return nil, fmt.Errorf("create segment: %w", err)
	}
	// The directory entry is made durable by the next Sync, with the
	// segment's bytes: an fsync here, under segMu, would stall every writer
	// while ext4 flushes all pending data with its journal.
	s.segDirDirty = true
	s.rotated = true
	seg := &segment{num: n, f: f}
	s.segs[n] = seg
	return seg, nil
}

// alloc reserves n bytes at the end of the current segment, starting a new
// segment when the current one would grow past the segment size. It counts a
// writer on the segment, which the caller must drop (seg.writers.Add(-1))
// once the index entry for those bytes is written, or will not be.
func (s *Disk) alloc(n int64) (*segment, int64, error) {
	s.segMu.Lock()
	defer s.segMu.Unlock()
	if s.cur.size > 0 && s.cur.size+n > s.segSize {
		seg, err := s.createSegment(s.cur.num + 1)
		if err != nil {
			return nil, 0, err
		}
		s.cur = seg
	}
	off := s.cur.size
	s.cur.size += n
	s.cur.writers.Add(1)
	return s.cur, off, nil
}

// writeRecord appends a v2 record for the block and returns where it went
// and its size. It does not touch the index. On success the caller owns a
// writer count on the segment (see alloc).
func (s *Disk) writeRecord(id ID, data []byte, tag uint64) (*segment, int64, int64, error) {
	hdr := newRecordHeader(id, data, tag)
	return s.appendRecord(hdr[:], data)
}

// appendRecord appends the record hdr, data as it is; see writeRecord.
func (s *Disk) appendRecord(hdr, data []byte) (*segment, int64, int64, error) {
	n := int64(len(hdr) + len(data))
	seg, off, err := s.alloc(n)
	if err != nil {
		return nil, 0, 0, err
	}
	if err := writeAt2(seg.f, off, hdr, data); err != nil {
		seg.writers.Add(-1)
		return nil, 0, 0, fmt.Errorf("write segment %s: %w", seg.f.Name(), err)
	}
	seg.wrote(off + n)
	return seg, off, n, nil
}

func (s *Disk) segment(n uint32) *segment {
	s.segMu.RLock()
	defer s.segMu.RUnlock()
	return s.segs[n]
}

// errSegmentMissing: an index entry points to a segment that is not open,
// either because its file is gone or because Compact removed it after the
// entry was read (Get then looks the entry up again).
var errSegmentMissing = fmt.Errorf("segment is missing: %w", ErrCorrupt)

// readSegment reads len(buf) bytes of segment n at off, like ReadAt. It
// returns an error wrapping errSegmentMissing when the segment is not open or
// was removed by Compact. Compact does not close a segment while a
// readSegment on it is in flight.
func (s *Disk) readSegment(n uint32, buf []byte, off int64) (int, error) {
	seg := s.segment(n)
	if seg == nil {
		return 0, fmt.Errorf("segment %s: %w", segmentName(n), errSegmentMissing)
	}
	seg.use.RLock()
	defer seg.use.RUnlock()
	if seg.gone {
		return 0, fmt.Errorf("segment %s: %w", segmentName(n), errSegmentMissing)
	}
	hook("read-locked")
	return seg.f.ReadAt(buf, off)
}

// readRecord reads the record e points to into buf when its capacity
// allows, else into a new buffer, checks it (see readRecordInto) and
// returns the block's bytes. Damage is reported wrapping ErrCorrupt, a
// missing segment wrapping errSegmentMissing (which wraps ErrCorrupt).
func (s *Disk) readRecord(id ID, e entry, buf []byte) ([]byte, error) {
	if n := e.recordSize(); int64(cap(buf)) >= n {
		buf = buf[:n]
	} else {
		buf = make([]byte, n)
	}
	if err := s.readRecordInto(id, e, buf); err != nil {
		return nil, err
	}
	return buf[e.Rec.headerSize():], nil
}

// readRecordInto reads the record e points to into buf, which holds exactly
// e.recordSize() bytes, and checks it: its header must be one of e's format
// for id and e.Len bytes, and then a v2 record's CRC must match, a v1
// record's bytes must hash to id (it has no CRC). So a v1 record is
// verified against id on return, a v2 record only as far as its CRC goes.
func (s *Disk) readRecordInto(id ID, e entry, buf []byte) error {
	if _, err := s.readSegment(e.Seg, buf, e.Off); err != nil {
		if errors.Is(err, io.EOF) {
			return fmt.Errorf("block %s: segment %s is truncated: %w", id, segmentName(e.Seg), ErrCorrupt)
		}
		if errors.Is(err, errSegmentMissing) {
			return fmt.Errorf("block %s: %w", id, err)
		}
		return fmt.Errorf("block %s: read segment %s: %w", id, segmentName(e.Seg), err)
	}
	hs := e.Rec.headerSize()
	if !bytes.Equal(buf[:4], e.Rec.magic()) ||
		binary.BigEndian.Uint32(buf[4:]) != uint32(e.Len) ||
		!bytes.Equal(buf[16:recordHeaderV1], id[:]) {
		return fmt.Errorf("block %s: bad record header in segment %s at %d: %w", id, segmentName(e.Seg), e.Off, ErrCorrupt)
	}
	if e.Rec == recordV1 {
		if err := Check(id, buf[hs:]); err != nil {
			return fmt.Errorf("segment %s at %d: %w", segmentName(e.Seg), e.Off, err)
		}
		return nil
	}
	if binary.BigEndian.Uint32(buf[recordHeaderV1:]) != recordCRC(buf, buf[hs:]) {
		return fmt.Errorf("block %s: record in segment %s at %d fails its CRC: %w", id, segmentName(e.Seg), e.Off, ErrCorrupt)
	}
	return nil
}

// readRaw returns whatever bytes are where e says the block is, possibly
// fewer than e.Len; for the quarantine copy.
func (s *Disk) readRaw(e entry) ([]byte, error) {
	buf := make([]byte, e.Len)
	n, err := s.readSegment(e.Seg, buf, e.Off+int64(e.Rec.headerSize()))
	if errors.Is(err, io.EOF) {
		err = nil
	}
	return buf[:n], err
}

func (s *Disk) closeFiles() error {
	s.segMu.Lock()
	defer s.segMu.Unlock()
	var first error
	for _, seg := range s.segs {
		seg.wbRunning.Wait()
		if err := seg.f.Close(); err != nil && first == nil {
			first = fmt.Errorf("close segment: %w", err)
		}
	}
	return first
}

// SegmentInfo describes one segment file.
type SegmentInfo struct {
	Num  uint32 `json:"num"`
	Size int64  `json:"size"` // bytes, including record headers
	// Dead counts the bytes of deleted and quarantined blocks, of lost Put
	// races, and of records Compact copied out of a segment it has not
	// finished with. Bytes orphaned by a crash or a failed write are not
	// counted (Compact measures dead bytes from the index and finds them).
	Dead int64 `json:"dead"`
}

// Segments lists the segment files, lowest number first. The last one is
// the one appends go to. Compact removes segments, so the numbers have gaps.
func (s *Disk) Segments() ([]SegmentInfo, error) {
	if err := s.enter(); err != nil {
		return nil, err
	}
	defer s.exit()
	s.segMu.RLock()
	out := make([]SegmentInfo, 0, len(s.segs))
	for _, seg := range s.segs {
		out = append(out, SegmentInfo{Num: seg.num, Size: seg.size})
	}
	s.segMu.RUnlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Num < out[j].Num })
	for i := range out {
		d, err := s.counter(deadKey(out[i].Num))
		if err != nil {
			return nil, err
		}
		out[i].Dead = int64(d)
	}
	return out, nil
}

// segmentBytes sums the segment sizes.
func (s *Disk) segmentBytes() int64 {
	s.segMu.RLock()
	defer s.segMu.RUnlock()
	var n int64
	for _, seg := range s.segs {
		n += seg.size
	}
	return n
}

// A record's header fits in the slack a GetInto buffer has.
var _ [ReadSlack - recordHeaderSize]struct{}
