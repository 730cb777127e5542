package hostile

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/blockmix/blockmix/blocks"
	bmnet "github.com/blockmix/blockmix/net"
)

// TestPollSeesReset: the instrument of the flood test. A server that
// answers a want-list with more than a stream window and never resets is
// not cut; once it resets, Poll sees it; and the hostile side read nothing
// of the answer meanwhile.
func TestPollSeesReset(t *testing.T) {
	srv, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	reset := make(chan struct{})
	served := make(chan struct{}, 1)
	var wrote atomic.Bool
	srv.Host.SetStreamHandler(protocol.ID(bmnet.ProtocolID), func(s network.Stream) {
		if _, err := bmnet.NewFrameReader(s).ReadFrame(); err != nil {
			_ = s.Reset()
			return
		}
		// More than the 256 KiB window: the writer blocks, unread.
		go func() {
			if _, err := s.Write(make([]byte, 512<<10)); err == nil {
				wrote.Store(true)
			}
		}()
		served <- struct{}{}
		<-reset
		_ = s.Reset()
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	f, err := StartFlood(ctx, srv.AddrInfo(), FloodConfig{Peers: 1, Streams: 1, Repeat: 3, ID: blocks.Sum([]byte("x"))})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	<-served
	for range 20 {
		if st := f.Poll(); st.Streams != 1 || st.Cut != 0 {
			t.Fatalf("before the reset: %+v", st)
		}
	}
	if wrote.Load() {
		t.Fatal("the server wrote 512 KiB: Poll read the answer")
	}
	close(reset)
	deadline := time.Now().Add(10 * time.Second)
	for f.Poll().Cut != 1 {
		if time.Now().After(deadline) {
			t.Fatal("Poll did not see the reset within 10 s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestLiar: a liar accepts every push, claims every block and serves none.
func TestLiar(t *testing.T) {
	liar, err := New(Options{Liar: true})
	if err != nil {
		t.Fatal(err)
	}
	defer liar.Close()
	asker, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer asker.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r, err := Push(ctx, asker, liar.AddrInfo(), 3, func(i int) []byte { return []byte{byte(i), 1, 2, 3} })
	if err != nil || r.Accepted != 3 {
		t.Fatalf("push to a liar: %+v, %v", r, err)
	}
	id := blocks.Sum([]byte{0, 1, 2, 3})
	s, err := asker.stream(ctx, liar.AddrInfo())
	if err != nil {
		t.Fatal(err)
	}
	have, err := bmnet.Has(ctx, s, []blocks.ID{id})
	if err != nil || !have[0] {
		t.Fatalf("has-list to a liar: %v, %v", have, err)
	}
	_ = s.Close()
	_, missing, err := Fetch(ctx, asker, liar.AddrInfo(), []blocks.ID{id})
	if err != nil || len(missing) != 1 {
		t.Fatalf("fetch from a liar: missing %v, %v", missing, err)
	}
	if liar.PushesDiscarded.Load() != 3 || liar.HavesClaimed.Load() != 1 {
		t.Fatalf("the liar's counts: %d pushes, %d haves", liar.PushesDiscarded.Load(), liar.HavesClaimed.Load())
	}
}
