package blocks

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
)

// The gone log (dir/gone.log) lists the blocks deleted or quarantined, each
// with the append position at that moment, so that recovery and
// RebuildIndex do not bring back a block a Sync said was gone although
// goleveldb lost the index write (see keyClean), or its record was not yet
// reclaimed: a record of the block before that position is gone; one
// after it was put again later. An entry is
//
//	id [32]byte | segment uint32 BE | offset uint64 BE | crc32c of those 44 bytes
//
// and one that fails its checksum (a torn write) ends the log. A
// checkpoint drops the entries older than every segment that still exists.
const (
	goneName  = "gone.log"
	goneEntry = 32 + 4 + 8 + 4
)

// place is a position in the segments: segment, then offset.
type place struct {
	seg uint32
	off int64
}

func (p place) before(q place) bool { return p.seg < q.seg || p.seg == q.seg && p.off < q.off }

// openGone opens (or creates) the gone log; its valid entries end at
// goneEnd.
func (s *Disk) openGone() error {
	f, err := s.openLog(goneName)
	if err != nil {
		return fmt.Errorf("open gone log: %w", err)
	}
	s.gone = f
	_, n, err := s.readGone()
	if err != nil {
		return err
	}
	s.goneEnd = int64(n) * goneEntry
	return nil
}

// readGone returns, for each block the gone log lists, the latest append
// position at which it went, and how many valid entries the log has.
func (s *Disk) readGone() (map[ID]place, int, error) {
	size, err := s.gone.Size()
	if err != nil {
		return nil, 0, fmt.Errorf("gone log: %w", err)
	}
	out := map[ID]place{}
	r := io.NewSectionReader(s.gone, 0, size)
	var e [goneEntry]byte
	n := 0
	for {
		if _, err := io.ReadFull(r, e[:]); err != nil {
			return out, n, nil
		}
		if crc32.Checksum(e[:44], castagnoli) != binary.BigEndian.Uint32(e[44:]) {
			return out, n, nil
		}
		n++
		id := ID(e[:32])
		p := place{binary.BigEndian.Uint32(e[32:]), int64(binary.BigEndian.Uint64(e[36:]))}
		if old, ok := out[id]; !ok || old.before(p) {
			out[id] = p
		}
	}
}

// noteGone appends that id went at the current append position; Sync
// makes it durable. The caller holds idxMu.
func (s *Disk) noteGone(id ID) error {
	s.segMu.RLock()
	at := place{s.cur.num, s.cur.size}
	s.segMu.RUnlock()
	return s.appendGone(id, at)
}

func (s *Disk) appendGone(id ID, at place) error {
	var e [goneEntry]byte
	copy(e[:], id[:])
	binary.BigEndian.PutUint32(e[32:], at.seg)
	binary.BigEndian.PutUint64(e[36:], uint64(at.off))
	binary.BigEndian.PutUint32(e[44:], crc32.Checksum(e[:44], castagnoli))
	if _, err := s.gone.WriteAt(e[:], s.goneEnd); err != nil {
		return fmt.Errorf("gone log: %w", err)
	}
	s.goneEnd += goneEntry
	s.goneDirty = true
	return nil
}

// trimGone rewrites the gone log with one entry per block, without those
// older than every segment that still exists (no record they could hide
// is left): a new file, synced, renamed over the old one, the directory
// synced. The caller holds idxMu.
func (s *Disk) trimGone() error {
	gone, _, err := s.readGone()
	if err != nil {
		return err
	}
	s.segMu.RLock()
	oldest := s.cur.num
	for n := range s.segs {
		oldest = min(oldest, n)
	}
	s.segMu.RUnlock()
	old, oldEnd := s.gone, s.goneEnd
	f, err := s.rewrite(goneName, func(f segFile) error {
		s.gone, s.goneEnd = f, 0
		for id, p := range gone {
			if p.seg < oldest {
				continue
			}
			if err := s.appendGone(id, p); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		s.gone, s.goneEnd = old, oldEnd
		return fmt.Errorf("trim gone log: %w", err)
	}
	old.Close()
	s.gone, s.goneDirty = f, false
	return nil
}
