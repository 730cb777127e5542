package keeper_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/blockmix/blockmix/blocks"
	"github.com/blockmix/blockmix/cmd/blockmix/internal/keeper"
	"github.com/blockmix/blockmix/cmd/blockmix/internal/ledger"
	"github.com/blockmix/blockmix/cmd/blockmix/internal/metrics"
	bmnet "github.com/blockmix/blockmix/net"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// fixture is a keeper over a real on-disk store in a temporary directory.
type fixture struct {
	st   *blocks.Disk
	k    *keeper.Keeper
	m    *metrics.Metrics
	logs *bytes.Buffer
	seed byte
}

func newFixture(t *testing.T, quota, stored int64) *fixture {
	t.Helper()
	st, err := blocks.OpenDisk(t.TempDir(), blocks.DiskOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := st.Close(); err != nil {
			t.Errorf("close store: %v", err)
		}
	})
	f := &fixture{st: st, m: metrics.New(), logs: new(bytes.Buffer)}
	f.k = keeper.New(st, 3, quota, stored, slog.New(slog.NewTextHandler(f.logs, nil)), f.m)
	return f
}

// block returns a new block of n bytes, distinct from every other block the
// fixture made.
func (f *fixture) block(t *testing.T, n int) blocks.Block {
	t.Helper()
	f.seed++
	data := bytes.Repeat([]byte{f.seed}, n)
	data[0] = ^f.seed // distinct from a block of another seed's bytes
	b, err := blocks.NewBlock(data)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// put stores a new block of n bytes and returns its ID.
func (f *fixture) put(t *testing.T, n int) blocks.ID {
	t.Helper()
	b := f.block(t, n)
	if err := f.st.PutBlock(context.Background(), b, uint64(f.seed)); err != nil {
		t.Fatal(err)
	}
	return b.ID()
}

// pin stores blocks of the given sizes and records a file that uses them.
func (f *fixture) pin(t *testing.T, sizes ...int) []blocks.ID {
	t.Helper()
	var ids []blocks.ID
	for _, n := range sizes {
		ids = append(ids, f.put(t, n))
	}
	key := fmt.Sprintf("file-%d", f.seed)
	if err := f.st.AddFile(context.Background(), blocks.FileRecord{Key: key, Name: key + ".bin", Blocks: ids}); err != nil {
		t.Fatal(err)
	}
	return ids
}

func (f *fixture) has(t *testing.T, id blocks.ID) bool {
	t.Helper()
	ok, err := f.st.Has(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return ok
}

// held lists the blocks in the store.
func (f *fixture) held(t *testing.T) map[blocks.ID]bool {
	t.Helper()
	out := map[blocks.ID]bool{}
	err := f.st.Enumerate(context.Background(), func(id blocks.ID, _ blocks.Meta) error {
		out[id] = true
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// wantHeld fails unless the store holds exactly ids.
func (f *fixture) wantHeld(t *testing.T, ids ...blocks.ID) {
	t.Helper()
	got := f.held(t)
	want := map[blocks.ID]bool{}
	for _, id := range ids {
		want[id] = true
		if !got[id] {
			t.Errorf("block %s is gone, want it kept", id.Short())
		}
	}
	for id := range got {
		if !want[id] {
			t.Errorf("block %s is still held, want it evicted", id.Short())
		}
	}
}

// lines returns the log lines that contain every one of parts.
func (f *fixture) lines(parts ...string) []string {
	var out []string
	for _, l := range strings.Split(f.logs.String(), "\n") {
		ok := l != ""
		for _, p := range parts {
			ok = ok && strings.Contains(l, p)
		}
		if ok {
			out = append(out, l)
		}
	}
	return out
}

// fakeNet is a keeper.Network: it is responsible for a chosen set of
// blocks and records what it is handed, failing on purpose for some.
type fakeNet struct {
	st   *blocks.Disk
	resp map[blocks.ID]bool
	fail map[blocks.ID]bool

	mu       sync.Mutex
	tried    []blocks.ID         // every HandOff, in order
	handed   map[blocks.ID]bool  // HandOffs that succeeded
	problems []string            // what HandOff found wrong
	replicas map[blocks.ID][]int // replicas asked for, per block
}

func newFakeNet(st *blocks.Disk) *fakeNet {
	return &fakeNet{st: st, resp: map[blocks.ID]bool{}, fail: map[blocks.ID]bool{},
		handed: map[blocks.ID]bool{}, replicas: map[blocks.ID][]int{}}
}

func (n *fakeNet) Responsible(id blocks.ID, replicas int) bool {
	if replicas != 3 {
		n.mu.Lock()
		n.problems = append(n.problems, fmt.Sprintf("Responsible(%s) asked for %d replicas, want 3", id.Short(), replicas))
		n.mu.Unlock()
	}
	return n.resp[id]
}

func (n *fakeNet) HandOff(ctx context.Context, b blocks.Block, replicas int) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	id := b.ID()
	n.tried = append(n.tried, id)
	n.replicas[id] = append(n.replicas[id], replicas)
	if blocks.Sum(b.Data()) != id {
		n.problems = append(n.problems, fmt.Sprintf("HandOff(%s) got bytes that do not match", id.Short()))
	}
	if !n.resp[id] {
		n.problems = append(n.problems, fmt.Sprintf("HandOff(%s) of a block the network is not responsible for", id.Short()))
	}
	// The block must still be in the store when it is handed off.
	if ok, err := n.st.Has(ctx, id); err != nil || !ok {
		n.problems = append(n.problems, fmt.Sprintf("HandOff(%s) after the block left the store (has %v, err %v)", id.Short(), ok, err))
	}
	if n.fail[id] {
		return errors.New("no peer took it")
	}
	n.handed[id] = true
	return nil
}

func (n *fakeNet) check(t *testing.T) {
	t.Helper()
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, p := range n.problems {
		t.Error(p)
	}
	for id, rs := range n.replicas {
		if len(rs) != 1 || rs[0] != 3 {
			t.Errorf("HandOff(%s) calls asked for replicas %v, want one call with 3", id.Short(), rs)
		}
	}
}

func TestEvictAllCached(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, 0, 0)
	net := newFakeNet(f.st)
	f.k.Node = net

	c1, c2, c3 := f.put(t, 100), f.put(t, 200), f.put(t, 300)
	pinned := f.pin(t, 50, 60)
	o1, o2 := f.put(t, 70), f.put(t, 80)
	net.resp[o1], net.resp[o2] = true, true
	// A pinned block the network is also responsible for stays pinned.
	net.resp[pinned[0]] = true
	f.k.Touch(c2) // used or not, a cached block goes

	info, err := f.k.Evict(ctx, -1, false)
	if err != nil {
		t.Fatalf("Evict(-1, false): %v", err)
	}
	if info.EvictedBlocks != 3 || info.EvictedBytes != 600 || info.PinnedBlocks != 2 || info.KeptBlocks != 2 || info.HandedOff != 0 {
		t.Errorf("GCInfo %+v, want 3 blocks / 600 bytes evicted, 2 pinned, 2 kept, 0 handed off", info)
	}
	f.wantHeld(t, pinned[0], pinned[1], o1, o2)
	for _, id := range []blocks.ID{c1, c2, c3} {
		if f.has(t, id) {
			t.Errorf("cached block %s survived", id.Short())
		}
	}
	if len(net.tried) != 0 {
		t.Errorf("HandOff called %d times without network eviction", len(net.tried))
	}
	net.check(t)
	if got := f.k.Stored(); got != 50+60+70+80 {
		t.Errorf("Stored() = %d after eviction, want %d", got, 50+60+70+80)
	}
	if got := testutil.ToFloat64(f.m.Evicted); got != 3 {
		t.Errorf("evicted metric = %v, want 3", got)
	}
	if got := testutil.ToFloat64(f.m.HandedOff); got != 0 {
		t.Errorf("handed off metric = %v, want 0", got)
	}
	if l := f.lines("level=INFO", "msg=evicted", "blocks=3", "bytes=600"); len(l) != 1 {
		t.Errorf("want one INFO line \"evicted\" with blocks=3 bytes=600; log:\n%s", f.logs)
	}

	// Nothing left to evict: no line, no error, the metric stays.
	f.logs.Reset()
	info, err = f.k.Evict(ctx, -1, false)
	if err != nil || info.EvictedBlocks != 0 || info.PinnedBlocks != 2 || info.KeptBlocks != 2 {
		t.Errorf("second Evict: %+v, %v; want nothing evicted, 2 pinned, 2 kept", info, err)
	}
	if strings.Contains(f.logs.String(), "msg=evicted") {
		t.Errorf("an eviction of nothing logged:\n%s", f.logs)
	}
	if got := testutil.ToFloat64(f.m.Evicted); got != 3 {
		t.Errorf("evicted metric = %v after evicting nothing, want 3", got)
	}
}

func TestEvictNetworkBlocks(t *testing.T) {
	ctx := context.Background()

	// setup: one cached block of 100 bytes, two pinned, and three of the
	// network's blocks of 200, 300 and 400 bytes (in that order of arrival)
	// whose second cannot be handed off.
	type world struct {
		f       *fixture
		net     *fakeNet
		cached  blocks.ID
		pinned  []blocks.ID
		a, b, c blocks.ID
	}
	setup := func(t *testing.T) world {
		f := newFixture(t, 0, 0)
		w := world{f: f, net: newFakeNet(f.st)}
		f.k.Node = w.net
		w.cached = f.put(t, 100)
		w.pinned = f.pin(t, 500, 600)
		w.a, w.b, w.c = f.put(t, 200), f.put(t, 300), f.put(t, 400)
		for _, id := range []blocks.ID{w.a, w.b, w.c, w.pinned[1]} {
			w.net.resp[id] = true
		}
		w.net.fail[w.b] = true
		return w
	}

	t.Run("cannot free enough", func(t *testing.T) {
		w := setup(t)
		info, err := w.f.k.Evict(ctx, 10_000, true)
		if !errors.Is(err, keeper.ErrOverQuota) {
			t.Fatalf("Evict(10000, true) = %v, want an error wrapping ErrOverQuota", err)
		}
		if info.EvictedBlocks != 3 || info.EvictedBytes != 100+200+400 || info.HandedOff != 2 || info.KeptBlocks != 1 || info.PinnedBlocks != 2 {
			t.Errorf("GCInfo %+v, want 3 blocks / 700 bytes evicted, 2 handed off, 1 kept, 2 pinned", info)
		}
		w.f.wantHeld(t, w.pinned[0], w.pinned[1], w.b)
		if len(w.net.tried) != 3 || !w.net.handed[w.a] || !w.net.handed[w.c] || w.net.handed[w.b] {
			t.Errorf("HandOff tried %d blocks, handed %v; want a, b and c tried, a and c handed", len(w.net.tried), w.net.handed)
		}
		for _, p := range w.pinned {
			for _, id := range w.net.tried {
				if id == p {
					t.Errorf("pinned block %s was handed off", p.Short())
				}
			}
		}
		w.net.check(t)
		if got := testutil.ToFloat64(w.f.m.Evicted); got != 3 {
			t.Errorf("evicted metric = %v, want 3", got)
		}
		if got := testutil.ToFloat64(w.f.m.HandedOff); got != 2 {
			t.Errorf("handed off metric = %v, want 2", got)
		}
		if l := w.f.lines("level=WARN", `msg="over quota"`); len(l) != 1 {
			t.Errorf("want one WARN line \"over quota\"; log:\n%s", w.f.logs)
		}
		if got := w.f.k.Stored(); got != 500+600+300 {
			t.Errorf("Stored() = %d, want %d", got, 500+600+300)
		}
	})

	t.Run("only as far as needed", func(t *testing.T) {
		w := setup(t)
		// The cached block frees 100; the oldest of the network's (a, 200)
		// covers the rest.
		info, err := w.f.k.Evict(ctx, 101, true)
		if err != nil {
			t.Fatalf("Evict(101, true): %v", err)
		}
		if info.EvictedBlocks != 2 || info.EvictedBytes != 300 || info.HandedOff != 1 || info.KeptBlocks != 2 || info.PinnedBlocks != 2 {
			t.Errorf("GCInfo %+v, want 2 blocks / 300 bytes evicted, 1 handed off, 2 kept, 2 pinned", info)
		}
		w.f.wantHeld(t, w.pinned[0], w.pinned[1], w.b, w.c)
		if len(w.net.tried) != 1 || w.net.tried[0] != w.a {
			t.Errorf("HandOff tried %d blocks, want only a", len(w.net.tried))
		}
		w.net.check(t)
	})

	t.Run("cached blocks suffice", func(t *testing.T) {
		w := setup(t)
		info, err := w.f.k.Evict(ctx, 100, true)
		if err != nil {
			t.Fatalf("Evict(100, true): %v", err)
		}
		if info.EvictedBlocks != 1 || info.HandedOff != 0 || info.KeptBlocks != 3 {
			t.Errorf("GCInfo %+v, want 1 evicted, 0 handed off, 3 kept", info)
		}
		w.f.wantHeld(t, w.pinned[0], w.pinned[1], w.a, w.b, w.c)
		if len(w.net.tried) != 0 {
			t.Errorf("HandOff tried %d blocks although the cache freed enough", len(w.net.tried))
		}
	})

	t.Run("without network", func(t *testing.T) {
		w := setup(t)
		_, err := w.f.k.Evict(ctx, 10_000, false)
		if !errors.Is(err, keeper.ErrOverQuota) {
			t.Fatalf("Evict(10000, false) = %v, want ErrOverQuota", err)
		}
		w.f.wantHeld(t, w.pinned[0], w.pinned[1], w.a, w.b, w.c)
		if len(w.net.tried) != 0 {
			t.Errorf("HandOff tried %d blocks with network false", len(w.net.tried))
		}
	})
}

func TestEvictLeastRecentlyUsedFirst(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, 0, 0)
	f.k.Node = newFakeNet(f.st)
	var ids []blocks.ID
	for i := 0; i < 5; i++ {
		ids = append(ids, f.put(t, 100))
	}
	// The two oldest blocks are used; of the rest, the oldest go first.
	f.k.Touch(ids[1])
	f.k.Touch(ids[0])

	info, err := f.k.Evict(ctx, 150, false)
	if err != nil {
		t.Fatalf("Evict(150): %v", err)
	}
	if info.EvictedBlocks != 2 || info.EvictedBytes != 200 {
		t.Errorf("GCInfo %+v, want 2 blocks / 200 bytes evicted", info)
	}
	f.wantHeld(t, ids[0], ids[1], ids[4])

	// Reading a block for a peer through Store counts as a use too.
	if _, err := f.k.Store().Get(ctx, ids[4]); err != nil {
		t.Fatal(err)
	}
	if f.k.Served() != 1 {
		t.Errorf("Served() = %d, want 1", f.k.Served())
	}
	if _, err := f.k.Evict(ctx, -1, false); err != nil {
		t.Fatal(err)
	}
	f.wantHeld(t)
}

// push pushes a new block of n bytes from peer through s.
func (f *fixture) push(t *testing.T, s bmnet.Sink, peer string, n int) (blocks.ID, error) {
	t.Helper()
	b := f.block(t, n)
	return b.ID(), s.Accept(context.Background(), peer, b.ID(), b.Data())
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

func TestSinkQuota(t *testing.T) {
	f := newFixture(t, 250, 0)
	s := f.k.Sink(bmnet.NewStoreSink(f.st))

	var accepted []blocks.ID
	for i := 0; i < 2; i++ {
		id, err := f.push(t, s, "peerA", 100)
		if err != nil {
			t.Fatalf("push %d within the quota: %v", i, err)
		}
		accepted = append(accepted, id)
	}
	if f.k.Stored() != 200 {
		t.Errorf("Stored() = %d after two pushes, want 200", f.k.Stored())
	}
	var refused []blocks.ID
	for i, peer := range []string{"peerA", "peerB", "peerA"} {
		id, err := f.push(t, s, peer, 100)
		wantRefusal(t, err, bmnet.RefuseQuota, "quota full")
		if t.Failed() {
			t.Fatalf("push %d over the quota", i)
		}
		refused = append(refused, id)
	}
	// A push that still fits is taken after refusals of larger ones.
	id, err := f.push(t, s, "peerB", 50)
	if err != nil {
		t.Fatalf("push of 50 bytes into the 50 left: %v", err)
	}
	accepted = append(accepted, id)

	f.wantHeld(t, accepted...)
	for _, id := range refused {
		if f.has(t, id) {
			t.Errorf("refused block %s was stored", id.Short())
		}
	}
	if f.k.Stored() != 250 {
		t.Errorf("Stored() = %d, want 250", f.k.Stored())
	}
	if got := testutil.ToFloat64(f.m.PushesAccepted); got != 3 {
		t.Errorf("pushes accepted = %v, want 3", got)
	}
	if got := testutil.ToFloat64(f.m.PushesRefused.WithLabelValues("quota")); got != 3 {
		t.Errorf("pushes refused{quota} = %v, want 3", got)
	}
	if got := testutil.ToFloat64(f.m.PushesRefused.WithLabelValues("fair_share")); got != 0 {
		t.Errorf("pushes refused{fair_share} = %v, want 0", got)
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
	if _, err := f.push(t, s, "peerA", 1000); err != nil {
		t.Fatalf("push with no quota: %v", err)
	}
	if got := testutil.ToFloat64(f.m.PushesAccepted); got != 1 {
		t.Errorf("pushes accepted = %v, want 1", got)
	}
}

func TestSinkFairShare(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "ledger.json")
	// A previous run saved that peerC stored 120 bytes here.
	prev, err := ledger.Load(path, func() map[string]int64 { return nil }, func(string) int64 { return 0 })
	if err != nil {
		t.Fatal(err)
	}
	prev.Received("peerC", 120)
	if err := prev.Save(); err != nil {
		t.Fatal(err)
	}

	holds := map[string]int64{"peerA": 100} // what each peer took from us
	l, err := ledger.Load(path, func() map[string]int64 { return holds }, func(p string) int64 { return holds[p] })
	if err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, 0, 0)
	f.k.Ledger = l
	f.k.Fair = 150
	s := f.k.Sink(bmnet.NewStoreSink(f.st))

	// peerA may store 100 + 150 bytes.
	for i := 0; i < 2; i++ {
		if _, err := f.push(t, s, "peerA", 100); err != nil {
			t.Fatalf("peerA push %d within its share: %v", i, err)
		}
	}
	_, err = f.push(t, s, "peerA", 100)
	wantRefusal(t, err, bmnet.RefuseNotWanted, "fair share")
	if _, err := f.push(t, s, "peerA", 50); err != nil {
		t.Fatalf("peerA push of the 50 bytes left of its share: %v", err)
	}
	// peerB holds nothing for us: 150 bytes.
	if _, err := f.push(t, s, "peerB", 100); err != nil {
		t.Fatalf("peerB push within the allowance: %v", err)
	}
	_, err = f.push(t, s, "peerB", 100)
	wantRefusal(t, err, bmnet.RefuseNotWanted, "fair share")
	// peerC's saved 120 bytes count: 100 more is over the allowance.
	_, err = f.push(t, s, "peerC", 100)
	wantRefusal(t, err, bmnet.RefuseNotWanted, "fair share")

	if e := l.Entry("peerA"); e.StoredHere != 250 || e.HoldsForUs != 100 {
		t.Errorf("ledger peerA %+v, want 250 stored here, 100 held for us", e)
	}
	if e := l.Entry("peerB"); e.StoredHere != 100 {
		t.Errorf("ledger peerB %+v, want 100 stored here", e)
	}
	if e := l.Entry("peerC"); e.StoredHere != 120 {
		t.Errorf("ledger peerC %+v, want the saved 120 stored here", e)
	}
	if got := testutil.ToFloat64(f.m.PushesAccepted); got != 4 {
		t.Errorf("pushes accepted = %v, want 4", got)
	}
	if got := testutil.ToFloat64(f.m.PushesRefused.WithLabelValues("fair_share")); got != 3 {
		t.Errorf("pushes refused{fair_share} = %v, want 3", got)
	}
	if got := testutil.ToFloat64(f.m.PushesRefused.WithLabelValues("quota")); got != 0 {
		t.Errorf("pushes refused{quota} = %v, want 0", got)
	}
	if l := f.lines("level=WARN", `msg="push refused"`, "reason=fair_share"); len(l) != 1 {
		t.Errorf("want one WARN line \"push refused\" reason=fair_share; log:\n%s", f.logs)
	}

	// With Fair off the ledger still counts, but nobody is refused.
	f.k.Fair = 0
	if _, err := f.push(t, s, "peerC", 100); err != nil {
		t.Fatalf("push with fair share off: %v", err)
	}
	if e := l.Entry("peerC"); e.StoredHere != 220 {
		t.Errorf("ledger peerC %+v with fair share off, want 220 stored here", e)
	}
}

func TestKeep(t *testing.T) {
	t.Run("cache bound", func(t *testing.T) {
		f := newFixture(t, 1000, 100)
		for _, c := range []struct {
			size int
			want bool
			// Stored() after
			stored int64
		}{
			{150, true, 250},
			{50, true, 300}, // exactly the cache
			{1, false, 300},
			{0, true, 300},
		} {
			if got := f.k.Keep(300, c.size); got != c.want {
				t.Errorf("Keep(300, %d) = %v at %d stored, want %v", c.size, got, f.k.Stored(), c.want)
			}
			if f.k.Stored() != c.stored {
				t.Errorf("Stored() = %d after Keep(300, %d), want %d", f.k.Stored(), c.size, c.stored)
			}
		}
	})
	t.Run("quota bound", func(t *testing.T) {
		f := newFixture(t, 200, 0)
		for _, c := range []struct {
			size   int
			want   bool
			stored int64
		}{
			{150, true, 150},
			{100, false, 150}, // over the quota though within the cache
			{50, true, 200},   // exactly the quota
			{1, false, 200},
		} {
			if got := f.k.Keep(1000, c.size); got != c.want {
				t.Errorf("Keep(1000, %d) = %v at %d stored, want %v", c.size, got, f.k.Stored(), c.want)
			}
			if f.k.Stored() != c.stored {
				t.Errorf("Stored() = %d after Keep(1000, %d), want %d", f.k.Stored(), c.size, c.stored)
			}
		}
	})
	t.Run("no quota", func(t *testing.T) {
		f := newFixture(t, 0, 0)
		if !f.k.Keep(1<<30, 1<<29) || f.k.Keep(1<<30, 1<<29+1) {
			t.Errorf("with no quota only the cache should bound Keep")
		}
		if f.k.Stored() != 1<<29 {
			t.Errorf("Stored() = %d, want %d", f.k.Stored(), 1<<29)
		}
	})
}

// TestEvictRemembersKeptBlocksUse: a partial eviction forgets the last use
// of the blocks it evicted only; a used block that stayed still goes after
// the unused ones in the next round.
func TestEvictRemembersKeptBlocksUse(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, 0, 0)
	f.k.Node = newFakeNet(f.st)
	b0, _, b2 := f.put(t, 100), f.put(t, 100), f.put(t, 100)
	f.k.Touch(b0)
	if _, err := f.k.Evict(ctx, 100, false); err != nil {
		t.Fatal(err)
	}
	f.wantHeld(t, b0, b2) // b1: the oldest unused
	if _, err := f.k.Evict(ctx, 100, false); err != nil {
		t.Fatal(err)
	}
	f.wantHeld(t, b0) // b2 was never used; b0 was
}

// TestSinkQuotaConcurrent: pushes that arrive at once cannot pass the
// quota together.
func TestSinkQuotaConcurrent(t *testing.T) {
	f := newFixture(t, 1000, 0)
	s := f.k.Sink(bmnet.NewStoreSink(f.st))
	var wg sync.WaitGroup
	var accepted atomic.Int64
	for i := range 200 {
		b := f.block(t, 100+i%7)
		wg.Add(1)
		go func() {
			defer wg.Done()
			if s.Accept(context.Background(), "peer", b.ID(), b.Data()) == nil {
				accepted.Add(int64(len(b.Data())))
			}
		}()
	}
	wg.Wait()
	if got := accepted.Load(); got > 1000 || f.k.Stored() > 1000 {
		t.Fatalf("%d bytes accepted, %d counted stored, into a quota of 1000", got, f.k.Stored())
	}
}
