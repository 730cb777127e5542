package webui

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/blockmix/blockmix/blocks"
	"github.com/blockmix/blockmix/recipe"
)

// armedGetter fails every Get once armed.
type armedGetter struct {
	g     blocks.Getter
	armed atomic.Bool
}

var errDiskOnFire = errors.New("the disk is on fire")

func (a *armedGetter) Get(ctx context.Context, id blocks.ID) ([]byte, error) {
	if a.armed.Load() {
		return nil, errDiskOnFire
	}
	return a.g.Get(ctx, id)
}

// cutNode opens files whose descriptor reads fine and whose data blocks
// then fail.
type cutNode struct{ *memNode }

func (n cutNode) Open(ctx context.Context, rc recipe.Recipe) (*recipe.Reader, error) {
	g := &armedGetter{g: n.st}
	r, err := recipe.Open(ctx, g, rc, recipe.Options{})
	g.armed.Store(true)
	return r, err
}

// syncBuffer is a bytes.Buffer safe for a logger's concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestGetFailureIsLogged: a get that fails after its headers went out
// cuts the connection, and the log says which file failed and why.
func TestGetFailureIsLogged(t *testing.T) {
	n := cutNode{newMemNode(t)}
	var logs syncBuffer
	srv := httptest.NewServer(New(n, Options{Log: slog.New(slog.NewTextHandler(&logs, nil))}))
	defer srv.Close()
	data := make([]byte, 700<<10)
	rand.NewChaCha8([32]byte{3}).Read(data)
	info := putMem(t, n.memNode, "cut.bin", data)

	// The headers may or may not have gone out before the first block
	// failed: either way the client sees a cut answer.
	resp, err := srv.Client().Get(srv.URL + "/api/v1/get?recipe=" + url.QueryEscape(info.Recipe))
	if err == nil {
		var body bytes.Buffer
		_, readErr := body.ReadFrom(resp.Body)
		resp.Body.Close()
		if readErr == nil && body.Len() == len(data) {
			t.Fatal("a get whose blocks fail came back whole")
		}
	}
	out := logs.String()
	for _, want := range []string{"get failed", "cut.bin", errDiskOnFire.Error()} {
		if !strings.Contains(out, want) {
			t.Errorf("the log lacks %q:\n%s", want, out)
		}
	}
}

// TestGetFailureTrailer: a client that asks for trailer=1 (the command
// line) reads why a get stopped after its headers: the ErrorTrailer says
// it, not a cut connection.
func TestGetFailureTrailer(t *testing.T) {
	n := cutNode{newMemNode(t)}
	srv := httptest.NewServer(New(n, Options{Log: slog.New(slog.DiscardHandler)}))
	defer srv.Close()
	data := make([]byte, 700<<10)
	rand.NewChaCha8([32]byte{4}).Read(data)
	info := putMem(t, n.memNode, "cut.bin", data)
	resp, err := srv.Client().Get(srv.URL + "/api/v1/get?trailer=1&recipe=" + url.QueryEscape(info.Recipe))
	if err != nil {
		t.Fatal(err)
	}
	var body bytes.Buffer
	_, err = body.ReadFrom(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("status %d, read: %v", resp.StatusCode, err)
	}
	if got := resp.Trailer.Get(ErrorTrailer); !strings.Contains(got, errDiskOnFire.Error()) || body.Len() >= len(data) {
		t.Fatalf("trailer %q after %d of %d bytes", got, body.Len(), len(data))
	}
}
