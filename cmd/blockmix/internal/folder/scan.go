// Package folder does the command line's and the daemon's work on local
// folders: it scans a tree, puts its files (reusing the recipes of files
// that did not change, see Cache) and has the folder listings built, and
// it rebuilds a folder recipe into a directory. Where the bytes go and
// come from (the repo offline, or a running daemon) is a Target or a
// Source; the format of folder listings is the recipe package's.
package folder

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/blockmix/blockmix/recipe"
	"github.com/blockmix/blockmix/webui/apiv1"
)

// LocalFile is a regular file found by Scan.
type LocalFile struct {
	Abs     string // its path on disk, absolute
	Rel     string // its path in the tree: slash separated, clean names
	Size    int64
	Mode    fs.FileMode // permission bits
	ModTime time.Time
	ID      string // device and inode, where the system has them
}

// LocalDir is a folder found by Scan (the root is not one).
type LocalDir struct {
	Rel     string
	Mode    fs.FileMode
	ModTime time.Time
}

// Tree is what Scan found.
type Tree struct {
	Root    string // absolute
	Files   []LocalFile
	Dirs    []LocalDir
	Skipped []apiv1.FolderSkip // left out, or put under a cleaned name
	Bytes   int64
}

// ErrTooBig: the tree breaks a bound of folder recipes (depth, entries).
var ErrTooBig = errors.New("the folder is too big for one folder recipe")

// Scan walks the tree at root. Regular files and folders are kept, with
// names cleaned (recipe.CleanEntryName); symbolic links and special files
// are skipped, and so is a name that cleans to nothing or to a name taken
// in its folder: each such case is in Skipped. An unreadable folder is an
// error, as are trees beyond the bounds of recipe.MaxFolderDepth,
// recipe.MaxFolderEntries and recipe.MaxTreeEntries.
func Scan(root string) (Tree, error) {
	abs, err := filepath.Abs(root)
	if err != nil {
		return Tree{}, err
	}
	fi, err := os.Stat(abs)
	if err != nil {
		return Tree{}, err
	}
	if !fi.IsDir() {
		return Tree{}, fmt.Errorf("%s is not a folder", root)
	}
	t := Tree{Root: abs}
	count := 0
	var walk func(dir, rel, shown string, depth int) error
	walk = func(dir, rel, shown string, depth int) error {
		if depth > recipe.MaxFolderDepth {
			return fmt.Errorf("%w: %s is nested deeper than %d", ErrTooBig, shown, recipe.MaxFolderDepth)
		}
		des, err := os.ReadDir(dir)
		if err != nil {
			return fmt.Errorf("read folder: %w", err)
		}
		if len(des) > recipe.MaxFolderEntries {
			return fmt.Errorf("%w: %s holds %d entries, at most %d", ErrTooBig, shown, len(des), recipe.MaxFolderEntries)
		}
		taken := map[string]bool{}
		// Names that are clean already first, so that a clean name keeps
		// its place and the name that cleans to it is the one skipped.
		slices.SortStableFunc(des, func(a, b fs.DirEntry) int {
			ca, cb := recipe.CleanEntryName(a.Name()) == a.Name(), recipe.CleanEntryName(b.Name()) == b.Name()
			switch {
			case ca == cb:
				return strings.Compare(a.Name(), b.Name())
			case ca:
				return -1
			}
			return 1
		})
		for _, de := range des {
			if count++; count > recipe.MaxTreeEntries {
				return fmt.Errorf("%w: more than %d entries", ErrTooBig, recipe.MaxTreeEntries)
			}
			onDisk := filepath.Join(shown, de.Name())
			name := recipe.CleanEntryName(de.Name())
			typ := de.Type()
			switch {
			case typ&fs.ModeSymlink != 0:
				t.Skipped = append(t.Skipped, apiv1.FolderSkip{Path: onDisk, Reason: "a symbolic link (links are not followed)"})
				continue
			case !typ.IsDir() && !typ.IsRegular():
				t.Skipped = append(t.Skipped, apiv1.FolderSkip{Path: onDisk, Reason: "not a regular file (" + typeWord(typ) + ")"})
				continue
			case name == "":
				t.Skipped = append(t.Skipped, apiv1.FolderSkip{Path: onDisk, Reason: "its name is nothing once cleaned of control and invisible characters"})
				continue
			case taken[name]:
				t.Skipped = append(t.Skipped, apiv1.FolderSkip{Path: onDisk, Reason: fmt.Sprintf("its cleaned name %q is taken in its folder", name)})
				continue
			}
			taken[name] = true
			if name != de.Name() {
				t.Skipped = append(t.Skipped, apiv1.FolderSkip{Path: onDisk, As: name, Renamed: true, Reason: "its name held control, invisible or direction-changing characters, or was too long"})
			}
			p := filepath.Join(dir, de.Name())
			r := name
			if rel != "" {
				r = rel + "/" + name
			}
			info, err := de.Info()
			if err != nil {
				return fmt.Errorf("stat %s: %w", onDisk, err)
			}
			if typ.IsDir() {
				t.Dirs = append(t.Dirs, LocalDir{Rel: r, Mode: info.Mode().Perm(), ModTime: info.ModTime()})
				if err := walk(p, r, onDisk, depth+1); err != nil {
					return err
				}
				continue
			}
			t.Files = append(t.Files, LocalFile{Abs: p, Rel: r, Size: info.Size(), Mode: info.Mode().Perm(), ModTime: info.ModTime(), ID: fileID(info)})
			t.Bytes += info.Size()
		}
		return nil
	}
	if err := walk(abs, "", ".", 1); err != nil {
		return Tree{}, err
	}
	return t, nil
}

// typeWord names a special file's type.
func typeWord(m fs.FileMode) string {
	switch {
	case m&fs.ModeNamedPipe != 0:
		return "a named pipe"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeDevice != 0:
		return "a device"
	}
	return "special"
}
