package blocks

import (
	"context"
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"sort"

	"github.com/syndtr/goleveldb/leveldb/util"
)

// CompactStats reports what one Compact did.
type CompactStats struct {
	Segments int `json:"segments"` // segment files removed
	Blocks   int `json:"blocks"`   // live blocks moved to the append segment
	// Moved is the bytes copied to the append segment, record headers
	// included (a copy of a block deleted meanwhile is counted, and is dead).
	Moved int64 `json:"moved"`
	// Freed is the bytes of the removed segment files less Moved: what the
	// store gave back to the disk. It is negative when Compact stopped after
	// copying records but before removing their old segment.
	Freed int64 `json:"freed"`
	// Quarantined counts blocks whose records did not read back intact
	// (bad header, truncated, bytes that do not match the ID): Compact
	// quarantines them instead of moving them, as Quarantine does.
	Quarantined int `json:"quarantined"`
}

// How much Compact copies before it makes the copies durable and repoints
// their index entries, and how many live records it collects per walk of the
// index (which bounds its memory). Variables, so that tests can make them
// small.
var (
	compactFlushBytes   int64 = 64 << 20
	compactFlushRecords       = 8192
	compactGroupRecords       = 1 << 16
)

// testHook, when a test sets it, is called at named points of Get, of reads
// and of Compact; the crash test kills the process there. Set it only while
// no Disk is open.
var testHook func(point string)

func hook(point string) {
	if testHook != nil {
		testHook(point)
	}
}

// Compact reclaims the space of dead records. It takes every closed segment
// (not the one appends go to, nor one a Put is still writing to) whose dead
// bytes are at least minDead of its size (any dead byte when minDead is 0),
// copies its live records to the end of the append segment (a v2 record as
// it is, CRC included; a v1 record, once its bytes hash to its ID, as a v2
// one), repoints their index entries, and removes the segment file
// and its dead-byte count. A segment with no live record is just removed;
// segments with the fewest live bytes go first. Dead bytes here are measured
// by walking the index (whatever no entry points to), so they include bytes
// orphaned by a crash, which Segments does not count. A record that does not
// read back intact is quarantined (see CompactStats). minDead must be within
// [0, 1]. Compact walks the whole index once, plus once per 65536 live
// records to move; its cost is otherwise the live bytes of the segments it
// takes. Quarantined blocks cost nothing here: Quarantine already copied
// their bytes to dir/quarantine, and their records are dead.
//
// Crash safety: Compact never changes a record in place. It fsyncs the copies
// (and the directory entry of any new segment) before it writes the index
// entries that point at them, makes the index durable the way Sync does
// (every other written segment fsynced first), and only then closes and
// removes the old segment files. A kill or a power loss at any point leaves
// every entry pointing either to its old record, in a file that is still
// there, or to its new, durable one; copies not yet pointed to are dead bytes.
// A crash after the index was made durable but before the removal leaves
// segment files that no entry points to: OpenDisk keeps them (it does not
// walk the index) and the next Compact removes them whatever minDead is.
//
// Concurrency: Get, Has, Stat, Put, Delete, Quarantine, Enumerate, the file
// methods and Sync may run during Compact. Puts append next to the copies.
// An entry is repointed under the index lock only if it still points to the
// record that was copied, so a block deleted, quarantined or put again
// meanwhile stays so and its copy counts as dead; reference counts changed
// meanwhile are kept. A reader that looked an entry up before it was
// repointed still reads the old, unchanged record: Compact waits for reads in
// flight on a segment before it closes it, and a Get that finds its segment
// removed looks the entry up again. One Compact runs at a time; a second one
// waits for the first (or for ctx). When ctx is done or Close begins, Compact
// makes the copies made so far durable, removes the segments it finished, and
// returns what it did with an error wrapping ctx.Err() or ErrClosed.
func (s *Disk) Compact(ctx context.Context, minDead float64) (CompactStats, error) {
	if math.IsNaN(minDead) || minDead < 0 || minDead > 1 {
		return CompactStats{}, fmt.Errorf("compact: minDead %v is not within [0, 1]", minDead)
	}
	if err := s.enterWrite(); err != nil {
		return CompactStats{}, err
	}
	defer s.exit()
	select {
	case s.compacting <- struct{}{}:
	case <-ctx.Done():
		return CompactStats{}, fmt.Errorf("compact: %w", ctx.Err())
	}
	defer func() { <-s.compacting }()

	c := &compaction{s: s, ctx: ctx, dests: map[uint32]*segment{}}
	err := c.run(minDead)
	if ferr := c.flush(); err == nil {
		err = ferr
	}
	c.st.Freed = c.removed - c.st.Moved
	if err != nil {
		return c.st, fmt.Errorf("compact %s: %w", s.dir, err)
	}
	return c.st, nil
}

