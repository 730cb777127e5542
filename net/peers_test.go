package net

import (
	"fmt"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

func TestBookRanks(t *testing.T) {
	var b Book
	now := time.Now()
	fast, slow, flaky, liar, unknown := peer.ID("fast"), peer.ID("slow"), peer.ID("flaky"), peer.ID("liar"), peer.ID("new")
	for i := 0; i < 10; i++ {
		b.Success(fast, 2*time.Millisecond, 1000)
		b.Success(slow, 200*time.Millisecond, 1000)
		b.Success(flaky, 2*time.Millisecond, 1000)
		b.Failure(flaky)
		b.Failure(flaky)
		b.Success(liar, time.Millisecond, 1000)
	}
	b.Lie(liar, now)
	got := b.Rank([]peer.ID{slow, liar, unknown, flaky, fast}, now)
	want := []peer.ID{fast, flaky, unknown, slow}
	if len(got) != len(want) {
		t.Fatalf("rank %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("rank %v, want %v", got, want)
		}
	}
	if s := b.Stats(fast); s.Successes != 10 || s.BytesIn != 10000 || s.Latency != 2*time.Millisecond {
		t.Fatalf("stats of fast: %+v", s)
	}
	// A liar is forgiven after the penalty, with its failures remembered.
	later := now.Add(liePenalty + time.Second)
	if r := b.Rank([]peer.ID{liar}, later); len(r) != 1 {
		t.Fatal("a liar was not forgiven after the penalty")
	}
	if s := b.Stats(liar); s.Lies != 1 || s.Reliability() >= b.Stats(fast).Reliability() {
		t.Fatalf("liar stats %+v", s)
	}
}

// TestBookForgetsOldPeers: a book at its bound forgets the peers heard
// from least recently to make room, and keeps a recent liar's mark.
func TestBookForgetsOldPeers(t *testing.T) {
	defer func(n int) { bookSize = n }(bookSize)
	bookSize = 16
	var b Book
	ids := make([]peer.ID, 40)
	for i := range ids {
		ids[i] = peer.ID(fmt.Sprintf("peer-%02d", i))
	}
	b.Lie(ids[0], time.Now())
	for _, p := range ids[1:] {
		b.Success(p, time.Millisecond, 1)
	}
	b.mu.Lock()
	n := len(b.m)
	b.mu.Unlock()
	if n > bookSize {
		t.Fatalf("the book holds %d peers, bound %d", n, bookSize)
	}
	if !b.Liar(ids[0]) {
		t.Error("the liar was forgotten while honest peers were kept")
	}
	if b.Stats(ids[39]).Successes != 1 {
		t.Error("the newest peer is not in the book")
	}
	if b.Stats(ids[1]).Successes != 0 {
		t.Error("the oldest honest peer is still in the book")
	}
}
