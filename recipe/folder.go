package recipe

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/blockmix/blockmix/blocks"
	"github.com/blockmix/blockmix/mixer"
)

// FolderType is the media type that makes a recipe a folder recipe: the
// file it names is a folder listing (see EncodeFolder), stored and mixed
// like any file. Recipes of any other type are files, so every recipe
// made before folders existed reads as it did.
const FolderType = "application/x-blockmix-folder"

// IsFolder reports whether r names a folder listing.
func (r Recipe) IsFolder() bool { return r.Type == FolderType }

// The bounds of a folder listing. A folder recipe may come from a
// stranger: these bound what reading one makes a node hold and do.
const (
	// MaxFolderEntries bounds the entries of one folder.
	MaxFolderEntries = 100_000
	// MaxFolderBytes bounds one encoded listing (what ReadFolder holds).
	MaxFolderBytes = 16 << 20
	// MaxEntryName bounds one entry's name in bytes (CleanEntryName's
	// result is never longer).
	MaxEntryName = 255
	// MaxFolderDepth bounds how deep folders nest under a folder recipe.
	MaxFolderDepth = 64
	// MaxTreeEntries bounds the entries one walk of a tree visits
	// (WalkFolder, BuildFolder): a listing may name one sub folder many
	// times, and the walk must not multiply.
	MaxTreeEntries = 1_000_000
)

// ErrBadFolder: a folder listing does not decode, breaks a bound or names
// an entry unsafely ("..", a separator, a duplicate). It means a damaged
// or hostile folder recipe, never a missing block.
var ErrBadFolder = errors.New("bad folder listing")

// Entry is one entry of a folder: a file, or a sub folder whose Recipe is
// itself a folder recipe.
type Entry struct {
	Name    string      // clean (CleanEntryName(Name) == Name), unique in its folder
	Dir     bool        // a sub folder
	Mode    fs.FileMode // permission bits only (0o777)
	ModTime time.Time   // to the nanosecond, UTC
	// Recipe rebuilds the entry: a file's recipe, or for a sub folder its
	// folder recipe (Type FolderType). Its Name is the entry's Name.
	Recipe Recipe
}

// Size is a file entry's size in bytes (a sub folder's: its listing's).
func (e Entry) Size() int64 { return e.Recipe.Size }

// CleanEntryName is CleanName for a name inside a folder: the same rules,
// except that leading dots stay (".gitignore" is kept; the tree is
// rebuilt inside a folder the user chose, never over their home). "." and
// ".." and names that clean to nothing give "". It is idempotent.
func CleanEntryName(n string) string {
	// One pass may leave what a second pass changes (CleanName trims
	// spaces after dots: " . .x" gives ".x"); passes shorten or settle.
	for range 16 {
		c := cleanEntryOnce(n)
		if c == n {
			return c
		}
		n = c
	}
	return ""
}

func cleanEntryOnce(n string) string {
	lead := 0
	for lead < len(n) && n[lead] == '.' {
		lead++
	}
	r := strings.Repeat(".", lead) + CleanName(n[lead:])
	body := strings.TrimLeft(r, ".")
	if body == "" {
		return ""
	}
	return strings.Repeat(".", min(len(r)-len(body), 8)) + body
}

// Folder listing layout:
//
//	magic    [4]byte "BMXF"
//	version  u8      1
//	count    uvarint entries, sorted by name (bytes), no two alike
//	entries  count × entry
//
// entry:
//
//	flags     u8      bit 0: a sub folder
//	mode      u16     permission bits (≤ 0o777)
//	mtime     varint  Unix nanoseconds; 0: not known
//	nameLen   uvarint then the name (clean, ≤ MaxEntryName bytes)
//	typeLen   u8      then the media type (a sub folder: none, FolderType implied)
//	size      uvarint bytes of the file (a sub folder: of its listing)
//	descClass u8      log2 of the entry's descriptor root size
//	root      DescT × 32 sha2-256 digests
const (
	folderMagic   = "BMXF"
	folderVersion = 1
)

