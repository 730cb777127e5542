package node

import (
	"context"
	"crypto/rand"
	"fmt"
	"testing"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/blockmix/blockmix/blocks"
	"github.com/blockmix/blockmix/blocks/erasure"
)

// TestSpreadStripe: an rs:4+2 stripe whose every block has a holder, but
// where two nodes hold three of its blocks between them (A on P, B on P
// and Q, C on Q: copies a holder's repair made), can lose one node only.
// spreadStripe picks blocks to copy to nodes that hold none of the
// stripe until it can lose two again, and says to avoid every holder. A
// stripe that can lose two, or a network with no free node, gets none.
func TestSpreadStripe(t *testing.T) {
	ctx := context.Background()
	st := blocks.NewMem()
	var ids []blocks.ID
	for range 6 {
		d := make([]byte, 1024)
		rand.Read(d)
		b, err := blocks.NewBlock(d)
		if err != nil {
			t.Fatal(err)
		}
		if err := st.PutBlock(ctx, b, 0); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, b.ID())
	}
	man := erasure.Manifest{Scheme: erasure.Scheme{K: 4, M: 2}}
	stripe := erasure.Stripe{Size: 1024, Data: ids[:4], Parity: ids[4:]}
	man.Stripes = []erasure.Stripe{stripe}
	p := func(name string) peer.ID { return peer.ID(name) }
	names := func(hs [][]peer.ID) [][]string {
		out := make([][]string, len(hs))
		for i, h := range hs {
			for _, x := range h {
				out[i] = append(out[i], x.String())
			}
		}
		return out
	}

	bad := [][]peer.ID{{p("P")}, {p("P"), p("Q")}, {p("Q")}, {p("R")}, {p("S")}, {p("T")}}
	if c := erasure.CanLose(names(bad), 0, 4); c != 1 {
		t.Fatalf("the test's stripe can lose %d nodes, want 1", c)
	}
	got, avoid := spreadStripe(ctx, st, man, stripe, bad, 8)
	if len(got) == 0 {
		t.Fatal("a stripe that can lose one node only got no copies")
	}
	after := names(bad)
	for k, b := range got {
		i := -1
		for j, id := range ids {
			if id == b.ID() {
				i = j
			}
		}
		if i < 0 || blocks.Check(b.ID(), b.Data()) != nil {
			t.Fatalf("copy %d is not a block of the stripe", k)
		}
		after[i] = append(after[i], fmt.Sprint("new ", k))
	}
	if c := erasure.CanLose(after, 0, 4); c < 2 {
		t.Fatalf("with the %d copies the stripe can lose %d nodes, want 2", len(got), c)
	}
	for _, x := range []string{"P", "Q", "R", "S", "T"} {
		if !avoid[p(x)] {
			t.Errorf("the copies may go to %s, which holds a block of the stripe", x)
		}
	}

	if got, _ := spreadStripe(ctx, st, man, stripe, bad, 5); len(got) != 0 {
		t.Errorf("with no node free of the stripe, %d copies were picked", len(got))
	}
	good := [][]peer.ID{{p("P")}, {p("Q")}, {p("U")}, {p("R")}, {p("S")}, {p("T")}}
	if got, _ := spreadStripe(ctx, st, man, stripe, good, 8); len(got) != 0 {
		t.Errorf("a stripe that can lose two nodes got %d copies", len(got))
	}
}
