package folder

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"mime"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"

	"golang.org/x/sync/errgroup"

	"github.com/blockmix/blockmix/blocks"
	"github.com/blockmix/blockmix/recipe"
	"github.com/blockmix/blockmix/webui/apiv1"
)

// Target is where Put stores a tree: the repo offline, or a running
// daemon through its API.
type Target interface {
	// Has reports whether the file rc names is recorded in the target's
	// store (what a reused recipe needs).
	Has(ctx context.Context, rc recipe.Recipe) (bool, error)
	// PutFile mixes the file f (read from f.Abs, named after the last
	// element of f.Rel) into the store and records it.
	PutFile(ctx context.Context, f LocalFile) (apiv1.PutInfo, error)
	// Build makes the folder recipe of a manifest whose files are all
	// recorded (see the package's Build).
	Build(ctx context.Context, m apiv1.FolderManifest) (apiv1.FolderInfo, error)
}

// PutOptions are Put's choices; every field may be left zero.
type PutOptions struct {
	Name  string // the folder's name in its recipe; default the folder's own
	Cache *Cache // recipes of unchanged files; nil: every file is mixed
	// Progress, if set, is called before each file with its place in the
	// tree, how many files and bytes are done and how many there are (one
	// call at a time).
	Progress func(rel string, doneFiles, files int, doneBytes, bytes int64)
	// Parallel is how many files go to the Target at once (0: one). More
	// than one needs a Target safe for concurrent use.
	Parallel int
}

