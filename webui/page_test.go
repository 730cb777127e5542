package webui

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/blockmix/blockmix/blocks"
	"github.com/blockmix/blockmix/recipe"
	"github.com/blockmix/blockmix/webui/apiv1"
)

// do sends one request with the given headers (a "Host" entry sets the
// Host header) and returns the answer with its body read.
func do(t *testing.T, method, u string, body io.Reader, headers map[string]string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range headers {
		if k == "Host" {
			req.Host = v
		} else {
			req.Header.Set(k, v)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	resp, err := http.DefaultClient.Do(req.WithContext(ctx))
	if err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, u, err)
	}
	return resp, b
}

// wantError wants an ErrorBody with the status whose words contain all of
// words.
func wantError(t *testing.T, what string, resp *http.Response, b []byte, status int, words ...string) {
	t.Helper()
	var e apiv1.ErrorBody
	if resp.StatusCode != status || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") || json.Unmarshal(b, &e) != nil {
		t.Fatalf("%s: %d %q %s, want %d with a JSON error", what, resp.StatusCode, resp.Header.Get("Content-Type"), b, status)
	}
	for _, w := range words {
		if !strings.Contains(e.Error, w) {
			t.Errorf("%s: error %q does not say %q", what, e.Error, w)
		}
	}
}

