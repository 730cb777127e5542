package webui

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/blockmix/blockmix/blocks"
	"github.com/blockmix/blockmix/mixer"
	"github.com/blockmix/blockmix/recipe"
)

// memNode is a Node over an in-memory store, without a network.
type memNode struct {
	st *blocks.Mem
	m  *mixer.Mixer
}

func (n *memNode) ID() IDInfo {
	return IDInfo{ID: "test", Addrs: []string{"/ip4/127.0.0.1/tcp/1/p2p/test"}}
}
func (n *memNode) Peers() []PeerInfo                               { return nil }
func (n *memNode) Stats(ctx context.Context) (blocks.Stats, error) { return n.st.Stats(ctx) }
func (n *memNode) Open(ctx context.Context, rc recipe.Recipe) (*recipe.Reader, error) {
	return recipe.Open(ctx, n.st, rc, recipe.Options{})
}
func (n *memNode) Put(ctx context.Context, r io.Reader, size int64, name, typ string) (PutInfo, error) {
	res, err := recipe.Put(ctx, n.m, n.st, r, size, name, typ, nil)
	if err != nil {
		return PutInfo{}, err
	}
	return PutInfo{Recipe: res.Recipe.String(), Name: res.Recipe.Name, Size: res.Recipe.Size, Blocks: len(res.Blocks)}, nil
}

func TestAPI(t *testing.T) {
	st := blocks.NewMem()
	m, err := mixer.New(st, mixer.Options{})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(API(&memNode{st: st, m: m}))
	defer srv.Close()

	data := make([]byte, 300<<10+9)
	rand.NewChaCha8([32]byte{3}).Read(data)
	resp, err := http.Post(srv.URL+"/api/v1/put?name=a.bin&size="+strconv.Itoa(len(data)), "application/octet-stream", bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	var info PutInfo
	if err := json.NewDecoder(resp.Body).Decode(&info); err != nil || resp.StatusCode != 200 || info.Size != int64(len(data)) {
		t.Fatalf("put: %d %+v %v", resp.StatusCode, info, err)
	}
	resp.Body.Close()

	resp, err = http.Get(srv.URL + "/api/v1/get?" + url.Values{"recipe": {info.Recipe}}.Encode())
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !bytes.Equal(got, data) {
		t.Fatalf("get: %d, %d bytes", resp.StatusCode, len(got))
	}

	// A damaged recipe: 400 with a JSON error that says so.
	resp, err = http.Get(srv.URL + "/api/v1/get?recipe=blockmix:abc")
	if err != nil {
		t.Fatal(err)
	}
	var e ErrorBody
	_ = json.NewDecoder(resp.Body).Decode(&e)
	resp.Body.Close()
	if resp.StatusCode != 400 || !strings.Contains(e.Error, "damaged recipe") {
		t.Fatalf("damaged recipe: %d %q", resp.StatusCode, e.Error)
	}

	// A recipe whose blocks are nowhere: 404.
	other := blocks.NewMem()
	m2, _ := mixer.New(other, mixer.Options{})
	res, err := recipe.Put(context.Background(), m2, other, bytes.NewReader([]byte("elsewhere")), 9, "x", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err = http.Get(srv.URL + "/api/v1/get?" + url.Values{"recipe": {res.Recipe.String()}}.Encode())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 404 {
		t.Fatalf("missing blocks: %d, want 404", resp.StatusCode)
	}

	resp, err = http.Get(srv.URL + "/api/v1/stat")
	if err != nil {
		t.Fatal(err)
	}
	var s blocks.Stats
	_ = json.NewDecoder(resp.Body).Decode(&s)
	resp.Body.Close()
	if s.Files != 1 || s.FileBytes != int64(len(data)) {
		t.Fatalf("stat: %+v", s)
	}
}
