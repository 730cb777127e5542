package net

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	stdnet "net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/blockmix/blockmix/blocks"
)

func block(i int) blocks.Block {
	b, err := blocks.NewBlock(bytes.Repeat([]byte(fmt.Sprintf("block %d ", i)), 100))
	if err != nil {
		panic(err)
	}
	return b
}

// serve runs Serve on one end of a pipe and returns the other end; the
// test's cleanup closes both and waits for Serve.
func serve(t *testing.T, src blocks.Getter, sink Sink) (stdnet.Conn, <-chan error) {
	t.Helper()
	a, b := stdnet.Pipe()
	result := make(chan error, 1)
	finished := make(chan struct{})
	go func() {
		result <- Serve(context.Background(), b, "client", src, sink)
		b.Close()
		close(finished)
	}()
	t.Cleanup(func() {
		a.Close()
		select {
		case <-finished:
		case <-time.After(10 * time.Second):
			t.Error("Serve did not return after its stream closed")
		}
	})
	return a, result
}

func TestFetch(t *testing.T) {
	st := blocks.NewMem()
	var ids []blocks.ID
	for i := 0; i < 3; i++ {
		b := block(i)
		if err := st.PutBlock(context.Background(), b, 0); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, b.ID())
	}
	absent := block(99).ID()
	conn, _ := serve(t, st, nil)
	got := map[blocks.ID][]byte{}
	missing, err := Fetch(context.Background(), conn, append(ids, absent), func(b blocks.Block) error {
		got[b.ID()] = append([]byte(nil), b.Data()...)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(missing) != 1 || missing[0] != absent {
		t.Fatalf("missing %v, want [%s]", missing, absent)
	}
	for i, id := range ids {
		if !bytes.Equal(got[id], block(i).Data()) {
			t.Fatalf("block %d differs", i)
		}
	}
	// A second want-list on the same stream.
	if _, err := Fetch(context.Background(), conn, ids[:1], func(blocks.Block) error { return nil }); err != nil {
		t.Fatal(err)
	}
}

// liar answers every want-list with the frames fake returns.
func liar(t *testing.T, fake func(want Frame) []Frame) stdnet.Conn {
	t.Helper()
	a, b := stdnet.Pipe()
	go func() {
		defer b.Close()
		fr := NewFrameReader(b)
		for {
			f, err := fr.ReadFrame()
			if err != nil {
				return
			}
			for _, ans := range fake(f) {
				if WriteFrame(b, ans) != nil {
					return
				}
			}
		}
	}()
	t.Cleanup(func() { a.Close() })
	return a
}

func TestFetchFromLiars(t *testing.T) {
	good, other := block(1), block(2)
	cases := map[string]func(Frame) []Frame{
		"wrong bytes": func(w Frame) []Frame {
			return []Frame{{Kind: KindBlock, ID: good.ID(), Data: other.Data()}, {Kind: KindEnd}}
		},
		"unasked block": func(w Frame) []Frame {
			return []Frame{{Kind: KindBlock, ID: other.ID(), Data: other.Data()}, {Kind: KindEnd}}
		},
	}
	for name, fake := range cases {
		t.Run(name, func(t *testing.T) {
			conn := liar(t, fake)
			_, err := Fetch(context.Background(), conn, []blocks.ID{good.ID()}, func(blocks.Block) error {
				t.Fatal("a lie was delivered")
				return nil
			})
			if !errors.Is(err, ErrPeerLied) {
				t.Fatalf("got %v, want ErrPeerLied", err)
			}
		})
	}
	t.Run("end too soon", func(t *testing.T) {
		conn := liar(t, func(Frame) []Frame { return []Frame{{Kind: KindEnd}} })
		_, err := Fetch(context.Background(), conn, []blocks.ID{good.ID()}, func(blocks.Block) error { return nil })
		if !errors.Is(err, ErrBadFrame) {
			t.Fatalf("got %v, want ErrBadFrame", err)
		}
	})
}

// TestFetchStalledPeer: a peer that never answers costs the caller its
// deadline, not a hang.
func TestFetchStalledPeer(t *testing.T) {
	conn := liar(t, func(Frame) []Frame { return nil })
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := Fetch(ctx, conn, []blocks.ID{block(1).ID()}, func(blocks.Block) error { return nil })
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v, want a deadline error", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("a stalled peer held Fetch for %v", d)
	}
}