// Put stores the tree at dir in t and returns its folder recipe: it scans
// the tree (see Scan; what it skips is in the answer's Skipped), puts
// every file whose recipe the cache does not know or t no longer holds,
// and has t build the folder listings from the manifest. A file that
// changes while it is read fails the put (recipe.ErrSizeMismatch).
func Put(ctx context.Context, dir string, t Target, o PutOptions) (apiv1.FolderInfo, error) {
	tree, err := Scan(dir)
	if err != nil {
		return apiv1.FolderInfo{}, err
	}
	name := o.Name
	if name == "" {
		name = filepath.Base(tree.Root)
	}
	m := apiv1.FolderManifest{Name: name}
	for _, d := range tree.Dirs {
		m.Items = append(m.Items, apiv1.FolderItem{Path: d.Rel, Dir: true, Mode: uint32(d.Mode), ModTime: d.ModTime})
	}
	var info apiv1.FolderInfo
	var mu sync.Mutex // info, done, count and the progress
	var done int64
	count := 0
	recipes := make([]recipe.Recipe, len(tree.Files))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(max(o.Parallel, 1))
	for i, f := range tree.Files {
		if gctx.Err() != nil {
			break
		}
		g.Go(func() error {
			mu.Lock()
			if o.Progress != nil {
				o.Progress(f.Rel, count, len(tree.Files), done, tree.Bytes)
			}
			mu.Unlock()
			rc, ok := recipe.Recipe{}, false
			if o.Cache != nil {
				if rc, ok = o.Cache.Get(f); ok {
					var err error
					if ok, err = t.Has(gctx, rc); err != nil {
						return err
					}
				}
			}
			var pi apiv1.PutInfo
			if ok {
				o.Cache.Touch(f)
			} else {
				var err error
				if pi, err = t.PutFile(gctx, f); err != nil {
					return fmt.Errorf("put %s: %w", f.Rel, err)
				}
				if rc, err = recipe.Parse(pi.Recipe); err != nil {
					return fmt.Errorf("put %s: %w", f.Rel, err)
				}
				if o.Cache != nil {
					o.Cache.Set(f, rc)
				}
			}
			recipes[i] = rc
			mu.Lock()
			defer mu.Unlock()
			if ok {
				info.ReusedFiles++
			} else {
				info.PutFiles++
				info.NewBlocks += pi.NewBlocks
				info.NewBytes += pi.NewBytes
			}
			done += f.Size
			count++
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return apiv1.FolderInfo{}, err
	}
	if err := ctx.Err(); err != nil {
		return apiv1.FolderInfo{}, err
	}
	for i, f := range tree.Files {
		m.Items = append(m.Items, apiv1.FolderItem{Path: f.Rel, Mode: uint32(f.Mode), ModTime: f.ModTime, Size: f.Size, Recipe: recipes[i].String()})
	}
	if o.Progress != nil {
		o.Progress("", len(tree.Files), len(tree.Files), done, tree.Bytes)
	}
	b, err := t.Build(ctx, m)
	if err != nil {
		return apiv1.FolderInfo{}, err
	}
	if o.Cache != nil {
		if err := o.Cache.Save(); err != nil {
			return apiv1.FolderInfo{}, err
		}
	}
	b.NewBlocks += info.NewBlocks
	b.NewBytes += info.NewBytes
	b.PutFiles, b.ReusedFiles = info.PutFiles, info.ReusedFiles
	b.Skipped = tree.Skipped
	return b, nil
}

// BadInput is an error that is the request's fault: a manifest that does
// not make a tree, or names files the store does not hold. The API
// answers it with 400.
type BadInput struct{ Err error }

func (e BadInput) Error() string  { return e.Err.Error() }
func (e BadInput) Unwrap() error  { return e.Err }
func (e BadInput) BadInput() bool { return true }

// Items checks a manifest and turns it into the recipe package's items:
// each file's recipe must parse and say the size the item says.
func Items(m apiv1.FolderManifest) ([]recipe.Item, error) {
	if len(m.Items) > recipe.MaxTreeEntries {
		return nil, BadInput{fmt.Errorf("%w: %d items, at most %d", recipe.ErrBadFolder, len(m.Items), recipe.MaxTreeEntries)}
	}
	items := make([]recipe.Item, 0, len(m.Items))
	for _, it := range m.Items {
		if it.Mode&^uint32(fs.ModePerm) != 0 {
			return nil, BadInput{fmt.Errorf("%s: mode %#o is more than permission bits", it.Path, it.Mode)}
		}
		x := recipe.Item{Path: it.Path, Dir: it.Dir, Mode: fs.FileMode(it.Mode), ModTime: it.ModTime}
		if !it.Dir {
			rc, err := recipe.Parse(it.Recipe)
			if err != nil {
				return nil, BadInput{fmt.Errorf("%s: %w", it.Path, err)}
			}
			if rc.IsFolder() || rc.Size != it.Size {
				return nil, BadInput{fmt.Errorf("%s: its recipe is not of a file of %d bytes", it.Path, it.Size)}
			}
			x.Recipe = rc
		}
		items = append(items, x)
	}
	return items, nil
}

// Store is what Build reads of a store: the files recorded, and blocks
// to read the descriptors of folder listings stored before.
type Store interface {
	blocks.Getter
	Files(ctx context.Context) ([]blocks.FileRecord, error)
	Record(ctx context.Context, key string) (blocks.FileRecord, error)
}

// PutFunc stores a file as a put does (mixed, recorded, synced, placed).
type PutFunc func(ctx context.Context, r io.Reader, size int64, name, typ string) (apiv1.PutInfo, error)

// Build makes the folder recipe of m. Every file of m must be recorded in
// st (else a BadInput naming the first missing ones). Each folder listing
// goes through put, unless a listing with the same bytes is recorded in
// st already: then its recipe is used again, so that a tree that changed
// in one file costs that file plus the listings of the folders on its
// path.
func Build(ctx context.Context, st Store, m apiv1.FolderManifest, put PutFunc) (apiv1.FolderInfo, error) {
	items, err := Items(m)
	if err != nil {
		return apiv1.FolderInfo{}, err
	}
	var missing []string
	for _, it := range items {
		if it.Dir {
			continue
		}
		if _, err := st.Record(ctx, it.Recipe.Key()); errors.Is(err, blocks.ErrNotFound) {
			missing = append(missing, it.Path)
		} else if err != nil {
			return apiv1.FolderInfo{}, err
		}
	}
	if len(missing) > 0 {
		more := ""
		if len(missing) > 5 {
			more = fmt.Sprintf(" and %d more", len(missing)-5)
			missing = missing[:5]
		}
		return apiv1.FolderInfo{}, BadInput{fmt.Errorf("%w: put these files first: %s%s", ErrNotHere, strings.Join(missing, ", "), more)}
	}
	old, err := listingsBySize(ctx, st)
	if err != nil {
		return apiv1.FolderInfo{}, err
	}
	var info apiv1.FolderInfo
	// Listings made by this build: two empty folders share one recipe.
	made := map[[32]byte]recipe.Recipe{}
	putListing := func(ctx context.Context, listing []byte, name string) (recipe.Recipe, error) {
		sum := sha256.Sum256(listing)
		if rc, ok := made[sum]; ok {
			info.ReusedFolders++
			return rc, nil
		}
		if rc, ok := sameListing(ctx, st, likely(old[int64(len(listing))], name), sum); ok {
			made[sum] = rc
			info.ReusedFolders++
			return rc, nil
		}
		pi, err := put(ctx, bytes.NewReader(listing), int64(len(listing)), name, recipe.FolderType)
		if err != nil {
			return recipe.Recipe{}, err
		}
		if pi.Placement != "" {
			info.Placement = pi.Placement
		}
		info.NewBlocks += pi.NewBlocks
		info.NewBytes += pi.NewBytes
		rc, err := recipe.Parse(pi.Recipe)
		if err == nil {
			made[sum] = rc
		}
		return rc, err
	}
	rc, bs, err := recipe.BuildFolder(ctx, items, m.Name, putListing)
	if errors.Is(err, recipe.ErrBadFolder) {
		return apiv1.FolderInfo{}, BadInput{err}
	}
	if err != nil {
		return apiv1.FolderInfo{}, err
	}
	info.Recipe, info.URL, info.Name, info.Folder = rc.String(), rc.URL(""), rc.Name, true
	info.Files, info.Folders, info.Bytes = bs.Files, bs.Folders, bs.Bytes
	return info, nil
}

// ErrNotHere: a manifest names a file the store does not hold.
var ErrNotHere = errors.New("files of the folder are not in this node's store")

// listingsBySize finds the folder listings recorded in st, by size.
func listingsBySize(ctx context.Context, st Store) (map[int64][]recipe.Recipe, error) {
	fs, err := st.Files(ctx)
	if err != nil {
		return nil, err
	}
	out := map[int64][]recipe.Recipe{}
	for _, f := range fs {
		if f.Type != recipe.FolderType {
			continue
		}
		if rc, err := recipe.Parse(f.Recipe); err == nil {
			out[rc.Size] = append(out[rc.Size], rc)
		}
	}
	return out, nil
}

// maxOthers bounds the listings of other names that a listing is
// compared with: folders of one tree often have listings of one size.
const maxOthers = 8

// likely orders cands (folder listings of one size) for sameListing: those
// of the folder's own name first (oldest first), then at most maxOthers
// of other names (two folders with the same entries share a listing).
func likely(cands []recipe.Recipe, name string) []recipe.Recipe {
	var same, other []recipe.Recipe
	for _, rc := range cands {
		if rc.Name == recipe.CleanName(name) {
			same = append(same, rc)
		} else if len(other) < maxOthers {
			other = append(other, rc)
		}
	}
	return append(same, other...)
}

// sameListing returns the first recipe among cands (all of the listing's
// size) whose descriptor records the listing's sha256: its root block is
// read, nothing else.
func sameListing(ctx context.Context, st Store, cands []recipe.Recipe, sum [32]byte) (recipe.Recipe, bool) {
	for _, rc := range cands {
		r, err := recipe.Open(ctx, st, rc, recipe.Options{})
		if err == nil && r.SHA256() == sum {
			return rc, true
		}
	}
	return recipe.Recipe{}, false
}

// Recorded reports whether the file rc names is recorded in st: what
// Target.Has answers on a store.
func Recorded(ctx context.Context, st Store, rc recipe.Recipe) (bool, error) {
	_, err := st.Record(ctx, rc.Key())
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, blocks.ErrNotFound):
		return false, nil
	}
	return false, err
}

