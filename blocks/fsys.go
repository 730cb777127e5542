package blocks

import (
	"io"
	"os"
)

// segFile is what the store needs of a segment file.
type segFile interface {
	io.ReaderAt
	io.WriterAt
	Sync() error
	Close() error
	Name() string
	Size() (int64, error)
}

// fileSystem is what the store needs of the file system for its segment
// files and its small files (the checkpoint, the files journal). osFS is
// the real one; the power-cut tests put a simulator in its place, which
// keeps writes apart until they are synced and loses some of them at a
// "cut".
type fileSystem interface {
	MkdirAll(dir string) error
	// ReadDir lists the names of the regular files in dir.
	ReadDir(dir string) ([]string, error)
	// Open opens an existing file for reading, and writing unless
	// readOnly.
	Open(name string, readOnly bool) (segFile, error)
	// Create makes a new file; it fails when name exists.
	Create(name string) (segFile, error)
	Remove(name string) error
	Rename(from, to string) error
	// SyncDir makes dir's entries (files created, removed, renamed)
	// durable.
	SyncDir(dir string) error
}

// osFS is the operating system's file system.
type osFS struct{}

type osFile struct{ *os.File }

func (f osFile) Size() (int64, error) {
	fi, err := f.Stat()
	if err != nil {
		return 0, err
	}
	return fi.Size(), nil
}

func (osFS) MkdirAll(dir string) error { return os.MkdirAll(dir, 0o755) }

func (osFS) ReadDir(dir string) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, de := range ents {
		if de.Type().IsRegular() {
			out = append(out, de.Name())
		}
	}
	return out, nil
}

func (osFS) Open(name string, readOnly bool) (segFile, error) {
	mode := os.O_RDWR
	if readOnly {
		mode = os.O_RDONLY
	}
	f, err := os.OpenFile(name, mode, 0)
	if err != nil {
		return nil, err
	}
	return osFile{f}, nil
}

func (osFS) Create(name string) (segFile, error) {
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return nil, err
	}
	return osFile{f}, nil
}

func (osFS) Remove(name string) error     { return os.Remove(name) }
func (osFS) Rename(from, to string) error { return os.Rename(from, to) }
func (osFS) SyncDir(dir string) error     { return syncDir(dir) }

// writeAtCopy writes a then b at off, through one buffer.
func writeAtCopy(f segFile, off int64, a, b []byte) error {
	buf := make([]byte, 0, len(a)+len(b))
	buf = append(append(buf, a...), b...)
	_, err := f.WriteAt(buf, off)
	return err
}