// EncodeFolder returns the listing of entries, sorted by name. It refuses
// unclean or duplicate names, modes beyond the permission bits, and more
// than MaxFolderEntries entries.
func EncodeFolder(entries []Entry) ([]byte, error) {
	if len(entries) > MaxFolderEntries {
		return nil, fmt.Errorf("%w: %d entries, at most %d", ErrBadFolder, len(entries), MaxFolderEntries)
	}
	es := slices.Clone(entries)
	slices.SortFunc(es, func(a, b Entry) int { return strings.Compare(a.Name, b.Name) })
	b := append([]byte(folderMagic), folderVersion)
	b = binary.AppendUvarint(b, uint64(len(es)))
	for i, e := range es {
		if err := checkEntry(e); err != nil {
			return nil, err
		}
		if i > 0 && es[i-1].Name == e.Name {
			return nil, fmt.Errorf("%w: %q twice", ErrBadFolder, e.Name)
		}
		var flags byte
		typ := e.Recipe.Type
		if e.Dir {
			flags, typ = 1, ""
		}
		if len(typ) > 255 {
			typ = ""
		}
		b = append(b, flags)
		b = binary.LittleEndian.AppendUint16(b, uint16(e.Mode.Perm()))
		var mt int64 // 0: no time known
		if !e.ModTime.IsZero() {
			mt = e.ModTime.UnixNano()
		}
		b = binary.AppendVarint(b, mt)
		b = binary.AppendUvarint(b, uint64(len(e.Name)))
		b = append(b, e.Name...)
		b = append(b, byte(len(typ)))
		b = append(b, typ...)
		b = binary.AppendUvarint(b, uint64(e.Recipe.Size))
		b = append(b, byte(log2(e.Recipe.DescClass)))
		for _, id := range e.Recipe.Root {
			b = append(b, id[:]...)
		}
	}
	return b, nil
}

// checkEntry checks what EncodeFolder writes of e.
func checkEntry(e Entry) error {
	if e.Name == "" || CleanEntryName(e.Name) != e.Name || len(e.Name) > MaxEntryName {
		return fmt.Errorf("%w: entry name %q is not clean", ErrBadFolder, e.Name)
	}
	if e.Mode&^fs.ModePerm != 0 {
		return fmt.Errorf("%w: %q has mode %v beyond the permission bits", ErrBadFolder, e.Name, e.Mode)
	}
	if len(e.Recipe.Root) != DescT || mixer.ValidClass(e.Recipe.DescClass) != nil || e.Recipe.Size < 0 {
		return fmt.Errorf("%w: %q has no valid recipe", ErrBadFolder, e.Name)
	}
	if e.Dir != e.Recipe.IsFolder() {
		return fmt.Errorf("%w: %q: a folder entry needs a folder recipe and a file a file's", ErrBadFolder, e.Name)
	}
	return nil
}

// DecodeFolder parses a listing. It checks every field against the
// format's bounds, never panics, and returns the entries in name order,
// each Recipe named after its entry.
func DecodeFolder(b []byte) ([]Entry, error) {
	bad := func(format string, a ...any) ([]Entry, error) {
		return nil, fmt.Errorf("%w: %s", ErrBadFolder, fmt.Sprintf(format, a...))
	}
	if len(b) > MaxFolderBytes {
		return bad("%d bytes, at most %d", len(b), MaxFolderBytes)
	}
	if len(b) < 5 || !bytes.Equal(b[:4], []byte(folderMagic)) {
		return bad("no folder magic")
	}
	if b[4] != folderVersion {
		return bad("version %d, this program reads %d (a newer blockmix made it?)", b[4], folderVersion)
	}
	r := &reader{b: b[5:]}
	count := r.uvarint()
	if count > MaxFolderEntries {
		return bad("%d entries, at most %d", count, MaxFolderEntries)
	}
	// Each entry takes at least 1+2+1+1+1+1+1+96 bytes: a count the rest
	// cannot hold is refused before anything is allocated for it.
	if r.err == nil && count > uint64(len(r.b))/104 {
		return bad("%d entries in %d bytes", count, len(r.b))
	}
	es := make([]Entry, 0, count)
	for i := uint64(0); i < count && r.err == nil; i++ {
		var e Entry
		flags := r.byte()
		if flags > 1 {
			return bad("entry %d: flags %#x", i, flags)
		}
		e.Dir = flags == 1
		mode := r.u16()
		if mode > 0o777 {
			return bad("entry %d: mode %#o", i, mode)
		}
		e.Mode = fs.FileMode(mode)
		if mt := r.varint(); mt != 0 {
			e.ModTime = time.Unix(0, mt).UTC()
		}
		nl := r.uvarint()
		if nl == 0 || nl > MaxEntryName {
			return bad("entry %d: a name of %d bytes", i, nl)
		}
		e.Name = string(r.take(int(nl)))
		typ := string(r.take(int(r.byte())))
		size := r.uvarint()
		cls := r.byte()
		root := r.take(DescT * 32)
		if r.err != nil {
			break
		}
		if !utf8.ValidString(e.Name) || CleanEntryName(e.Name) != e.Name {
			return bad("entry %d: name %q is not clean", i, e.Name)
		}
		if len(es) > 0 && es[len(es)-1].Name >= e.Name {
			return bad("entry %q: out of order or twice", e.Name)
		}
		if !utf8.ValidString(typ) || (e.Dir && typ != "") || typ == FolderType {
			return bad("entry %q: type %q", e.Name, typ)
		}
		if e.Dir {
			typ = FolderType
		}
		if size > 1<<62 {
			return bad("entry %q: size %d", e.Name, size)
		}
		dc, ok := classOK(cls)
		if !ok {
			return bad("entry %q: descriptor class 2^%d", e.Name, cls)
		}
		e.Recipe = Recipe{Root: make(mixer.Tuple, DescT), DescClass: dc, Size: int64(size), Type: typ, Name: e.Name}
		for k := range e.Recipe.Root {
			copy(e.Recipe.Root[k][:], root[k*32:])
		}
		es = append(es, e)
	}
	if r.err != nil {
		return bad("cut short")
	}
	if len(r.b) != 0 {
		return bad("%d bytes after the last entry", len(r.b))
	}
	return es, nil
}

