package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// liveRow is a JavaScript expression: the text of the Live folders row
// whose folder is dir, or "".
func liveRow(dir string) string {
	return `(() => { for (const tr of document.querySelectorAll('#live-table tbody tr')) {
		if (tr.children[1].textContent === ` + jsString(dir) + `) return tr.textContent; } return ''; })()`
}

// TestLivePage: on A's page a folder is watched and its row shows the
// version and state; B's page opened at the web spelling of the live
// link (/l/…) offers the link without following it; syncing it from the
// page brings the folder, and a conflicting local change shows as one.
func TestLivePage(t *testing.T) {
	if testing.Short() {
		t.Skip("starts two daemons and a browser")
	}
	a, b, _, _, _ := liveNet(t, "200ms")
	urlA, urlB := a.apiBase(t), b.apiBase(t)
	src, dst := a.path("src"), b.path("dst")
	writeFile(t, filepath.Join(src, "notes.txt"), "first notes")
	ctx := newBrowser(t)

	do(t, ctx, "watch from A's page", goTo(urlA, "live"), chromedp.WaitVisible(chromedp.ID("watch-dir")),
		chromedp.SetValue(chromedp.ID("watch-dir"), src), chromedp.Click(chromedp.ID("watch-button")))
	row := poll[string](t, ctx, "the watched folder up to date", `(() => { const r = `+liveRow(src)+`; return r.includes('up to date') ? r : ''; })()`, liveWait)
	if !strings.Contains(row, "published") || !strings.Contains(row, "blockmix:live:") {
		t.Fatalf("A's row: %q", row)
	}
	link := liveFolders(t, a, "watch")[0]

	// The web spelling on B's page: offered, not followed.
	web := urlB + "/l/" + strings.TrimPrefix(link.Link, "blockmix:live:")
	do(t, ctx, "open the live link on B's page", chromedp.Navigate(web))
	got := poll[string](t, ctx, "the link in the sync form", `document.getElementById('sync-link').value`, 30*time.Second)
	if got != web {
		t.Fatalf("the sync form holds %q, want %q", got, web)
	}
	if fs := liveFolders(t, b, "sync"); len(fs) != 0 {
		t.Fatalf("opening a /l/ link synced it unasked: %+v", fs)
	}
	do(t, ctx, "sync from B's page", chromedp.SetValue(chromedp.ID("sync-dir"), dst), chromedp.Click(chromedp.ID("sync-button")))
	poll[string](t, ctx, "the synced folder up to date", `(() => { const r = `+liveRow(dst)+`; return r.includes('up to date') ? r : ''; })()`, liveWait)
	waitUntil(t, "B has notes.txt", hasContent(filepath.Join(dst, "notes.txt"), "first notes"))

	writeFile(t, filepath.Join(dst, "notes.txt"), "B's notes")
	writeFile(t, filepath.Join(src, "notes.txt"), "second notes")
	row = poll[string](t, ctx, "the conflict on B's page", `(() => { const r = `+liveRow(dst)+`; return r.includes('conflict') ? r : ''; })()`, liveWait)
	if !strings.Contains(row, "notes (conflict ") {
		t.Fatalf("B's row does not name the kept copy: %q", row)
	}
	screenshot(t, ctx, "live-folders")
	if b, _ := os.ReadFile(filepath.Join(dst, "notes.txt")); string(b) != "second notes" {
		t.Fatalf("notes.txt on B: %q", b)
	}
}
