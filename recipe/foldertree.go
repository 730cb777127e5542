package recipe

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io/fs"
	"slices"
	"strings"
	"time"

	"github.com/blockmix/blockmix/mixer"
)

// Item is one line of a flat manifest of a tree: a file with its recipe,
// or a folder (for its mode and time, and so that an empty folder is
// kept). Folders that hold items need no Item of their own; they then
// get mode 0o755 and the zero time.
type Item struct {
	Path    string      // slash separated below the tree's root; every element clean
	Dir     bool        // a folder
	Mode    fs.FileMode // permission bits only
	ModTime time.Time
	Recipe  Recipe // a file's recipe (ignored for a folder)
}

// PutListing stores one folder listing (EncodeFolder's bytes) under name
// and returns its folder recipe (Type FolderType). A caller may hand back
// the recipe of the same listing stored before instead of storing it
// again: that is what makes a changed tree cost only the folders on the
// changed paths.
type PutListing func(ctx context.Context, listing []byte, name string) (Recipe, error)

// BuildStats tells what BuildFolder made.
type BuildStats struct {
	Files, Folders int   // in the tree, the root folder included in Folders
	Bytes          int64 // of the files
}

// BuildFolder turns a flat manifest into folder listings, deepest first,
// storing each with put, and returns the root folder's recipe, named
// name. Paths must be clean and unique, a file may not also be a folder,
// the tree at most MaxFolderDepth deep, MaxTreeEntries items and
// MaxFolderEntries per folder; anything else wraps ErrBadFolder.
func BuildFolder(ctx context.Context, items []Item, name string, put PutListing) (Recipe, BuildStats, error) {
	var st BuildStats
	if len(items) > MaxTreeEntries {
		return Recipe{}, st, fmt.Errorf("%w: %d items, at most %d", ErrBadFolder, len(items), MaxTreeEntries)
	}
	type dir struct {
		path    string
		depth   int
		entries []Entry
		names   map[string]bool
		self    *Item
	}
	dirs := map[string]*dir{"": {names: map[string]bool{}}}
	var ensure func(p string, depth int) (*dir, error)
	ensure = func(p string, depth int) (*dir, error) {
		if d, ok := dirs[p]; ok {
			return d, nil
		}
		d := &dir{path: p, depth: depth, names: map[string]bool{}}
		dirs[p] = d
		parent, base := splitParent(p)
		pd, err := ensure(parent, depth-1)
		if err != nil {
			return nil, err
		}
		if pd.names[base] {
			return nil, fmt.Errorf("%w: %q is both a file and a folder, or twice", ErrBadFolder, p)
		}
		pd.names[base] = true
		return d, nil
	}
	files := map[string]bool{}
	for i := range items {
		it := &items[i]
		parts, err := SplitFolderPath(it.Path)
		if err == nil && (strings.HasPrefix(it.Path, "/") || strings.HasSuffix(it.Path, "/")) {
			err = fmt.Errorf("%w: path %q begins or ends with a slash", ErrBadFolder, it.Path)
		}
		if err != nil {
			return Recipe{}, st, err
		}
		if len(parts) == 0 {
			if it.Dir { // the root's own mode and time
				dirs[""].self = it
				continue
			}
			return Recipe{}, st, fmt.Errorf("%w: a file without a name", ErrBadFolder)
		}
		p := strings.Join(parts, "/")
		if it.Mode&^fs.ModePerm != 0 {
			return Recipe{}, st, fmt.Errorf("%w: %q has mode %v beyond the permission bits", ErrBadFolder, p, it.Mode)
		}
		if it.Dir {
			if d, ok := dirs[p]; ok && d.self != nil || files[p] {
				return Recipe{}, st, fmt.Errorf("%w: %q twice", ErrBadFolder, p)
			}
			d, err := ensure(p, len(parts))
			if err != nil {
				return Recipe{}, st, err
			}
			d.self = it
			continue
		}
		if it.Recipe.IsFolder() || len(it.Recipe.Root) != DescT {
			return Recipe{}, st, fmt.Errorf("%w: %q has no file recipe", ErrBadFolder, p)
		}
		if _, ok := dirs[p]; ok || files[p] {
			return Recipe{}, st, fmt.Errorf("%w: %q is both a file and a folder, or twice", ErrBadFolder, p)
		}
		parent, base := splitParent(p)
		pd, err := ensure(parent, len(parts)-1)
		if err != nil {
			return Recipe{}, st, err
		}
		if pd.names[base] {
			return Recipe{}, st, fmt.Errorf("%w: %q twice", ErrBadFolder, p)
		}
		pd.names[base] = true
		files[p] = true
		rc := it.Recipe
		rc.Name = base
		pd.entries = append(pd.entries, Entry{Name: base, Mode: it.Mode, ModTime: it.ModTime.UTC(), Recipe: rc})
		st.Files++
		st.Bytes += rc.Size
	}
	// Deepest first, so that every folder's sub folders are stored before it.
	order := make([]*dir, 0, len(dirs))
	for _, d := range dirs {
		if d.depth > MaxFolderDepth {
			return Recipe{}, st, fmt.Errorf("%w: %q is deeper than %d", ErrBadFolder, d.path, MaxFolderDepth)
		}
		order = append(order, d)
	}
	slices.SortFunc(order, func(a, b *dir) int {
		if a.depth != b.depth {
			return b.depth - a.depth
		}
		return strings.Compare(a.path, b.path)
	})
	for _, d := range order {
		if err := ctx.Err(); err != nil {
			return Recipe{}, st, err
		}
		dname := name
		if d.path != "" {
			_, dname = splitParent(d.path)
		}
		listing, err := EncodeFolder(d.entries)
		if err != nil {
			return Recipe{}, st, fmt.Errorf("folder %q: %w", d.path, err)
		}
		rc, err := put(ctx, listing, dname)
		if err != nil {
			return Recipe{}, st, fmt.Errorf("folder %q: %w", d.path, err)
		}
		if !rc.IsFolder() {
			return Recipe{}, st, fmt.Errorf("folder %q: stored as %q, not as a folder", d.path, rc.Type)
		}
		st.Folders++
		if d.path == "" {
			rc.Name = CleanName(name)
			return rc, st, nil
		}
		rc.Name = dname
		e := Entry{Name: dname, Dir: true, Mode: 0o755, Recipe: rc}
		if d.self != nil {
			e.Mode, e.ModTime = d.self.Mode, d.self.ModTime.UTC()
		}
		parent, _ := splitParent(d.path)
		dirs[parent].entries = append(dirs[parent].entries, e)
	}
	panic("unreachable: the root is stored last")
}

// splitParent splits "a/b/c" into "a/b" and "c" ("c" into "" and "c").
func splitParent(p string) (string, string) {
	if i := strings.LastIndexByte(p, '/'); i >= 0 {
		return p[:i], p[i+1:]
	}
	return "", p
}

// PutFolderListing is a PutListing that mixes each listing into st with
// m as a file of type FolderType (see Put), recording it. It stores
// every listing anew; wrap it to reuse listings stored before.
func PutFolderListing(m *mixer.Mixer, st Store) PutListing {
	return func(ctx context.Context, listing []byte, name string) (Recipe, error) {
		res, err := Put(ctx, m, st, bytes.NewReader(listing), int64(len(listing)), name, FolderType, nil)
		if err != nil {
			return Recipe{}, err
		}
		return res.Recipe, nil
	}
}

func sha256Of(b []byte) [32]byte { return sha256.Sum256(b) }
