package keeper_test

import (
	"context"
	"encoding/binary"
	"errors"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/blockmix/blockmix/blocks"
	"github.com/blockmix/blockmix/cmd/blockmix/internal/keeper"
	"github.com/blockmix/blockmix/cmd/blockmix/internal/ledger"
	"github.com/blockmix/blockmix/cmd/blockmix/internal/metrics"
	bmnet "github.com/blockmix/blockmix/net"
)

const kib = 1 << 10

// blockN is the i-th of a series of distinct blocks of n bytes.
func blockN(t *testing.T, i uint64, n int) blocks.Block {
	t.Helper()
	data := make([]byte, n)
	binary.LittleEndian.PutUint64(data, i)
	if n > 8 {
		data[8] = 0xb1 // never all zeros
	}
	b, err := blocks.NewBlock(data[:n])
	if err != nil {
		t.Fatal(err)
	}
	return b
}

var blockSeq atomic.Uint64

// push pushes a new block of n bytes from peer through s.
func (f *fixture) push(t *testing.T, s bmnet.Sink, peer string, n int) (blocks.ID, error) {
	t.Helper()
	b := blockN(t, 1000+blockSeq.Add(1), n)
	return b.ID(), s.Accept(context.Background(), peer, b)
}

func wantRefusal(t *testing.T, err error, code byte, text string) {
	t.Helper()
	var r *bmnet.Refusal
	if !errors.As(err, &r) {
		t.Fatalf("push returned %v, want a *Refusal", err)
	}
	if r.Code != code || !strings.Contains(r.Text, text) {
		t.Errorf("refusal code %d %q, want code %d with %q", r.Code, r.Text, code, text)
	}
}

// TestSinkQuota: pushes are counted at what they cost on disk, and refused
// past the quota, with one warning for the burst.
func TestSinkQuota(t *testing.T) {
	c := blocks.Cost(kib)
	f := newFixture(t, 2*c+c/2, 0)
	s := f.k.Sink(bmnet.NewStoreSink(f.st))

	var accepted []blocks.ID
	for i := 0; i < 2; i++ {
		id, err := f.push(t, s, "peerA", kib)
		if err != nil {
			t.Fatalf("push %d within the quota: %v", i, err)
		}
		accepted = append(accepted, id)
	}
	if f.k.Stored() != 2*c {
		t.Errorf("Stored() = %d after two pushes, want %d", f.k.Stored(), 2*c)
	}
	for i, peer := range []string{"peerA", "peerB", "peerA"} {
		id, err := f.push(t, s, peer, kib)
		wantRefusal(t, err, bmnet.RefuseQuota, "quota full")
		if t.Failed() {
			t.Fatalf("push %d over the quota", i)
		}
		if f.has(t, id) {
			t.Errorf("refused block %s was stored", id.Short())
		}
	}
	f.wantHeld(t, accepted...)
	if f.k.Stored() != 2*c || f.k.HeldForNetwork() != 2*c {
		t.Errorf("Stored() = %d, HeldForNetwork() = %d, want %d each", f.k.Stored(), f.k.HeldForNetwork(), 2*c)
	}
	if got := testutil.ToFloat64(f.m.PushesAccepted); got != 2 {
		t.Errorf("pushes accepted = %v, want 2", got)
	}
	if got := testutil.ToFloat64(f.m.PushesRefused.WithLabelValues("quota")); got != 3 {
		t.Errorf("pushes refused{quota} = %v, want 3", got)
	}
	all := f.lines(`msg="push refused"`)
	warn := f.lines("level=WARN", `msg="push refused"`, "reason=quota", "peer=peerA")
	if len(all) != 1 || len(warn) != 1 {
		t.Errorf("want exactly one WARN line \"push refused\" (reason=quota, peer=peerA) for the burst; log:\n%s", f.logs)
	}
}

func TestSinkNoQuota(t *testing.T) {
	f := newFixture(t, 0, 1<<40)
	s := f.k.Sink(bmnet.NewStoreSink(f.st))
	if _, err := f.push(t, s, "peerA", kib); err != nil {
		t.Fatalf("push with no quota: %v", err)
	}
	if got := testutil.ToFloat64(f.m.PushesAccepted); got != 1 {
		t.Errorf("pushes accepted = %v, want 1", got)
	}
}