// TestPage: the page is served at / and at recipe links, its files are
// embedded with their types, and every page answer carries a strict CSP.
func TestPage(t *testing.T) {
	srv := httptest.NewServer(New(newMemNode(t), Options{}))
	defer srv.Close()

	for _, p := range []string{"/", "/r/anything/name", "/r/aeix7mby/some%20file.mp4"} {
		resp, b := do(t, "GET", srv.URL+p, nil, nil)
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/html; charset=utf-8" {
			t.Fatalf("GET %s: %d %q", p, resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		for _, want := range []string{`<script type="module" src="/static/app.js"></script>`, `href="/static/style.css"`, `id="recipe-input"`, `id="tab-node"`} {
			if !bytes.Contains(b, []byte(want)) {
				t.Errorf("GET %s: the page has no %s", p, want)
			}
		}
		if bytes.Contains(b, []byte("<script>")) || bytes.Contains(b, []byte(" onclick=")) || bytes.Contains(b, []byte(" style=")) {
			t.Errorf("GET %s: inline script or style, which the CSP forbids", p)
		}
		csp := resp.Header.Get("Content-Security-Policy")
		for _, want := range []string{"default-src 'self'", "script-src 'self'", "style-src 'self'", "frame-ancestors 'none'", "object-src 'self'"} {
			if !strings.Contains(csp, want) {
				t.Errorf("GET %s: CSP %q has no %q", p, csp, want)
			}
		}
		if strings.Contains(csp, "unsafe-inline") || strings.Contains(csp, "unsafe-eval") || strings.Contains(csp, "*") {
			t.Errorf("GET %s: CSP %q is not strict", p, csp)
		}
		for k, v := range map[string]string{"X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY", "Referrer-Policy": "no-referrer", "Cache-Control": "no-cache"} {
			if got := resp.Header.Get(k); got != v {
				t.Errorf("GET %s: %s %q, want %q", p, k, got, v)
			}
		}
	}

	types := map[string]string{
		"/static/app.js":      "text/javascript; charset=utf-8",
		"/static/style.css":   "text/css; charset=utf-8",
		"/static/index.html":  "text/html; charset=utf-8",
		"/static/favicon.svg": "image/svg+xml",
		"/favicon.ico":        "image/svg+xml",
	}
	for p, typ := range types {
		resp, b := do(t, "GET", srv.URL+p, nil, nil)
		name := strings.TrimPrefix(p, "/static/")
		if p == "/favicon.ico" {
			name = "favicon.svg"
		}
		want, err := static.ReadFile("static/" + name)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != typ || !bytes.Equal(b, want) {
			t.Errorf("GET %s: %d %q, %d bytes; want %q, the embedded %d bytes", p, resp.StatusCode, resp.Header.Get("Content-Type"), len(b), typ, len(want))
		}
		etag := resp.Header.Get("ETag")
		if etag == "" || resp.Header.Get("Cache-Control") != "no-cache" {
			t.Errorf("GET %s: ETag %q, Cache-Control %q", p, etag, resp.Header.Get("Cache-Control"))
			continue
		}
		// A browser that has the file asks again and gets 304.
		resp, _ = do(t, "GET", srv.URL+p, nil, map[string]string{"If-None-Match": etag})
		if resp.StatusCode != http.StatusNotModified {
			t.Errorf("GET %s with its ETag: %d, want 304", p, resp.StatusCode)
		}
	}

	// Every ID the page's script looks up is in the page.
	js, _ := static.ReadFile("static/app.js")
	page, _ := static.ReadFile("static/index.html")
	for _, id := range []string{"tab-get", "tab-share", "tab-files", "tab-node", "recipe-input", "recipe-info", "get-button",
		"get-progress", "get-status", "save-link", "open-button", "player", "get-error", "share-error", "file-input",
		"drop-zone", "share-results", "files-table", "node-verdict", "peers-table", "bandwidth-graph"} {
		if !bytes.Contains(page, []byte(`id="`+id+`"`)) {
			t.Errorf("the page has no element #%s", id)
		}
	}
	for _, m := range bytes.Split(js, []byte("$('"))[1:] {
		id, _, _ := bytes.Cut(m, []byte("'"))
		if strings.Contains(string(id), "$") { // a template: tab-${t}
			continue
		}
		if !bytes.Contains(page, []byte(`id="`+string(id)+`"`)) {
			t.Errorf("app.js looks up #%s, which the page does not have", id)
		}
	}

	// Unknown addresses: a 404 in plain words, HTML for the page's
	// addresses; the API keeps its own answers.
	for _, p := range []string{"/nope", "/static/nope.js", "/static/", "/static/../server.go", "/r"} {
		resp, b := do(t, "GET", srv.URL+p, nil, nil)
		if p == "/r" && resp.StatusCode == 200 { // the mux may send /r to /r/
			continue
		}
		if resp.StatusCode != 404 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") || !bytes.Contains(b, []byte("Nothing here")) {
			t.Errorf("GET %s: %d %q %.80s, want the 404 page", p, resp.StatusCode, resp.Header.Get("Content-Type"), b)
		}
		if resp.Header.Get("Content-Security-Policy") == "" {
			t.Errorf("GET %s: no CSP", p)
		}
	}
	if resp, _ := do(t, "GET", srv.URL+"/nope%3Cscript%3E", nil, nil); resp.StatusCode != 404 {
		t.Errorf("GET /nope<script>: %d", resp.StatusCode)
	} else if _, b := do(t, "GET", srv.URL+"/nope%3Cscript%3E", nil, nil); bytes.Contains(b, []byte("<script>")) {
		t.Errorf("the 404 page repeats the path unescaped: %s", b)
	}
	if resp, _ := do(t, "GET", srv.URL+"/api/v1/verify", nil, nil); resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET /api/v1/verify: %d, want the API's 405", resp.StatusCode)
	}
	if resp, b := do(t, "GET", srv.URL+"/api/v1/nope", nil, nil); resp.StatusCode != 404 || bytes.Contains(b, []byte("Nothing here")) {
		t.Errorf("GET /api/v1/nope: %d %s, want the API's own 404", resp.StatusCode, b)
	}
	// API answers may not run script on this origin (get sets its own
	// headers per file).
	for _, p := range []string{"/api/v1/id", "/api/v1/files"} {
		resp, _ := do(t, "GET", srv.URL+p, nil, nil)
		if !strings.Contains(resp.Header.Get("Content-Security-Policy"), "script-src 'none'") || resp.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("GET %s: CSP %q, nosniff %q", p, resp.Header.Get("Content-Security-Policy"), resp.Header.Get("X-Content-Type-Options"))
		}
	}
}

