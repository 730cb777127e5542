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
	// "add" (a file with its whole list, or a new name for a known file),
	// "remove", or a list in parts: "begin" (with the record), "part"s
	// and "commit" (see disk_filelist.go)
	Op     string     `json:"op"`
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

// journalFile is a file the journal holds at its end: its record (with
// the last name given it), where its list starts (its "add" or "begin"
// record) and how many blocks the list names.
type journalFile struct {
	File FileRecord
	At   int64
	N    int
}

// journalReader reads the journal's records in turn.
type journalReader struct {
	r         *bufio.Reader
	off, size int64
}

func newJournalReader(f segFile, from, size int64) *journalReader {
	return &journalReader{r: bufio.NewReaderSize(io.NewSectionReader(f, from, size-from), 256<<10), off: from, size: size}
}

// next reads the next record and where it starts; ok is false at the
// journal's end and at the first record cut short or damaged.
func (jr *journalReader) next() (op journalOp, at int64, ok bool) {
	var hdr [8]byte
	if _, err := io.ReadFull(jr.r, hdr[:]); err != nil {
		return op, 0, false // the end, or a torn header
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if n == 0 || int64(n) > int64(maxJournalRecord) || jr.off+8+int64(n) > jr.size {
		return op, 0, false
	}
	p := make([]byte, n)
	if _, err := io.ReadFull(jr.r, p); err != nil || crc32.Checksum(p, castagnoli) != binary.BigEndian.Uint32(hdr[4:]) {
		return op, 0, false
	}
	if err := json.Unmarshal(p, &op); err != nil {
		return op, 0, false
	}
	at = jr.off
	jr.off += 8 + int64(n)
	return op, at, true
}

// readJournal replays the journal: the files it holds at its end, in the
// order they were first added, and where its valid records end. It holds
// no block list: journalBlocks reads one.
func (s *Disk) readJournal() (files []journalFile, end int64, err error) {
	size, err := s.journal.Size()
	if err != nil {
		return nil, 0, fmt.Errorf("files journal: %w", err)
	}
	jr := newJournalReader(s.journal, 0, size)
	live := map[string]int{} // key → index in files
	add := func(f journalFile) {
		if i, ok := live[f.File.Key]; ok {
			files[i].File.Name, files[i].File.Recipe, files[i].File.Type = f.File.Name, f.File.Recipe, f.File.Type
			return
		}
		live[f.File.Key] = len(files)
		files = append(files, f)
	}
	var open *journalFile // a list being added: its begin, until its commit
	for {
		op, at, ok := jr.next()
		if !ok {
			break
		}
		if open != nil && (op.Op != "part" && op.Op != "commit" || op.File.Key != open.File.Key) {
			open = nil // a begin without its commit: never added
		}
		switch i, ok := live[op.File.Key]; op.Op {
		case "remove":
			if ok {
				files[i].At = -1 // gone; dropped below
				delete(live, op.File.Key)
			}
		case "add":
			op.File.Blocks = nil
			add(journalFile{File: op.File, At: at, N: len(op.Blocks) / len(ID{})})
		case "begin":
			op.File.Blocks = nil
			open = &journalFile{File: op.File, At: at}
		case "part":
			if open != nil {
				open.N += len(op.Blocks) / len(ID{})
			}
		case "commit":
			if open != nil {
				add(*open)
				open = nil
			}
		}
	}
	out := files[:0]
	for _, f := range files {
		if f.At >= 0 {
			out = append(out, f)
		}
	}
	return out, jr.off, nil
}

// journalBlocks calls fn with the block list of the file whose "add" or
// "begin" record is at offset at of journal f (of size bytes), a part at
// a time.
func journalBlocks(f segFile, size, at int64, fn func([]ID) error) error {
	jr := newJournalReader(f, at, size)
	op, _, ok := jr.next()
	switch {
	case ok && op.Op == "add":
		return fn(bytesIDs(op.Blocks))
	case !ok || op.Op != "begin":
		return fmt.Errorf("files journal: no file's list at offset %d", at)
	}
	key := op.File.Key
	for {
		op, _, ok := jr.next()
		switch {
		case ok && op.Op == "part" && op.File.Key == key:
			if err := fn(bytesIDs(op.Blocks)); err != nil {
				return err
			}
		case ok && op.Op == "commit" && op.File.Key == key:
			return nil
		default:
			return fmt.Errorf("files journal: the list of %q at offset %d has no commit", key, at)
		}
	}
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

// rewriteJournal replaces the journal with the records of the live files
// alone (after a replay showed it mostly holds files since removed), each
// list copied a part at a time. The caller holds idxMu.
func (s *Disk) rewriteJournal(files []journalFile) error {
	old, oldEnd := s.journal, s.journalEnd
	f, err := s.rewrite(journalName, func(f segFile) error {
		s.journal, s.journalEnd = f, 0
		for _, jf := range files {
			if err := s.copyJournalFile(old, oldEnd, jf); err != nil {
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

// copyJournalFile appends jf, whose list is in journal old (of size
// bytes): as one "add" when the list fits one chunk, else as "begin",
// parts of at most fileListChunk blocks and "commit".
func (s *Disk) copyJournalFile(old segFile, size int64, jf journalFile) error {
	if jf.N <= fileListChunk {
		var ids []ID
		if err := journalBlocks(old, size, jf.At, func(p []ID) error { ids = append(ids, p...); return nil }); err != nil {
			return err
		}
		return s.appendJournal(journalOp{Op: "add", File: jf.File, Blocks: idBytes(ids)})
	}
	if err := s.appendJournal(journalOp{Op: "begin", File: jf.File}); err != nil {
		return err
	}
	err := journalBlocks(old, size, jf.At, func(p []ID) error {
		for len(p) > 0 {
			n := min(len(p), fileListChunk)
			if err := s.appendJournal(journalOp{Op: "part", File: FileRecord{Key: jf.File.Key}, Blocks: idBytes(p[:n])}); err != nil {
				return err
			}
			p = p[n:]
		}
		return nil
	})
	if err != nil {
		return err
	}
	return s.appendJournal(journalOp{Op: "commit", File: FileRecord{Key: jf.File.Key}})
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