// TestSinkClasses: only blocks of a block class are taken. 100 pushes of
// 8-byte blocks (each costing far more on disk than its bytes) are all
// refused, and so is a 1000-byte one; a 1 KiB one is taken.
func TestSinkClasses(t *testing.T) {
	f := newFixture(t, 1<<20, 0)
	s := f.k.Sink(bmnet.NewStoreSink(f.st))
	for i := 0; i < 100; i++ {
		_, err := f.push(t, s, "peerA", 8)
		wantRefusal(t, err, bmnet.RefuseNotWanted, "1 KiB, 16 KiB or 128 KiB")
		if t.Failed() {
			t.Fatalf("push %d of an 8-byte block", i)
		}
	}
	_, err := f.push(t, s, "peerA", 1000)
	wantRefusal(t, err, bmnet.RefuseNotWanted, "this one has 1000 bytes")
	if got := testutil.ToFloat64(f.m.PushesRefused.WithLabelValues("class")); got != 101 {
		t.Errorf("pushes refused{class} = %v, want 101", got)
	}
	if len(f.held(t)) != 0 || f.k.Stored() != 0 {
		t.Errorf("%d blocks held, %d counted after refused pushes", len(f.held(t)), f.k.Stored())
	}
	if _, err := f.push(t, s, "peerA", kib); err != nil {
		t.Fatalf("push of a 1 KiB block: %v", err)
	}
}

// TestSinkDuplicates: a block pushed again, one after the other or many at
// once, is stored and counted once, in the quota and in the ledger.
func TestSinkDuplicates(t *testing.T) {
	f := newFixture(t, 0, 0)
	l, err := ledger.Load(filepath.Join(t.TempDir(), "ledger.json"), nil, func() map[string]int64 { return nil }, func(string) int64 { return 0 })
	if err != nil {
		t.Fatal(err)
	}
	f.k.Ledger = l
	s := f.k.Sink(bmnet.NewStoreSink(f.st))
	for round, b := range []blocks.Block{blockN(t, 1, 16*kib), blockN(t, 2, 16*kib)} {
		var wg sync.WaitGroup
		for i := 0; i < 16; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := s.Accept(context.Background(), "peerA", b); err != nil {
					t.Errorf("push: %v", err)
				}
			}()
		}
		wg.Wait()
		if err := s.Accept(context.Background(), "peerA", b); err != nil {
			t.Fatal(err)
		}
		n := int64(round + 1)
		if got, want := f.k.Stored(), n*blocks.Cost(16*kib); got != want {
			t.Errorf("after %d distinct blocks pushed 17 times each: Stored() = %d, want %d", n, got, want)
		}
		if got := l.Entry("peerA").StoredHere; got != n*16*kib {
			t.Errorf("after %d distinct blocks pushed 17 times each: ledger says %d stored here, want %d", n, got, n*16*kib)
		}
	}
}