// TestGuardHost: only loopback names and the configured hosts are
// answered (DNS rebinding).
func TestGuardHost(t *testing.T) {
	srv := httptest.NewServer(New(newMemNode(t), Options{Hosts: []string{"mybox.lan", "192.168.1.20"}}))
	defer srv.Close()

	for _, host := range []string{"evil.example:7788", "evil.example", "127.0.0.1.evil.example:7788", "localhost.evil.example", "192.168.1.21:7788", "[2001:db8::1]:7788"} {
		for _, p := range []string{"/api/v1/id", "/", "/static/app.js"} {
			resp, b := do(t, "GET", srv.URL+p, nil, map[string]string{"Host": host})
			wantError(t, "Host "+host+" "+p, resp, b, http.StatusForbidden, "answers only to 127.0.0.1", "localhost", "got Host "+hostOnly(host))
		}
	}
	resp, b := do(t, "GET", srv.URL+"/api/v1/id", nil, map[string]string{"Host": "evil.example:7788"})
	wantError(t, "evil host", resp, b, http.StatusForbidden, "got Host evil.example", "mybox.lan")

	for _, host := range []string{"localhost:1234", "LOCALHOST", "127.0.0.1:7788", "127.3.4.5:1", "[::1]:7788", "::1", "mybox.lan:7788", "MyBox.LAN", "mybox.lan.", "192.168.1.20:80"} {
		resp, b := do(t, "GET", srv.URL+"/api/v1/id", nil, map[string]string{"Host": host})
		var id apiv1.IDInfo
		if resp.StatusCode != 200 || json.Unmarshal(b, &id) != nil || id.ID != "test" {
			t.Errorf("Host %s: %d %s", host, resp.StatusCode, b)
		}
	}

	// Without extra hosts, the message names only loopback.
	srv2 := httptest.NewServer(New(newMemNode(t), Options{}))
	defer srv2.Close()
	resp, b = do(t, "GET", srv2.URL+"/", nil, map[string]string{"Host": "evil.example:7788"})
	var e apiv1.ErrorBody
	_ = json.Unmarshal(b, &e)
	if resp.StatusCode != 403 || e.Error != "this node answers only to 127.0.0.1/localhost; got Host evil.example" {
		t.Errorf("evil host: %d %q", resp.StatusCode, e.Error)
	}
	if resp, _ := do(t, "GET", srv2.URL+"/", nil, map[string]string{"Host": "mybox.lan"}); resp.StatusCode != 403 {
		t.Errorf("a host of another server's options: %d", resp.StatusCode)
	}
}