// compaction is the state of one Compact.
type compaction struct {
	s   *Disk
	ctx context.Context
	st  CompactStats

	removed int64               // bytes of the segment files removed
	moves   []move              // copies written but not yet pointed to
	copied  int64               // bytes of those copies
	dests   map[uint32]*segment // the segments they were written to
	done    []*segment          // segments whose every live record is in moves
	buf     []byte
}

// move is one record copied from one segment to another.
type move struct {
	id      ID
	from    uint32
	fromOff int64
	to      uint32
	toOff   int64
	n       int64 // size of the record copied
	toN     int64 // size of the copy (a v1 record grows by the CRC)
}

// candidate is a closed segment Compact may take.
type candidate struct {
	seg     *segment
	size    int64
	live    int64 // bytes of the records the index points to
	records int   // how many
}

// stopped returns why Compact must stop early, or nil.
func (c *compaction) stopped() error {
	if c.s.closing.Load() {
		return ErrClosed
	}
	return c.ctx.Err()
}

func (c *compaction) run(minDead float64) error {
	if err := c.stopped(); err != nil {
		return err
	}
	cands := c.s.closedSegments()
	if len(cands) == 0 {
		return nil
	}
	// Every entry that will ever point into these segments is written by
	// now (closedSegments saw no writer), so this walk sees them all.
	bySeg := make(map[uint32]*candidate, len(cands))
	for i := range cands {
		bySeg[cands[i].seg.num] = &cands[i]
	}
	err := c.s.walkEntries(c.stopped, func(_ ID, e entry) error {
		if cd := bySeg[e.Seg]; cd != nil {
			cd.live += e.recordSize()
			cd.records++
		}
		return nil
	})
	if err != nil {
		return err
	}
	var take []*candidate
	for i := range cands {
		cd := &cands[i]
		dead := cd.size - cd.live
		if cd.records == 0 || (dead > 0 && float64(dead) >= minDead*float64(cd.size)) {
			take = append(take, cd)
		}
	}
	// Least live first: segments with no live record cost nothing to
	// reclaim, and on a nearly full disk the copies of the others may not
	// fit for long.
	sort.Slice(take, func(i, j int) bool {
		a, b := take[i], take[j]
		fa, fb := float64(a.live)/float64(max(a.size, 1)), float64(b.live)/float64(max(b.size, 1))
		if fa != fb {
			return fa < fb
		}
		return a.seg.num < b.seg.num
	})
	for len(take) > 0 {
		// A group of segments whose live records fit in memory at once.
		n, records := 0, 0
		for n < len(take) && (n == 0 || records+take[n].records <= compactGroupRecords) {
			records += take[n].records
			n++
		}
		if err := c.group(take[:n], records); err != nil {
			return err
		}
		take = take[n:]
	}
	return nil
}

// closedSegments returns the segments appends no longer go to and no Put is
// writing to.
func (s *Disk) closedSegments() []candidate {
	s.segMu.RLock()
	defer s.segMu.RUnlock()
	var out []candidate
	for _, seg := range s.segs {
		if seg != s.cur && seg.writers.Load() == 0 {
			out = append(out, candidate{seg: seg, size: seg.size})
		}
	}
	return out
}

