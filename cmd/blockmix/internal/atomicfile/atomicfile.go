// Package atomicfile writes files so that a crash or a power cut leaves
// either the old file or the whole new one under the name, never a part:
// a temporary file beside it, fsync, rename, fsync of the directory.
package atomicfile

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// PartialMarker is in the name of every temporary file Write leaves while
// it writes.
const PartialMarker = ".blockmix-partial-"

// WriteFile replaces path with data, atomically and durably, with mode
// perm.
func WriteFile(path string, data []byte, perm os.FileMode) error {
	return Write(path, true, perm, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}

// Write writes through fill to a temporary file beside dest (locked while
// it is written, see Sweep), fsyncs it,
// gives it mode perm (0: the mode of the file it replaces, else 0644) and
// renames it to dest, then fsyncs the directory. Without force it never
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
	return syncDir(dir)
}

// syncDir makes a rename in dir durable.
func syncDir(dir string) error {
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

// Sweep removes the partial files that writes killed halfway (kill -9, a
// power cut) left in dir: those no running Write holds the lock of. It
// returns how many it removed. Where there is no flock it removes none.
func Sweep(dir string) int { return sweep(dir) }
