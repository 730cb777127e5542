package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/blockmix/blockmix/recipe"
	"github.com/blockmix/blockmix/webui/apiv1"
)

// makeSampleTree writes a tree with nested and empty folders, Unicode
// names, an empty file, an executable, a hidden file and a symbolic link
// (which put skips) under root, each with its own time.
func makeSampleTree(t *testing.T, root string) {
	t.Helper()
	when := time.Date(2025, 3, 4, 5, 6, 7, 800000000, time.UTC)
	files := []struct {
		path string
		data []byte
		mode fs.FileMode
	}{
		{"a.txt", []byte("alpha\n"), 0o644},
		{"run.sh", []byte("#!/bin/sh\necho hi\n"), 0o755},
		{"empty", nil, 0o600},
		{"big.bin", randBytes(7, 300<<10), 0o640},
		{"sub/.hidden", []byte("dot"), 0o644},
		{"sub/deeper/Ünïcödé 名前 (1).md", []byte("unicode ✓"), 0o444},
		{"sub/deeper/emoji 🎉.txt", []byte("party"), 0o644},
	}
	for i, f := range files {
		p := filepath.Join(root, filepath.FromSlash(f.path))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, f.data, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, f.mode); err != nil {
			t.Fatal(err)
		}
		tm := when.Add(time.Duration(i) * time.Hour)
		if err := os.Chtimes(p, tm, tm); err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range []string{"void", "sub/empty folder ñ"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(filepath.Join(root, "void"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("a.txt", filepath.Join(root, "link")); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"sub/deeper", "sub", "void", "sub/empty folder ñ"} {
		tm := when.Add(-time.Duration(len(d)) * time.Minute)
		if err := os.Chtimes(filepath.Join(root, d), tm, tm); err != nil {
			t.Fatal(err)
		}
	}
}

// treeOf describes every entry under root but symbolic links: path,
// kind and mode, size and sha256 of files, modification time.
func treeOf(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == root || d.Type()&fs.ModeSymlink != 0 {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		line := fmt.Sprintf("%s %v %s", filepath.ToSlash(rel), fi.Mode(), fi.ModTime().UTC().Format(time.RFC3339Nano))
		if fi.Mode().IsRegular() {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			line += fmt.Sprintf(" %d %x", len(b), sha256.Sum256(b))
		}
		out = append(out, line)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func sameTree(t *testing.T, what string, want, got []string) {
	t.Helper()
	if !slices.Equal(want, got) {
		t.Fatalf("%s: the rebuilt tree differs\nwant:\n%s\ngot:\n%s", what, strings.Join(want, "\n"), strings.Join(got, "\n"))
	}
}

func putFolderJSON(t *testing.T, w *world, dir string) apiv1.FolderInfo {
	t.Helper()
	var info apiv1.FolderInfo
	b := w.ok("put", "--json", dir)
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	if err := d.Decode(&info); err != nil || !info.Folder {
		t.Fatalf("put --json %s: %v\n%s", dir, err, b)
	}
	return info
}

// TestFolderRecipes: put DIR gives one recipe for the tree; get rebuilds
// it identically (contents, names with Unicode, modes, times, the empty
// file and folders), offline and through a real daemon process; ls lists
// it; RECIPE/path gets one file; a second put reuses every file and
// listing, and after one change it mixes that file and the listings on
// its path only.
func TestFolderRecipes(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	src := w.path("src")
	makeSampleTree(t, src)
	want := treeOf(t, src)

	// Offline.
	info := putFolderJSON(t, w, src)
	if info.Files != 7 || info.Folders != 5 || info.PutFiles != 7 || info.NewBlocks == 0 {
		t.Fatalf("first put: %+v", info)
	}
	if len(info.Skipped) != 1 || info.Skipped[0].Path != "link" || !strings.Contains(info.Skipped[0].Reason, "symbolic link") {
		t.Fatalf("skipped: %+v", info.Skipped)
	}
	rc, err := recipe.Parse(info.Recipe)
	if err != nil || !rc.IsFolder() || rc.Name != "src" {
		t.Fatalf("recipe %q: %v", info.Recipe, err)
	}
	w.ok("get", "-o", w.path("out1"), info.Recipe)
	sameTree(t, "offline", want, treeOf(t, w.path("out1")))
	// pin would keep the listing only: refused, and says why.
	if r := w.want(2, "pin", info.Recipe); !strings.Contains(string(r.stderr), "folder recipe") {
		t.Fatalf("pin of a folder recipe: %s", r)
	}
	// Into a folder that is not empty: refused (exit 2), nothing changed.
	r := w.want(2, "get", "-o", w.path("out1"), info.Recipe)
	if !strings.Contains(string(r.stderr), "not empty") {
		t.Fatalf("get into a full folder: %s", r)
	}

	p, _ := startDaemon(t, w, nil)
	defer stopDaemon(t, p)
	again := putFolderJSON(t, w, src)
	if again.Recipe != info.Recipe || again.ReusedFiles != 7 || again.PutFiles != 0 || again.ReusedFolders != 5 || again.NewBlocks != 0 {
		t.Fatalf("second put through the daemon: %+v", again)
	}
	w.ok("get", "-o", w.path("out2"), info.Recipe)
	sameTree(t, "through the daemon", want, treeOf(t, w.path("out2")))
	if got := w.ok("get", "-o", "-", info.Recipe+"/sub/deeper/Ünïcödé 名前 (1).md"); string(got) != "unicode ✓" {
		t.Fatalf("one file by path: %q", got)
	}
	var l apiv1.FolderList
	if err := json.Unmarshal(w.ok("ls", "--json", info.Recipe+"/sub"), &l); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range l.Entries {
		names = append(names, e.Path)
	}
	if !slices.Equal(names, []string{"sub/.hidden", "sub/deeper", "sub/empty folder ñ"}) {
		t.Fatalf("ls sub: %q", names)
	}
	var one apiv1.FolderList
	if err := json.Unmarshal(w.ok("ls", "--json", info.Recipe+"/run.sh"), &one); err != nil || len(one.Entries) != 1 || one.Entries[0].Mode != 0o755 || one.Entries[0].Size != 18 {
		t.Fatalf("ls of one file: %+v %v", one, err)
	}
	if text := string(w.ok("ls", "-r", info.Recipe)); !strings.Contains(text, "-rwxr-xr-x") || !strings.Contains(text, "sub/deeper/emoji 🎉.txt") {
		t.Fatalf("ls -r:\n%s", text)
	}

	// The API refuses manifests that do not make a tree or name files the
	// node does not hold, and file recipes where a folder's is wanted.
	base := strings.TrimSpace(string(must(os.ReadFile(filepath.Join(w.repo, "api")))))
	var fileRecipe string
	for _, e := range l.Entries {
		if e.Path == "sub/.hidden" {
			fileRecipe = e.Recipe
		}
	}
	notHereRC, _ := recipe.Parse(fileRecipe)
	notHereRC.Size++ // another file: another key
	notHere := notHereRC.String()
	for _, c := range []struct {
		items []apiv1.FolderItem
		want  string
	}{
		{[]apiv1.FolderItem{{Path: "../x", Size: 3, Recipe: fileRecipe, Mode: 0o644}}, "not a clean name"},
		{[]apiv1.FolderItem{{Path: "a", Size: 3, Recipe: fileRecipe}, {Path: "a", Size: 3, Recipe: fileRecipe}}, "twice"},
		{[]apiv1.FolderItem{{Path: "a", Size: 3, Recipe: fileRecipe, Mode: 0o4755}}, "permission bits"},
		{[]apiv1.FolderItem{{Path: "a", Size: 4, Recipe: notHere}}, "put these files first"},
	} {
		body, _ := json.Marshal(apiv1.FolderManifest{Name: "x", Items: c.items})
		resp, err := http.Post(base+"/api/v1/folder", "application/json", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		msg, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(msg), c.want) {
			t.Errorf("manifest %+v: %s %s, want 400 saying %q", c.items, resp.Status, msg, c.want)
		}
	}
	resp, err := http.Get(base + "/api/v1/folder?recipe=" + url.QueryEscape(fileRecipe))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("listing a file recipe: %s, want 400", resp.Status)
	}

	// One file changes: that file and the listings of sub/deeper, sub and
	// the root are new; void and "empty folder ñ" are reused.
	if err := os.WriteFile(filepath.Join(src, "sub/deeper/emoji 🎉.txt"), []byte("changed"), 0o644); err != nil {
		t.Fatal(err)
	}
	changed := putFolderJSON(t, w, src)
	if changed.PutFiles != 1 || changed.ReusedFiles != 6 || changed.ReusedFolders != 2 || changed.Recipe == info.Recipe {
		t.Fatalf("put after one change: %+v", changed)
	}
	w.ok("get", "-o", w.path("out3"), changed.Recipe)
	sameTree(t, "after one change", treeOf(t, src), treeOf(t, w.path("out3")))
}

// TestFolderHostileListing: a folder recipe whose listing names "../evil"
// (made by hand: put refuses such names) is refused by get, ls and the
// API with exit code 2 / 400, and nothing is written outside -o DIR, or
// at all.
func TestFolderHostileListing(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.file("x.txt", []byte("payload"))
	frc, err := recipe.Parse(w.okLine("put", "x.txt"))
	if err != nil {
		t.Fatal(err)
	}
	var hostiles []string
	for _, evil := range []string{"../evil", "/abs/ev", "a/../..", "..", "a\x00b"} {
		placeholder := strings.Repeat("q", len(evil))
		listing, err := recipe.EncodeFolder([]recipe.Entry{{Name: placeholder, Mode: 0o644, Recipe: frc}})
		if err != nil {
			t.Fatal(err)
		}
		listing = bytes.Replace(listing, []byte(placeholder), []byte(evil), 1)
		w.file("listing.bin", listing)
		hostile := w.okLine("put", "--type", recipe.FolderType, "--name", "trap", "listing.bin")
		dest := w.path("deep/out")
		r := w.want(2, "get", "-o", dest, hostile)
		if !strings.Contains(string(r.stderr), "bad folder listing") {
			t.Fatalf("%q: get said %s", evil, r)
		}
		w.want(2, "ls", hostile)
		for _, p := range []string{w.path("evil"), w.path("deep/evil"), filepath.Join(w.dir, "..", "evil"), "/abs"} {
			mustNotExist(t, p)
		}
		// The listing is read in full before anything is written.
		mustNotExist(t, dest)
		hostiles = append(hostiles, hostile)
	}
	// Through a daemon: the same refusals.
	p, _ := startDaemon(t, w, nil)
	defer stopDaemon(t, p)
	for _, hostile := range hostiles {
		dest := w.path("deep/out")
		if r := w.want(2, "get", "-o", dest, hostile); !strings.Contains(string(r.stderr), "bad folder listing") {
			t.Fatalf("through the daemon, get said %s", r)
		}
		w.want(2, "ls", hostile)
		mustNotExist(t, dest)
		mustNotExist(t, w.path("evil"))
		mustNotExist(t, w.path("deep/evil"))
	}
}
