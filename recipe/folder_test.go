package recipe

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/blockmix/blockmix/blocks"
	"github.com/blockmix/blockmix/mixer"
)

// folderWorld is a memory store with a mixer, and a put of listings that
// counts the listings it stored.
type folderWorld struct {
	st     *blocks.Mem
	m      *mixer.Mixer
	stored int
}

func newFolderWorld(t *testing.T) *folderWorld {
	st := blocks.NewMem()
	return &folderWorld{st: st, m: newMixer(t, st, 7)}
}

func (w *folderWorld) file(t *testing.T, data string, name string) Recipe {
	t.Helper()
	return put(t, w.m, w.st, []byte(data), name).Recipe
}

func (w *folderWorld) put(ctx context.Context, listing []byte, name string) (Recipe, error) {
	w.stored++
	return PutFolderListing(w.m, w.st)(ctx, listing, name)
}

func (w *folderWorld) list() Lister { return FolderLister(w.st) }

var t0 = time.Date(2026, 12, 2, 6, 0, 0, 123456789, time.UTC)

// sampleTree: nested and empty folders, Unicode names, an empty file and
// an executable.
func sampleTree(t *testing.T, w *folderWorld) []Item {
	return []Item{
		{Path: "a.txt", Mode: 0o644, ModTime: t0, Recipe: w.file(t, "alpha", "a.txt")},
		{Path: "run.sh", Mode: 0o755, ModTime: t0.Add(time.Second), Recipe: w.file(t, "#!/bin/sh\necho hi\n", "run.sh")},
		{Path: "empty", Mode: 0o600, ModTime: t0, Recipe: w.file(t, "", "empty")},
		{Path: "sub/deeper/Ünïcödé 名前.md", Mode: 0o644, ModTime: t0, Recipe: w.file(t, "unicode", "x")},
		{Path: "sub/.hidden", Mode: 0o640, ModTime: t0, Recipe: w.file(t, "dot", ".hidden")},
		{Path: "void", Dir: true, Mode: 0o700, ModTime: t0.Add(time.Hour)},
		{Path: "sub", Dir: true, Mode: 0o750, ModTime: t0.Add(2 * time.Hour)},
	}
}