// walkEntries calls fn for every block entry in the index, and stop every
// so often: it returns stop's error if there is one.
func (s *Disk) walkEntries(stop func() error, fn func(ID, entry) error) error {
	it := s.db.NewIterator(util.BytesPrefix([]byte{prefixBlock}), nil)
	defer it.Release()
	for n := 0; it.Next(); n++ {
		if n%4096 == 0 {
			if err := stop(); err != nil {
				return err
			}
		}
		id, err := blockKeyID(it.Key())
		if err != nil {
			return err
		}
		e, err := decodeEntry(it.Value())
		if err != nil {
			return fmt.Errorf("block %s: %w", id, err)
		}
		if err := fn(id, e); err != nil {
			return err
		}
	}
	if err := it.Error(); err != nil {
		return fmt.Errorf("read index: %w", err)
	}
	return nil
}

// group moves the live records of segs (about records of them) and marks
// each segment done once all of its records are copied.
func (c *compaction) group(segs []*candidate, records int) error {
	var moves []move
	if records > 0 {
		rank := make(map[uint32]int, len(segs))
		for i, cd := range segs {
			rank[cd.seg.num] = i
		}
		moves = make([]move, 0, records)
		err := c.s.walkEntries(c.stopped, func(id ID, e entry) error {
			if _, ok := rank[e.Seg]; ok {
				moves = append(moves, move{id: id, from: e.Seg, fromOff: e.Off, n: e.recordSize()})
			}
			return nil
		})
		if err != nil {
			return err
		}
		// Segment by segment, in the order of segs, each front to back.
		sort.Slice(moves, func(i, j int) bool {
			ri, rj := rank[moves[i].from], rank[moves[j].from]
			if ri != rj {
				return ri < rj
			}
			return moves[i].fromOff < moves[j].fromOff
		})
	}
	for _, cd := range segs {
		for len(moves) > 0 && moves[0].from == cd.seg.num {
			if err := c.stopped(); err != nil {
				return err
			}
			if err := c.copy(moves[0]); err != nil {
				return err
			}
			moves = moves[1:]
			if c.copied >= compactFlushBytes || len(c.moves) >= compactFlushRecords {
				if err := c.flush(); err != nil {
					return err
				}
			}
		}
		c.done = append(c.done, cd.seg)
	}
	return nil
}

// copy copies the record m describes to the append segment, unless the block
// is no longer there; a record that does not read back intact is
// quarantined instead.
func (c *compaction) copy(m move) error {
	s := c.s
	e, err := s.entry(m.id)
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if e.Seg != m.from || e.Off != m.fromOff {
		return nil // deleted and put again
	}
	// A Delete from here on leaves the copy written after its place in
	// the gone log: flush notes the block gone again.
	hook("compact-checked")
	if int64(cap(c.buf)) < m.n {
		c.buf = make([]byte, m.n)
	}
	buf := c.buf[:m.n]
	// Checked by its CRC (v2) or hashed (v1).
	err = s.readRecordInto(m.id, e, buf)
	if errors.Is(err, ErrCorrupt) || errors.Is(err, ErrTooLarge) {
		return c.quarantine(m, err)
	}
	if err != nil {
		return err
	}
	var seg *segment
	var off, n int64
	if hs := e.Rec.headerSize(); e.Rec == recordV1 {
		seg, off, n, err = s.writeRecord(m.id, buf[hs:], e.Tag)
	} else {
		// As it is: the CRC that was just checked goes along.
		seg, off, n, err = s.appendRecord(buf[:hs], buf[hs:])
	}
	if err != nil {
		return err
	}
	// Compacts run one at a time and this one repoints its copies before it
	// returns, so the next one cannot take this segment too early.
	seg.writers.Add(-1)
	m.to, m.toOff, m.toN = seg.num, off, n
	c.moves = append(c.moves, m)
	c.dests[seg.num] = seg
	c.copied += n
	c.st.Moved += n
	return nil
}

// quarantine takes the damaged block of m out of service, if its entry still
// points to the record m describes.
func (c *compaction) quarantine(m move, cause error) error {
	s := c.s
	s.idxMu.Lock()
	defer s.idxMu.Unlock()
	e, err := s.entry(m.id)
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if e.Seg != m.from || e.Off != m.fromOff {
		return nil
	}
	if err := s.quarantineLocked(m.id, e, "found by compaction: "+cause.Error()); err != nil {
		return err
	}
	c.st.Quarantined++
	return nil
}

