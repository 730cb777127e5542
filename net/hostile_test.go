package net

import (
	"context"
	"crypto/rand"
	"errors"
	"io"
	stdnet "net"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/blockmix/blockmix/blocks"
)

// TestServeAnswersEachWantedIDOnce: one want-list naming one block 1024
// times gets one block back, not 1024.
func TestServeAnswersEachWantedIDOnce(t *testing.T) {
	st := blocks.NewMem()
	b := block(7)
	if err := st.PutBlock(context.Background(), b, 0); err != nil {
		t.Fatal(err)
	}
	conn, _ := serve(t, st, nil)
	ids := make([]blocks.ID, MaxWant)
	for i := range ids {
		ids[i] = b.ID()
	}
	if err := WriteFrame(conn, Frame{Kind: KindWant, IDs: ids}); err != nil {
		t.Fatal(err)
	}
	fr := NewFrameReader(conn)
	got := 0
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			t.Fatal(err)
		}
		if f.Kind == KindEnd {
			break
		}
		if f.Kind != KindBlock || f.ID != b.ID() {
			t.Fatalf("kind %d for %s", f.Kind, f.ID)
		}
		got++
	}
	if got != 1 {
		t.Fatalf("%d blocks sent for one ID named %d times, want 1", got, MaxWant)
	}
}

// randomBlocks returns n blocks of random bytes.
func randomBlocks(t *testing.T, n, size int) []blocks.Block {
	t.Helper()
	out := make([]blocks.Block, n)
	for i := range out {
		data := make([]byte, size)
		_, _ = rand.Read(data)
		b, err := blocks.NewBlock(data)
		if err != nil {
			t.Fatal(err)
		}
		out[i] = b
	}
	return out
}