// TestFetchPeerVanishes: the peer closes the stream after one block.
func TestFetchPeerVanishes(t *testing.T) {
	b1, b2 := block(1), block(2)
	a, b := stdnet.Pipe()
	go func() {
		fr := NewFrameReader(b)
		if _, err := fr.ReadFrame(); err == nil {
			_ = WriteFrame(b, Frame{Kind: KindBlock, ID: b1.ID(), Data: b1.Data()})
		}
		b.Close()
	}()
	defer a.Close()
	n := 0
	_, err := Fetch(context.Background(), a, []blocks.ID{b1.ID(), b2.ID()}, func(blocks.Block) error { n++; return nil })
	if err == nil || n != 1 {
		t.Fatalf("got %d blocks and %v; want 1 block and an error", n, err)
	}
}

type quotaSink struct {
	st   *blocks.Mem
	mu   sync.Mutex
	left int
}

func (q *quotaSink) Accept(ctx context.Context, peer string, b blocks.Block) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(b.Data()) > q.left {
		return &Refusal{Code: RefuseQuota, Text: "quota full"}
	}
	q.left -= len(b.Data())
	return q.st.PutBlock(ctx, b, blocks.PushTag(peer, FreshTag())) // as StoreSink tags a pushed block
}

func TestPush(t *testing.T) {
	st := blocks.NewMem()
	sink := &quotaSink{st: st, left: 2 * len(block(0).Data())}
	conn, _ := serve(t, st, sink)
	bs := []blocks.Block{block(0), block(1), block(2)}
	res, err := Push(context.Background(), conn, bs)
	if err != nil {
		t.Fatal(err)
	}
	var r *Refusal
	if res[0] != nil || res[1] != nil || !errors.As(res[2], &r) || r.Code != RefuseQuota {
		t.Fatalf("push results %v; want accept, accept, quota", res)
	}
	if ok, _ := st.Has(context.Background(), bs[1].ID()); !ok {
		t.Fatal("an accepted block is not stored")
	}
}

// TestPushCorrupt: a push whose bytes do not match its ID is refused as
// corrupt, stored nowhere, and the stream goes on.
func TestPushCorrupt(t *testing.T) {
	st := blocks.NewMem()
	conn, _ := serve(t, st, &quotaSink{st: st, left: 1 << 20})
	good := block(1)
	if err := WriteFrame(conn, Frame{Kind: KindPush, ID: good.ID(), Data: block(2).Data()}); err != nil {
		t.Fatal(err)
	}
	f, err := NewFrameReader(conn).ReadFrame()
	if err != nil || f.Kind != KindRefuse || f.Reason != RefuseCorrupt {
		t.Fatalf("answer %+v, %v; want a corrupt refusal", f, err)
	}
	if ok, _ := st.Has(context.Background(), good.ID()); ok {
		t.Fatal("a corrupt push was stored")
	}
	if res, err := Push(context.Background(), conn, []blocks.Block{good}); err != nil || res[0] != nil {
		t.Fatalf("push after a corrupt one: %v %v", res, err)
	}
}