// reader reads a listing; the first overrun sets err and yields zeros.
type reader struct {
	b   []byte
	err error
}

func (r *reader) take(n int) []byte {
	if r.err != nil || n > len(r.b) {
		r.err = io.ErrUnexpectedEOF
		return make([]byte, n)
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}

func (r *reader) byte() byte { return r.take(1)[0] }

func (r *reader) u16() uint16 { return binary.LittleEndian.Uint16(r.take(2)) }

func (r *reader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 || n != len(binary.AppendUvarint(nil, v)) { // one spelling only
		r.err = io.ErrUnexpectedEOF
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) varint() int64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Varint(r.b)
	if n <= 0 || n != len(binary.AppendVarint(nil, v)) {
		r.err = io.ErrUnexpectedEOF
		return 0
	}
	r.b = r.b[n:]
	return v
}

// Lister returns the entries of a folder recipe. FolderLister reads them
// from a block getter; a node's API client reads them from the node.
type Lister func(ctx context.Context, rc Recipe) ([]Entry, error)

// ReadFolder rebuilds and decodes the listing rc names, from g. A recipe
// that is not a folder's, or a listing larger than MaxFolderBytes, wraps
// ErrBadFolder; a missing block wraps blocks.ErrNotFound; the listing's
// whole-file hash is checked.
func ReadFolder(ctx context.Context, g blocks.Getter, rc Recipe) ([]Entry, error) {
	if !rc.IsFolder() {
		return nil, fmt.Errorf("%w: %s is a file, not a folder", ErrBadFolder, rc.Name)
	}
	if rc.Size > MaxFolderBytes {
		return nil, fmt.Errorf("%w: a listing of %d bytes, at most %d", ErrBadFolder, rc.Size, MaxFolderBytes)
	}
	r, err := Open(ctx, g, rc, Options{})
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	buf.Grow(int(rc.Size))
	if _, err := r.WriteTo(&buf); err != nil {
		return nil, fmt.Errorf("folder %s: %w", rc.Name, err)
	}
	return DecodeFolder(buf.Bytes())
}

// FolderLister is ReadFolder on g as a Lister.
func FolderLister(g blocks.Getter) Lister {
	return func(ctx context.Context, rc Recipe) ([]Entry, error) { return ReadFolder(ctx, g, rc) }
}

// WalkFolder calls fn for every entry under the folder rc, depth first in
// name order, a folder before what it holds, with the entry's path below
// rc (slash separated, every element clean). fn returning SkipDir for a
// folder skips what it holds. A tree deeper than MaxFolderDepth or with
// more than MaxTreeEntries entries wraps ErrBadFolder.
func WalkFolder(ctx context.Context, list Lister, rc Recipe, fn func(path string, e Entry) error) error {
	visited := 0
	var walk func(rc Recipe, prefix string, depth int) error
	walk = func(rc Recipe, prefix string, depth int) error {
		if depth > MaxFolderDepth {
			return fmt.Errorf("%w: folders nested deeper than %d", ErrBadFolder, MaxFolderDepth)
		}
		es, err := list(ctx, rc)
		if err != nil {
			return err
		}
		for _, e := range es {
			if visited++; visited > MaxTreeEntries {
				return fmt.Errorf("%w: more than %d entries in the tree", ErrBadFolder, MaxTreeEntries)
			}
			if err := ctx.Err(); err != nil {
				return err
			}
			p := prefix + e.Name
			err := fn(p, e)
			if e.Dir && errors.Is(err, fs.SkipDir) {
				continue
			}
			if err != nil {
				return err
			}
			if e.Dir {
				if err := walk(e.Recipe, p+"/", depth+1); err != nil {
					return err
				}
			}
		}
		return nil
	}
	return walk(rc, "", 1)
}

// SplitFolderPath splits a path inside a folder ("a/b/c.txt", with or
// without a leading or trailing slash) into its elements, each of which
// must be clean (see CleanEntryName); "" is the folder itself.
func SplitFolderPath(p string) ([]string, error) {
	p = strings.Trim(p, "/")
	if p == "" {
		return nil, nil
	}
	parts := strings.Split(p, "/")
	if len(parts) > MaxFolderDepth {
		return nil, fmt.Errorf("%w: path %q is deeper than %d", ErrBadFolder, p, MaxFolderDepth)
	}
	for _, s := range parts {
		if s == "" || CleanEntryName(s) != s {
			return nil, fmt.Errorf("%w: path %q: %q is not a clean name", ErrBadFolder, p, s)
		}
	}
	return parts, nil
}

// ErrNoEntry: a path names nothing in a folder. It is also
// blocks.ErrNotFound (errors.Is), so that the API answers 404.
var ErrNoEntry error = noEntry{}

type noEntry struct{}

func (noEntry) Error() string        { return "no such file or folder in the folder recipe" }
func (noEntry) Is(target error) bool { return target == blocks.ErrNotFound }

// FindInFolder returns the entry at path p under the folder rc, reading
// only the listings on the way. "" is an error: the folder itself is not
// an entry.
func FindInFolder(ctx context.Context, list Lister, rc Recipe, p string) (Entry, error) {
	parts, err := SplitFolderPath(p)
	if err != nil {
		return Entry{}, err
	}
	if len(parts) == 0 {
		return Entry{}, fmt.Errorf("%w: an empty path", ErrBadFolder)
	}
	cur := rc
	for i, name := range parts {
		if !cur.IsFolder() {
			return Entry{}, fmt.Errorf("%s: %s is a file: %w", p, strings.Join(parts[:i], "/"), ErrNoEntry)
		}
		es, err := list(ctx, cur)
		if err != nil {
			return Entry{}, err
		}
		k, ok := slices.BinarySearchFunc(es, name, func(e Entry, n string) int { return strings.Compare(e.Name, n) })
		if !ok {
			return Entry{}, fmt.Errorf("%s: %w", p, ErrNoEntry)
		}
		if i == len(parts)-1 {
			return es[k], nil
		}
		cur = es[k].Recipe
	}
	panic("unreachable")
}

// Change is one difference between two trees: Old is nil for an entry
// that appeared, New nil for one that went; both are set for an entry
// whose recipe, mode or time changed (or that turned from a file into a
// folder or back).
type Change struct {
	Path     string
	Old, New *Entry
}

// DiffFolders calls fn for every difference between the folders a and b
// (either may be the zero Recipe: an empty folder), in path order. Sub
// folders whose recipes are equal are not read: what changed costs the
// listings on its path, not the tree. A file is changed when its recipe
// key (its content), mode or time differs. A folder that changed is
// reported only through what it holds, unless its mode or time changed
// too.
func DiffFolders(ctx context.Context, list Lister, a, b Recipe, fn func(Change) error) error {
	visited := 0
	read := func(rc Recipe) ([]Entry, error) {
		if len(rc.Root) == 0 {
			return nil, nil
		}
		return list(ctx, rc)
	}
	var diff func(a, b Recipe, prefix string, depth int) error
	diff = func(a, b Recipe, prefix string, depth int) error {
		if depth > MaxFolderDepth {
			return fmt.Errorf("%w: folders nested deeper than %d", ErrBadFolder, MaxFolderDepth)
		}
		ea, err := read(a)
		if err != nil {
			return err
		}
		eb, err := read(b)
		if err != nil {
			return err
		}
		i, j := 0, 0
		for i < len(ea) || j < len(eb) {
			if visited++; visited > 2*MaxTreeEntries {
				return fmt.Errorf("%w: more than %d entries in the trees", ErrBadFolder, MaxTreeEntries)
			}
			var x, y *Entry
			switch {
			case j == len(eb) || (i < len(ea) && ea[i].Name < eb[j].Name):
				x = &ea[i]
				i++
			case i == len(ea) || eb[j].Name < ea[i].Name:
				y = &eb[j]
				j++
			default:
				x, y = &ea[i], &eb[j]
				i++
				j++
			}
			name := x
			if name == nil {
				name = y
			}
			p := prefix + name.Name
			if err := diffEntry(x, y, p, fn, func(xr, yr Recipe) error { return diff(xr, yr, p+"/", depth+1) }); err != nil {
				return err
			}
		}
		return nil
	}
	return diff(a, b, "", 1)
}

// diffEntry reports the change between x and y (either may be nil) at p,
// going into folders with sub.
func diffEntry(x, y *Entry, p string, fn func(Change) error, sub func(x, y Recipe) error) error {
	switch {
	case x != nil && y != nil && x.Dir && y.Dir:
		if x.Mode != y.Mode || !x.ModTime.Equal(y.ModTime) {
			if err := fn(Change{Path: p, Old: x, New: y}); err != nil {
				return err
			}
		}
		if x.Recipe.Key() == y.Recipe.Key() {
			return nil
		}
		return sub(x.Recipe, y.Recipe)
	case x != nil && y != nil && !x.Dir && !y.Dir:
		if x.Recipe.Key() != y.Recipe.Key() || x.Mode != y.Mode || !x.ModTime.Equal(y.ModTime) {
			return fn(Change{Path: p, Old: x, New: y})
		}
		return nil
	}
	if err := fn(Change{Path: p, Old: x, New: y}); err != nil {
		return err
	}
	// A folder that appeared or went: everything under it did too.
	switch {
	case x != nil && x.Dir:
		return sub(x.Recipe, Recipe{})
	case y != nil && y.Dir:
		return sub(Recipe{}, y.Recipe)
	}
	return nil
}

// ParseFolderPath parses a recipe followed by a path inside it, as in
// "blockmix:…/photos/2024/a.jpg" (the folder is named "photos", the path
// is "2024/a.jpg"): the recipe as Parse reads it, but named after the
// first element only, and the rest (elements unescaped, each one clean,
// else an error wrapping ErrBadFolder). For a recipe with at most a name
// the path is "".
func ParseFolderPath(text string) (Recipe, string, error) {
	rc, err := Parse(text)
	if err != nil {
		return rc, "", err
	}
	lower := asciiLower(text)
	i := strings.Index(lower, rc.Key())
	if i < 0 || !strings.HasPrefix(text[i+len(rc.Key()):], "/") {
		return rc, "", nil // broken over lines, or no name: no path either
	}
	rest := text[i+len(rc.Key())+1:]
	// A path typed by hand may hold spaces: only a line break, a tab,
	// a quote or a bracket ends it.
	if end := strings.IndexAny(rest, "\n\r\t\"'<>"); end >= 0 {
		rest = rest[:end]
	}
	rest = strings.TrimRight(rest, " ")
	first, tail, ok := strings.Cut(rest, "/")
	if !ok {
		return rc, "", nil
	}
	if name, err := url.PathUnescape(first); err == nil {
		rc.Name = CleanName(name)
		rc.Renamed = rc.Name != name
	}
	var parts []string
	for _, s := range strings.Split(strings.Trim(tail, "/"), "/") {
		u, err := url.PathUnescape(s)
		if err != nil {
			return rc, "", fmt.Errorf("%w: path element %q: %v", ErrBadFolder, s, err)
		}
		parts = append(parts, u)
	}
	p := strings.Join(parts, "/")
	if _, err := SplitFolderPath(p); err != nil {
		return rc, "", err
	}
	return rc, p, nil
}