// TestGuardOrigin: a state-changing request from another site is refused;
// the page's own requests and the CLI's (no Origin) pass.
func TestGuardOrigin(t *testing.T) {
	srv := httptest.NewServer(New(newMemNode(t), Options{}))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	verify := srv.URL + "/api/v1/verify"

	refused := []map[string]string{
		{"Origin": "http://evil.example"},
		{"Origin": "http://evil.example", "Sec-Fetch-Site": "same-origin"},
		{"Origin": "null"},
		{"Origin": "http://localhost:1"},
		{"Origin": "http://" + host + ".evil.example"},
		{"Sec-Fetch-Site": "cross-site"},
		{"Sec-Fetch-Site": "same-site"},
	}
	for _, h := range refused {
		for _, m := range []string{"POST", "DELETE", "PUT"} {
			resp, b := do(t, m, verify, nil, h)
			wantError(t, m+" with "+strconv.Quote(h["Origin"]+" "+h["Sec-Fetch-Site"]), resp, b, http.StatusForbidden, "refused")
		}
	}
	resp, b := do(t, "DELETE", srv.URL+"/api/v1/files/x", nil, map[string]string{"Origin": "https://evil.example"})
	wantError(t, "DELETE from another site", resp, b, http.StatusForbidden, "refused", "https://evil.example", "DELETE /api/v1/files/x")

	allowed := []map[string]string{
		nil, // the CLI
		{"Origin": "http://" + host},
		{"Origin": "HTTP://" + strings.ToUpper(host)},
		{"Origin": "https://" + host},
		{"Origin": "http://" + host, "Sec-Fetch-Site": "same-origin"},
		{"Sec-Fetch-Site": "same-origin"},
		{"Sec-Fetch-Site": "none"},
	}
	for _, h := range allowed {
		resp, b := do(t, "POST", verify, nil, h)
		var v apiv1.VerifyInfo
		if resp.StatusCode != 200 || json.Unmarshal(b, &v) != nil {
			t.Errorf("POST with %v: %d %s", h, resp.StatusCode, b)
		}
	}
	// Reading is not changing: GET from anywhere (with a right Host) passes,
	// except the API asked by another site's page without a navigation.
	for _, h := range []map[string]string{{"Origin": "http://evil.example"}, {"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "navigate"}} {
		if resp, b := do(t, "GET", srv.URL+"/api/v1/id", nil, h); resp.StatusCode != 200 {
			t.Errorf("GET with %v: %d %s", h, resp.StatusCode, b)
		}
	}
	if resp, _ := do(t, "GET", srv.URL+"/r/x/y", nil, map[string]string{"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "navigate"}); resp.StatusCode != 200 {
		t.Errorf("a recipe link followed from another site: %d", resp.StatusCode)
	}
	for _, site := range []string{"cross-site", "same-site"} {
		resp, b := do(t, "GET", srv.URL+"/api/v1/get?recipe=x", nil, map[string]string{"Sec-Fetch-Site": site, "Sec-Fetch-Mode": "no-cors", "Sec-Fetch-Dest": "video"})
		wantError(t, "a "+site+" <video> of the API", resp, b, http.StatusForbidden, "another web site")
		// Nor a link on another site straight to a get: the node would
		// fetch and keep a file nobody here chose.
		resp, b = do(t, "GET", srv.URL+"/api/v1/get?recipe=x", nil, map[string]string{"Sec-Fetch-Site": site, "Sec-Fetch-Mode": "navigate", "Sec-Fetch-Dest": "document"})
		wantError(t, "a "+site+" link straight to a get", resp, b, http.StatusForbidden, "another web site")
	}
}

// TestGuardUpload: an upload over MaxUpload is refused with 413, whether
// it says its size or not.
func TestGuardUpload(t *testing.T) {
	data := bytes.Repeat([]byte("blockmix"), 30<<10) // 240 KiB
	// put sends body to a fresh node (a put that fails half-way leaves a
	// memNode's mixer unusable; the daemon makes a new one).
	put := func(size int, body io.Reader) (*memNode, *http.Response, []byte) {
		n := newMemNode(t)
		srv := httptest.NewServer(New(n, Options{MaxUpload: 100 << 10}))
		defer srv.Close()
		u := srv.URL + "/api/v1/put?name=big.bin"
		if size >= 0 {
			u += "&size=" + strconv.Itoa(size)
		}
		resp, b := do(t, "POST", u, body, nil)
		return n, resp, b
	}
	// chunked hides the length from the server.
	chunked := func(b []byte) io.Reader { return io.MultiReader(bytes.NewReader(b)) }

	_, resp, b := put(len(data), bytes.NewReader(data))
	wantError(t, "declared size", resp, b, http.StatusRequestEntityTooLarge, "too large", "240.0 KiB", "at most 100.0 KiB")
	_, resp, b = put(5<<40, chunked(data[:10]))
	wantError(t, "declared 5 TiB", resp, b, http.StatusRequestEntityTooLarge, "5.0 TiB")
	_, resp, b = put(-1, bytes.NewReader(data)) // Content-Length only
	wantError(t, "Content-Length", resp, b, http.StatusRequestEntityTooLarge, "too large")
	n, resp, b := put(-1, chunked(data))
	wantError(t, "a body without a size", resp, b, http.StatusRequestEntityTooLarge, "too large", "at most 100.0 KiB")
	if fs, _ := n.st.Files(context.Background()); len(fs) != 0 {
		t.Errorf("a refused upload left files: %+v", fs)
	}
	// (Whether the put notices the lie or the bound first is up to it.)
	_, resp, b = put(1000, chunked(data))
	if resp.StatusCode < 400 || !json.Valid(b) {
		t.Errorf("a body longer than it said: %d %s", resp.StatusCode, b)
	}

	// Up to the bound, a put works, with or without a size.
	for _, size := range []int{100 << 10, -1} {
		_, resp, b = put(size, chunked(data[:100<<10]))
		var p apiv1.PutInfo
		if resp.StatusCode != 200 || json.Unmarshal(b, &p) != nil || p.Size != 100<<10 {
			t.Fatalf("put of exactly MaxUpload (size %d): %d %s", size, resp.StatusCode, b)
		}
	}
	// Other errors of the put keep their status.
	_, resp, b = put(-1, strings.NewReader(""))
	if resp.StatusCode == http.StatusRequestEntityTooLarge {
		t.Errorf("an empty put: %d %s", resp.StatusCode, b)
	}
}

// gateNode is a memNode whose gets stop after the first block until the
// gate opens: a transfer held mid-stream.
type gateNode struct {
	*memNode
	gate    chan struct{}
	waiting chan struct{} // gets a value when a get is held at the gate
}

type gateGetter struct {
	n    *gateNode
	gets atomic.Int64
}

func (g *gateGetter) Get(ctx context.Context, id blocks.ID) ([]byte, error) {
	if g.gets.Add(1) > 10 {
		select {
		case g.n.waiting <- struct{}{}:
		default:
		}
		select {
		case <-g.n.gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return g.n.st.Get(ctx, id)
}

func (n *gateNode) Open(ctx context.Context, rc recipe.Recipe) (*recipe.Reader, error) {
	return recipe.Open(ctx, &gateGetter{n: n}, rc, recipe.Options{Workers: 1})
}

// TestGuardTransfers: with MaxTransfers=1, a get held mid-stream makes the
// next put, get, fetch, pin and repair wait for 503, and the slot comes
// back after.
func TestGuardTransfers(t *testing.T) {
	n := &gateNode{memNode: newMemNode(t), gate: make(chan struct{}), waiting: make(chan struct{}, 1)}
	data := bytes.Repeat([]byte{7}, 2<<20)
	info := putMem(t, n.memNode, "big.bin", data)
	web := New(n, Options{MaxTransfers: 1})
	srv := httptest.NewServer(web)
	defer srv.Close()
	getURL := srv.URL + "/api/v1/get?" + url.Values{"recipe": {info.Recipe}}.Encode()

	type result struct {
		status int
		body   []byte
		err    error
	}
	first := make(chan result, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, "GET", getURL, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			first <- result{err: err}
			return
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		first <- result{resp.StatusCode, b, err}
	}()
	select {
	case <-n.waiting:
	case r := <-first:
		t.Fatalf("the first get ended before the gate: %d %v", r.status, r.err)
	case <-time.After(10 * time.Second):
		t.Fatal("the first get never reached the gate")
	}

	for _, c := range []struct{ method, url string }{
		{"GET", getURL},
		{"HEAD", getURL},
		{"POST", srv.URL + "/api/v1/put?name=x&size=1"},
		{"POST", srv.URL + "/api/v1/fetch?" + url.Values{"recipe": {info.Recipe}}.Encode()},
		{"POST", srv.URL + "/api/v1/pin?" + url.Values{"recipe": {info.Recipe}}.Encode()},
		{"POST", srv.URL + "/api/v1/repair?" + url.Values{"recipe": {info.Recipe}}.Encode()},
	} {
		var body io.Reader
		if c.method == "POST" {
			body = strings.NewReader("x")
		}
		resp, b := do(t, c.method, c.url, body, nil)
		if c.method == "HEAD" {
			if resp.StatusCode != http.StatusServiceUnavailable {
				t.Errorf("HEAD get during a transfer: %d, want 503", resp.StatusCode)
			}
			continue
		}
		wantError(t, c.method+" "+c.url, resp, b, http.StatusServiceUnavailable, "too many transfers at once (1); try again when one finishes")
	}
	if got := web.Running(); got != 1 {
		t.Errorf("Running during one held get: %d", got)
	}
	// Everything else still answers.
	if resp, b := do(t, "GET", srv.URL+"/api/v1/status", nil, nil); resp.StatusCode != 200 {
		t.Errorf("status during a transfer: %d %s", resp.StatusCode, b)
	}
	if resp, _ := do(t, "GET", srv.URL+"/", nil, nil); resp.StatusCode != 200 {
		t.Errorf("the page during a transfer: %d", resp.StatusCode)
	}

	close(n.gate)
	select {
	case r := <-first:
		if r.err != nil || r.status != 200 || !bytes.Equal(r.body, data) {
			t.Fatalf("the held get: %d, %d bytes, %v", r.status, len(r.body), r.err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the held get did not finish after the gate opened")
	}
	// The slot is free again (the handler returns just after the client
	// has read the last byte, so allow it a moment).
	deadline := time.Now().Add(5 * time.Second)
	for {
		resp, b := do(t, "GET", getURL, nil, nil)
		if resp.StatusCode == 200 && bytes.Equal(b, data) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("get after the first finished: %d %s", resp.StatusCode, b)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestSizeWords(t *testing.T) {
	for n, want := range map[int64]string{0: "0 B", 1023: "1023 B", 1024: "1.0 KiB", 100 << 10: "100.0 KiB", 64 << 30: "64.0 GiB", 5 << 40: "5.0 TiB"} {
		if got := apiv1.HumanBytes(n); got != want {
			t.Errorf("apiv1.HumanBytes(%d) = %q, want %q", n, got, want)
		}
	}
	if err := uploadTooLarge(-1, 1<<20); !strings.Contains(err.Error(), "at most 1.0 MiB") {
		t.Errorf("uploadTooLarge: %v", err)
	}
}

// TestStalledReaderIsCut: a client that asks for a file and reads none of
// it is cut after Options.Stall; its transfer slot comes back.
func TestStalledReaderIsCut(t *testing.T) {
	n := newMemNode(t)
	data := make([]byte, 32<<20) // more than the sockets' buffers hold
	for i := range data {
		data[i] = byte(i * 7 / 5)
	}
	info := putMem(t, n, "big.bin", data)
	web := New(n, Options{Stall: 200 * time.Millisecond})
	srv := httptest.NewServer(web)
	defer srv.Close()
	c, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "GET /api/v1/get?%s HTTP/1.1\r\nHost: %s\r\n\r\n", url.Values{"recipe": {info.Recipe}}.Encode(), srv.Listener.Addr())
	deadline := time.Now().Add(time.Minute)
	for web.Running() == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	for web.Running() != 0 {
		if time.Now().After(deadline) {
			t.Fatal("a get nobody reads still runs after a minute")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
