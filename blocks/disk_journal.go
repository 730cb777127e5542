package blocks

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
)

// The files journal (dir/files.log) is what the index knows of files and
// pins written a second time, in a form that survives a lost or torn
// index: every AddFile and RemoveFile appends a record, and Sync makes the
// journal durable before the index. Recovery after a crash and
// RebuildIndex replay it. A record is
//
//	length uint32 BE | crc32c(payload) uint32 BE | payload (JSON journalOp)
//
// and the first record that is cut short or fails its checksum ends the
// journal (a torn tail: the next append overwrites it).
const journalName = "files.log"

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// journalOp is one journal record.
type journalOp struct {
	Op     string     `json:"op"` // "add" or "remove"
	File   FileRecord `json:"file"`
	Blocks []byte     `json:"blocks,omitempty"` // the file's block IDs, 32 bytes each
}

// maxJournalRecord bounds a record's length: a file's block list is about
// 43 bytes a block in it (base64 in JSON), so a file of up to about 6
// million blocks (750 GiB in 128 KiB blocks) fits. The reader stops at a
// longer one as at a torn record, and the next append would overwrite it
// and every record after it: appendJournal refuses one instead, with an
// error wrapping ErrFileTooLarge. (A variable for the tests.)
var maxJournalRecord = 256 << 20

// ErrFileTooLarge: a file names more blocks than the files journal can
// record in one entry (see maxJournalRecord).
var ErrFileTooLarge = errors.New("the file has too many blocks for the store's files journal")

// openJournal opens (or creates) the files journal for appends.
func (s *Disk) openJournal() error {
	f, err := s.openLog(journalName)
	if err != nil {
		return fmt.Errorf("open files journal: %w", err)
	}
	s.journal = f
	return nil
}

// readJournal replays the journal: the files it holds at its end, in the
// order they were first added, and where its valid records end.
func (s *Disk) readJournal() (files []journalOp, end int64, err error) {
	size, err := s.journal.Size()
	if err != nil {
		return nil, 0, fmt.Errorf("files journal: %w", err)
	}
	r := bufio.NewReaderSize(io.NewSectionReader(s.journal, 0, size), 256<<10)
	live := map[string]int{} // key → index in files
	for {
		var hdr [8]byte
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			break // the end, or a torn header
		}
		n := binary.BigEndian.Uint32(hdr[:])
		if n == 0 || int64(n) > int64(maxJournalRecord) || end+8+int64(n) > size {
			break
		}
		p := make([]byte, n)
		if _, err := io.ReadFull(r, p); err != nil || crc32.Checksum(p, castagnoli) != binary.BigEndian.Uint32(hdr[4:]) {
			break
		}
		var op journalOp
		if err := json.Unmarshal(p, &op); err != nil {
			break
		}
		end += 8 + int64(n)
		switch i, ok := live[op.File.Key]; {
		case op.Op == "remove" && ok:
			files[i].Op = "" // gone; dropped below
			delete(live, op.File.Key)
		case op.Op == "add" && ok:
			files[i].File.Name, files[i].File.Recipe, files[i].File.Type = op.File.Name, op.File.Recipe, op.File.Type
		case op.Op == "add":
			live[op.File.Key] = len(files)
			files = append(files, op)
		}
	}
	out := files[:0]
	for _, f := range files {
		if f.Op != "" {
			out = append(out, f)
		}
	}
	return out, end, nil
}

// appendJournal appends op; Sync makes it durable. The caller holds idxMu.
func (s *Disk) appendJournal(op journalOp) error {
	p, err := json.Marshal(op)
	if err != nil {
		return fmt.Errorf("files journal: %w", err)
	}
	if len(p) > maxJournalRecord {
		return fmt.Errorf("files journal: %w (%d blocks, a record of %d MiB; at most %d MiB)", ErrFileTooLarge, len(op.Blocks)/len(ID{}), len(p)>>20, maxJournalRecord>>20)
	}
	rec := make([]byte, 8, 8+len(p))
	binary.BigEndian.PutUint32(rec, uint32(len(p)))
	binary.BigEndian.PutUint32(rec[4:], crc32.Checksum(p, castagnoli))
	rec = append(rec, p...)
	if _, err := s.journal.WriteAt(rec, s.journalEnd); err != nil {
		return fmt.Errorf("files journal: %w", err)
	}
	s.journalEnd += int64(len(rec))
	s.journalDirty = true
	return nil
}

// idBytes and bytesIDs convert a block list to and from the journal's form.
func idBytes(ids []ID) []byte {
	out := make([]byte, 0, len(ids)*len(ID{}))
	for _, id := range ids {
		out = append(out, id[:]...)
	}
	return out
}

func bytesIDs(b []byte) []ID {
	ids := make([]ID, 0, len(b)/len(ID{}))
	for ; len(b) >= len(ID{}); b = b[len(ID{}):] {
		ids = append(ids, ID(b[:len(ID{})]))
	}
	return ids
}

// rewriteJournal replaces the journal with one record per live file
// (after a replay showed it mostly holds files since removed). The caller
// holds idxMu.
func (s *Disk) rewriteJournal(files []journalOp) error {
	old, oldEnd := s.journal, s.journalEnd
	f, err := s.rewrite(journalName, func(f segFile) error {
		s.journal, s.journalEnd = f, 0
		for _, op := range files {
			if err := s.appendJournal(op); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		s.journal, s.journalEnd = old, oldEnd
		return fmt.Errorf("rewrite files journal: %w", err)
	}
	old.Close()
	s.journal, s.journalDirty = f, false
	return nil
}

// openLog opens dir/name for appends, creating it (and making its
// directory entry durable) when it does not exist.
func (s *Disk) openLog(name string) (segFile, error) {
	path := filepath.Join(s.dir, name)
	f, err := s.fs.Open(path, false)
	if errors.Is(err, os.ErrNotExist) {
		if f, err = s.fs.Create(path); err == nil {
			err = s.fs.SyncDir(s.dir)
		}
	}
	return f, err
}

// rewrite replaces dir/name with what fill writes into a new file: the
// new file is synced, renamed over the old one, and the directory synced,
// so that a crash leaves the old file or the new one. It returns the new
// file, open.
func (s *Disk) rewrite(name string, fill func(f segFile) error) (segFile, error) {
	tmpName := filepath.Join(s.dir, name+".new")
	_ = s.fs.Remove(tmpName)
	f, err := s.fs.Create(tmpName)
	if err != nil {
		return nil, err
	}
	err = fill(f)
	if err == nil {
		err = f.Sync()
	}
	if err == nil {
		err = s.fs.Rename(tmpName, filepath.Join(s.dir, name))
	}
	if err == nil {
		err = s.fs.SyncDir(s.dir)
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}
