// Package atomicfile writes files so that a crash or a power cut leaves
// either the old file or the whole new one under the name, never a part:
// a temporary file beside it, fsync, rename, fsync of the directory.
package atomicfile

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"
)

// PartialMarker is in the name of every temporary file Write leaves while
// it writes.
const PartialMarker = ".blockmix-partial-"

// WriteFile replaces path with data, atomically and durably, with mode
// perm: after a crash at any moment path holds either its old content or
// data, never a part. Concurrent writers of one path each use their own
// temporary file; the last rename wins.
func WriteFile(path string, data []byte, perm os.FileMode) error {
	return Write(path, true, perm, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}

// Write writes through fill to a temporary file beside dest (locked while
// it is written, see Sweep), fsyncs it,
// gives it mode perm (0: the mode of the file it replaces, else 0644) and
// renames it to dest, then fsyncs the directory. The temporary file's
// name is unique (os.CreateTemp), so concurrent writers never share one. Without force it never
// replaces an existing dest, even one that appeared meanwhile. On any
// error the temporary file is removed and dest is untouched.
func Write(dest string, force bool, perm os.FileMode, fill func(io.Writer) error) (err error) {
	dir := filepath.Dir(dest)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(dest)+PartialMarker+"*")
	if err != nil {
		return fmt.Errorf("create a temporary file in %s: %w", dir, err)
	}
	lock(tmp) // held until tmp is closed: the next sweep leaves it alone
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if err = fill(&writebackFile{f: tmp}); err != nil {
		return err
	}
	if err = tmp.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", tmp.Name(), err)
	}
	if err = step("synced", tmp.Name()); err != nil {
		return err
	}
	// CreateTemp makes the file private; a rebuilt file gets the mode of
	// the file it replaces, or the usual 0644 (less the umask's effect on
	// group and other, which CreateTemp does not apply).
	mode := perm
	if mode == 0 {
		mode = 0o644
		if fi, serr := os.Stat(dest); serr == nil {
			mode = fi.Mode().Perm()
		}
	}
	if err = tmp.Chmod(mode); err != nil {
		return fmt.Errorf("chmod %s: %w", tmp.Name(), err)
	}
	if err = tmp.Close(); err != nil {
		return fmt.Errorf("close %s: %w", tmp.Name(), err)
	}
	if !force {
		// Link fails when dest appeared meanwhile: never overwrite.
		if err = os.Link(tmp.Name(), dest); err != nil {
			return fmt.Errorf("write %s: %w", dest, err)
		}
		if err = os.Remove(tmp.Name()); err != nil {
			return fmt.Errorf("remove %s: %w", tmp.Name(), err)
		}
	} else if err = os.Rename(tmp.Name(), dest); err != nil {
		return fmt.Errorf("rename to %s: %w", dest, err)
	}
	if err = step("renamed", tmp.Name()); err != nil {
		return err
	}
	return SyncDir(dir)
}

// testStep, when set (by tests only), is called after each step of Write
// ("synced": the temporary file is on disk, "renamed": it is under
// dest's name) with the temporary file's name; an error it returns stops
// Write there, as a crash would.
var testStep func(step, tmp string) error

func step(name, tmp string) error {
	if testStep == nil {
		return nil
	}
	return testStep(name, tmp)
}

// SyncDir makes the creation, renaming or removal of a file in dir
// durable.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("open %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}

// DamagedMarker is in the name a damaged file is set aside under (see
// SetAside).
const DamagedMarker = ".damaged-"

// SetAside renames path, a file found damaged (torn by a crash, say), to
// path.damaged-TIME (TIME in UTC, to the nanosecond) in the same
// directory, so that its bytes are kept for a person to look at and the
// name is free for a new file, and makes the rename durable. It returns
// the new name. The rename replaces nothing: it fails rather than
// overwrite an earlier damaged file of the same name.
func SetAside(path string) (string, error) {
	aside := path + DamagedMarker + time.Now().UTC().Format("20060102T150405.000000000Z")
	if err := os.Link(path, aside); err != nil {
		return "", fmt.Errorf("set aside %s: %w", path, err)
	}
	if err := os.Remove(path); err != nil {
		return "", fmt.Errorf("set aside %s: %w", path, err)
	}
	if err := SyncDir(filepath.Dir(path)); err != nil {
		return "", fmt.Errorf("set aside %s: %w", path, err)
	}
	return aside, nil
}

// Sweep removes the partial files that writes killed halfway (kill -9, a
// power cut) left in dir: those no running Write holds the lock of. It
// returns how many it removed. Where there is no flock it removes none.
func Sweep(dir string) int { return sweep(dir) }
