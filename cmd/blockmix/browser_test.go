package main

// The web page end to end: real daemons on 127.0.0.1 and Debian's
// Chromium, headless, driven by chromedp. BLOCKMIX_CHROMIUM names the
// browser; BLOCKMIX_SCREENSHOTS=DIR also saves a picture of each tab there
// (the README's).

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/chromedp"

	"github.com/blockmix/blockmix/cmd/blockmix/internal/repo"
	"github.com/blockmix/blockmix/webui/apiv1"
)

// chromium returns the browser's path; the test fails when there is none,
// since the web page is only tested for real.
func chromium(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("BLOCKMIX_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatal("no Chromium found: the web page's tests drive it (Debian: apt-get install chromium; or set BLOCKMIX_CHROMIUM)")
	return ""
}

// newBrowser starts a headless Chromium with its own profile and home
// under the test's temporary directory; the test's cleanup stops it.
func newBrowser(t testing.TB) context.Context {
	t.Helper()
	dir := t.TempDir()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium(t)),
		chromedp.UserDataDir(filepath.Join(dir, "profile")),
		chromedp.Env("HOME="+dir, "XDG_CONFIG_HOME="+filepath.Join(dir, "config"), "XDG_CACHE_HOME="+filepath.Join(dir, "cache")),
		chromedp.NoSandbox, // the tests may run as root
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("autoplay-policy", "no-user-gesture-required"),
		chromedp.WindowSize(1100, 900),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(actx)
	ctx, cancelTime := context.WithTimeout(ctx, 4*time.Minute)
	t.Cleanup(func() { cancelTime(); cancelCtx(); cancelAlloc() })
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start %s: %v", chromium(t), err)
	}
	return ctx
}