// PutLocal opens the local file f and puts it with put, named after the
// last element of its path in the tree, its type from that name (else
// sniffed): what Target.PutFile does.
func PutLocal(ctx context.Context, f LocalFile, put PutFunc) (apiv1.PutInfo, error) {
	in, err := os.Open(f.Abs)
	if err != nil {
		return apiv1.PutInfo{}, err
	}
	defer in.Close()
	fi, err := in.Stat()
	if err != nil {
		return apiv1.PutInfo{}, err
	}
	name := path.Base(f.Rel)
	typ := mime.TypeByExtension(path.Ext(name))
	var r io.Reader = in
	if typ == "" {
		head := make([]byte, 512)
		k, err := io.ReadFull(in, head)
		if err != nil && err != io.EOF && err != io.ErrUnexpectedEOF {
			return apiv1.PutInfo{}, err
		}
		typ = http.DetectContentType(head[:k])
		r = io.MultiReader(bytes.NewReader(head[:k]), in)
	}
	return put(ctx, r, fi.Size(), name, typ)
}

// Funcs is a Target made of functions: what a store, a node or an API
// client gives.
type Funcs struct {
	HasFunc   func(ctx context.Context, rc recipe.Recipe) (bool, error)
	Put       PutFunc
	BuildFunc func(ctx context.Context, m apiv1.FolderManifest) (apiv1.FolderInfo, error)
}

// Has implements Target.
func (f Funcs) Has(ctx context.Context, rc recipe.Recipe) (bool, error) { return f.HasFunc(ctx, rc) }

// PutFile implements Target with PutLocal.
func (f Funcs) PutFile(ctx context.Context, lf LocalFile) (apiv1.PutInfo, error) {
	return PutLocal(ctx, lf, f.Put)
}

// Build implements Target.
func (f Funcs) Build(ctx context.Context, m apiv1.FolderManifest) (apiv1.FolderInfo, error) {
	return f.BuildFunc(ctx, m)
}
