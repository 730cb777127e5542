package webui

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"mime"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/blockmix/blockmix/blocks"
	"github.com/blockmix/blockmix/mixer"
	"github.com/blockmix/blockmix/recipe"
	"github.com/blockmix/blockmix/webui/apiv1"
)

func q(recipeText string) string { return url.Values{"recipe": {recipeText}}.Encode() }

// TestRecipeInfo: what a recipe says, from the recipe alone; a damaged or
// missing one is a 400 in plain words.
func TestRecipeInfo(t *testing.T) {
	n := newMemNode(t)
	srv := httptest.NewServer(New(n, Options{}))
	defer srv.Close()
	data := bytes.Repeat([]byte("x"), 300<<10)
	put := putMemTyped(t, n, "clip.webm", "video/webm", data)

	var info apiv1.RecipeInfo
	callJSON(t, "GET", srv.URL+"/api/v1/recipe?"+q("see this: "+put.Recipe+" !"), 200, &info)
	if info.Name != "clip.webm" || info.Size != int64(len(data)) || info.Type != "video/webm" || info.BlockSize != 128<<10 ||
		info.Blocks != 3 || !info.Local || info.Recipe != put.Recipe || !strings.HasPrefix(info.URL, srv.URL+"/r/") {
		t.Fatalf("recipe info %+v", info)
	}
	for _, bad := range []string{"", "blockmix:abc", "hello"} {
		code, b := call(t, "GET", srv.URL+"/api/v1/recipe?"+q(bad))
		if code != 400 || !strings.Contains(string(b), `"error"`) {
			t.Fatalf("recipe %q: %d %s", bad, code, b)
		}
	}
}

// putMemTyped puts data with a media type into n and records the file.
func putMemTyped(t *testing.T, n *memNode, name, typ string, data []byte) apiv1.PutInfo {
	t.Helper()
	info, err := n.Put(context.Background(), bytes.NewReader(data), int64(len(data)), name, typ)
	if err != nil {
		t.Fatal(err)
	}
	return info
}

// TestTransfer: a fetch runs in the background and reports its progress
// until done; a second fetch of the same file joins it.
func TestTransfer(t *testing.T) {
	n := newMemNode(t)
	srv := httptest.NewServer(New(n, Options{}))
	defer srv.Close()
	data := make([]byte, 1<<20+5)
	rand.NewChaCha8([32]byte{4}).Read(data)
	put := putMemTyped(t, n, "f.bin", "", data)

	var tr apiv1.TransferInfo
	callJSON(t, "POST", srv.URL+"/api/v1/fetch?"+q(put.Recipe), 202, &tr)
	if tr.ID == "" || tr.Name != "f.bin" || tr.Size != int64(len(data)) || tr.Blocks != 9 {
		t.Fatalf("transfer %+v", tr)
	}
	deadline := time.Now().Add(20 * time.Second)
	tr = waitTransfer(t, srv.URL, tr)
	if tr.State != apiv1.TransferDone || tr.BytesDone != int64(len(data)) || tr.BlocksDone != 9 || tr.Error != "" || tr.Finished.IsZero() || tr.ETASeconds != 0 {
		t.Fatalf("finished transfer %+v", tr)
	}
	var list []apiv1.TransferInfo
	callJSON(t, "GET", srv.URL+"/api/v1/transfers", 200, &list)
	if len(list) != 1 || list[0].ID != tr.ID {
		t.Fatalf("transfers %+v", list)
	}
	if code, _ := call(t, "GET", srv.URL+"/api/v1/transfers/nope"); code != 404 {
		t.Fatalf("unknown transfer: %d", code)
	}

	// A file whose blocks are nowhere fails, with the reason.
	other := newMemNode(t)
	lost := putMemTyped(t, other, "lost.bin", "", data[:5000])
	callJSON(t, "POST", srv.URL+"/api/v1/fetch?"+q(lost.Recipe), 202, &tr)
	for tr.State == apiv1.TransferRunning && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
		callJSON(t, "GET", srv.URL+"/api/v1/transfers/"+tr.ID, 200, &tr)
	}
	if tr.State != apiv1.TransferFailed || !strings.Contains(tr.Error, "not found") {
		t.Fatalf("transfer of a lost file: %+v", tr)
	}
}