// TestSinkCountMatchesDisk: what the keeper counts for pushed blocks is
// what the store takes on disk (Stats.DiskBytes) within 1 %, and Count
// reads the same figure back at the next start.
func TestSinkCountMatchesDisk(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	st, err := blocks.OpenDisk(dir, blocks.DiskOptions{})
	if err != nil {
		t.Fatal(err)
	}
	k := keeper.New(st, 3, 1<<30, slog.New(slog.DiscardHandler), metrics.New())
	s := k.Sink(bmnet.NewStoreSink(st))
	for i := uint64(0); i < 3000; i++ {
		n := kib
		if i%10 == 0 {
			n = 16 * kib
		}
		b := blockN(t, i, n)
		if err := s.Accept(ctx, "peerA", b); err != nil {
			t.Fatal(err)
		}
	}
	counted := k.Stored()
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	st, err = blocks.OpenDisk(dir, blocks.DiskOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	stats, err := st.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("counted %d, on disk %d", counted, stats.DiskBytes)
	if d := float64(counted-stats.DiskBytes) / float64(stats.DiskBytes); d > 0.01 || d < -0.01 {
		t.Errorf("the keeper counted %d bytes for pushed blocks that take %d on disk", counted, stats.DiskBytes)
	}
	k2 := keeper.New(st, 3, 1<<30, slog.New(slog.DiscardHandler), metrics.New())
	if err := k2.Count(ctx); err != nil {
		t.Fatal(err)
	}
	if k2.Stored() != counted || k2.HeldForNetwork() != counted {
		t.Errorf("Count at start: Stored() %d, HeldForNetwork() %d; want %d each", k2.Stored(), k2.HeldForNetwork(), counted)
	}
}

// TestSinkShare: a node that is not a donor takes pushes up to its share,
// refuses the rest with a reason, and gc keeps what it took within the
// share; over the share (a smaller one after a restart) gc hands blocks
// off before it drops them.
func TestSinkShare(t *testing.T) {
	ctx := context.Background()
	c := blocks.Cost(16 * kib)
	f := newFixture(t, 0, 0)
	net := newFakeNet(f.st)
	f.k.Node = net
	f.k.Share = 10 * c
	s := f.k.Sink(bmnet.NewStoreSink(f.st))
	var took []blocks.ID
	for i := 0; i < 10; i++ {
		id, err := f.push(t, s, "peerA", 16*kib)
		if err != nil {
			t.Fatalf("push %d within the share: %v", i, err)
		}
		took = append(took, id)
	}
	_, err := f.push(t, s, "peerB", 16*kib)
	wantRefusal(t, err, bmnet.RefuseQuota, "share full")
	if got := testutil.ToFloat64(f.m.PushesRefused.WithLabelValues("share")); got != 1 {
		t.Errorf("pushes refused{share} = %v, want 1", got)
	}
	if l := f.lines("level=WARN", `msg="push refused"`, "reason=share"); len(l) != 1 {
		t.Errorf("want one WARN line \"push refused\" reason=share; log:\n%s", f.logs)
	}
	// The node's own blocks do not count against the share.
	own := f.put(t, 16*kib)
	if f.k.HeldForNetwork() != 10*c || f.k.Stored() != 11*c {
		t.Errorf("HeldForNetwork() %d, Stored() %d; want %d, %d", f.k.HeldForNetwork(), f.k.Stored(), 10*c, 11*c)
	}

	info, err := f.k.GC(ctx)
	if err != nil {
		t.Fatal(err)
	}
	f.wantHeld(t, took...) // held for the network, within the share; own was cached
	if info.KeptBlocks != 10 || info.HandedOff != 0 || f.has(t, own) {
		t.Errorf("gc within the share: %+v; want the 10 pushed blocks kept for the network", info)
	}
	if len(net.tried) != 0 {
		t.Errorf("gc within the share handed %d blocks off", len(net.tried))
	}

	f.k.Share = 4 * c
	net.fail[took[0]] = true // its hand-off fails: it stays
	info, err = f.k.GC(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.HandedOff != 6 || f.k.HeldForNetwork() != 4*c || f.k.Stored() != 4*c {
		t.Errorf("gc over the share: %+v, HeldForNetwork() %d, Stored() %d; want 6 handed off, %d held", info, f.k.HeldForNetwork(), f.k.Stored(), 4*c)
	}
	if !f.has(t, took[0]) {
		t.Error("a block whose hand-off failed was dropped")
	}
	for _, id := range took {
		if !f.has(t, id) && !net.handed[id] {
			t.Errorf("block %s dropped without a hand-off", id.Short())
		}
	}
	net.check(t)
}

// TestEvictPushedNeedsHandOff: a block pushed here that this node is not
// among the closest to (a placement fallback) is the network's, not
// cache: it is never dropped without a hand-off, and when it goes, the
// counts and its pusher's account go down.
func TestEvictPushedNeedsHandOff(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, 0, 0)
	net := newFakeNet(f.st)
	f.k.Node = net
	l, err := ledger.Load(filepath.Join(t.TempDir(), "ledger.json"), nil, func() map[string]int64 { return nil }, func(string) int64 { return 0 })
	if err != nil {
		t.Fatal(err)
	}
	f.k.Ledger = l
	s := f.k.Sink(bmnet.NewStoreSink(f.st))
	id, err := f.push(t, s, "peerA", kib)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.k.Evict(ctx, -1, false); err != nil {
		t.Fatal(err)
	}
	f.wantHeld(t, id)
	net.fail[id] = true
	if _, err := f.k.Evict(ctx, 1, true); !errors.Is(err, keeper.ErrOverQuota) {
		t.Fatalf("Evict with a failing hand-off: %v, want ErrOverQuota", err)
	}
	f.wantHeld(t, id)
	if e := l.Entry("peerA"); e.StoredHere != kib {
		t.Errorf("ledger %+v, want %d stored here", e, kib)
	}
	net.check(t)
	net.fail[id] = false
	clear(net.replicas) // one more call, for the second try
	info, err := f.k.Evict(ctx, 1, true)
	if err != nil || info.HandedOff != 1 {
		t.Fatalf("Evict = %+v, %v; want it handed off", info, err)
	}
	f.wantHeld(t)
	if f.k.Stored() != 0 || f.k.HeldForNetwork() != 0 {
		t.Errorf("after the eviction Stored() %d, HeldForNetwork() %d; want 0", f.k.Stored(), f.k.HeldForNetwork())
	}
	if e := l.Entry("peerA"); e.StoredHere != 0 {
		t.Errorf("ledger after the eviction %+v, want nothing stored here", e)
	}
	net.check(t)
}

// TestSinkFairShare: beyond what a peer holds for this node, all peers
// draw on one allowance; an eviction gives back to it; a peer discredited
// as a liar holds nothing.
func TestSinkFairShare(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "ledger.json")
	// A previous run saved that peerC stored 1 KiB here.
	prev, err := ledger.Load(path, nil, func() map[string]int64 { return nil }, func(string) int64 { return 0 })
	if err != nil {
		t.Fatal(err)
	}
	prev.Received("peerC", kib)
	if err := prev.Save(); err != nil {
		t.Fatal(err)
	}

	holds := map[string]int64{"peerA": 2 * kib} // what each peer took from us
	l, err := ledger.Load(path, nil, func() map[string]int64 { return holds }, func(p string) int64 { return holds[p] })
	if err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, 0, 0)
	f.k.Node = newFakeNet(f.st)
	f.k.Ledger = l
	f.k.Fair = 3 * kib
	s := f.k.Sink(bmnet.NewStoreSink(f.st))

	// peerC's saved 1 KiB draws on the allowance: strangers get 2 KiB more
	// between them.
	var s1 []blocks.ID
	for i := 0; i < 2; i++ {
		id, err := f.push(t, s, "stranger1", kib)
		if err != nil {
			t.Fatalf("stranger1 push %d within the allowance: %v", i, err)
		}
		s1 = append(s1, id)
	}
	for _, p := range []string{"stranger2", "stranger3", "stranger1", "peerC"} {
		_, err := f.push(t, s, p, kib)
		wantRefusal(t, err, bmnet.RefuseNotWanted, "fair share")
	}
	// peerA holds 2 KiB for us: it stores 2 KiB without the allowance.
	for i := 0; i < 2; i++ {
		if _, err := f.push(t, s, "peerA", kib); err != nil {
			t.Fatalf("peerA push %d within what it holds for us: %v", i, err)
		}
	}
	_, err = f.push(t, s, "peerA", kib)
	wantRefusal(t, err, bmnet.RefuseNotWanted, "fair share")

	// One of stranger1's blocks is handed off and evicted: 1 KiB back.
	for _, id := range s1 {
		f.k.Node.(*fakeNet).resp[id] = true
	}
	if _, err := f.k.Evict(context.Background(), 1, true); err != nil {
		t.Fatal(err)
	}
	if e := l.Entry("stranger1"); e.StoredHere != kib {
		t.Fatalf("stranger1 after an eviction: %+v, want 1 KiB stored here", e)
	}
	if _, err := f.push(t, s, "stranger2", kib); err != nil {
		t.Fatalf("stranger2 push after the eviction gave 1 KiB back: %v", err)
	}

	// peerA lied about what it holds: its 2 KiB now draw on the allowance,
	// which is over; nobody stores more.
	l.Discredit("peerA")
	if e := l.Entry("peerA"); e.HoldsForUs != 0 {
		t.Errorf("a discredited peer's account %+v, want it holding nothing", e)
	}
	for _, p := range []string{"peerA", "stranger3"} {
		_, err := f.push(t, s, p, kib)
		wantRefusal(t, err, bmnet.RefuseNotWanted, "fair share")
	}
	if got := testutil.ToFloat64(f.m.PushesRefused.WithLabelValues("fair_share")); got != 7 {
		t.Errorf("pushes refused{fair_share} = %v, want 7", got)
	}
	if l := f.lines("level=WARN", `msg="push refused"`, "reason=fair_share"); len(l) != 1 {
		t.Errorf("want one WARN line \"push refused\" reason=fair_share; log:\n%s", f.logs)
	}

	// With Fair off the ledger still counts, but nobody is refused.
	f.k.Fair = 0
	if _, err := f.push(t, s, "peerC", kib); err != nil {
		t.Fatalf("push with fair share off: %v", err)
	}
	if e := l.Entry("peerC"); e.StoredHere != 2*kib {
		t.Errorf("ledger peerC %+v with fair share off, want 2 KiB stored here", e)
	}
}

