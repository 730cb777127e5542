package node

import (
	"bytes"
	"context"
	"math/rand/v2"
	"testing"

	"github.com/blockmix/blockmix/mixer"
	"github.com/blockmix/blockmix/recipe"
)

// TestPutSharedBeforeIndex: the index of the list that puts search
// follows files that leave it other than through a put (a removal) and
// ones that come through the store itself: a removed file is not found
// again, and a file recorded behind the index's back is.
func TestPutSharedBeforeIndex(t *testing.T) {
	ctx := context.Background()
	n := startNode(t, ctx, nil)
	data := make([]byte, 40<<10)
	rand.NewChaCha8([32]byte{9}).Read(data)
	put := func() (string, bool) {
		t.Helper()
		p, err := n.Put(ctx, bytes.NewReader(data), int64(len(data)), "x.bin", "")
		if err != nil {
			t.Fatal(err)
		}
		return p.Recipe, !p.SharedBefore.IsZero()
	}
	first, again := put()
	if again {
		t.Fatal("the first put was found shared before")
	}
	if r, again := put(); !again || r != first {
		t.Fatalf("second put: %s shared before %v, want %s", r, again, first)
	}
	rc, _ := recipe.Parse(first)
	if err := n.Remove(ctx, rc.Key()); err != nil {
		t.Fatal(err)
	}
	second, again := put()
	if again || second == first {
		t.Fatalf("after a removal: %s shared before %v", second, again)
	}
	// A file recorded behind the index's back (as a fetch or pin does,
	// or an offline put): the next put finds it.
	other := make([]byte, 30<<10)
	rand.NewChaCha8([32]byte{10}).Read(other)
	m, err := mixer.New(n.st, mixer.Options{})
	if err != nil {
		t.Fatal(err)
	}
	res, err := recipe.Put(ctx, m, n.st, bytes.NewReader(other), int64(len(other)), "y.bin", "application/octet-stream", nil)
	if err != nil {
		t.Fatal(err)
	}
	p, err := n.Put(ctx, bytes.NewReader(other), int64(len(other)), "y.bin", "application/octet-stream")
	if err != nil || p.SharedBefore.IsZero() || p.Recipe != res.Recipe.String() {
		t.Fatalf("a file recorded behind the index's back: %+v %v (want %s)", p, err, res.Recipe)
	}
}
