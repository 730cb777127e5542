package folder

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/blockmix/blockmix/cmd/blockmix/internal/atomicfile"
	"github.com/blockmix/blockmix/recipe"
)

// Source is where Get reads a tree: the repo offline, or a running daemon
// through its API.
type Source interface {
	// List returns the entries of a folder recipe (see recipe.Lister).
	List(ctx context.Context, rc recipe.Recipe) ([]recipe.Entry, error)
	// Fetch writes the file rc names into w; an error when its whole-file
	// hash does not check out.
	Fetch(ctx context.Context, rc recipe.Recipe, w io.Writer) error
}

// GetOptions are Get's choices.
type GetOptions struct {
	// Force lets Get write into a folder that exists and is not empty,
	// replacing files of the same names. Without it dest must not exist
	// or be an empty folder.
	Force bool
	// Progress, if set, is called before each file with its path in the
	// tree and the bytes done and in all (one call at a time).
	Progress func(rel string, done, total int64)
	// Parallel is how many files are fetched at once (0: one). More than
	// one needs a Source safe for concurrent use.
	Parallel int
}

// GetResult tells what Get wrote.
type GetResult struct {
	Path    string `json:"path"`
	Name    string `json:"name"`
	Files   int    `json:"files"`
	Folders int    `json:"folders"` // below Path
	Bytes   int64  `json:"bytes"`
}

// ErrNotEmpty: Get was asked to write into a folder that holds files,
// without Force.
var ErrNotEmpty = errors.New("the folder exists and is not empty")

// Get rebuilds the folder rc into the directory dest: the listings first
// (recipe.WalkFolder: bounded in depth and entries; names are clean by
// the listing format, so no path leaves dest), then each file written
// under a temporary name, checked against its hash and renamed, with its
// mode (permission bits) and time; then each folder's mode and time,
// deepest first. A symbolic link met inside dest (only possible with
// Force) is an error, never followed.
func Get(ctx context.Context, src Source, rc recipe.Recipe, dest string, o GetOptions) (GetResult, error) {
	if !rc.IsFolder() {
		return GetResult{}, fmt.Errorf("%w: %s is a file, not a folder", recipe.ErrBadFolder, rc.Name)
	}
	type item struct {
		path string
		e    recipe.Entry
	}
	var items []item
	var total int64
	err := recipe.WalkFolder(ctx, src.List, rc, func(p string, e recipe.Entry) error {
		items = append(items, item{p, e})
		if !e.Dir {
			total += e.Size()
		}
		return nil
	})
	if err != nil {
		return GetResult{}, err
	}
	if err := prepare(dest, o.Force); err != nil {
		return GetResult{}, err
	}
	res := GetResult{Path: dest, Name: rc.Name}
	// The folders first, in walk order (a folder before what it holds).
	var dirs, files []item
	for _, it := range items {
		if !it.e.Dir {
			files = append(files, it)
			continue
		}
		if err := mkdir(filepath.Join(dest, filepath.FromSlash(it.path))); err != nil {
			return res, err
		}
		dirs = append(dirs, it)
		res.Folders++
	}
	var mu sync.Mutex // res and the progress
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(max(o.Parallel, 1))
	for _, it := range files {
		if gctx.Err() != nil {
			break
		}
		g.Go(func() error {
			target := filepath.Join(dest, filepath.FromSlash(it.path))
			if o.Progress != nil {
				mu.Lock()
				o.Progress(it.path, res.Bytes, total)
				mu.Unlock()
			}
			if fi, err := os.Lstat(target); err == nil && !fi.Mode().IsRegular() {
				return fmt.Errorf("%s exists and is not a regular file", target)
			}
			err := atomicfile.Write(target, o.Force, it.e.Mode|0o200, func(w io.Writer) error {
				return src.Fetch(gctx, it.e.Recipe, w)
			})
			if err != nil {
				return fmt.Errorf("%s: %w", it.path, err)
			}
			if err := setModeTime(target, it.e.Mode, it.e.ModTime); err != nil {
				return err
			}
			mu.Lock()
			res.Files++
			res.Bytes += it.e.Size()
			mu.Unlock()
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return res, err
	}
	if err := ctx.Err(); err != nil {
		return res, err
	}
	if o.Progress != nil {
		o.Progress("", res.Bytes, total)
	}
	// Deepest first: a folder's time is set after what is written in it,
	// and a read-only folder is made so after its files are in.
	slices.Reverse(dirs)
	for _, d := range dirs {
		if err := setModeTime(filepath.Join(dest, filepath.FromSlash(d.path)), d.e.Mode, d.e.ModTime); err != nil {
			return res, err
		}
	}
	return res, nil
}

// prepare makes dest, or checks that it is an empty folder (any folder,
// with force).
func prepare(dest string, force bool) error {
	fi, err := os.Lstat(dest)
	if errors.Is(err, fs.ErrNotExist) {
		return os.MkdirAll(dest, 0o755)
	}
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return fmt.Errorf("%s exists and is not a folder", dest)
	}
	if force {
		return nil
	}
	f, err := os.Open(dest)
	if err != nil {
		return err
	}
	defer f.Close()
	if names, _ := f.Readdirnames(1); len(names) > 0 {
		return fmt.Errorf("%s: %w (use --force to write into it, or -o to choose another)", dest, ErrNotEmpty)
	}
	return nil
}

// mkdir makes the folder p (owner-writable until its mode is set at the
// end), or accepts one that exists, but never a symbolic link.
func mkdir(p string) error {
	err := os.Mkdir(p, 0o755)
	if err == nil || !errors.Is(err, fs.ErrExist) {
		return err
	}
	fi, err := os.Lstat(p)
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return fmt.Errorf("%s exists and is not a folder", p)
	}
	return os.Chmod(p, fi.Mode().Perm()|0o700)
}

// setModeTime gives p its mode and time.
func setModeTime(p string, mode fs.FileMode, t time.Time) error {
	if err := os.Chmod(p, mode.Perm()); err != nil {
		return err
	}
	if t.IsZero() {
		return nil
	}
	return os.Chtimes(p, t, t)
}

// SourceFuncs is a Source made of functions.
type SourceFuncs struct {
	ListFunc  recipe.Lister
	FetchFunc func(ctx context.Context, rc recipe.Recipe, w io.Writer) error
}

// List implements Source.
func (s SourceFuncs) List(ctx context.Context, rc recipe.Recipe) ([]recipe.Entry, error) {
	return s.ListFunc(ctx, rc)
}

// Fetch implements Source.
func (s SourceFuncs) Fetch(ctx context.Context, rc recipe.Recipe, w io.Writer) error {
	return s.FetchFunc(ctx, rc, w)
}