// TestGetRangeAndHeaders: Range requests for players, inline only for
// safe types, a sandbox for anything shown, and a clean file name.
func TestGetRangeAndHeaders(t *testing.T) {
	n := newMemNode(t)
	srv := httptest.NewServer(New(n, Options{}))
	defer srv.Close()
	data := make([]byte, 400<<10)
	rand.NewChaCha8([32]byte{5}).Read(data)

	video := putMemTyped(t, n, "film.webm", "video/webm", data)
	req, _ := http.NewRequest("GET", srv.URL+"/api/v1/get?"+q(video.Recipe), nil)
	req.Header.Set("Range", "bytes=200000-200099")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 206 || !bytes.Equal(got, data[200000:200100]) || resp.Header.Get("Content-Type") != "video/webm" {
		t.Fatalf("range: %d %q, %d bytes, right %v", resp.StatusCode, resp.Header.Get("Content-Type"), len(got), bytes.Equal(got, data[200000:200100]))
	}
	if d := resp.Header.Get("Content-Disposition"); !strings.HasPrefix(d, "inline") {
		t.Fatalf("video disposition %q", d)
	}
	if !strings.Contains(resp.Header.Get("Content-Security-Policy"), "sandbox") || resp.Header.Get("X-Content-Type-Options") != "nosniff" {
		t.Fatalf("video safety headers: %v", resp.Header)
	}

	// HTML is never shown, only downloaded; a hostile name is cleaned.
	page := putMemTyped(t, n, "..\\evil\"\r\nX-Bad: 1.html", "text/html", []byte("<script>alert(1)</script>"))
	resp, err = http.Get(srv.URL + "/api/v1/get?" + q(page.Recipe))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.Header.Get("Content-Type") != "application/octet-stream" || resp.Header.Get("X-Bad") != "" {
		t.Fatalf("html answer headers: %v", resp.Header)
	}
	disp, params, err := mime.ParseMediaType(resp.Header.Get("Content-Disposition"))
	if err != nil || disp != "attachment" || strings.ContainsAny(params["filename"], "\"\\/\r\n") || !strings.HasSuffix(params["filename"], ".html") {
		t.Fatalf("html disposition %q: %s %v %v", resp.Header.Get("Content-Disposition"), disp, params, err)
	}

	// download=1 makes even a video an attachment.
	resp, err = http.Get(srv.URL + "/api/v1/get?download=1&" + q(video.Recipe))
	if err != nil {
		t.Fatal(err)
	}
	got, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.HasPrefix(resp.Header.Get("Content-Disposition"), "attachment") || !bytes.Equal(got, data) {
		t.Fatalf("download: %q, %d bytes", resp.Header.Get("Content-Disposition"), len(got))
	}
}

