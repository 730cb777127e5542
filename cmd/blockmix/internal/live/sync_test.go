package live

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/blockmix/blockmix/webui/apiv1"
)

// fakeFolders serves folder versions from memory: the sync's own logic is
// what these tests check (the daemon test runs it on real folder
// recipes).
type fakeFolders struct {
	mu       sync.Mutex
	versions map[string][]Entry
	bytes    map[string]string // key → content
	fetched  []string          // paths WriteFile was asked for
}

func (f *fakeFolders) PutFolder(context.Context, string) (Put, error) {
	return Put{}, errors.New("not here")
}

func (f *fakeFolders) Entries(_ context.Context, v string) ([]Entry, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	es, ok := f.versions[v]
	if !ok {
		return nil, errors.New("no such version")
	}
	return es, nil
}

func (f *fakeFolders) WriteFile(_ context.Context, e Entry, w io.Writer) error {
	f.mu.Lock()
	f.fetched = append(f.fetched, e.Path)
	f.mu.Unlock()
	_, err := io.WriteString(w, f.bytes[e.Key])
	return err
}

// version adds a version of path → content and returns its name.
func (f *fakeFolders) version(name string, files map[string]string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var es []Entry
	for p, c := range files {
		key := "k:" + c
		f.bytes[key] = c
		es = append(es, Entry{Path: p, Key: key, Size: int64(len(c))})
	}
	f.versions[name] = es
	return name
}

func read(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestSyncApply: only changed files are fetched; an unchanged local file
// is replaced or removed with its version; a local change is kept (beside
// a changed file, or in place of a dropped one); a local file with the
// version's bytes is no conflict; paths that leave the folder, through
// ".." or a local symbolic link, are refused.
func TestSyncApply(t *testing.T) {
	root := t.TempDir()
	dir, outside := filepath.Join(root, "dst"), filepath.Join(root, "outside")
	for _, d := range []string{dir, outside} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	f := &fakeFolders{versions: map[string][]Entry{}, bytes: map[string]string{}}
	m, err := New(filepath.Join(root, "live.json"), f, nil, nil, Options{})
	if err != nil {
		t.Fatal(err)
	}
	priv, l, _ := NewLink()
	j := &job{LiveFolder: apiv1.LiveFolder{ID: "s-test", Kind: "sync", Dir: dir, Link: l.String()}, FileStates: map[string]fileState{}, link: l}
	m.jobs = append(m.jobs, j)
	ctx := context.Background()
	apply := func(seq uint64, v string) {
		t.Helper()
		rec, err := Sign(priv, l, seq, time.Now(), []byte(v))
		if err != nil {
			t.Fatal(err)
		}
		f.fetched = nil
		if !m.apply(ctx, j, rec, v) {
			t.Fatalf("apply %s: %s %s", v, j.State, j.Message)
		}
	}
	apply(1, f.version("v1", map[string]string{"a.txt": "a1", "sub/b.txt": "b1", "gone.txt": "g1", "kept.txt": "k1"}))
	for p, want := range map[string]string{"a.txt": "a1", "sub/b.txt": "b1", "gone.txt": "g1", "kept.txt": "k1"} {
		if got := read(t, filepath.Join(dir, p)); got != want {
			t.Fatalf("%s: %q", p, got)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "kept.txt"), []byte("edited here"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "same.txt"), []byte("s2"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	apply(2, f.version("v2", map[string]string{"a.txt": "a2", "sub/b.txt": "b1", "same.txt": "s2", "../evil.txt": "x", "link/evil.txt": "x", "/abs.txt": "x"}))
	if got := strings.Join(f.fetched, ","); got != "a.txt,same.txt" && got != "same.txt,a.txt" {
		t.Fatalf("fetched %s, want only a.txt and same.txt", got)
	}
	if read(t, filepath.Join(dir, "a.txt")) != "a2" || read(t, filepath.Join(dir, "same.txt")) != "s2" {
		t.Fatal("the changed files did not arrive")
	}
	if _, err := os.Stat(filepath.Join(dir, "gone.txt")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("gone.txt, unchanged here and dropped by the version, is still there: %v", err)
	}
	if read(t, filepath.Join(dir, "kept.txt")) != "edited here" {
		t.Fatal("a local change was lost")
	}
	for _, p := range []string{filepath.Join(root, "evil.txt"), filepath.Join(outside, "evil.txt"), "/abs.txt"} {
		if _, err := os.Lstat(p); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("%s was written outside the folder", p)
		}
	}
	if j.State != "ok" || len(j.Conflicts) != 0 || !strings.Contains(j.Message, "kept: kept.txt") {
		t.Fatalf("state %s %q, conflicts %q", j.State, j.Message, j.Conflicts)
	}

	// A local change to a file the next version changes: both stay.
	if err := os.WriteFile(filepath.Join(dir, "sub", "b.txt"), []byte("mine"), 0o644); err != nil {
		t.Fatal(err)
	}
	apply(3, f.version("v3", map[string]string{"a.txt": "a2", "sub/b.txt": "b3", "same.txt": "s2"}))
	if read(t, filepath.Join(dir, "sub", "b.txt")) != "b3" || j.State != "conflict" || len(j.Conflicts) != 1 {
		t.Fatalf("b.txt %q, state %s, conflicts %q", read(t, filepath.Join(dir, "sub", "b.txt")), j.State, j.Conflicts)
	}
	if got := read(t, filepath.Join(dir, filepath.FromSlash(j.Conflicts[0]))); got != "mine" {
		t.Fatalf("the conflict copy %s holds %q", j.Conflicts[0], got)
	}
	// A file becomes a folder, and a folder's last file goes: the empty
	// folder goes with it.
	if err := os.MkdirAll(filepath.Join(dir, "deep", "er"), 0o755); err != nil {
		t.Fatal(err)
	}
	apply(4, f.version("v4", map[string]string{"a.txt": "a2", "sub/b.txt": "b3", "same.txt/inner.txt": "i4", "deep/er/x.txt": "x4"}))
	apply(5, f.version("v5", map[string]string{"a.txt": "a2", "sub/b.txt": "b3", "same.txt/inner.txt": "i4"}))
	if read(t, filepath.Join(dir, "same.txt", "inner.txt")) != "i4" {
		t.Fatal("a file that became a folder")
	}
	if _, err := os.Stat(filepath.Join(dir, "deep")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the emptied folder stayed: %v", err)
	}
	// No temporary file is left.
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if strings.Contains(p, ".blockmix-partial-") {
			t.Errorf("left behind: %s", p)
		}
		return nil
	})
}