// TestServeRejectsOversizeFrame: a length over MaxFrame ends the stream with
// ErrBadFrame before anything is allocated.
func TestServeRejectsOversizeFrame(t *testing.T) {
	conn, result := serve(t, blocks.NewMem(), nil)
	go conn.Write([]byte{0xff, 0xff, 0xff, 0xff, 0x0f, KindPush})
	select {
	case err := <-result:
		if !errors.Is(err, ErrBadFrame) {
			t.Fatalf("Serve returned %v, want ErrBadFrame", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not reject the frame")
	}
}

// TestPushMany: many pushes in flight at once, answered in order.
func TestPushMany(t *testing.T) {
	st := blocks.NewMem()
	conn, _ := serve(t, st, &quotaSink{st: st, left: 1 << 30})
	var bs []blocks.Block
	for i := 0; i < 200; i++ {
		bs = append(bs, block(1000+i))
	}
	res, err := Push(context.Background(), conn, bs)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range res {
		if r != nil {
			t.Fatalf("push %d refused: %v", i, r)
		}
		if ok, _ := st.Has(context.Background(), bs[i].ID()); !ok {
			t.Fatalf("block %d not stored", i)
		}
	}
}

// flushSink counts Flushes, takes a while for each, and remembers which
// accepted blocks a Flush made durable; it fails when told to.
type flushSink struct {
	mu               sync.Mutex
	accepted, stored []blocks.ID
	flushes          int
	fail             error
}

func (s *flushSink) Accept(_ context.Context, _ string, b blocks.Block) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.accepted = append(s.accepted, b.ID())
	return nil
}

func (s *flushSink) Flush(context.Context) error {
	time.Sleep(10 * time.Millisecond) // an fsync
	s.mu.Lock()
	defer s.mu.Unlock()
	s.flushes++
	if s.fail != nil {
		return s.fail
	}
	s.stored = append([]blocks.ID(nil), s.accepted...)
	return nil
}

// TestPushesShareFlushes: a pushed block is answered Accept only once a
// Flush made it durable, and pipelined pushes share Flushes.
func TestPushesShareFlushes(t *testing.T) {
	sink := &flushSink{}
	conn, _ := serve(t, blocks.NewMem(), sink)
	var bs []blocks.Block
	for i := 0; i < 200; i++ {
		bs = append(bs, block(2000+i))
	}
	res, err := Push(context.Background(), conn, bs)
	if err != nil {
		t.Fatal(err)
	}
	sink.mu.Lock()
	defer sink.mu.Unlock()
	durable := map[blocks.ID]bool{}
	for _, id := range sink.stored {
		durable[id] = true
	}
	for i, r := range res {
		if r != nil || !durable[bs[i].ID()] {
			t.Fatalf("push %d: answer %v, durable %v", i, r, durable[bs[i].ID()])
		}
	}
	t.Logf("%d pushes, %d flushes", len(bs), sink.flushes)
	if sink.flushes > len(bs)/4 {
		t.Fatalf("%d flushes for %d pipelined pushes", sink.flushes, len(bs))
	}
}

// TestPushFlushFails: when the sink cannot make blocks durable, the pushes
// are refused with the reason, not accepted.
func TestPushFlushFails(t *testing.T) {
	sink := &flushSink{fail: errors.New("disk on fire")}
	conn, _ := serve(t, blocks.NewMem(), sink)
	res, err := Push(context.Background(), conn, []blocks.Block{block(1), block(2)})
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range res {
		var ref *Refusal
		if !errors.As(r, &ref) || ref.Code != RefuseError || !strings.Contains(ref.Text, "disk on fire") {
			t.Fatalf("push %d: %v, want a refusal that says why", i, r)
		}
	}
}

// TestHas: a has-list is answered per ID without the blocks' bytes.
func TestHas(t *testing.T) {
	st := blocks.NewMem()
	for _, i := range []int{1, 3} {
		if err := st.PutBlock(context.Background(), block(i), uint64(i)); err != nil {
			t.Fatal(err)
		}
	}
	conn, _ := serve(t, st, nil)
	got, err := Has(context.Background(), conn, []blocks.ID{block(1).ID(), block(2).ID(), block(3).ID()})
	if err != nil || len(got) != 3 || !got[0] || got[1] || !got[2] {
		t.Fatalf("has %v, %v; want [true false true]", got, err)
	}
	// The stream goes on.
	if got, err := Has(context.Background(), conn, []blocks.ID{block(2).ID()}); err != nil || got[0] {
		t.Fatalf("second has-list: %v, %v", got, err)
	}
}
