package main

// The web page tells the truth and has the controls people expect (issue
// 18): real daemons on 127.0.0.1, Debian's Chromium driven by chromedp.
// One set of daemons serves every subtest; each subtest names the point
// of the issue it covers and fails on the page as it was before.

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"image/png"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	qr "github.com/piglig/go-qr"

	"github.com/blockmix/blockmix/blocks"
	"github.com/blockmix/blockmix/cmd/blockmix/internal/repo"
	"github.com/blockmix/blockmix/webui/apiv1"
)

// startPageDaemon runs `blockmix daemon args...` on w's repo with the
// extra environment env, for up to ten minutes, and waits for its API.
func startPageDaemon(t *testing.T, w *world, env []string, args ...string) apiv1.IDInfo {
	t.Helper()
	p := w.startWith(runOpts{env: env, life: 10 * time.Minute}, append([]string{"daemon"}, args...)...)
	deadline := time.Now().Add(30 * time.Second)
	for {
		if info, ok := daemonID(w); ok {
			return info
		}
		if p.exited() || time.Now().After(deadline) {
			t.Fatalf("daemon on %s did not come up:\n%s", w.repo, p.stderrNow())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// apiJSON GETs base+path and decodes its JSON answer into v.
func apiJSON(t *testing.T, base, path string, v any) {
	t.Helper()
	resp, err := http.Get(base + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", path, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
}

// filesNamed lists the files on base's node called name.
func filesNamed(t *testing.T, base, name string) []blocks.FileRecord {
	t.Helper()
	var fs []blocks.FileRecord
	apiJSON(t, base, "/api/v1/files", &fs)
	var out []blocks.FileRecord
	for _, f := range fs {
		if strings.EqualFold(f.Name, name) {
			out = append(out, f)
		}
	}
	return out
}

// loads counts the page loads of goTo.
var loads atomic.Int64

// goTo loads the page at base afresh (a new query string: never only a
// change of the hash, which keeps what the page showed) on tab.
func goTo(base, tab string) chromedp.Action[chromedp.Void] {
	return chromedp.Navigate(fmt.Sprintf("%s/?load=%d#%s", base, loads.Add(1), tab))
}

// screenshotView saves what the window shows (not the whole page) as
// NAME.png in $BLOCKMIX_SCREENSHOTS, if set: the README's pictures.
func screenshotView(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	dir := os.Getenv("BLOCKMIX_SCREENSHOTS")
	if dir == "" {
		return
	}
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
		t.Fatal(err)
	}
}

func evalJS[T any](t *testing.T, ctx context.Context, expr string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// shareOnPage shares path from the Share tab of the page at base and
// returns the recipe its card shows.
func shareOnPage(t *testing.T, ctx context.Context, base, path string) string {
	t.Helper()
	name := filepath.Base(path)
	do(t, ctx, "share "+name, goTo(base, "share"), chromedp.WaitVisible(chromedp.ID("file-input")),
		chromedp.SetUploadFiles(chromedp.CSS("#file-input"), []string{path}))
	return poll[string](t, ctx, "the recipe of "+name, `(() => {
		for (const li of document.querySelectorAll('#share-results .share-result.done')) {
			if (li.querySelector('.name').textContent === `+jsString(name)+`) return li.querySelector('.recipe-text').value;
		}
		return '';
	})()`, time.Minute)
}

// cardText is the text of the Share tab's card for name.
func cardText(name string) string {
	return `(() => { for (const li of document.querySelectorAll('#share-results .share-result.done')) {
		if (li.querySelector('.name').textContent === ` + jsString(name) + `) return li.textContent; } return ''; })()`
}

// TestWebPageControls walks through issue 18 on three daemons: A
// (replicas 1) and B (replicas 3, joined through A) share and get; D
// (replicas 2) starts alone, holds the put of held.bin before placement
// and the get of slow.bin before it starts (test hooks), so that both can
// be cancelled on the page.
func TestWebPageControls(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three daemons and a browser")
	}
	a, b, d, e := newWorld(t), newWorld(t), newWorld(t), newWorld(t)
	listen := []string{"--listen", "/ip4/127.0.0.1/tcp/0", "--api", "127.0.0.1:0"}
	ida := startPageDaemon(t, a, nil, append(listen, "--replicas", "1")...)
	idb := startPageDaemon(t, b, nil, append(listen, "--replicas", "3", "--bootstrap", ida.Addrs[0])...)
	startPageDaemon(t, d, []string{"BLOCKMIX_TEST_HOLD_PLACE=held.bin", "BLOCKMIX_TEST_HOLD_FETCH=slow.bin"}, append(listen, "--replicas", "2")...)
	waitRoutingTable(t, a, 1)
	urlA, urlB, urlD := a.apiBase(t), b.apiBase(t), d.apiBase(t)
	ctx := newBrowser(t)
	shots := os.Getenv("BLOCKMIX_SCREENSHOTS")
	do(t, ctx, "a desktop window", chromedp.EmulateViewport(1280, 900))

	holiday := a.file("holiday notes.bin", randBytes(181, 1<<20+300<<10))
	var rc string // the recipe of holiday notes.bin, shared on A
	var dataBlocks int

	t.Run("share card link on the node's own port, block counts without 'others' that are not there", func(t *testing.T) {
		rc = shareOnPage(t, ctx, urlA, holiday)
		href := evalJS[string](t, ctx, `document.querySelector('#share-results .recipe-link').href`)
		if !strings.HasPrefix(href, urlA+"/r/") {
			t.Fatalf("the Share card links to %q, not to this node (%s)", href, urlA)
		}
		words := poll[string](t, ctx, "the block counts", cardText("holiday notes.bin"), 10*time.Second)
		m := regexp.MustCompile(`The file is (\d+) data blocks`).FindStringSubmatch(words)
		if m == nil {
			t.Fatalf("the card does not count data blocks as a get does: %q", words)
		}
		dataBlocks, _ = strconv.Atoi(m[1])
		if strings.Contains(words, "already here") {
			t.Errorf("the first file on a fresh node says some blocks were already here: %q", words)
		}
		do(t, ctx, "follow the link", chromedp.Navigate(href))
		poll[bool](t, ctx, "the link's file on the Get tab", `document.querySelector('#recipe-info').textContent.includes('holiday notes.bin')`, 30*time.Second)
	})

	t.Run("UTF-8 text shows right", func(t *testing.T) {
		const text = "ÜÑÍÇØDÉ ünïcødé — 日本語のテキスト ✓"
		notes := a.file("notes.txt", []byte(text+"\n"))
		recipeText := shareOnPage(t, ctx, urlA, notes)
		plain := a.okLine("--no-progress", "put", "--type", "text/plain", a.file("plain.txt", []byte(text+"\n")))
		for what, r := range map[string]string{"shared from the page": recipeText, "put as text/plain with no charset": plain} {
			do(t, ctx, "open "+what, chromedp.Navigate(urlA+"/api/v1/get?recipe="+url.QueryEscape(r)))
			got := evalJS[string](t, ctx, `document.body.innerText`)
			if strings.TrimSpace(got) != text {
				t.Errorf("text %s shows %q, want %q", what, got, text)
			}
		}
	})

	t.Run("Reliability counts answered pushes; one row per peer", func(t *testing.T) {
		do(t, ctx, "A's Node tab", goTo(urlA, "node"))
		rel := poll[string](t, ctx, "B's row", `(() => { const c = document.querySelector('#peers-table code[title=`+jsString(idb.ID)+`]');
			return c ? c.closest('tr').children[3].textContent : ''; })()`, 30*time.Second)
		if v, err := strconv.Atoi(strings.TrimSuffix(rel, "%")); err != nil || v <= 50 {
			t.Errorf("B took every block A pushed, and shows %q reliable (a peer never used shows 50%%)", rel)
		}
		ids := evalJS[[]string](t, ctx, `Array.from(document.querySelectorAll('#peers-table tbody code')).map((c) => c.title)`)
		seen := map[string]bool{}
		for _, id := range ids {
			if seen[id] {
				t.Errorf("peer %s has more than one row: %v", id, ids)
			}
			seen[id] = true
		}
	})

	t.Run("Get counts the blocks Share counted; health says how many copies and whether the file is safe", func(t *testing.T) {
		if rc == "" {
			t.Skip("needs the share above")
		}
		do(t, ctx, "paste on B", goTo(urlB, "get"), chromedp.SendKeys(chromedp.ID("recipe-input"), rc))
		poll[bool](t, ctx, "the data blocks in the recipe's line", `document.querySelector('#recipe-info').textContent.includes('`+strconv.Itoa(dataBlocks)+` data blocks')`, 30*time.Second)
		do(t, ctx, "get", chromedp.Click(chromedp.ID("get-button")))
		poll[bool](t, ctx, "the Save link", visible("#save-link"), 2*time.Minute)
		var ts []apiv1.TransferInfo
		apiJSON(t, urlB, "/api/v1/transfers", &ts)
		if len(ts) == 0 || ts[0].Blocks != int64(dataBlocks) {
			t.Errorf("the Share card counted %d data blocks, the get %+v", dataBlocks, ts)
		}
		do(t, ctx, "B's files", goTo(urlB, "files"))
		poll[bool](t, ctx, "the file's row", `!!document.querySelector('#files-table tr[data-key] .check')`, 30*time.Second)
		do(t, ctx, "check", chromedp.Click(chromedp.CSS(`#files-table tr[data-key] .check`)))
		why := poll[string](t, ctx, "the health details", `(() => { const d = document.querySelector('#files-table .why'); return d && !d.hidden ? d.textContent : ''; })()`, time.Minute)
		// B and A hold it: 2 copies of 3 wanted.
		if !strings.Contains(why, "2 copies each") || !strings.Contains(why, "the file can be got now and survives 1 node going away") {
			t.Errorf("the health details say %q", why)
		}
		if !strings.Contains(why, "this node") || !strings.Contains(why, ida.ID[len(ida.ID)-6:]) {
			t.Errorf("the health details do not name the nodes that hold the copies (this node and A): %q", why)
		}
		if strings.Contains(why, "blockmix ") {
			t.Errorf("the page's health details name a command: %q", why)
		}
		if !evalJS[bool](t, ctx, visible("#files-table .repair")) {
			t.Error("a file at risk offers no Repair button")
		}
	})

	t.Run("plurals for one", func(t *testing.T) {
		shareOnPage(t, ctx, urlB, b.file("b-own.bin", randBytes(182, 200<<10)))
		placement := poll[string](t, ctx, "the placement", `(document.querySelector('#share-results .placement') || {}).textContent || ''`, 10*time.Second)
		if !strings.Contains(placement, "(the network has only 1 other node)") {
			t.Errorf("placement on a network of one other node says %q", placement)
		}
		lost := e.okLine("--no-progress", "put", e.file("nowhere.bin", randBytes(183, 5000)))
		do(t, ctx, "get a file nobody has", goTo(urlB, "get"), chromedp.SendKeys(chromedp.ID("recipe-input"), lost), chromedp.Click(chromedp.ID("get-button")))
		msg := poll[string](t, ctx, "the error", `(() => { const e = document.querySelector('#get-error'); return e && !e.hidden ? e.textContent : ''; })()`, 2*time.Minute)
		if !strings.Contains(msg, "at the 1 peer asked") {
			t.Errorf("the error of a block found nowhere among 1 peer: %q", msg)
		}
	})

	t.Run("advice gives buttons, not command lines", func(t *testing.T) {
		do(t, ctx, "B's Node tab", goTo(urlB, "node"))
		v := poll[string](t, ctx, "the verdict", `(() => { const v = document.querySelector('#node-verdict').textContent; return v.startsWith('few peers') ? v : ''; })()`, 30*time.Second)
		if strings.Contains(v, "--bootstrap") || strings.Contains(v, "blockmix ") {
			t.Errorf("the verdict names a command line: %q", v)
		}
		if !strings.Contains(v, "connected to 1 peer;") {
			t.Errorf("the verdict: %q", v)
		}
		do(t, ctx, "the verdict's button", chromedp.Click(chromedp.CSS(`#node-actions [data-action="add-peer"]`)))
		poll[bool](t, ctx, "the address field focused", `document.activeElement === document.querySelector('#peer-addr')`, 5*time.Second)
	})

	t.Run("a donor's overhead counts its own files only", func(t *testing.T) {
		a.ok("--no-progress", "put", a.file("for-others.bin", randBytes(184, 4<<20)))
		do(t, ctx, "B's Node tab", goTo(urlB, "node"))
		over := poll[string](t, ctx, "the overhead", `(() => { for (const dt of document.querySelectorAll('#node-store dt')) if (dt.textContent === 'Overhead') return dt.nextElementSibling.textContent; return ''; })()`, 30*time.Second)
		shown, err := strconv.ParseFloat(strings.TrimSpace(strings.SplitN(over, "×", 2)[0]), 64)
		if err != nil {
			t.Fatalf("the overhead shows %q", over)
		}
		var st apiv1.StatusInfo
		apiJSON(t, urlB, "/api/v1/status", &st)
		own := float64(st.Store.FilesBlockBytes) / float64(st.Store.FileBytes)
		all := float64(st.Store.Bytes) / float64(st.Store.FileBytes)
		if all < own+1 {
			t.Fatalf("B should hold many blocks for A: %+v", st.Store)
		}
		// The blocks held for others are not B's overhead: the page shows
		// B's files' blocks per file byte (to 2 decimals), not all of them.
		if shown < own-0.01 || shown > own+0.01 {
			t.Errorf("B's files' blocks are %.2f× their bytes (all blocks %.2f×), the page shows %q", own, all, over)
		}
		if !evalJS[bool](t, ctx, `document.querySelector('#node-store').textContent.includes('Held for others')`) {
			t.Error("the blocks held for others are not shown apart")
		}
	})

	t.Run("the same file shared twice keeps one recipe and one row", func(t *testing.T) {
		if rc == "" {
			t.Skip("needs the share above")
		}
		again := shareOnPage(t, ctx, urlA, holiday)
		if again != rc {
			t.Errorf("the same file shared again got a new recipe:\n%s\n%s", again, rc)
		}
		if words := evalJS[string](t, ctx, cardText("holiday notes.bin")); !strings.Contains(words, "You shared this file before") {
			t.Errorf("sharing again says nothing of it: %q", words)
		}
		if n := evalJS[int](t, ctx, `Array.from(document.querySelectorAll('#share-results .share-result.done .name')).filter((e) => e.textContent === 'holiday notes.bin').length`); n != 1 {
			t.Errorf("%d cards for one file", n)
		}
		if fs := filesNamed(t, urlA, "holiday notes.bin"); len(fs) != 1 {
			t.Errorf("My files of A has %d rows for one file", len(fs))
		}
	})

	t.Run("a recipe in capitals does not rename the file; Recent gets has one row per file", func(t *testing.T) {
		if rc == "" {
			t.Skip("needs the share above")
		}
		do(t, ctx, "paste it in capitals", goTo(urlB, "get"), chromedp.SendKeys(chromedp.ID("recipe-input"), strings.ToUpper(rc)),
			chromedp.Click(chromedp.ID("get-button")))
		poll[bool](t, ctx, "the Save link", visible("#save-link"), time.Minute)
		fs := filesNamed(t, urlB, "holiday notes.bin")
		if len(fs) != 1 || fs[0].Name != "holiday notes.bin" {
			t.Errorf("B's files after a get in capitals: %+v", fs)
		}
		key := fs[0].Key
		n := poll[int](t, ctx, "the recent gets", `document.querySelectorAll('#transfers-list li[data-key=`+jsString(key)+`]').length`, 10*time.Second)
		if n != 1 {
			t.Errorf("%d rows in Recent gets for one file got twice", n)
		}
	})

	t.Run("several recipes pasted at once get several files", func(t *testing.T) {
		one := a.okLine("--no-progress", "put", a.file("one.bin", randBytes(185, 150<<10)))
		two := a.okLine("--no-progress", "put", a.file("two.bin", randBytes(186, 170<<10)))
		do(t, ctx, "paste two", goTo(urlB, "get"), chromedp.SendKeys(chromedp.ID("recipe-input"), "first: "+one+"\nsecond: "+two+"\n"))
		poll[bool](t, ctx, "both named", `document.querySelector('#recipe-info').textContent.includes('one.bin') && document.querySelector('#recipe-info').textContent.includes('two.bin')`, 30*time.Second)
		do(t, ctx, "get both", chromedp.Click(chromedp.ID("get-button")))
		poll[bool](t, ctx, "both done", `(() => { const done = Array.from(document.querySelectorAll('#transfers-list li.state-done .name')).map((e) => e.textContent);
			return done.includes('one.bin') && done.includes('two.bin'); })()`, 2*time.Minute)
		if len(filesNamed(t, urlB, "one.bin")) != 1 || len(filesNamed(t, urlB, "two.bin")) != 1 {
			t.Error("B did not keep both files")
		}
	})

	t.Run("transfers and results are kept by the node across a reload", func(t *testing.T) {
		do(t, ctx, "reload B", goTo(urlB, "get"))
		poll[bool](t, ctx, "the recent gets after a reload", `document.querySelector('#transfers-list').textContent.includes('holiday notes.bin')`, 30*time.Second)
		do(t, ctx, "reload A's Share tab", goTo(urlA, "share"))
		got := poll[string](t, ctx, "the files shared before", `(() => { for (const li of document.querySelectorAll('#shared-list .share-result')) {
			if (li.querySelector('.name').textContent === 'holiday notes.bin') return li.querySelector('.recipe-text').value; } return ''; })()`, 30*time.Second)
		if got != rc {
			t.Errorf("after a reload the Share tab shows %q for holiday notes.bin, shared as %q", got, rc)
		}
	})

	t.Run("a QR code of the link", func(t *testing.T) {
		do(t, ctx, "A's Share tab", goTo(urlA, "share"))
		sel := `#shared-list .share-result`
		poll[bool](t, ctx, "a card", `!!document.querySelector('`+sel+` .qr-button')`, 30*time.Second)
		link := evalJS[string](t, ctx, `document.querySelector('`+sel+` .recipe-link').href`)
		do(t, ctx, "show the QR code", chromedp.Click(chromedp.CSS(sel+` .qr-button`)))
		poll[bool](t, ctx, "the QR image", `(() => { const i = document.querySelector('`+sel+` img.qr'); return !!i && i.complete && i.naturalWidth > 0; })()`, 30*time.Second)
		data := evalJS[string](t, ctx, `(() => { const i = document.querySelector('`+sel+` img.qr'); const c = document.createElement('canvas');
			c.width = c.height = 400; const g = c.getContext('2d'); g.drawImage(i, 0, 0, 400, 400); return c.toDataURL('image/png'); })()`)
		raw, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(data, "data:image/png;base64,"))
		if err != nil {
			t.Fatal(err)
		}
		img, err := png.Decode(bytes.NewReader(raw))
		if err != nil {
			t.Fatal(err)
		}
		got, err := qr.Decode(img)
		if err != nil || got != link {
			t.Errorf("the QR code reads %q (%v), want the link %q", got, err, link)
		}
	})

	t.Run("share with a passphrase", func(t *testing.T) {
		secret := a.file("secret plans.txt", []byte("meet at noon\n"))
		do(t, ctx, "type a passphrase", goTo(urlA, "share"), chromedp.SendKeys(chromedp.ID("share-passphrase"), "open sesame"))
		do(t, ctx, "share", chromedp.SetUploadFiles(chromedp.CSS("#file-input"), []string{secret}))
		sealed := poll[string](t, ctx, "the sealed recipe", `(() => { for (const li of document.querySelectorAll('#share-results .share-result.done'))
			if (li.querySelector('.name').textContent === 'secret plans.txt') return li.querySelector('.recipe-text').value; return ''; })()`, time.Minute)
		if !strings.HasPrefix(sealed, "blockmix:sealed:") {
			t.Fatalf("a share with a passphrase gave %q", sealed)
		}
		do(t, ctx, "paste it on B", goTo(urlB, "get"), chromedp.SendKeys(chromedp.ID("recipe-input"), sealed))
		poll[bool](t, ctx, "the passphrase field", visible("#passphrase-input"), 30*time.Second)
		do(t, ctx, "open it", chromedp.SendKeys(chromedp.ID("passphrase-input"), "open sesame"), chromedp.Click(chromedp.ID("unlock-button")))
		poll[bool](t, ctx, "the unsealed name", `document.querySelector('#recipe-info').textContent.includes('secret plans.txt')`, 30*time.Second)
	})

	t.Run("My files at 1280 px: whole words, compact health, named Copy buttons, sort, search, Check all", func(t *testing.T) {
		// On B, which wants 3 copies and has 1 other node: every file is
		// at risk, the longest verdict.
		for i, name := range []string{"diagram.png", "quarterly-report-final-version-2.pdf", "holiday-photos-2026.zip", "screenshot_20261202_0915.png"} {
			b.ok("--no-progress", "put", b.file(name, randBytes(uint64(187+i), 20<<10)))
		}
		do(t, ctx, "B's files at 1280 px", chromedp.EmulateViewport(1280, 900), goTo(urlB, "files"))
		poll[bool](t, ctx, "the rows", `document.querySelectorAll('#files-table tbody tr .check').length >= 4`, 30*time.Second)
		do(t, ctx, "check each", chromedp.Evaluate[chromedp.Void](`document.querySelectorAll('#files-table .check').forEach((b) => b.click())`))
		poll[bool](t, ctx, "every row checked", `Array.from(document.querySelectorAll('#files-table .verdict-text')).every((v) => v.textContent.includes(':'))`, 2*time.Minute)
		// A name wraps only between words (after a space, a hyphen or an
		// underscore).
		broken := evalJS[[]string](t, ctx, `Array.from(document.querySelectorAll('#files-table td.name')).flatMap((td) => {
			const w = document.createTreeWalker(td, NodeFilter.SHOW_TEXT), chars = [], r = document.createRange(), out = [];
			for (let n = w.nextNode(); n; n = w.nextNode()) for (let i = 0; i < n.textContent.length; i++) chars.push([n, i]);
			const text = td.textContent;
			let top = null;
			chars.forEach(([n, i], k) => {
				r.setStart(n, i); r.setEnd(n, i + 1);
				const rect = r.getClientRects()[0];
				if (!rect) return;
				if (top !== null && rect.top > top + 2 && !' -_'.includes(text[k - 1])) out.push(text.slice(0, k) + '|' + text.slice(k));
				top = rect.top;
			});
			return out;
		})`)
		if len(broken) > 0 {
			t.Errorf("names broken inside a word at 1280 px: %q", broken)
		}
		if over := evalJS[float64](t, ctx, `(() => { const m = document.querySelector('main');
			return document.querySelector('#files-table').getBoundingClientRect().right - (m.getBoundingClientRect().right - parseFloat(getComputedStyle(m).paddingRight)); })()`); over > 1 {
			t.Errorf("the files table sticks out of the page by %.0f px at 1280 px", over)
		}
		tall := evalJS[[]string](t, ctx, `Array.from(document.querySelectorAll('#files-table .verdict-text')).filter((v) =>
			v.getBoundingClientRect().height > 3.2 * parseFloat(getComputedStyle(v).lineHeight)).map((v) => v.textContent)`)
		if len(tall) > 0 {
			t.Errorf("health texts taller than 3 lines at 1280 px: %q", tall)
		}
		names := evalJS[[]string](t, ctx, `Array.from(document.querySelectorAll('#files-table button.copy')).map((b) => b.getAttribute('aria-label') || b.textContent)`)
		seen := map[string]bool{}
		for _, n := range names {
			if seen[n] {
				t.Errorf("two Copy buttons are both called %q", n)
			}
			seen[n] = true
		}
		screenshotView(t, ctx, "files-1280")
		do(t, ctx, "reload and Check all", goTo(urlB, "files"))
		poll[bool](t, ctx, "the rows", `document.querySelectorAll('#files-table tbody tr .check').length >= 4`, 30*time.Second)
		do(t, ctx, "Check all", chromedp.Click(chromedp.ID("files-check-all")))
		poll[bool](t, ctx, "every row checked", `Array.from(document.querySelectorAll('#files-table .verdict-text')).every((v) => v.textContent.startsWith('at risk:'))`, 2*time.Minute)
		do(t, ctx, "sort by name", chromedp.SetValue(chromedp.ID("files-sort"), "name"),
			chromedp.Evaluate[chromedp.Void](`document.querySelector('#files-sort').dispatchEvent(new Event('change'))`))
		order := evalJS[[]string](t, ctx, `Array.from(document.querySelectorAll('#files-table td.name')).map((td) => td.textContent)`)
		for i := 1; i < len(order); i++ {
			if strings.ToLower(order[i-1]) > strings.ToLower(order[i]) {
				t.Errorf("sorted by name: %q", order)
				break
			}
		}
		do(t, ctx, "search", chromedp.SendKeys(chromedp.ID("files-search"), "DIAG"))
		shown := poll[[]string](t, ctx, "one row", `(() => { const r = Array.from(document.querySelectorAll('#files-table td.name')).map((td) => td.textContent); return r.length === 1 ? r : null; })()`, 10*time.Second)
		if shown[0] != "diagram.png" {
			t.Errorf("searching DIAG shows %q", shown)
		}
	})

	t.Run("cancel after the upload keeps nothing", func(t *testing.T) {
		held := d.file("held.bin", randBytes(189, 300<<10))
		do(t, ctx, "share on D", goTo(urlD, "share"), chromedp.SetUploadFiles(chromedp.CSS("#file-input"), []string{held}))
		poll[bool](t, ctx, "placing", `document.querySelector('#share-results .status').textContent.startsWith('placing')`, time.Minute)
		// The page says "placing" once the browser has sent the body; the
		// node records the file when it has mixed the last of it, and
		// then holds in placement (testhook.HoldPlacement).
		waitFor(t, "the put being placed recorded on D's list", 30*time.Second, func() bool {
			return len(filesNamed(t, urlD, "held.bin")) == 1
		})
		do(t, ctx, "cancel", chromedp.Click(chromedp.CSS(`#share-results .share-result button`)))
		poll[bool](t, ctx, "cancelled", `document.querySelector('#share-results .status').textContent.startsWith('cancelled')`, 10*time.Second)
		// The file goes, and so do its blocks (a few bytes of mixing
		// pads may stay cached).
		waitFor(t, "held.bin off D's list and its blocks gone", 30*time.Second, func() bool {
			var st blocks.Stats
			apiJSON(t, urlD, "/api/v1/stat", &st)
			return len(filesNamed(t, urlD, "held.bin")) == 0 && st.Bytes < 300<<10/10
		})
	})

	t.Run("cancel a get; Get is off while it runs", func(t *testing.T) {
		slow := a.okLine("--no-progress", "put", a.file("slow.bin", randBytes(190, 100<<10)))
		do(t, ctx, "get on D", goTo(urlD, "get"), chromedp.SendKeys(chromedp.ID("recipe-input"), slow), chromedp.Click(chromedp.ID("get-button")))
		poll[bool](t, ctx, "the Cancel button", visible("#cancel-get"), 30*time.Second)
		if !evalJS[bool](t, ctx, `document.querySelector('#get-button').disabled`) {
			t.Error("Get can be pressed again while its file comes")
		}
		poll[bool](t, ctx, "the running row", `!!document.querySelector('#transfers-list li.state-running .cancel')`, 10*time.Second)
		do(t, ctx, "cancel", chromedp.Click(chromedp.ID("cancel-get")))
		poll[bool](t, ctx, "cancelled", `document.querySelector('#get-status').textContent.startsWith('Cancelled')`, 30*time.Second)
		poll[bool](t, ctx, "the row cancelled", `!!document.querySelector('#transfers-list li.state-cancelled')`, 10*time.Second)
		if evalJS[bool](t, ctx, `document.querySelector('#get-button').disabled`) {
			t.Error("Get stays off after the cancel")
		}
	})

	t.Run("add a peer from the Node tab; Repair a file at risk", func(t *testing.T) {
		shareOnPage(t, ctx, urlD, d.file("lonely.bin", randBytes(191, 150<<10)))
		do(t, ctx, "D's files", goTo(urlD, "files"))
		poll[bool](t, ctx, "the row", `!!document.querySelector('#files-table .check')`, 30*time.Second)
		do(t, ctx, "check", chromedp.Click(chromedp.CSS(`#files-table .check`)))
		poll[bool](t, ctx, "at risk", `document.querySelector('#files-table .verdict-text').textContent.startsWith('at risk')`, time.Minute)

		do(t, ctx, "D's Node tab", goTo(urlD, "node"))
		poll[bool](t, ctx, "alone", `document.querySelector('#node-verdict').textContent.startsWith('alone')`, 30*time.Second)
		do(t, ctx, "add A", chromedp.SendKeys(chromedp.ID("peer-addr"), ida.Addrs[0]), chromedp.Click(chromedp.CSS(`#peer-add-form button`)))
		poll[bool](t, ctx, "connected", `document.querySelector('#peer-add-message').textContent.startsWith('Connected')`, time.Minute)
		poll[bool](t, ctx, "A in the peers", `!!document.querySelector('#peers-table code[title=`+jsString(ida.ID)+`]')`, 30*time.Second)
		var f struct {
			Bootstrap []string `json:"bootstrap"`
		}
		if b, err := os.ReadFile(filepath.Join(d.repo, repo.ConfigFile)); err != nil || json.Unmarshal(b, &f) != nil || len(f.Bootstrap) != 1 || f.Bootstrap[0] != ida.Addrs[0] {
			t.Errorf("config.json after adding a peer to remember: %s %v", b, err)
		}
		waitRoutingTable(t, d, 1)
		do(t, ctx, "D's files", goTo(urlD, "files"))
		poll[bool](t, ctx, "the row", `!!document.querySelector('#files-table .check')`, 30*time.Second)
		do(t, ctx, "check", chromedp.Click(chromedp.CSS(`#files-table .check`)))
		poll[bool](t, ctx, "the Repair button", visible("#files-table .repair"), time.Minute)
		do(t, ctx, "repair", chromedp.Click(chromedp.CSS(`#files-table .repair`)))
		poll[bool](t, ctx, "healthy", `document.querySelector('#files-table .verdict-text').textContent.startsWith('healthy')`, 2*time.Minute)
	})

	t.Run("settings saved to config.json", func(t *testing.T) {
		do(t, ctx, "D's settings", goTo(urlD, "node"))
		poll[bool](t, ctx, "the form filled in", `!!document.querySelector('#settings-form[data-loaded]') && document.querySelector('#set-replicas').value === '2'`, 30*time.Second)
		do(t, ctx, "a bad cache size", chromedp.SetValue(chromedp.ID("set-cache"), "lots"), chromedp.Click(chromedp.CSS(`#settings-form button[type=submit]`)))
		poll[bool](t, ctx, "refused", `document.querySelector('#settings-message').textContent.startsWith('Not saved')`, 10*time.Second)
		before, _ := os.ReadFile(filepath.Join(d.repo, repo.ConfigFile))
		if strings.Contains(string(before), "lots") {
			t.Fatalf("a refused setting was written: %s", before)
		}
		do(t, ctx, "good ones", chromedp.SetValue(chromedp.ID("set-cache"), "5GiB"), chromedp.SetValue(chromedp.ID("set-replicas"), "3"),
			chromedp.Click(chromedp.CSS(`#settings-form button[type=submit]`)))
		msg := poll[string](t, ctx, "saved", `(() => { const m = document.querySelector('#settings-message').textContent; return m.startsWith('Saved') ? m : ''; })()`, 10*time.Second)
		if !strings.Contains(msg, "Applied now: cache") || !strings.Contains(msg, "next starts: replicas") {
			t.Errorf("the settings message: %q", msg)
		}
		var f struct {
			Replicas  int      `json:"replicas"`
			Cache     string   `json:"cache"`
			Bootstrap []string `json:"bootstrap"`
		}
		b, err := os.ReadFile(filepath.Join(d.repo, repo.ConfigFile))
		if err != nil || json.Unmarshal(b, &f) != nil || f.Replicas != 3 || f.Cache != "5GiB" || len(f.Bootstrap) != 1 {
			t.Errorf("config.json after saving: %s %v", b, err)
		}
	})

	if shots != "" {
		t.Run("screenshots at 360 px", func(t *testing.T) {
			do(t, ctx, "a phone", chromedp.EmulateViewport(360, 800, chromedp.EmulateMobile))
			for _, p := range []struct{ name, base, tab, ready string }{
				{"get-360", urlB, "get", `document.querySelectorAll('#transfers-list li').length > 0`},
				{"share-360", urlA, "share", `document.querySelectorAll('#shared-list .share-result').length > 0`},
				{"files-360", urlB, "files", `document.querySelectorAll('#files-table tbody tr').length > 0`},
				{"node-360", urlB, "node", `document.querySelectorAll('#peers-table tbody tr').length > 0 && !!document.querySelector('#settings-form[data-loaded]')`},
			} {
				do(t, ctx, p.name, goTo(p.base, p.tab))
				poll[bool](t, ctx, "the page's data for "+p.name, p.ready, 30*time.Second)
				screenshotView(t, ctx, p.name)
			}
			do(t, ctx, "back to a desktop", chromedp.EmulateViewport(1280, 900))
			for _, p := range []struct{ name, base, tab, ready string }{
				{"share-1280", urlA, "share", `document.querySelectorAll('#shared-list .share-result').length > 0`},
				{"node-1280", urlB, "node", `document.querySelectorAll('#peers-table tbody tr').length > 0 && !!document.querySelector('#settings-form[data-loaded]')`},
			} {
				do(t, ctx, p.name, goTo(p.base, p.tab))
				poll[bool](t, ctx, "the page's data for "+p.name, p.ready, 30*time.Second)
				screenshotView(t, ctx, p.name)
			}
		})
	}
}