// TestSinkFairShareStrangersConcurrent: three fresh peer IDs pushing at
// once store at most the allowance between them.
func TestSinkFairShareStrangersConcurrent(t *testing.T) {
	l, err := ledger.Load(filepath.Join(t.TempDir(), "ledger.json"), nil, func() map[string]int64 { return nil }, func(string) int64 { return 0 })
	if err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, 0, 0)
	f.k.Ledger = l
	f.k.Fair = 64 * kib
	s := f.k.Sink(bmnet.NewStoreSink(f.st))
	var wg sync.WaitGroup
	var accepted atomic.Int64
	for p := 0; p < 3; p++ {
		for i := 0; i < 40; i++ {
			b := blockN(t, uint64(p*1000+i), kib)
			wg.Add(1)
			go func() {
				defer wg.Done()
				if s.Accept(context.Background(), "stranger"+string(rune('A'+p)), b) == nil {
					accepted.Add(kib)
				}
			}()
		}
	}
	wg.Wait()
	total := l.Entry("strangerA").StoredHere + l.Entry("strangerB").StoredHere + l.Entry("strangerC").StoredHere
	if accepted.Load() != 64*kib || total != 64*kib {
		t.Errorf("three strangers stored %d bytes (ledger: %d), want the allowance of %d between them", accepted.Load(), total, 64*kib)
	}
}