func TestFolderRoundTrip(t *testing.T) {
	ctx := context.Background()
	w := newFolderWorld(t)
	items := sampleTree(t, w)
	rc, st, err := BuildFolder(ctx, items, "tree", w.put)
	if err != nil {
		t.Fatal(err)
	}
	if !rc.IsFolder() || rc.Name != "tree" || st.Files != 5 || st.Folders != 4 || w.stored != 4 {
		t.Fatalf("recipe %+v, stats %+v, %d listings stored", rc, st, w.stored)
	}
	// The recipe's spelling says it is a folder.
	back, err := Parse(rc.String())
	if err != nil || !back.IsFolder() || back.Key() != rc.Key() {
		t.Fatalf("parse back: %v %+v", err, back)
	}
	var got []string
	err = WalkFolder(ctx, w.list(), rc, func(p string, e Entry) error {
		got = append(got, p+" "+e.Mode.String()+" "+e.ModTime.Format(time.RFC3339Nano))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"a.txt -rw-r--r-- 2026-12-02T06:00:00.123456789Z",
		"empty -rw------- 2026-12-02T06:00:00.123456789Z",
		"run.sh -rwxr-xr-x 2026-12-02T06:00:01.123456789Z",
		"sub -rwxr-x--- 2026-12-02T08:00:00.123456789Z",
		"sub/.hidden -rw-r----- 2026-12-02T06:00:00.123456789Z",
		"sub/deeper -rwxr-xr-x 0001-01-01T00:00:00Z",
		"sub/deeper/Ünïcödé 名前.md -rw-r--r-- 2026-12-02T06:00:00.123456789Z",
		"void -rwx------ 2026-12-02T07:00:00.123456789Z",
	}
	if !slices.Equal(got, want) {
		t.Fatalf("walk:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	e, err := FindInFolder(ctx, w.list(), rc, "sub/deeper/Ünïcödé 名前.md")
	if err != nil {
		t.Fatal(err)
	}
	r, err := Open(ctx, w.st, e.Recipe, Options{})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if _, err := r.WriteTo(&buf); err != nil || buf.String() != "unicode" {
		t.Fatalf("file in folder: %q %v", buf.String(), err)
	}
	if _, err := FindInFolder(ctx, w.list(), rc, "sub/nothing"); !errors.Is(err, ErrNoEntry) || !errors.Is(err, blocks.ErrNotFound) {
		t.Fatalf("missing entry: %v", err)
	}
	if _, err := FindInFolder(ctx, w.list(), rc, "a.txt/x"); !errors.Is(err, ErrNoEntry) {
		t.Fatalf("below a file: %v", err)
	}
	if _, err := FindInFolder(ctx, w.list(), rc, "../etc/passwd"); !errors.Is(err, ErrBadFolder) {
		t.Fatalf("dot dot: %v", err)
	}
}

// TestFolderChangeCostsPath: a tree rebuilt with one file changed stores
// only the listings on that file's path (the others are the same bytes,
// and a PutListing that reuses them stores nothing), and DiffFolders
// finds exactly that file, reading only the listings on its path.
func TestFolderChangeCostsPath(t *testing.T) {
	ctx := context.Background()
	w := newFolderWorld(t)
	items := sampleTree(t, w)
	seen := map[[32]byte]Recipe{}
	reuse := func(ctx context.Context, listing []byte, name string) (Recipe, error) {
		k := sha256Of(listing)
		if rc, ok := seen[k]; ok {
			return rc, nil
		}
		rc, err := w.put(ctx, listing, name)
		seen[k] = rc
		return rc, err
	}
	a, _, err := BuildFolder(ctx, items, "tree", reuse)
	if err != nil {
		t.Fatal(err)
	}
	stored := w.stored
	items2 := slices.Clone(items)
	items2[3].Recipe = w.file(t, "changed", "x")
	b, _, err := BuildFolder(ctx, items2, "tree", reuse)
	if err != nil {
		t.Fatal(err)
	}
	if d := w.stored - stored; d != 3 { // sub/deeper, sub, the root
		t.Fatalf("a change stored %d listings, want 3", d)
	}
	reads := 0
	counting := func(ctx context.Context, rc Recipe) ([]Entry, error) { reads++; return w.list()(ctx, rc) }
	var changes []string
	err = DiffFolders(ctx, counting, a, b, func(c Change) error { changes = append(changes, c.Path); return nil })
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(changes, []string{"sub/deeper/Ünïcödé 名前.md"}) || reads != 6 {
		t.Fatalf("changes %q after %d listing reads, want the one file after 6", changes, reads)
	}
	// From nothing, everything is new.
	changes = nil
	if err := DiffFolders(ctx, w.list(), Recipe{}, b, func(c Change) error {
		if c.Old != nil || c.New == nil {
			t.Fatalf("from nothing: %+v", c)
		}
		changes = append(changes, c.Path)
		return nil
	}); err != nil || len(changes) != 8 {
		t.Fatalf("from nothing: %q %v", changes, err)
	}
}

func TestFolderRefusesHostile(t *testing.T) {
	ctx := context.Background()
	w := newFolderWorld(t)
	f := w.file(t, "x", "x")
	for _, p := range []string{"../x", "/abs", "a/../../x", "a\\b", ".", "..", "a//b", "\u202ex", "x\x00y"} {
		if _, _, err := BuildFolder(ctx, []Item{{Path: p, Mode: 0o644, Recipe: f}}, "t", w.put); !errors.Is(err, ErrBadFolder) {
			t.Errorf("BuildFolder with %q: %v", p, err)
		}
	}
	dup := []Item{{Path: "a", Recipe: f}, {Path: "a", Recipe: f}}
	if _, _, err := BuildFolder(ctx, dup, "t", w.put); !errors.Is(err, ErrBadFolder) {
		t.Errorf("duplicate: %v", err)
	}
	both := []Item{{Path: "a", Recipe: f}, {Path: "a/b", Recipe: f}}
	if _, _, err := BuildFolder(ctx, both, "t", w.put); !errors.Is(err, ErrBadFolder) {
		t.Errorf("file and folder: %v", err)
	}
	if _, _, err := BuildFolder(ctx, []Item{{Path: "a", Mode: fs.ModeSetuid | 0o755, Recipe: f}}, "t", w.put); !errors.Is(err, ErrBadFolder) {
		t.Errorf("setuid: %v", err)
	}
	// A listing written by hand with a hostile name does not decode.
	good, err := EncodeFolder([]Entry{{Name: "abc", Mode: 0o644, Recipe: f}})
	if err != nil {
		t.Fatal(err)
	}
	for _, evil := range []string{"../", "a/b", "..."} {
		b := bytes.Replace(good, []byte("abc"), []byte(evil), 1)
		if _, err := DecodeFolder(b); !errors.Is(err, ErrBadFolder) {
			t.Errorf("listing with %q decodes: %v", evil, err)
		}
	}
	if es, err := DecodeFolder(good); err != nil || len(es) != 1 || es[0].Recipe.Key() != f.Key() {
		t.Fatalf("good listing: %v %+v", err, es)
	}
	// A file recipe is not a folder.
	if _, err := ReadFolder(ctx, w.st, f); !errors.Is(err, ErrBadFolder) {
		t.Fatalf("file as folder: %v", err)
	}
}

// TestFolderSubTreeTwice: a listing that names one sub folder many times
// cannot make a walk multiply past MaxTreeEntries.
func TestFolderSubTreeTwice(t *testing.T) {
	ctx := context.Background()
	w := newFolderWorld(t)
	f := w.file(t, "x", "x")
	// A fake lister: folder k holds 1000 entries, each the same folder
	// k+1, down to folder 3, which holds 1000 files.
	sub := func(k int64) Recipe {
		return Recipe{Root: f.Root, DescClass: f.DescClass, Size: k, Type: FolderType, Name: "s"}
	}
	list := func(_ context.Context, rc Recipe) ([]Entry, error) {
		var es []Entry
		for i := range 1000 {
			e := Entry{Name: strings.Repeat("a", 1+i/26) + string(rune('a'+i%26)), Dir: rc.Size < 3, Recipe: sub(rc.Size + 1)}
			if !e.Dir {
				e.Recipe = f
			}
			es = append(es, e)
		}
		return es, nil
	}
	n := 0
	err := WalkFolder(ctx, list, sub(1), func(string, Entry) error { n++; return nil })
	if !errors.Is(err, ErrBadFolder) || n != MaxTreeEntries {
		t.Fatalf("walk: %v after %d entries", err, n)
	}
}

func TestCleanEntryName(t *testing.T) {
	for in, want := range map[string]string{
		".gitignore": ".gitignore", "..": "", ".": "", "a/b": "b", "x\u202egpj.exe": "xgpj.exe",
		" .x ": "x", "...x": "...x", "Ünïcödé 名前.md": "Ünïcödé 名前.md", "": "",
	} {
		if got := CleanEntryName(in); got != want {
			t.Errorf("CleanEntryName(%q) = %q, want %q", in, got, want)
		}
	}
}

// FuzzDecodeFolder: any bytes either decode into entries that encode back
// to the same bytes, or fail with ErrBadFolder; never a panic.
func FuzzDecodeFolder(f *testing.F) {
	rc := Recipe{Root: make(mixer.Tuple, DescT), DescClass: mixer.Small, Size: 5, Type: "text/plain"}
	good, _ := EncodeFolder([]Entry{
		{Name: "a.txt", Mode: 0o644, ModTime: t0, Recipe: rc},
		{Name: "sub", Dir: true, Mode: 0o755, Recipe: Recipe{Root: rc.Root, DescClass: mixer.Small, Size: 9, Type: FolderType}},
	})
	f.Add(good)
	f.Add([]byte("BMXF\x01\x00"))
	f.Add([]byte("BMXF\x01\xff\xff\xff\xff\x0f"))
	f.Fuzz(func(t *testing.T, b []byte) {
		es, err := DecodeFolder(b)
		if err != nil {
			if !errors.Is(err, ErrBadFolder) {
				t.Fatalf("error without ErrBadFolder: %v", err)
			}
			return
		}
		again, err := EncodeFolder(es)
		if err != nil {
			t.Fatalf("decoded entries do not encode: %v", err)
		}
		if !bytes.Equal(again, b) {
			t.Fatalf("re-encoded listing differs")
		}
		for _, e := range es {
			if CleanEntryName(e.Name) != e.Name || strings.ContainsAny(e.Name, "/\\") || e.Name == ".." {
				t.Fatalf("unsafe name %q decoded", e.Name)
			}
		}
	})
}

// FuzzCleanEntryName: cleaning is idempotent and never leaves a separator
// or a name that walks up.
func FuzzCleanEntryName(f *testing.F) {
	for _, s := range []string{".gitignore", "..", "a/b", "x\u202ey", " .x", "........a"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c := CleanEntryName(s)
		if CleanEntryName(c) != c || strings.ContainsAny(c, "/\\\x00") || c == "." || c == ".." || len(c) > MaxEntryName {
			t.Fatalf("CleanEntryName(%q) = %q", s, c)
		}
	})
}

// FuzzParseFolderPath: any text gives an error or a path whose every
// element is clean (what get and ls then look up); never a panic.
func FuzzParseFolderPath(f *testing.F) {
	rc := Recipe{Root: make(mixer.Tuple, DescT), DescClass: mixer.Small, Size: 5, Type: FolderType, Name: "tree"}
	f.Add(rc.String() + "/sub/a.txt")
	f.Add(rc.String() + "/sub/../../etc/passwd")
	f.Add(rc.String() + "/%2e%2e/x")
	f.Add(rc.URL("") + "/a%2Fb/c d.txt")
	f.Fuzz(func(t *testing.T, s string) {
		got, p, err := ParseFolderPath(s)
		if err != nil {
			return
		}
		if _, err := SplitFolderPath(p); err != nil {
			t.Fatalf("ParseFolderPath(%q) gave the unclean path %q", s, p)
		}
		for _, el := range strings.Split(p, "/") {
			if el == ".." || el == "." || strings.ContainsAny(el, "\\\x00") {
				t.Fatalf("ParseFolderPath(%q) gave %q", s, p)
			}
		}
		if got.Name != CleanName(got.Name) {
			t.Fatalf("name %q not clean", got.Name)
		}
	})
}

func TestParseFolderPath(t *testing.T) {
	rc := Recipe{Root: make(mixer.Tuple, DescT), DescClass: mixer.Small, Size: 5, Type: FolderType, Name: "tree"}
	for in, want := range map[string]string{
		rc.String():                          "",
		rc.String() + "/sub/Ünï cödé.md":     "sub/Ünï cödé.md",
		rc.String() + "/sub/%C3%9Cn%20x.md":  "sub/Ün x.md",
		rc.URL("") + "/a/b/":                 "a/b",
		"see " + rc.String() + "/a/b.txt\n!": "a/b.txt",
	} {
		got, p, err := ParseFolderPath(in)
		if err != nil || p != want || got.Name != "tree" || got.Key() != rc.Key() {
			t.Errorf("ParseFolderPath(%q) = %q, %q, %v; want %q", in, got.Name, p, err, want)
		}
	}
	for _, bad := range []string{rc.String() + "/../x", rc.String() + "/a/%2e%2e/b", rc.String() + "/a/.."} {
		if _, _, err := ParseFolderPath(bad); !errors.Is(err, ErrBadFolder) {
			t.Errorf("ParseFolderPath(%q): %v", bad, err)
		}
	}
}
