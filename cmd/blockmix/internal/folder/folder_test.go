package folder

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/blockmix/blockmix/blocks"
	"github.com/blockmix/blockmix/mixer"
	"github.com/blockmix/blockmix/recipe"
	"github.com/blockmix/blockmix/webui/apiv1"
)

func write(t *testing.T, p, data string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

// memTarget puts into a memory store, counting the files it mixes.
type memTarget struct {
	st   *blocks.Mem
	puts int
}

func (m *memTarget) target(t *testing.T) Target {
	put := func(ctx context.Context, r io.Reader, size int64, name, typ string) (apiv1.PutInfo, error) {
		mx, err := mixer.New(m.st, mixer.Options{})
		if err != nil {
			return apiv1.PutInfo{}, err
		}
		res, err := recipe.Put(ctx, mx, m.st, r, size, name, typ, nil)
		if err != nil {
			return apiv1.PutInfo{}, err
		}
		m.puts++
		return apiv1.PutInfo{Recipe: res.Recipe.String(), NewBlocks: res.NewBlocks, NewBytes: res.NewBytes}, nil
	}
	return Funcs{
		HasFunc: func(ctx context.Context, rc recipe.Recipe) (bool, error) { return Recorded(ctx, m.st, rc) },
		Put:     put,
		BuildFunc: func(ctx context.Context, mf apiv1.FolderManifest) (apiv1.FolderInfo, error) {
			return Build(ctx, m.st, mf, put)
		},
	}
}

func (m *memTarget) source() Source {
	return SourceFuncs{ListFunc: recipe.FolderLister(m.st), FetchFunc: func(ctx context.Context, rc recipe.Recipe, w io.Writer) error {
		r, err := recipe.Open(ctx, m.st, rc, recipe.Options{})
		if err == nil {
			_, err = r.WriteTo(w)
		}
		return err
	}}
}

// TestScanSkipsAndCleans: links and pipes are skipped, a name with a
// direction-changing character is put under its cleaned name, and a name
// that cleans to one taken is skipped; each says why.
func TestScanSkipsAndCleans(t *testing.T) {
	root := t.TempDir()
	write(t, filepath.Join(root, "ab.txt"), "clean")
	write(t, filepath.Join(root, "a\u202eb.txt"), "clashes")
	write(t, filepath.Join(root, "x\u200by.txt"), "renamed")
	if err := os.Symlink("/etc/passwd", filepath.Join(root, "link")); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(filepath.Join(root, "pipe"), 0o644); err != nil {
		t.Fatal(err)
	}
	tree, err := Scan(root)
	if err != nil {
		t.Fatal(err)
	}
	var rels []string
	for _, f := range tree.Files {
		rels = append(rels, f.Rel)
	}
	if !slices.Equal(rels, []string{"ab.txt", "xy.txt"}) {
		t.Fatalf("files %q", rels)
	}
	var said []string
	for _, s := range tree.Skipped {
		said = append(said, s.Path+": "+s.As+" "+s.Reason)
	}
	all := strings.Join(said, "\n")
	for _, want := range []string{"link: ", "symbolic link", "pipe: ", "named pipe", `"ab.txt" is taken`, "x\u200by.txt: xy.txt"} {
		if !strings.Contains(all, want) {
			t.Errorf("skipped does not say %q:\n%s", want, all)
		}
	}
}

// TestPutReusesAndGets: a second put of an unchanged tree mixes nothing
// (cache and store), one change mixes one file, and Get rebuilds the
// tree; with Force, Get refuses to follow a symbolic link in the way.
func TestPutReusesAndGets(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	src := filepath.Join(root, "src")
	write(t, filepath.Join(src, "a.txt"), "alpha")
	write(t, filepath.Join(src, "sub", "b.txt"), "beta")
	m := &memTarget{st: blocks.NewMem()}
	cachePath := filepath.Join(root, CacheFile)
	first, err := Put(ctx, src, m.target(t), PutOptions{Cache: OpenCache(cachePath)})
	if err != nil || first.PutFiles != 2 || m.puts != 4 { // two files, two listings
		t.Fatalf("first put: %+v, %d puts, %v", first, m.puts, err)
	}
	again, err := Put(ctx, src, m.target(t), PutOptions{Cache: OpenCache(cachePath)})
	if err != nil || again.PutFiles != 0 || again.ReusedFiles != 2 || m.puts != 4 || again.Recipe != first.Recipe {
		t.Fatalf("second put: %+v, %d puts, %v", again, m.puts, err)
	}
	// Without the cache every file is mixed again.
	if _, err := Put(ctx, src, m.target(t), PutOptions{}); err != nil || m.puts != 8 { // new recipes: new listings too
		t.Fatalf("put without a cache: %d puts, %v", m.puts, err)
	}
	write(t, filepath.Join(src, "sub", "b.txt"), "BETA!")
	changed, err := Put(ctx, src, m.target(t), PutOptions{Cache: OpenCache(cachePath)})
	if err != nil || changed.PutFiles != 1 || changed.ReusedFiles != 1 || m.puts != 11 { // b.txt, sub, root
		t.Fatalf("put after a change: %+v, %d puts, %v", changed, m.puts, err)
	}
	rc, _ := recipe.Parse(changed.Recipe)
	dest := filepath.Join(root, "out")
	if _, err := Get(ctx, m.source(), rc, dest, GetOptions{}); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(dest, "sub", "b.txt")); !bytes.Equal(b, []byte("BETA!")) {
		t.Fatalf("rebuilt b.txt: %q", b)
	}
	// A link where a folder goes: refused, even with Force; nothing is
	// written where it points.
	outside := filepath.Join(root, "outside")
	if err := os.Mkdir(outside, 0o755); err != nil {
		t.Fatal(err)
	}
	dest2 := filepath.Join(root, "out2")
	if err := os.Mkdir(dest2, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(dest2, "sub")); err != nil {
		t.Fatal(err)
	}
	if _, err := Get(ctx, m.source(), rc, dest2, GetOptions{Force: true}); err == nil || !strings.Contains(err.Error(), "not a folder") {
		t.Fatalf("get through a link: %v", err)
	}
	if ents, _ := os.ReadDir(outside); len(ents) != 0 {
		t.Fatalf("written outside: %v", ents)
	}
	// Without Force a folder that holds something is refused.
	if _, err := Get(ctx, m.source(), rc, dest, GetOptions{}); !errors.Is(err, ErrNotEmpty) {
		t.Fatalf("get into a full folder: %v", err)
	}
}