// TestFilesHealthBandwidth: remove a file from the list, a file's health,
// and the traffic history.
func TestFilesHealthBandwidth(t *testing.T) {
	n := newMemNode(t)
	srv := httptest.NewServer(New(n, Options{SampleEvery: 20 * time.Millisecond}))
	defer srv.Close()
	put := putMemTyped(t, n, "a.txt", "text/plain", []byte("hello there"))

	var h apiv1.HealthInfo
	callJSON(t, "GET", srv.URL+"/api/v1/health?"+q(put.Recipe), 200, &h)
	if h.State != apiv1.HealthHealthy || h.MinCopies != 1 || h.Blocks == 0 || !strings.HasPrefix(h.Verdict, "healthy") {
		t.Fatalf("health %+v", h)
	}
	var fs []blocks.FileRecord
	callJSON(t, "GET", srv.URL+"/api/v1/files", 200, &fs)
	if len(fs) != 1 {
		t.Fatalf("files %+v", fs)
	}
	if code, b := call(t, "DELETE", srv.URL+"/api/v1/files/"+fs[0].Key); code != 204 {
		t.Fatalf("delete: %d %s", code, b)
	}
	if code, _ := call(t, "DELETE", srv.URL+"/api/v1/files/"+fs[0].Key); code != 404 {
		t.Fatalf("delete again: %d", code)
	}
	if code, _ := call(t, "GET", srv.URL+"/api/v1/health?"+q(put.Recipe)); code != 404 {
		t.Fatalf("health of a removed file: %d", code)
	}

	n.setDaemon(apiv1.DaemonInfo{BytesIn: 5000})
	var bw apiv1.BandwidthInfo
	deadline := time.Now().Add(10 * time.Second)
	for {
		callJSON(t, "GET", srv.URL+"/api/v1/bandwidth", 200, &bw)
		if len(bw.Samples) >= 2 || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if len(bw.Samples) < 2 || bw.IntervalSeconds != 0 {
		t.Fatalf("bandwidth %+v", bw)
	}
}

func TestHealthJudge(t *testing.T) {
	for _, c := range []struct {
		h     apiv1.HealthInfo
		state string
		says  string
	}{
		{apiv1.HealthInfo{Blocks: 10, MinCopies: 4, MedianCopies: 4, Replicas: 3}, apiv1.HealthHealthy, "healthy: every block has at least 4 copies (3 wanted); the file is safe"},
		{apiv1.HealthInfo{Blocks: 20, MinCopies: 1, MedianCopies: 3, Replicas: 3, Short: 14}, apiv1.HealthAtRisk,
			"at risk: 14 of 20 blocks have fewer than 3 copies (the fewest have 1 copy); the file can be got now, but one node going away could lose it"},
		{apiv1.HealthInfo{Blocks: 59, MinCopies: 1, MedianCopies: 1, Replicas: 3, Short: 59}, apiv1.HealthAtRisk,
			"at risk: 59 of 59 blocks have fewer than 3 copies (1 copy each); the file can be got now, but one node going away could lose it"},
		{apiv1.HealthInfo{Blocks: 9, MinCopies: 2, MedianCopies: 3, Replicas: 3, Short: 1}, apiv1.HealthAtRisk,
			"at risk: 1 of 9 blocks has fewer than 3 copies (the fewest has 2 copies); the file can be got now and survives 1 node going away"},
		{apiv1.HealthInfo{Blocks: 10, Missing: 2, Replicas: 3}, apiv1.HealthLost, "lost: 2 of 10 blocks have no copy anywhere this node can reach; the file cannot be rebuilt now"},
		{apiv1.HealthInfo{Blocks: 10, Missing: 1, Replicas: 3}, apiv1.HealthLost, "lost: 1 of 10 blocks has no copy"},
	} {
		c.h.Judge()
		if c.h.State != c.state || !strings.HasPrefix(c.h.Verdict, c.says) {
			t.Errorf("%+v: %s %q", c.h, c.h.State, c.h.Verdict)
		}
	}
}

// TestUnseal: a sealed recipe is refused where a plain one is wanted, with
// a message the page recognises, and opens with its passphrase only.
func TestUnseal(t *testing.T) {
	n := newMemNode(t)
	srv := httptest.NewServer(New(n, Options{}))
	defer srv.Close()
	put := putMemTyped(t, n, "secret.txt", "text/plain", []byte("the plans"))
	rc, err := recipe.Parse(put.Recipe)
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := recipe.Seal(rc, []byte("correct horse"))
	if err != nil {
		t.Fatal(err)
	}
	code, b := call(t, "GET", srv.URL+"/api/v1/recipe?"+q(sealed.String()))
	if code != 400 || !strings.Contains(string(b), `"sealed: `) {
		t.Fatalf("a sealed recipe looked up: %d %s", code, b)
	}
	post := func(pass string) (int, []byte) {
		resp, err := http.PostForm(srv.URL+"/api/v1/unseal", url.Values{"recipe": {"here: " + sealed.String()}, "passphrase": {pass}})
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, body
	}
	if code, b := post("wrong"); code != 403 || !strings.Contains(string(b), "wrong passphrase") {
		t.Fatalf("wrong passphrase: %d %s", code, b)
	}
	code, b = post("correct horse")
	var info apiv1.RecipeInfo
	if code != 200 || json.Unmarshal(b, &info) != nil || info.Recipe != put.Recipe || info.Name != "secret.txt" {
		t.Fatalf("unseal: %d %s", code, b)
	}
}

// TestMediaTypesFromStrangers: a recipe's type is parsed as one media type
// and only its normalised form is served; anything that does not parse
// (a list that smuggles in HTML) is downloaded, never shown.
func TestMediaTypesFromStrangers(t *testing.T) {
	n := newMemNode(t)
	srv := httptest.NewServer(New(n, Options{}))
	defer srv.Close()
	for typ, want := range map[string]string{
		"image/png,text/html":          "application/octet-stream",
		"image/png; text/html":         "application/octet-stream",
		"IMAGE/PNG; junk=1":            "image/png",
		"text/plain; charset=UTF-8":    "text/plain; charset=utf-8",
		"text/plain; charset=utf-7":    "application/octet-stream",
		"text/html":                    "application/octet-stream",
		"image/svg+xml":                "application/octet-stream",
		"video/mp4\r\nX-Evil: 1":       "application/octet-stream",
		"application/pdf; name=x.html": "application/pdf",
	} {
		info := putMemTyped(t, n, "f", typ, []byte("data"))
		resp, err := http.Get(srv.URL + "/api/v1/get?" + q(info.Recipe))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if got := resp.Header.Get("Content-Type"); got != want || resp.Header.Get("X-Evil") != "" {
			t.Errorf("type %q served as %q, want %q", typ, got, want)
		}
		if csp := resp.Header.Get("Content-Security-Policy"); !strings.HasPrefix(csp, "sandbox") {
			t.Errorf("type %q served without the sandbox policy (%q)", typ, csp)
		}
	}
}

// unsealBurst sends 16 unseals of one sealed recipe at once to a server
// with opt, counting the Argon2id derivations running at the same time
// through openSealed. It returns the most that ran at once and each
// answer's status and body.
func unsealBurst(t testing.TB, opt Options) (peak int, codes []int, bodies [][]byte) {
	st := blocks.NewMem()
	m, err := mixer.New(st, mixer.Options{})
	if err != nil {
		t.Fatal(err)
	}
	n := &memNode{st: st, m: m}
	put, err := recipe.Put(context.Background(), m, st, strings.NewReader("the plans"), -1, "secret.txt", "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := recipe.Seal(put.Recipe, []byte("correct horse"))
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	running := 0
	openSealed = func(s recipe.Sealed, pass []byte) (recipe.Recipe, error) {
		mu.Lock()
		running++
		peak = max(peak, running)
		mu.Unlock()
		defer func() {
			mu.Lock()
			running--
			mu.Unlock()
		}()
		return recipe.OpenSealed(s, pass)
	}
	t.Cleanup(func() { openSealed = recipe.OpenSealed })
	srv := httptest.NewServer(New(n, opt))
	defer srv.Close()
	const burst = 16
	codes, bodies = make([]int, burst), make([][]byte, burst)
	var wg sync.WaitGroup
	for i := range burst {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := http.PostForm(srv.URL+"/api/v1/unseal", url.Values{"recipe": {sealed.String()}, "passphrase": {"correct horse"}})
			if err != nil {
				t.Error(err)
				return
			}
			defer resp.Body.Close()
			codes[i] = resp.StatusCode
			bodies[i], _ = io.ReadAll(resp.Body)
		}()
	}
	wg.Wait()
	return peak, codes, bodies
}

// TestUnsealBurst: 16 unseals at once never run more than MaxUnseals (2)
// Argon2id derivations (64 MiB each) at the same time; each answer is the
// recipe or a 503 that says to try again.
func TestUnsealBurst(t *testing.T) {
	peak, codes, bodies := unsealBurst(t, Options{UnsealWait: 200 * time.Millisecond})
	if peak > 2 {
		t.Errorf("%d passphrases checked at once, want at most 2", peak)
	}
	ok := 0
	for i, code := range codes {
		var e apiv1.ErrorBody
		switch {
		case code == 200:
			ok++
		case code == http.StatusServiceUnavailable && json.Unmarshal(bodies[i], &e) == nil && strings.Contains(e.Error, "busy") && strings.Contains(e.Error, "try again"):
		default:
			t.Errorf("unseal %d: %d %s", i, code, bodies[i])
		}
	}
	if ok < 2 {
		t.Errorf("only %d of 16 unseals answered", ok)
	}
	// With a wait longer than the burst takes, every one gets its turn.
	peak, codes, bodies = unsealBurst(t, Options{UnsealWait: 5 * time.Minute})
	if peak > 2 {
		t.Errorf("%d passphrases checked at once, want at most 2", peak)
	}
	for i, code := range codes {
		if code != 200 {
			t.Errorf("unseal %d with a long wait: %d %s", i, code, bodies[i])
		}
	}
}

// BenchmarkUnsealBurstMemory measures the process's peak resident memory
// (VmHWM) while 16 unseals run at once, with the limit (MaxUnseals 2) or
// without it (16, as before the limit). VmHWM is the process's peak: run
// each in its own process, e.g.
//
//	go test ./webui -run '^$' -bench 'UnsealBurstMemory/max=2$' -benchtime 1x
func BenchmarkUnsealBurstMemory(b *testing.B) {
	for _, max := range []int{2, 16} {
		b.Run(fmt.Sprintf("max=%d", max), func(b *testing.B) {
			for range b.N {
				unsealBurst(b, Options{MaxUnseals: max, UnsealWait: 5 * time.Minute})
			}
			st, err := os.ReadFile("/proc/self/status")
			if err != nil {
				b.Skip("no /proc/self/status")
			}
			for _, line := range strings.Split(string(st), "\n") {
				if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
					var kb float64
					fmt.Sscan(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), &kb)
					b.ReportMetric(kb/1024, "peak-MiB")
				}
			}
		})
	}
}

// waitTransfer polls transfer tr on the server at base until it ends (at
// most 20 s) and returns its last state.
func waitTransfer(t *testing.T, base string, tr apiv1.TransferInfo) apiv1.TransferInfo {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for tr.State == apiv1.TransferRunning {
		if time.Now().After(deadline) {
			t.Fatalf("transfer still running: %+v", tr)
		}
		time.Sleep(10 * time.Millisecond)
		callJSON(t, "GET", base+"/api/v1/transfers/"+tr.ID, 200, &tr)
	}
	return tr
}