// flush makes the copies durable, repoints the entries that still point to
// the copied records, makes the index durable, and then removes the segments
// that are done.
func (c *compaction) flush() error {
	if len(c.moves) == 0 && len(c.done) == 0 {
		return nil
	}
	s := c.s
	hook("compact-copied")
	// 1. The copies reach the disk before an index entry points to them.
	for _, seg := range c.dests {
		if err := seg.f.Sync(); err != nil {
			return fmt.Errorf("sync segment %s: %w", seg.f.Name(), err)
		}
	}
	s.segMu.RLock()
	dirDirty := s.segDirDirty
	s.segMu.RUnlock()
	if dirDirty {
		// A Sync that clears the flag meanwhile syncs the directory too.
		if err := s.fs.SyncDir(filepath.Join(s.dir, segmentsDir)); err != nil {
			return fmt.Errorf("sync segment directory: %w", err)
		}
	}

	// 2. Repoint, and make the index durable.
	s.idxMu.Lock()
	done := make(map[uint32]bool, len(c.done))
	for _, seg := range c.done {
		done[seg.num] = true
	}
	b := s.batch()
	dead := map[uint32]int64{}
	moved := 0
	for _, m := range c.moves {
		e, err := s.entry(m.id)
		switch {
		case err == nil && e.Seg == m.from && e.Off == m.fromOff:
			was := e
			e.Seg, e.Off, e.Rec = m.to, m.toOff, recordV2
			s.setEntry(b, m.id, &was, &e)
			dead[m.from] += m.n
			moved++
		case err == nil:
			dead[m.to] += m.toN // deleted and put again since it was copied
		case errors.Is(err, ErrNotFound):
			// Deleted (or quarantined) since it was looked up for the
			// copy, maybe before the copy was written: the gone log
			// must say so after the copy, or a recovery's scan (and
			// RebuildIndex) would take the copy for a later put and
			// bring the block back.
			dead[m.to] += m.toN
			if err := s.noteGone(m.id); err != nil {
				s.idxMu.Unlock()
				return err
			}
		default:
			s.idxMu.Unlock()
			return err
		}
	}
	for n := range done {
		delete(dead, n)
		b.Delete(deadKey(n))
	}
	for n, d := range dead {
		if err := s.addDead(b, n, d); err != nil {
			s.idxMu.Unlock()
			return err
		}
	}
	if err := s.write(b); err != nil {
		s.idxMu.Unlock()
		return err
	}
	c.st.Blocks += moved
	c.moves, c.copied = c.moves[:0], 0
	clear(c.dests)
	if err := s.syncLocked(); err != nil {
		s.idxMu.Unlock()
		return err // the final flush tries again before removing anything
	}
	// No entry points into the done segments, durably: forget them.
	s.segMu.Lock()
	for n := range done {
		delete(s.segs, n)
	}
	s.segMu.Unlock()
	for n := range done {
		delete(s.dirty, n)
	}
	s.idxMu.Unlock()

	// 3. Remove the old files, once no read is in flight on them.
	segs := c.done
	c.done = nil
	if len(segs) > 0 {
		hook("compact-repointed")
	}
	var firstErr error
	for _, seg := range segs {
		size, err := s.removeSegment(seg)
		if err != nil {
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		c.st.Segments++
		c.removed += size
		hook("compact-removed")
	}
	return firstErr
}

// removeSegment closes and removes a segment that is no longer in the
// segment table, waiting for reads in flight on it, and returns its size.
// A file that fails to be removed is left behind, and taken by the next
// Compact after the store is opened again.
func (s *Disk) removeSegment(seg *segment) (int64, error) {
	seg.use.Lock()
	seg.gone = true
	seg.wbRunning.Wait()
	size, serr := seg.f.Size()
	cerr := seg.f.Close()
	seg.use.Unlock()
	if serr != nil {
		return 0, fmt.Errorf("remove segment %s: %w", segmentName(seg.num), serr)
	}
	if cerr != nil {
		return 0, fmt.Errorf("remove segment %s: %w", segmentName(seg.num), cerr)
	}
	if err := s.fs.Remove(filepath.Join(s.dir, segmentsDir, segmentName(seg.num))); err != nil {
		return 0, fmt.Errorf("remove segment %s: %w", segmentName(seg.num), err)
	}
	return size, nil
}
