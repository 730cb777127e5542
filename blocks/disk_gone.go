package blocks

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
)

// The gone log (dir/gone.log) lists where the records of deleted and
// quarantined blocks are, so that recovery does not bring back a block a
// Sync said was gone although goleveldb lost the index write (see
// keyClean), nor RebuildIndex one whose record Compact has not reclaimed.
// Only records in segments that still exist matter: a checkpoint drops the
// others. An entry is
//
//	segment uint32 BE | offset uint64 BE | crc32c of those 12 bytes
//
// and one that fails its checksum (a torn write) ends the log.
const goneName = "gone.log"

type place struct {
	seg uint32
	off int64
}

// openGone opens (or creates) the gone log; its valid entries end at
// goneEnd.
func (s *Disk) openGone() error {
	name := filepath.Join(s.dir, goneName)
	f, err := s.fs.Open(name, false)
	if errors.Is(err, os.ErrNotExist) {
		f, err = s.fs.Create(name)
		if err == nil {
			err = s.fs.SyncDir(s.dir)
		}
	}
	if err != nil {
		return fmt.Errorf("open gone log: %w", err)
	}
	s.gone = f
	places, err := s.readGone()
	if err != nil {
		return err
	}
	s.goneEnd = int64(len(places)) * 16
	return nil
}

// readGone returns the places the gone log lists.
func (s *Disk) readGone() (map[place]bool, error) {
	size, err := s.gone.Size()
	if err != nil {
		return nil, fmt.Errorf("gone log: %w", err)
	}
	out := map[place]bool{}
	r := io.NewSectionReader(s.gone, 0, size)
	var e [16]byte
	for {
		if _, err := io.ReadFull(r, e[:]); err != nil {
			return out, nil
		}
		if crc32.Checksum(e[:12], castagnoli) != binary.BigEndian.Uint32(e[12:]) {
			return out, nil
		}
		out[place{binary.BigEndian.Uint32(e[:]), int64(binary.BigEndian.Uint64(e[4:]))}] = true
	}
}

// noteGone appends the place of a record whose block was deleted or
// quarantined; Sync makes it durable. The caller holds idxMu.
func (s *Disk) noteGone(seg uint32, off int64) error {
	var e [16]byte
	binary.BigEndian.PutUint32(e[:], seg)
	binary.BigEndian.PutUint64(e[4:], uint64(off))
	binary.BigEndian.PutUint32(e[12:], crc32.Checksum(e[:12], castagnoli))
	if _, err := s.gone.WriteAt(e[:], s.goneEnd); err != nil {
		return fmt.Errorf("gone log: %w", err)
	}
	s.goneEnd += 16
	s.goneDirty = true
	return nil
}

// trimGone rewrites the gone log without the places in segments that no
// longer exist (Compact removed them): a new file, synced, renamed over
// the old one, the directory synced. The caller holds idxMu.
func (s *Disk) trimGone() error {
	places, err := s.readGone()
	if err != nil {
		return err
	}
	s.segMu.RLock()
	for p := range places {
		if s.segs[p.seg] == nil {
			delete(places, p)
		}
	}
	s.segMu.RUnlock()
	tmpName := filepath.Join(s.dir, goneName+".new")
	_ = s.fs.Remove(tmpName)
	f, err := s.fs.Create(tmpName)
	if err != nil {
		return fmt.Errorf("trim gone log: %w", err)
	}
	old, oldEnd := s.gone, s.goneEnd
	s.gone, s.goneEnd = f, 0
	for p := range places {
		if err = s.noteGone(p.seg, p.off); err != nil {
			break
		}
	}
	if err == nil {
		err = f.Sync()
	}
	if err == nil {
		err = s.fs.Rename(tmpName, filepath.Join(s.dir, goneName))
	}
	if err == nil {
		err = s.fs.SyncDir(s.dir)
	}
	if err != nil {
		f.Close()
		s.gone, s.goneEnd = old, oldEnd
		return fmt.Errorf("trim gone log: %w", err)
	}
	old.Close()
	s.goneDirty = false
	return nil
}
