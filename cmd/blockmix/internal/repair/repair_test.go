package repair

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/blockmix/blockmix/blocks"
	"github.com/blockmix/blockmix/cmd/blockmix/internal/metrics"
	bmnet "github.com/blockmix/blockmix/net"
)

// mockNetwork starts n blockmix nodes on libp2p's in-process network, all
// connected, each over its own memory store that takes pushes, and waits
// until every routing table knows the others.
func mockNetwork(t *testing.T, ctx context.Context, n int) ([]*bmnet.Node, []*blocks.Mem) {
	t.Helper()
	mn := mocknet.New()
	t.Cleanup(func() { mn.Close() })
	var nodes []*bmnet.Node
	var stores []*blocks.Mem
	for range n {
		h, err := mn.GenPeer()
		if err != nil {
			t.Fatal(err)
		}
		st := blocks.NewMem()
		node, err := bmnet.NewNodeOn(h, bmnet.Config{}, st, bmnet.NewStoreSink(st))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { node.Close() })
		nodes, stores = append(nodes, node), append(stores, st)
	}
	if err := mn.LinkAll(); err != nil {
		t.Fatal(err)
	}
	if err := mn.ConnectAllButSelf(); err != nil {
		t.Fatal(err)
	}
	for i, node := range nodes {
		for node.DHT.RoutingTable().Size() < n-1 {
			if ctx.Err() != nil {
				t.Fatalf("node %d: %d peers in its routing table, want %d", i, node.DHT.RoutingTable().Size(), n-1)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	return nodes, stores
}

// randomBlocks puts n random 16 KiB blocks into st.
func randomBlocks(t *testing.T, st *blocks.Mem, n int, seed byte) []blocks.Block {
	t.Helper()
	rng := rand.NewChaCha8([32]byte{seed})
	var out []blocks.Block
	for i := range n {
		d := make([]byte, 16<<10)
		rng.Read(d)
		b, err := blocks.NewBlock(d)
		if err != nil {
			t.Fatal(err)
		}
		if err := st.PutBlock(context.Background(), b, uint64(i+1)); err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

// holders counts the stores that hold id.
func holders(stores []*blocks.Mem, id blocks.ID) int {
	n := 0
	for _, st := range stores {
		if ok, _ := st.Has(context.Background(), id); ok {
			n++
		}
	}
	return n
}

// TestRepairRound: node 0 alone holds 60 blocks. A round gives every block
// it is one of the 3 closest to its copies on the 2 other closest nodes,
// and leaves the rest alone; the next round finds nothing short. When a
// holder leaves, a round on node 0 brings its blocks back to 3 copies on
// the nodes still there.
func TestRepairRound(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	nodes, stores := mockNetwork(t, ctx, 6)
	bs := randomBlocks(t, stores[0], 60, 1)
	m := metrics.New()
	r := NewRepairer(stores[0], stores[0], nodes[0], 3, 0, slog.New(slog.DiscardHandler), m)

	var ours []blocks.ID
	for _, b := range bs {
		if nodes[0].Responsible(b.ID(), 3) {
			ours = append(ours, b.ID())
		}
	}
	if len(ours) == 0 || len(ours) == len(bs) {
		t.Fatalf("node 0 is among the 3 closest to %d of %d blocks: the test needs some of each", len(ours), len(bs))
	}
	info := r.Round(ctx)
	if info.Checked != len(ours) || info.Short != len(ours) || info.Repaired != len(ours) || info.StillShort != 0 {
		t.Fatalf("first round: %+v; want %d checked, short and repaired", info, len(ours))
	}
	for _, id := range ours {
		if got := holders(stores, id); got != 3 {
			t.Errorf("block %s: %d copies after the round, want 3", id, got)
		}
	}
	for _, b := range bs {
		if !nodes[0].Responsible(b.ID(), 3) && holders(stores, b.ID()) != 1 {
			t.Errorf("block %s, which node 0 does not hold for the network, was pushed", b.ID())
		}
	}
	if again := r.Round(ctx); again.Short != 0 || again.Checked != len(ours) {
		t.Fatalf("second round: %+v; want nothing short", again)
	}

	// A holder leaves for good.
	gone := -1
	for i := 1; i < len(nodes) && gone < 0; i++ {
		if holders(stores[i:i+1], ours[0]) == 1 {
			gone = i
		}
	}
	nodes[gone].Close()
	waitGone(t, ctx, nodes[0], nodes[gone])
	after := r.Round(ctx)
	if after.Short == 0 || after.StillShort != 0 {
		t.Fatalf("round after node %d left: %+v; want its blocks short, then repaired", gone, after)
	}
	for _, id := range ours {
		live := 0
		for i, st := range stores {
			if ok, _ := st.Has(ctx, id); ok && i != gone {
				live++
			}
		}
		// Node 0 is still among the closest for most; any it no longer is
		// keep at least their 3 copies somewhere live.
		if live < 3 {
			t.Errorf("block %s: %d live copies after the repair, want 3", id, live)
		}
	}

	// Run repeats rounds, counts them and ends with its context.
	rctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { r.Run(rctx, 10*time.Millisecond); close(done) }()
	for testutil.ToFloat64(m.RepairRounds) < 2 {
		if ctx.Err() != nil {
			t.Fatal("Run ran fewer than 2 rounds in a minute")
		}
		time.Sleep(5 * time.Millisecond)
	}
	stop()
	<-done
	if last := r.LastRound(); last.Finished.IsZero() || last.Checked == 0 {
		t.Errorf("LastRound after Run: %+v", last)
	}
}

// waitGone waits until a sees that b is gone: b leaves its routing table
// or a's probe of unconnected peers fails on it.
func waitGone(t *testing.T, ctx context.Context, a, b *bmnet.Node) {
	t.Helper()
	for a.Host.Network().Connectedness(b.Host.ID()) == 1 { // network.Connected
		if ctx.Err() != nil {
			t.Fatal("the closed node still looks connected")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestScrubHeals: a block whose bytes rotted on node 0 is quarantined by
// the scrub and fetched again from node 1, which holds a good copy; the
// metrics count it. A rotten block nobody else holds stays quarantined
// until a peer has it: the next round asks for it again.
func TestScrubHeals(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	nodes, stores := mockNetwork(t, ctx, 2)
	bs := randomBlocks(t, stores[0], 10, 2)
	if err := stores[1].PutBlock(ctx, bs[3], 99); err != nil {
		t.Fatal(err)
	}
	stores[0].Corrupt(bs[3].ID())
	stores[0].Corrupt(bs[5].ID()) // no other copy anywhere
	m := metrics.New()
	refill := func(ctx context.Context, id blocks.ID) error {
		_, err := bmnet.NewFetcher(nodes[0], stores[0]).Get(ctx, id)
		return err
	}
	s := NewScrubber(stores[0], refill, 0, slog.New(slog.DiscardHandler), m)
	s.Round(ctx)
	if got, err := stores[0].Get(ctx, bs[3].ID()); err != nil || blocks.Check(bs[3].ID(), got) != nil {
		t.Fatalf("the rotten block with a good copy elsewhere was not healed: %v", err)
	}
	if _, err := stores[0].Get(ctx, bs[5].ID()); err == nil {
		t.Fatal("a rotten block nobody else holds reads as good")
	}
	if s.Healed() != 1 || testutil.ToFloat64(m.ScrubHealed) != 1 || testutil.ToFloat64(m.ScrubCorrupt) != 2 {
		t.Fatalf("healed %d, metric healed %v, corrupt %v; want 1, 1, 2", s.Healed(), testutil.ToFloat64(m.ScrubHealed), testutil.ToFloat64(m.ScrubCorrupt))
	}
	if err := stores[1].PutBlock(ctx, bs[5], 99); err != nil {
		t.Fatal(err)
	}
	s.Round(ctx)
	if got, err := stores[0].Get(ctx, bs[5].ID()); err != nil || blocks.Check(bs[5].ID(), got) != nil {
		t.Fatalf("a quarantined block was not asked for again once a peer had it: %v", err)
	}
	if s.Healed() != 2 || testutil.ToFloat64(m.ScrubCorrupt) != 2 {
		t.Fatalf("healed %d, corrupt %v after the second round; want 2, 2", s.Healed(), testutil.ToFloat64(m.ScrubCorrupt))
	}
}

// fakeNet is a network where every block is this node's and short of
// copies, and each hand-off pushes a fixed number of copies.
type fakeNet struct {
	pushes   int          // pushes each HandOff makes
	handOffs atomic.Int64 // (hand-offs of a round run at once)
	alone    bool         // no other node known
}

func (n *fakeNet) Probe(context.Context, time.Duration) {}
func (n *fakeNet) Responsible(blocks.ID, int) bool      { return true }
func (n *fakeNet) Alone() bool                          { return n.alone }
func (n *fakeNet) Copies(_ context.Context, ids []blocks.ID, _ int) []int {
	return make([]int, len(ids))
}
func (n *fakeNet) HandOff(context.Context, blocks.Block, int) (int, error) {
	n.handOffs.Add(1)
	return n.pushes, nil
}

// TestRepairCountsPushes: a hand-off that pushed nothing (another node
// pushed the copies meanwhile) counts no block and no byte repaired; one
// that pushed to two nodes counts its bytes twice.
func TestRepairCountsPushes(t *testing.T) {
	ctx := context.Background()
	st := blocks.NewMem()
	randomBlocks(t, st, 5, 3)
	for _, c := range []struct {
		pushes, repaired int
		bytes            int64
	}{{0, 0, 0}, {2, 5, 5 * 2 * 16 << 10}} {
		n := &fakeNet{pushes: c.pushes}
		info := NewRepairer(st, st, n, 3, 0, slog.New(slog.DiscardHandler), metrics.New()).Round(ctx)
		if n.handOffs.Load() != 5 || info.Short != 5 || info.Repaired != c.repaired || info.BytesPushed != c.bytes {
			t.Errorf("%d pushes per hand-off: %d hand-offs, %+v; want 5 hand-offs, 5 short, %d repaired, %d bytes pushed",
				c.pushes, n.handOffs.Load(), info, c.repaired, c.bytes)
		}
	}
}

// countingGetter counts the blocks read through it.
type countingGetter struct {
	blocks.Getter
	gets atomic.Int64 // (hand-offs of a round read at once)
}

func (g *countingGetter) Get(ctx context.Context, id blocks.ID) ([]byte, error) {
	g.gets.Add(1)
	return g.Getter.Get(ctx, id)
}

// TestRepairAloneReadsNothing: a node that knows no other node counts
// every block it holds for the network as short and still short, and
// reads none of them (before, it read each one to hand it to nobody: a
// donor cut off from the network read its whole disk every round).
func TestRepairAloneReadsNothing(t *testing.T) {
	ctx := context.Background()
	st := blocks.NewMem()
	randomBlocks(t, st, 7, 3)
	g := &countingGetter{Getter: st}
	n := &fakeNet{alone: true}
	info := NewRepairer(st, g, n, 3, 0, slog.New(slog.DiscardHandler), metrics.New()).Round(ctx)
	if g.gets.Load() != 0 || n.handOffs.Load() != 0 {
		t.Errorf("a lone node read %d blocks and tried %d hand-offs, want none", g.gets.Load(), n.handOffs.Load())
	}
	if info.Checked != 7 || info.Short != 7 || info.StillShort != 7 || info.Repaired != 0 {
		t.Errorf("a lone node's round: %+v; want 7 checked, 7 short, 7 still short", info)
	}
	// With a network, the same store is read and handed off.
	n.alone = false
	info = NewRepairer(st, g, n, 3, 0, slog.New(slog.DiscardHandler), metrics.New()).Round(ctx)
	if g.gets.Load() != 7 || n.handOffs.Load() != 7 || info.StillShort != 0 {
		t.Errorf("with a network: %d blocks read, %d hand-offs, %+v; want 7, 7 and none still short", g.gets.Load(), n.handOffs.Load(), info)
	}
}

// TestRepairPacesPushes: the rate bounds the bytes pushed, not the blocks
// handed off: 16 blocks of 16 KiB pushed 3 times each are 768 KiB, which
// at 512 KiB/s (a bucket of 128 KiB) take at least 1.25 s. Pacing per
// hand-off took 0.5 s.
func TestRepairPacesPushes(t *testing.T) {
	ctx := context.Background()
	st := blocks.NewMem()
	randomBlocks(t, st, 16, 4)
	r := NewRepairer(st, st, &fakeNet{pushes: 3}, 4, 512<<10, slog.New(slog.DiscardHandler), metrics.New())
	start := time.Now()
	info := r.Round(ctx)
	if took := time.Since(start); took < 1200*time.Millisecond {
		t.Errorf("a round that pushed %d bytes at 512 KiB/s took %v, want at least 1.25 s", info.BytesPushed, took)
	}
	if info.BytesPushed != 3*16*16<<10 {
		t.Errorf("%d bytes pushed, want %d", info.BytesPushed, 3*16*16<<10)
	}

	// Hand-offs that push nothing are not paced: 16 blocks at 16 KiB/s
	// would take 15 s or more if they were.
	r = NewRepairer(st, st, &fakeNet{pushes: 0}, 4, 16<<10, slog.New(slog.DiscardHandler), metrics.New())
	start = time.Now()
	r.Round(ctx)
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("a round that pushed nothing took %v: paced per hand-off", took)
	}
}

// TestScrubRetriesBounded: quarantined blocks that no peer gives back are
// asked for again, at most retryPerRound a round (each costs a fetch's
// timeout), oldest first, the ones tried going to the back; none is
// forgotten while fewer than maxPending wait.
func TestScrubRetriesBounded(t *testing.T) {
	ctx := context.Background()
	st := blocks.NewMem()
	bs := randomBlocks(t, st, retryPerRound+4, 4)
	for _, b := range bs {
		st.Corrupt(b.ID())
	}
	var asked []blocks.ID
	refill := func(_ context.Context, id blocks.ID) error {
		asked = append(asked, id)
		return errors.New("no peer has it")
	}
	s := NewScrubber(st, refill, 0, slog.New(slog.DiscardHandler), metrics.New())
	s.Round(ctx)
	if len(asked) != len(bs) {
		t.Fatalf("the first round asked for %d blocks, want %d (each corrupt one)", len(asked), len(bs))
	}
	first := slices.Clone(asked)
	asked = nil
	s.Round(ctx)
	if !slices.Equal(asked, first[:retryPerRound]) {
		t.Fatalf("the second round asked for %d blocks, want the %d oldest", len(asked), retryPerRound)
	}
	asked = nil
	s.Round(ctx)
	want := append(slices.Clone(first[retryPerRound:]), first[:retryPerRound-4]...)
	if !slices.Equal(asked, want) {
		t.Fatalf("the third round asked for %d blocks, not the 4 left out and then the oldest tried", len(asked))
	}
}