// TestStateFile: jobs survive a new Manager (the state file, 0600, holds
// them); a damaged state file is set aside, not fatal.
func TestStateFile(t *testing.T) {
	root := t.TempDir()
	path := filepath.Join(root, "live.json")
	m, err := New(path, &fakeFolders{}, nil, nil, Options{})
	if err != nil {
		t.Fatal(err)
	}
	w, err := m.Watch(root, nil)
	if err != nil {
		t.Fatal(err)
	}
	priv, l, _ := NewLink()
	_ = priv
	s, err := m.Sync(l.URL(""), filepath.Join(root, "in"), nil, false)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Sync(l.String(), "relative/dir", nil, false); err == nil {
		t.Fatal("a relative folder was taken")
	}
	if _, err := m.Sync("blockmix:live:aaaa", filepath.Join(root, "x"), nil, false); !errors.Is(err, ErrDamaged) {
		t.Fatalf("a damaged link: %v", err)
	}
	if _, err := m.Sync(l.String(), root, nil, false); err == nil {
		t.Fatal("a watched folder was synced too")
	}
	// No live folder holds the repo or is in it.
	repo := filepath.Join(root, "repo")
	mr, err := New(filepath.Join(root, "other.json"), &fakeFolders{}, nil, nil, Options{Repo: repo})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := mr.Watch(root, nil); err == nil || !strings.Contains(err.Error(), "overlap") {
		t.Fatalf("a watch of the folder that holds the repo: %v", err)
	}
	if _, err := mr.Sync(l.String(), filepath.Join(repo, "in"), nil, false); err == nil || !strings.Contains(err.Error(), "overlap") {
		t.Fatalf("a sync into the repo: %v", err)
	}
	if _, err := os.Stat(filepath.Join(repo, "in")); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("a refused sync made its folder")
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("state file: %v %v", fi, err)
	}
	m2, err := New(path, &fakeFolders{}, nil, nil, Options{})
	if err != nil {
		t.Fatal(err)
	}
	got := m2.List()
	if len(got) != 2 || got[0].Link != w.Link || got[1].Link != s.Link || got[1].Dir != filepath.Join(root, "in") {
		t.Fatalf("after a restart: %+v", got)
	}
	if again, _ := m2.Watch(root, nil); again.Link != w.Link {
		t.Fatal("the same folder got a new link after a restart")
	}
	if _, err := m2.Remove("sync", filepath.Join(root, "in")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(`{"Jobs":[{"id":`), 0o600); err != nil {
		t.Fatal(err)
	}
	m3, err := New(path, &fakeFolders{}, nil, nil, Options{})
	if err != nil || len(m3.List()) != 0 {
		t.Fatalf("damaged state: %v, %d jobs", err, len(m3.List()))
	}
	matches, _ := filepath.Glob(path + "*damaged*")
	if len(matches) != 1 {
		t.Fatalf("the damaged state file was not set aside: %v", matches)
	}
}
