package webui

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/blockmix/blockmix/recipe"
	"github.com/blockmix/blockmix/webui/apiv1"
)

// TestTransfersKept: finished gets and puts are kept, one per file and
// kind, in Options.StateFile, and a new server on the same file lists
// them; DELETE forgets one; the list never holds more than keepFinished.
func TestTransfersKept(t *testing.T) {
	n := newMemNode(t)
	state := filepath.Join(t.TempDir(), "transfers.json")
	s := New(n, Options{StateFile: state})
	srv := httptest.NewServer(s)
	put := putMemTyped(t, n, "f.bin", "", bytes.Repeat([]byte("f"), 200<<10))

	fetch := func() apiv1.TransferInfo {
		t.Helper()
		var tr apiv1.TransferInfo
		callJSON(t, "POST", srv.URL+"/api/v1/fetch?"+q(put.Recipe), 202, &tr)
		return waitTransfer(t, srv.URL, tr)
	}
	fetch()
	last := fetch() // the same file again: one row
	resp, err := http.Post(srv.URL+"/api/v1/put?name=g.txt&type=text/plain", "application/octet-stream", strings.NewReader("hello"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	var list []apiv1.TransferInfo
	callJSON(t, "GET", srv.URL+"/api/v1/transfers", 200, &list)
	if len(list) != 2 || list[0].Kind != apiv1.TransferPut || list[0].Put == nil || list[0].Name != "g.txt" ||
		list[1].Kind != apiv1.TransferGet || list[1].ID != last.ID {
		t.Fatalf("transfers after two gets of one file and a put: %+v", list)
	}
	srv.Close()
	s.Close()

	s2 := New(n, Options{StateFile: state})
	defer s2.Close()
	srv2 := httptest.NewServer(s2)
	defer srv2.Close()
	var again []apiv1.TransferInfo
	callJSON(t, "GET", srv2.URL+"/api/v1/transfers", 200, &again)
	if len(again) != 2 || again[1].ID != last.ID || again[1].State != apiv1.TransferDone || again[0].Put == nil || again[0].Put.Recipe != list[0].Put.Recipe {
		t.Fatalf("transfers after a restart: %+v", again)
	}
	if code, _ := call(t, "DELETE", srv2.URL+"/api/v1/transfers/"+last.ID); code != http.StatusNoContent {
		t.Fatalf("DELETE a finished transfer: %d", code)
	}
	if code, _ := call(t, "DELETE", srv2.URL+"/api/v1/transfers/"+last.ID); code != http.StatusNotFound {
		t.Fatalf("DELETE it again: %d", code)
	}
	b, err := os.ReadFile(state)
	if err != nil || strings.Contains(string(b), last.ID) {
		t.Fatalf("the kept list after a DELETE: %s %v", b, err)
	}

	// However many puts the page makes, the node keeps keepFinished.
	for i := range keepFinished + 5 {
		s2.transfers.recordPut(apiv1.PutInfo{Recipe: putMemTyped(t, n, "n"+string(rune('a'+i%26))+".bin", "", []byte{byte(i)}).Recipe}, time.Now())
	}
	if l := s2.transfers.list(); len(l) != keepFinished {
		t.Fatalf("%d transfers kept, want %d", len(l), keepFinished)
	}
}

// TestDamagedStateFile: a kept list that does not parse is ignored, and
// what a save cut short left is removed.
func TestDamagedStateFile(t *testing.T) {
	state := filepath.Join(t.TempDir(), "transfers.json")
	if err := os.WriteFile(state, []byte(`[{"id":"x","state":"done"`), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(state+".tmp-123", []byte(`[]`), 0o600); err != nil {
		t.Fatal(err)
	}
	s := New(newMemNode(t), Options{StateFile: state})
	defer s.Close()
	if l := s.transfers.list(); len(l) != 0 {
		t.Fatalf("a torn file gave %+v", l)
	}
	if _, err := os.Stat(state + ".tmp-123"); !os.IsNotExist(err) {
		t.Errorf("a save cut short left its temporary file: %v", err)
	}
}

// TestPageFacts: a put's link is on the address the client used; plain
// text without a charset is served as UTF-8; a QR code is SVG and
// bounded; a node without settings or peers says so.
func TestPageFacts(t *testing.T) {
	n := newMemNode(t)
	srv := httptest.NewServer(New(n, Options{}))
	defer srv.Close()
	resp, err := http.Post(srv.URL+"/api/v1/put?name=a.txt&type=text/plain", "application/octet-stream", strings.NewReader("Üñí\n"))
	if err != nil {
		t.Fatal(err)
	}
	var p apiv1.PutInfo
	decodeBody(t, resp, &p)
	if !strings.HasPrefix(p.URL, srv.URL+"/r/") {
		t.Errorf("the put's link %q is not on %s", p.URL, srv.URL)
	}
	get, err := http.Get(srv.URL + "/api/v1/get?" + q(p.Recipe))
	if err != nil {
		t.Fatal(err)
	}
	get.Body.Close()
	if ct := get.Header.Get("Content-Type"); ct != "text/plain; charset=utf-8" {
		t.Errorf("plain text is served as %q", ct)
	}

	qr, err := http.Get(srv.URL + "/api/v1/qr?" + url.Values{"text": {p.URL}}.Encode())
	if err != nil {
		t.Fatal(err)
	}
	qr.Body.Close()
	if qr.StatusCode != 200 || qr.Header.Get("Content-Type") != "image/svg+xml" {
		t.Errorf("QR code: %d %s", qr.StatusCode, qr.Header.Get("Content-Type"))
	}
	for _, bad := range []string{"", strings.Repeat("x", maxQRText+1)} {
		if code, _ := call(t, "GET", srv.URL+"/api/v1/qr?"+url.Values{"text": {bad}}.Encode()); code != http.StatusBadRequest {
			t.Errorf("QR code of %d bytes: %d", len(bad), code)
		}
	}
	if code, _ := call(t, "PUT", srv.URL+"/api/v1/settings"); code != http.StatusNotImplemented {
		t.Errorf("settings on a node without them: %d", code)
	}
	if code, _ := call(t, "POST", srv.URL+"/api/v1/peers/connect?addr=x"); code != http.StatusNotImplemented {
		t.Errorf("connect on a node without peers: %d", code)
	}
}

// TestSeal: a recipe sealed by the node opens with the same passphrase;
// an empty passphrase or a sealed recipe is refused.
func TestSeal(t *testing.T) {
	n := newMemNode(t)
	srv := httptest.NewServer(New(n, Options{}))
	defer srv.Close()
	put := putMemTyped(t, n, "s.bin", "", []byte("secret"))
	seal := func(rc, pass string) (*http.Response, apiv1.SealInfo) {
		resp, err := http.PostForm(srv.URL+"/api/v1/seal", url.Values{"recipe": {rc}, "passphrase": {pass}})
		if err != nil {
			t.Fatal(err)
		}
		var s apiv1.SealInfo
		if resp.StatusCode == 200 {
			decodeBody(t, resp, &s)
		} else {
			resp.Body.Close()
		}
		return resp, s
	}
	resp, s := seal(put.Recipe, "pass word")
	if resp.StatusCode != 200 || !strings.HasPrefix(s.Recipe, recipe.SealedScheme) || !strings.HasPrefix(s.URL, srv.URL+"/r/") {
		t.Fatalf("seal: %d %+v", resp.StatusCode, s)
	}
	sealed, err := recipe.ParseSealed(s.Recipe)
	if err != nil {
		t.Fatal(err)
	}
	if rc, err := recipe.OpenSealed(sealed, []byte("pass word")); err != nil || rc.String() != put.Recipe {
		t.Fatalf("open the sealed recipe: %v %v", rc, err)
	}
	if resp, _ := seal(put.Recipe, ""); resp.StatusCode != 400 {
		t.Errorf("an empty passphrase: %d", resp.StatusCode)
	}
	if resp, _ := seal(s.Recipe, "again"); resp.StatusCode != 400 {
		t.Errorf("sealing a sealed recipe: %d", resp.StatusCode)
	}
}

// decodeBody decodes a 200 answer's JSON into v and closes it.
func decodeBody(t *testing.T, resp *http.Response, v any) {
	t.Helper()
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%s: %s", resp.Request.URL.Path, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatal(err)
	}
}