// TestSinkQuotaConcurrent: pushes that arrive at once cannot pass the
// quota together.
func TestSinkQuotaConcurrent(t *testing.T) {
	c := blocks.Cost(kib)
	f := newFixture(t, 10*c, 0)
	s := f.k.Sink(bmnet.NewStoreSink(f.st))
	var wg sync.WaitGroup
	var accepted atomic.Int64
	for i := range 200 {
		b := blockN(t, uint64(i), kib)
		wg.Add(1)
		go func() {
			defer wg.Done()
			if s.Accept(context.Background(), "peer", b) == nil {
				accepted.Add(1)
			}
		}()
	}
	wg.Wait()
	if got := accepted.Load(); got != 10 || f.k.Stored() != 10*c {
		t.Fatalf("%d blocks accepted, %d counted stored, into a quota of 10 blocks' cost (%d)", got, f.k.Stored(), 10*c)
	}
}

// TestKeep: fetched blocks are kept, at what they cost on disk, while the
// store costs less than the cache setting and the quota allows.
func TestKeep(t *testing.T) {
	c := blocks.Cost(100)
	for _, tc := range []struct {
		name         string
		quota, cache int64
		fit          int // Keeps of 100 bytes that fit
	}{
		{"cache bound", 10 * c, 3 * c, 3},
		{"quota bound", 2*c + c/2, 1 << 30, 2},
		{"no quota", 0, 2 * c, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, tc.quota, 0)
			for i := 0; i <= tc.fit; i++ {
				want := i < tc.fit
				if got := f.k.Keep(tc.cache, 100); got != want {
					t.Errorf("Keep #%d = %v at %d stored, want %v", i+1, got, f.k.Stored(), want)
				}
			}
			if f.k.Stored() != int64(tc.fit)*c {
				t.Errorf("Stored() = %d, want %d", f.k.Stored(), int64(tc.fit)*c)
			}
		})
	}
}
