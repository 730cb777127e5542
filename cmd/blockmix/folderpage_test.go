package main

import (
	"archive/zip"
	"bytes"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/blockmix/blockmix/webui/apiv1"
)

// TestFolderPage: the page shares a folder chosen with the folder input
// (webkitdirectory) as one recipe, each file through the put API and the
// tree through POST /api/v1/folder; a pasted folder recipe shows its tree
// with Save per file and a zip of the whole, which hold the files' bytes.
func TestFolderPage(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	startPageDaemon(t, w, nil, "--listen", "/ip4/127.0.0.1/tcp/0", "--api", "127.0.0.1:0")
	base := strings.TrimSpace(string(must(os.ReadFile(filepath.Join(w.repo, "api")))))
	tree := w.path("trip")
	files := map[string]string{
		"notes.txt":            "alpha\n",
		"photos/Ünïcödé 名.txt": "unicode ✓",
		"photos/empty":         "",
		"photos/raw/x.bin":     string(randBytes(3, 200<<10)),
	}
	for p, data := range files {
		fp := filepath.Join(tree, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(fp), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(fp, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}

	ctx := newBrowser(t)
	do(t, ctx, "choose the folder", goTo(base, "share"), chromedp.WaitReady(chromedp.ID("folder-input")),
		chromedp.SetUploadFiles(chromedp.CSS("#folder-input"), []string{tree}))
	rc := poll[string](t, ctx, "the folder's recipe", `(() => {
		const li = document.querySelector('#share-results .share-result.done.folder');
		return li ? li.querySelector('.recipe-text').value : '';
	})()`, 2*time.Minute)
	if card := evalJS[string](t, ctx, `document.querySelector('#share-results .share-result.done.folder').textContent`); !strings.Contains(card, "trip/") || !strings.Contains(card, "4 files") {
		t.Fatalf("the folder's card: %q", card)
	}

	var l apiv1.FolderList
	apiJSON(t, base, "/api/v1/folder?deep=1&recipe="+url.QueryEscape(rc), &l)
	var paths []string
	for _, e := range l.Entries {
		paths = append(paths, e.Path)
	}
	if want := []string{"notes.txt", "photos", "photos/empty", "photos/raw", "photos/raw/x.bin", "photos/Ünïcödé 名.txt"}; !slices.Equal(paths, want) {
		t.Fatalf("the shared tree: %q, want %q", paths, want)
	}

	// Pasted, the recipe shows the tree with Save per file and a zip.
	do(t, ctx, "paste the folder recipe", goTo(base, "get"), chromedp.SendKeys(chromedp.ID("recipe-input"), rc))
	saves := poll[[]string](t, ctx, "the tree with Save links", `(() => {
		const links = Array.from(document.querySelectorAll('#folder-tree a.save-file')).map((a) => a.getAttribute('href'));
		return links.length === 4 ? links : null;
	})()`, time.Minute)
	for _, href := range saves {
		u, err := url.Parse(href)
		if err != nil {
			t.Fatal(err)
		}
		want, ok := files[u.Query().Get("path")]
		if !ok {
			t.Fatalf("a Save link for %q", u.Query().Get("path"))
		}
		if got := httpBody(t, base+href); got != want {
			t.Fatalf("Save %s: %d bytes, want %d", u.Query().Get("path"), len(got), len(want))
		}
	}
	// Get on a folder recipe downloads the zip: no transfer of the
	// listing as a file starts.
	evalJS[bool](t, ctx, `(() => { window.zipClicked = false; document.getElementById('folder-zip').addEventListener('click', (e) => { e.preventDefault(); window.zipClicked = true; }); return true; })()`)
	do(t, ctx, "Get the folder", chromedp.Click(chromedp.ID("get-button")))
	poll[bool](t, ctx, "Get to download the zip", `window.zipClicked`, 30*time.Second)
	if shown := evalJS[bool](t, ctx, `!document.getElementById('get-transfer').hidden`); shown {
		t.Fatal("Get on a folder recipe started a file transfer")
	}
	zipHref := evalJS[string](t, ctx, `document.querySelector('#folder-zip').getAttribute('href')`)
	z := httpBody(t, base+zipHref)
	zr, err := zip.NewReader(strings.NewReader(z), int64(len(z)))
	if err != nil {
		t.Fatalf("the zip: %v", err)
	}
	got := map[string]string{}
	for _, f := range zr.File {
		if f.Method != zip.Store {
			t.Errorf("%s: method %d, want stored", f.Name, f.Method)
		}
		if strings.HasSuffix(f.Name, "/") {
			continue
		}
		r, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(r)
		if err != nil {
			t.Fatalf("%s in the zip: %v", f.Name, err)
		}
		got[strings.TrimPrefix(f.Name, "trip/")] = string(b)
	}
	if len(got) != len(files) {
		t.Fatalf("the zip holds %d files, want %d", len(got), len(files))
	}
	for p, data := range files {
		if got[p] != data {
			t.Fatalf("%s in the zip: %d bytes, want %d", p, len(got[p]), len(data))
		}
	}
}

func httpBody(t *testing.T, u string) string {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	if _, err := io.Copy(&b, resp.Body); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s %v: %.200s", u, resp.Status, err, b.String())
	}
	return b.String()
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