// poll waits (at most d) until the JavaScript expression is truthy and
// returns its value.
func poll[T any](t testing.TB, ctx context.Context, what, expr string, d time.Duration) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Poll[T](expr, chromedp.WithPollingTimeout(d), chromedp.WithPollingInterval(50*time.Millisecond)))
	if err != nil {
		msg, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body.innerText`))
		t.Fatalf("waiting for %s: %v\nthe page says:\n%s", what, err, msg)
	}
	return v
}

// do runs steps, failing the test when they do not finish within a
// minute (a click on an element the page lacks waits until then).
func do(t testing.TB, ctx context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// screenshot saves the page as NAME.png in $BLOCKMIX_SCREENSHOTS, if set.
func screenshot(t testing.TB, ctx context.Context, name string) {
	t.Helper()
	dir := os.Getenv("BLOCKMIX_SCREENSHOTS")
	if dir == "" {
		return
	}
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
		t.Fatal(err)
	}
}

// visible is a JavaScript test that an element is shown.
func visible(sel string) string {
	return `(() => { const e = document.querySelector(` + jsString(sel) + `); return !!e && e.offsetParent !== null })()`
}

func jsString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch r {
		case '"', '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case '\n':
			b.WriteString(`\n`)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// download clicks sel on a page whose downloads go to dir and returns the
// downloaded file's bytes.
func download(t testing.TB, ctx context.Context, sel, dir string) []byte {
	t.Helper()
	progress := chromedp.Events(ctx, browser.DownloadProgress)
	do(t, ctx, "click "+sel,
		chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
			_, err := chromedp.Call(ctx, browser.SetDownloadBehavior, browser.SetDownloadBehaviorParams{
				Behavior: browser.SetDownloadBehaviorBehaviorAllowAndName, DownloadPath: dir, EventsEnabled: ptrTo(true),
			})
			return err
		}),
		chromedp.Click(chromedp.CSS(sel)),
	)
	for ev, err := range progress {
		if err != nil {
			t.Fatalf("download: %v", err)
		}
		switch ev.State {
		case browser.DownloadProgressStateCanceled:
			t.Fatal("the download was cancelled")
		case browser.DownloadProgressStateCompleted:
			b, err := os.ReadFile(filepath.Join(dir, ev.GUID))
			if err != nil {
				t.Fatal(err)
			}
			return b
		}
	}
	t.Fatal("no download")
	return nil
}

func ptrTo[T any](v T) *T { return &v }

// TestWebPage: share a file on node A's page; on node B (which held none
// of it) paste the recipe, fetch and save it, byte for byte; open a recipe
// link directly; play a video and seek in it; see a damaged recipe
// explained.
func TestWebPage(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three daemons and a browser")
	}
	a, c, b := newWorld(t), newWorld(t), newWorld(t)
	_, ida := startDaemonWith(t, a, "--listen", "/ip4/127.0.0.1/tcp/0", "--api", "127.0.0.1:0", "--replicas", "1")
	startDaemonWith(t, c, "--listen", "/ip4/127.0.0.1/tcp/0", "--api", "127.0.0.1:0", "--bootstrap", ida.Addrs[0])
	waitRoutingTable(t, a, 1)
	data := randBytes(77, 3<<20+777)
	path := a.file("holiday notes.bin", data)

	ctx := newBrowser(t)
	urlA := a.apiBase(t)
	do(t, ctx, "open A's page", chromedp.Navigate(urlA+"/"), chromedp.Click(chromedp.ID("tab-share")),
		chromedp.SetUploadFiles(chromedp.CSS("#file-input"), []string{path}))
	rc := poll[string](t, ctx, "the recipe on the Share page",
		`(document.querySelector('#share-results .share-result .recipe-text') || {}).value || ''`, time.Minute)
	if !strings.HasPrefix(rc, "blockmix:") || !strings.HasSuffix(rc, "/holiday%20notes.bin") {
		t.Fatalf("the Share page shows %q", rc)
	}
	placement := poll[string](t, ctx, "the placement result", `(document.querySelector('#share-results .placement') || {}).textContent || ''`, time.Minute)
	if !strings.Contains(placement, "1 copy on 1 node") {
		t.Errorf("placement says %q, want \"1 copy on 1 node\"", placement)
	}

	// B joins after the put: every block comes from the network.
	startDaemonWith(t, b, "--listen", "/ip4/127.0.0.1/tcp/0", "--api", "127.0.0.1:0", "--bootstrap", ida.Addrs[0])
	urlB := b.apiBase(t)
	do(t, ctx, "paste on B's Get page", chromedp.Navigate(urlB+"/"), chromedp.Click(chromedp.ID("tab-get")),
		chromedp.SendKeys(chromedp.ID("recipe-input"), "Here it is:\n"+rc+"\n-- A"))
	poll[bool](t, ctx, "the file's name from the recipe", `document.querySelector('#recipe-info').textContent.includes('holiday notes.bin')`, 30*time.Second)
	do(t, ctx, "get", chromedp.Click(chromedp.ID("get-button")))
	poll[bool](t, ctx, "the Save link", visible("#save-link"), 2*time.Minute)
	screenshot(t, ctx, "get")
	got := download(t, ctx, "#save-link", t.TempDir())
	if sha256.Sum256(got) != sha256.Sum256(data) {
		t.Fatalf("the saved file differs: %d bytes, want %d", len(got), len(data))
	}

	// A recipe link opened directly starts at once: a video, played and
	// sought in before it is all here.
	clip, err := os.ReadFile(filepath.Join("..", "..", "testdata", "video", "clip.webm"))
	if err != nil {
		t.Fatal(err)
	}
	var video apiv1.PutInfo
	if err := json.Unmarshal(a.ok("--no-progress", "put", "--json", "--type", "video/webm", a.file("clip.webm", clip)), &video); err != nil {
		t.Fatal(err)
	}
	link := urlB + video.URL[strings.Index(video.URL, "/r/"):]
	filesBefore := b.stat().Files
	do(t, ctx, "open the link", chromedp.Navigate(link))
	// The link says what it is and waits for a click: nothing is fetched
	// before (any web site can send a browser to such a link).
	poll[bool](t, ctx, "the link's name and size", `document.querySelector('#recipe-info') && document.querySelector('#recipe-info').textContent.includes('clip.webm')`, time.Minute)
	if s := b.stat(); s.Files != filesBefore {
		t.Fatalf("opening a /r/ link put a file on node B's list before any click: %d files, %d before", s.Files, filesBefore)
	}
	var transfers []apiv1.TransferInfo
	if resp, err := http.Get(urlB + "/api/v1/transfers"); err != nil {
		t.Fatal(err)
	} else {
		err = json.NewDecoder(resp.Body).Decode(&transfers)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, tr := range transfers {
		if tr.Name == "clip.webm" {
			t.Fatalf("opening a /r/ link started a transfer before any click: %+v", tr)
		}
	}
	do(t, ctx, "press Get", chromedp.Click(chromedp.ID("get-button")))
	poll[bool](t, ctx, "the video", `!!document.querySelector('#player video') || `+visible("#open-button"), time.Minute)
	if ok, _ := chromedp.Run(ctx, chromedp.Evaluate[bool](`!!document.querySelector('#player video')`)); !ok {
		do(t, ctx, "open", chromedp.Click(chromedp.ID("open-button")))
	}
	pos, err := chromedp.Run(ctx, chromedp.Evaluate[float64](`new Promise((resolve, reject) => {
		const v = document.querySelector('#player video');
		if (!v) { reject('no <video> in #player'); return; }
		setTimeout(() => reject('no seek within 30 s; readyState ' + v.readyState), 30000);
		v.addEventListener('error', () => reject('video error ' + (v.error && v.error.code)));
		const seek = () => { v.addEventListener('seeked', () => v.play().then(() => setTimeout(() => resolve(v.currentTime), 700), reject), {once: true}); v.currentTime = 3.5; };
		if (v.readyState >= 1) seek(); else v.addEventListener('loadedmetadata', seek, {once: true});
	})`, chromedp.EvalAwaitPromise))
	if err != nil || pos < 3.5 || pos > 6 {
		t.Fatalf("play and seek: at %.2f s, %v", pos, err)
	}
	screenshot(t, ctx, "video")

	// A sealed recipe: the page asks for the passphrase, a wrong one is
	// refused, the right one opens it, and the file comes.
	secret := randBytes(78, 200<<10)
	passFile := a.file("pass.txt", []byte("correct horse battery\n"))
	sealed := a.okLine("--no-progress", "put", "--passphrase-file", passFile, a.file("secret.bin", secret))
	if !strings.HasPrefix(sealed, "blockmix:sealed:") {
		t.Fatalf("put --passphrase-file printed %q", sealed)
	}
	do(t, ctx, "paste a sealed recipe", chromedp.Navigate(urlB+"/"), chromedp.Click(chromedp.ID("tab-get")),
		chromedp.SendKeys(chromedp.ID("recipe-input"), sealed))
	poll[bool](t, ctx, "the passphrase field", visible("#passphrase-input"), 30*time.Second)
	do(t, ctx, "a wrong passphrase", chromedp.SendKeys(chromedp.ID("passphrase-input"), "wrong"), chromedp.Click(chromedp.ID("unlock-button")))
	poll[bool](t, ctx, "the wrong-passphrase message", `document.querySelector('#get-error').textContent.includes('Wrong passphrase')`, 30*time.Second)
	do(t, ctx, "the right passphrase", chromedp.SetValue(chromedp.ID("passphrase-input"), "correct horse battery"), chromedp.Click(chromedp.ID("unlock-button")))
	poll[bool](t, ctx, "the unsealed name", `document.querySelector('#recipe-info').textContent.includes('secret.bin')`, 30*time.Second)
	do(t, ctx, "get the sealed file", chromedp.Click(chromedp.ID("get-button")))
	poll[bool](t, ctx, "the Save link", visible("#save-link"), time.Minute)
	if got := download(t, ctx, "#save-link", t.TempDir()); sha256.Sum256(got) != sha256.Sum256(secret) {
		t.Fatal("the file of the sealed recipe differs")
	}

	// A damaged recipe: a message, not a blank page.
	damaged := rc[:40] + string("abcdefgh"[(strings.IndexByte("abcdefgh", rc[40])+1)%8]) + rc[41:]
	if damaged == rc {
		t.Fatal("could not damage the recipe")
	}
	do(t, ctx, "paste a damaged recipe", chromedp.Navigate(urlB+"/"), chromedp.Click(chromedp.ID("tab-get")),
		chromedp.SendKeys(chromedp.ID("recipe-input"), damaged))
	msg := poll[string](t, ctx, "the error message", `(() => { const e = document.querySelector('#get-error'); return e && e.offsetParent !== null ? e.textContent : '' })()`, 30*time.Second)
	if !strings.Contains(msg, "damaged") {
		t.Fatalf("a damaged recipe shows %q", msg)
	}
	screenshot(t, ctx, "damaged")

	// The other tabs render the node's files and state.
	do(t, ctx, "My files", chromedp.Navigate(urlB+"/"), chromedp.Click(chromedp.ID("tab-files")))
	poll[bool](t, ctx, "B's files", `document.querySelector('#files-table').textContent.includes('holiday notes.bin')`, 30*time.Second)
	do(t, ctx, "check a file's health", chromedp.Click(chromedp.CSS("#files-table .check")))
	health := poll[string](t, ctx, "the health verdict", `(() => { const t = (document.querySelector('#files-table .verdict-text') || {}).textContent || ''; return t.includes(':') ? t : '' })()`, 30*time.Second)
	if !strings.HasPrefix(health, "healthy") && !strings.HasPrefix(health, "at risk") {
		t.Errorf("the health of a file held by three nodes: %q", health)
	}
	do(t, ctx, "Node", chromedp.Click(chromedp.ID("tab-node")))
	// B is connected to A and C, and wants 3 copies: "few peers".
	poll[bool](t, ctx, "the verdict", `document.querySelector('#node-verdict').textContent.includes('few peers: connected to 2 peers')`, 30*time.Second)

	// Groups from the page: B is in none, and makes one.
	poll[bool](t, ctx, "the group section", `document.querySelector('#group-state').textContent.startsWith('None')`, 30*time.Second)
	do(t, ctx, "make a group", chromedp.SendKeys(chromedp.ID("group-name"), "club"), chromedp.Click(chromedp.CSS("#group-create-form button")))
	poll[bool](t, ctx, "the group made", `document.querySelector('#group-message').textContent.includes('group club created')`, 30*time.Second)
	if st := statusOf(t, b); st.Group != "" {
		t.Errorf("the running daemon switched groups without a restart: %q", st.Group)
	}
	if _, err := os.Stat(filepath.Join(b.repo, repo.GroupFile)); err != nil {
		t.Errorf("the page made no group file: %v", err)
	}
}

// apiBase is the URL of the daemon running on w's repo.
func (w *world) apiBase(t testing.TB) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(w.repo, "api"))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// waitRoutingTable waits until w's daemon knows n peers.
func waitRoutingTable(t testing.TB, w *world, n int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if info, ok := daemonID(w); ok && info.RoutingTable >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: fewer than %d peers after 30 s", w.repo, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