// TestNonReaderIsBoundedAndCut: a peer opens many streams, asks each for
// a want-list of blocks and never reads. What the server holds for it
// stays within the per-peer budget, an honest peer is served meanwhile,
// and the non-reader's streams are reset once it reads nothing for
// WriteIdle.
func TestNonReaderIsBoundedAndCut(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	st := blocks.NewMem()
	bs := randomBlocks(t, 16, 128<<10)
	for _, b := range bs {
		if err := st.PutBlock(ctx, b, 0); err != nil {
			t.Fatal(err)
		}
	}
	lim := Limits{Queued: 4 << 20, QueuedPerPeer: 1 << 20, Streams: 64, StreamsPerPeer: 16, Conns: 64, Memory: 64 << 20, WriteIdle: 2 * time.Second}
	server, err := NewNode(Config{Limits: lim}, st, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer server.Close()
	attacker, err := NewNode(Config{}, blocks.NewMem(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer attacker.Close()
	honest, err := NewNode(Config{}, blocks.NewMem(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer honest.Close()
	connect(t, ctx, attacker, server)
	connect(t, ctx, honest, server)

	want := make([]blocks.ID, MaxWant)
	for i := range want {
		want[i] = bs[i%len(bs)].ID()
	}
	const streams = 24 // over StreamsPerPeer: the rest are refused
	var opened, cut atomic.Int32
	done := make(chan struct{}, streams)
	for range streams {
		go func() {
			defer func() { done <- struct{}{} }()
			s, err := attacker.Host.NewStream(ctx, server.Host.ID(), protocol.ID(ProtocolID))
			if err != nil {
				return
			}
			defer s.Reset()
			if err := WriteFrame(s, Frame{Kind: KindWant, IDs: want}); err != nil {
				return
			}
			opened.Add(1)
			// Never read, until the server gives up on us: a reset shows
			// as an error on the next write or as the stream's end.
			for ctx.Err() == nil {
				if err := WriteFrame(s, Frame{Kind: KindHas, IDs: want[:1]}); err != nil {
					cut.Add(1)
					return
				}
				select {
				case <-ctx.Done():
				case <-time.After(100 * time.Millisecond):
				}
			}
		}()
	}
	budget := server.Blocks.srv.Budget
	peerID := attacker.Host.ID().String()
	// While the attack runs, the attacker never holds more than its share
	// and an honest peer gets every block.
	for round := 0; round < 3; round++ {
		_ = server.Host.Network().ResourceManager().ViewProtocol(protocol.ID(ProtocolID), func(s network.ProtocolScope) error {
			if n := s.Stat().NumStreamsInbound; n > lim.StreamsPerPeer+1 {
				t.Errorf("%d inbound streams, limit %d for the attacker (and the honest peer's one)", n, lim.StreamsPerPeer)
			}
			return nil
		})
		all, mine := budget.Used(peerID)
		if mine > lim.QueuedPerPeer || all > lim.Queued {
			t.Fatalf("budget used %d (attacker %d), limits %d and %d", all, mine, lim.Queued, lim.QueuedPerPeer)
		}
		var got int
		ids := make([]blocks.ID, len(bs))
		for i, b := range bs {
			ids[i] = b.ID()
		}
		missing, err := honest.Blocks.Fetch(ctx, server.Host.ID(), ids, func(blocks.Block) error { got++; return nil })
		if err != nil || len(missing) != 0 || got != len(bs) {
			t.Fatalf("honest fetch during the attack: %d blocks, missing %d, %v", got, len(missing), err)
		}
	}
	for range streams {
		<-done
	}
	if cut.Load() != opened.Load() {
		t.Fatalf("%d of %d non-reading streams cut", cut.Load(), opened.Load())
	}
	// The cut streams' servers give their budget back as they end.
	for all, _ := budget.Used(peerID); all != 0; all, _ = budget.Used(peerID) {
		if ctx.Err() != nil {
			t.Fatalf("after the attack the budget still holds %d", all)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// liarStore says it has every block and holds none.
type liarStore struct{}

func (liarStore) Get(context.Context, blocks.ID) ([]byte, error) { return nil, blocks.ErrNotFound }
func (liarStore) Has(context.Context, blocks.ID) (bool, error)   { return true, nil }

// discardSink accepts every push and keeps nothing.
type discardSink struct{}

func (discardSink) Accept(context.Context, string, blocks.Block) error { return nil }

// TestLiarsClaimsCountForNothing: three peers accept every push, keep
// nothing and answer Have to everything. Placement does not count them,
// Copies does not count them, a hand-off does not trust them, and they are
// marked liars; the one honest peer holds every block.
func TestLiarsClaimsCountForNothing(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	up := blocks.NewMem()
	uploader, err := NewNode(Config{}, up, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer uploader.Close()
	honestStore := blocks.NewMem()
	honest, err := NewNode(Config{}, honestStore, NewStoreSink(honestStore))
	if err != nil {
		t.Fatal(err)
	}
	defer honest.Close()
	nodes := []*Node{uploader, honest}
	for range 3 {
		l, err := NewNode(Config{}, liarStore{}, discardSink{})
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		nodes = append(nodes, l)
	}
	for _, n := range nodes[1:] {
		connect(t, ctx, uploader, n)
	}
	bs := randomBlocks(t, 20, 16<<10)
	ids := make([]blocks.ID, len(bs))
	for i, b := range bs {
		ids[i] = b.ID()
		if err := up.PutBlock(ctx, b, 0); err != nil {
			t.Fatal(err)
		}
	}
	pls, err := uploader.Place(ctx, bs, 3)
	if !errors.Is(err, ErrUnderReplicated) {
		t.Fatalf("place with three liars: %v, want under-replicated", err)
	}
	for i, pl := range pls {
		if len(pl.Holders) != 1 || pl.Holders[0] != honest.Host.ID() {
			t.Fatalf("block %d: holders %v, want only the honest peer %s", i, pl.Holders, honest.Host.ID())
		}
	}
	for _, l := range nodes[2:] {
		if !uploader.Blocks.Peers.Liar(l.Host.ID()) {
			t.Fatalf("liar %s not marked", l.Host.ID())
		}
	}
	for i, c := range uploader.Copies(ctx, ids, 5) {
		if c != 1 {
			t.Fatalf("block %d: %d copies counted, want 1 (the honest peer's)", i, c)
		}
	}
	if _, err := uploader.HandOff(ctx, bs[0], 2); !errors.Is(err, ErrUnderReplicated) {
		t.Fatalf("hand-off to one honest peer and three liars: %v, want under-replicated", err)
	}
}

// TestProveNeedsTheBytes: a proof is checked against the block's bytes
// and a fresh nonce; a peer that answers with another nonce's proof, or a
// don't-have, proves nothing.
func TestProveNeedsTheBytes(t *testing.T) {
	st := blocks.NewMem()
	held, absent := block(1), block(2)
	if err := st.PutBlock(context.Background(), held, 0); err != nil {
		t.Fatal(err)
	}
	conn, _ := serve(t, st, nil)
	ok, err := Prove(context.Background(), conn, []blocks.Block{held, absent})
	if err != nil {
		t.Fatal(err)
	}
	if !ok[0] || ok[1] {
		t.Fatalf("proofs %v, want [true false]", ok)
	}
	// A replayed proof (for another nonce) fails.
	a, b := pipePair(t)
	go func() {
		fr := NewFrameReader(b)
		f, err := fr.ReadFrame()
		if err != nil {
			return
		}
		_ = WriteFrame(b, Frame{Kind: KindProof, ID: f.IDs[0], Proof: ProofOf([32]byte{}, held.Data())})
		_ = WriteFrame(b, Frame{Kind: KindEnd})
	}()
	ok, err = Prove(context.Background(), a, []blocks.Block{held})
	if err != nil || ok[0] {
		t.Fatalf("replayed proof: %v %v, want not proven", ok, err)
	}
}

func pipePair(t *testing.T) (io.ReadWriteCloser, io.ReadWriteCloser) {
	t.Helper()
	a, b := stdnet.Pipe()
	t.Cleanup(func() { a.Close(); b.Close() })
	return a, b
}

// TestProofsOfPushesAreNotPaced: a proof of a block the peer pushed on
// the same stream is not paced, once per push; the same proof asked again
// is, and so is one of a push a long stream has forgotten.
func TestProofsOfPushesAreNotPaced(t *testing.T) {
	ctx := context.Background()
	st := blocks.NewMem()
	a, c := stdnet.Pipe()
	defer a.Close()
	srv := &Server{Src: st, Sink: NewStoreSink(st), Proofs: NewProofRate(1000, 1000)}
	go func() { _ = srv.Serve(ctx, c, "peer"); c.Close() }()
	bs := make([]blocks.Block, 16)
	for i := range bs {
		bs[i] = block(100 + i)
	}
	if res, err := Push(ctx, a, bs); err != nil || slices.ContainsFunc(res, func(e error) bool { return e != nil }) {
		t.Fatalf("push: %v %v", res, err)
	}
	paced := func() bool {
		srv.Proofs.mu.Lock()
		defer srv.Proofs.mu.Unlock()
		return len(srv.Proofs.peers) > 0
	}
	for round, want := range []bool{false, true} {
		ok, err := Prove(ctx, a, bs)
		if err != nil || slices.Contains(ok, false) {
			t.Fatalf("round %d: prove: %v %v", round, ok, err)
		}
		if paced() != want {
			t.Fatalf("round %d: proofs of the stream's pushes paced: %v, want %v", round, paced(), want)
		}
	}

	// A long stream: its last pushes are remembered, its first are not.
	a2, c2 := stdnet.Pipe()
	defer a2.Close()
	go func() { _ = srv.Serve(ctx, c2, "peer2"); c2.Close() }()
	long := make([]blocks.Block, 3*maxUnpacedProofs+8)
	for i := range long {
		long[i] = block(1000 + i)
	}
	if res, err := Push(ctx, a2, long); err != nil || slices.ContainsFunc(res, func(e error) bool { return e != nil }) {
		t.Fatalf("long push: %v", err)
	}
	paced2 := func() bool {
		srv.Proofs.mu.Lock()
		defer srv.Proofs.mu.Unlock()
		return srv.Proofs.peers["peer2"] != nil
	}
	for _, c := range []struct {
		bs   []blocks.Block
		want bool
	}{{long[len(long)-4:], false}, {long[:1], true}} {
		if ok, err := Prove(ctx, a2, c.bs); err != nil || slices.Contains(ok, false) {
			t.Fatalf("prove on the long stream: %v %v", ok, err)
		}
		if paced2() != c.want {
			t.Fatalf("proofs of pushes of a long stream paced: %v, want %v", paced2(), c.want)
		}
	}
}

// TestProofsArePaced: a peer's prove-lists are answered no faster than
// the proof rate allows (each proof is a block read and hashed for an
// answer of 64 bytes). A loaded machine only makes it slower.
func TestProofsArePaced(t *testing.T) {
	st := blocks.NewMem()
	b := block(5)
	if err := st.PutBlock(context.Background(), b, 0); err != nil {
		t.Fatal(err)
	}
	a, c := stdnet.Pipe()
	defer a.Close()
	srv := &Server{Src: st, Proofs: NewProofRate(100, 1000)}
	go func() { _ = srv.Serve(context.Background(), c, "peer"); c.Close() }()
	start := time.Now()
	for range 3 {
		bs := make([]blocks.Block, MaxProve)
		for i := range bs {
			bs[i] = b
		}
		ok, err := Prove(context.Background(), a, bs)
		if err != nil || !ok[0] || !ok[MaxProve-1] {
			t.Fatalf("prove: %v %v", ok, err)
		}
	}
	// 192 proofs at 100 a second after a burst of 100: at least 0.9 s.
	if d := time.Since(start); d < 900*time.Millisecond {
		t.Fatalf("192 proofs in %v, faster than 100 a second after a burst of 100", d)
	}
}
