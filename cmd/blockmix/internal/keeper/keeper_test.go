package keeper_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/blockmix/blockmix/blocks"
	"github.com/blockmix/blockmix/cmd/blockmix/internal/keeper"
	"github.com/blockmix/blockmix/cmd/blockmix/internal/metrics"
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
	f.k = keeper.New(st, 3, quota, slog.New(slog.NewTextHandler(f.logs, nil)), f.m)
	f.k.Added(0, stored)
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
	f.k.Added(1, int64(n)) // as the node counts its own puts
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

func (n *fakeNet) HandOff(ctx context.Context, b blocks.Block, replicas int) (int, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	id := b.ID()
	n.tried = append(n.tried, id)
	n.replicas[id] = append(n.replicas[id], replicas)
	if blocks.Sum(b.Data()) != id {
		n.problems = append(n.problems, fmt.Sprintf("HandOff(%s) got bytes that do not match", id.Short()))
	}
	if m, _ := n.st.Stat(ctx, id); !n.resp[id] && !blocks.HeldForNetwork(m.Tag) {
		n.problems = append(n.problems, fmt.Sprintf("HandOff(%s) of a block neither pushed here nor one the network is responsible for", id.Short()))
	}
	// The block must still be in the store when it is handed off.
	if ok, err := n.st.Has(ctx, id); err != nil || !ok {
		n.problems = append(n.problems, fmt.Sprintf("HandOff(%s) after the block left the store (has %v, err %v)", id.Short(), ok, err))
	}
	if n.fail[id] {
		return 0, errors.New("no peer took it")
	}
	n.handed[id] = true
	return replicas, nil
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
	if got, want := f.k.Stored(), blocks.Cost(50)+blocks.Cost(60)+blocks.Cost(70)+blocks.Cost(80); got != want {
		t.Errorf("Stored() = %d after eviction, want %d", got, want)
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
		if got, want := w.f.k.Stored(), blocks.Cost(500)+blocks.Cost(600)+blocks.Cost(300); got != want {
			t.Errorf("Stored() = %d, want %d", got, want)
		}
	})

	t.Run("only as far as needed", func(t *testing.T) {
		w := setup(t)
		// The cached block frees Cost(100); the oldest of the network's
		// (a, 200) covers the rest.
		info, err := w.f.k.Evict(ctx, blocks.Cost(100)+1, true)
		if err != nil {
			t.Fatalf("Evict(Cost(100)+1, true): %v", err)
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

	info, err := f.k.Evict(ctx, blocks.Cost(100)+1, false)
	if err != nil {
		t.Fatalf("Evict(Cost(100)+1): %v", err)
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

// TestEvictInBatches: with room for 3 candidates per walk, an eviction
// that needs 12 blocks walks the index several times and still takes the
// 12 least recently used, in order; the used blocks stay.
func TestEvictInBatches(t *testing.T) {
	defer keeper.SetEvictBatch(3)()
	ctx := context.Background()
	f := newFixture(t, 0, 0)
	f.k.Node = newFakeNet(f.st)
	var ids []blocks.ID
	for i := 0; i < 20; i++ {
		ids = append(ids, f.put(t, 100))
	}
	for _, i := range []int{0, 3, 7, 11, 19} {
		f.k.Touch(ids[i])
	}
	info, err := f.k.Evict(ctx, 12*blocks.Cost(100), false)
	if err != nil {
		t.Fatal(err)
	}
	if info.EvictedBlocks != 12 {
		t.Fatalf("evicted %d blocks, want 12", info.EvictedBlocks)
	}
	// Unused, oldest first: 1 2 4 5 6 8 9 10 12 13 14 15 go; 16 17 18 stay.
	f.wantHeld(t, ids[0], ids[3], ids[7], ids[11], ids[19], ids[16], ids[17], ids[18])
}

// TestTouchRemembersRecentUsesOnly: the keeper keeps the last uses of at
// most two generations of blocks; an older use is forgotten, so that
// block goes with the unused ones, by age.
func TestTouchRemembersRecentUsesOnly(t *testing.T) {
	defer keeper.SetUsedGeneration(2)()
	ctx := context.Background()
	f := newFixture(t, 0, 0)
	f.k.Node = newFakeNet(f.st)
	var ids []blocks.ID
	for i := 0; i < 8; i++ {
		ids = append(ids, f.put(t, 100))
	}
	// 0 and 1 are used first, then 2 3 4 5: the uses of 0 and 1 are two
	// generations back, so they count as unused and, older than 6 and 7
	// (never used), go first.
	for _, i := range []int{0, 1, 2, 3, 4, 5} {
		f.k.Touch(ids[i])
	}
	if _, err := f.k.Evict(ctx, 2*blocks.Cost(100), false); err != nil {
		t.Fatal(err)
	}
	f.wantHeld(t, ids[2], ids[3], ids[4], ids[5], ids[6], ids[7])
}

// TestEvictStopsWhenHandOffsFail: when no hand-off works (a lone donor),
// an eviction tries one batch of the network's blocks, not every one of
// them, and says it could not free enough; a batch whose hand-offs work
// goes, and the next walk takes the next batch.
func TestEvictStopsWhenHandOffsFail(t *testing.T) {
	defer keeper.SetEvictBatch(3)()
	ctx := context.Background()
	f := newFixture(t, 0, 0)
	n := newFakeNet(f.st)
	f.k.Node = n
	for i := 0; i < 20; i++ {
		id := f.put(t, 100)
		n.resp[id] = true
		n.fail[id] = true
	}
	_, err := f.k.Evict(ctx, 20*blocks.Cost(100), true)
	if !errors.Is(err, keeper.ErrOverQuota) {
		t.Fatalf("Evict with every hand-off failing: %v, want ErrOverQuota", err)
	}
	if len(n.tried) != 3 {
		t.Fatalf("%d hand-offs tried, want one batch of 3", len(n.tried))
	}
	clear(n.fail)
	clear(n.replicas) // the first try of each counts apart
	n.tried = nil
	info, err := f.k.Evict(ctx, 7*blocks.Cost(100), true)
	if err != nil || info.HandedOff != 7 {
		t.Fatalf("Evict with working hand-offs: %+v, %v; want 7 handed off", info, err)
	}
	n.check(t)
}
