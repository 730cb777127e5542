package net

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/blockmix/blockmix/blocks"
	"github.com/blockmix/blockmix/mixer"
	"github.com/blockmix/blockmix/recipe"
)

// TestUploaderMayLeave: node 0 puts a file, places every block it needs on
// three other nodes and goes away; node 4, which held nothing, rebuilds the
// file byte for byte through its Fetcher.
func TestUploaderMayLeave(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	nodes, stores := startNetwork(t, ctx, []int{1 << 30, 1 << 30, 1 << 30, 1 << 30, 1 << 30})

	data := make([]byte, 3<<20+12345)
	rand.NewChaCha8([32]byte{9}).Read(data)
	m, err := mixer.New(stores[0], mixer.Options{})
	if err != nil {
		t.Fatal(err)
	}
	res, err := recipe.Put(ctx, m, stores[0], bytes.NewReader(data), int64(len(data)), "f.bin", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	ids := putList(t, stores[0], res)
	var bs []blocks.Block
	for _, id := range ids {
		b, err := blocks.GetBlock(ctx, stores[0], id)
		if err != nil {
			t.Fatal(err)
		}
		bs = append(bs, b)
	}
	if _, err := nodes[0].Place(ctx, bs, 3); err != nil {
		t.Fatal(err)
	}
	nodes[0].Close()

	// Node 4 is empty but for what placement gave it.
	r, err := recipe.Open(ctx, NewFetcher(nodes[4], stores[4]), res.Recipe, recipe.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if _, err := io.Copy(&out, r); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out.Bytes(), data) {
		t.Fatal("the file rebuilt on node 4 differs")
	}
	// What it fetched, it keeps.
	for _, id := range ids[:5] {
		if ok, _ := stores[4].Has(ctx, id); !ok {
			t.Fatalf("block %s was not kept after the fetch", id)
		}
	}
	// A block nobody has is "not found", after asking everyone.
	_, err = NewFetcher(nodes[4], stores[4]).Get(ctx, block(999).ID())
	if !errors.Is(err, blocks.ErrNotFound) {
		t.Fatalf("a block nobody has: %v", err)
	}
}

// startServers starts one node per source (no pushes taken) and a client
// node with an empty store, all connected to each other.
func startServers(t *testing.T, ctx context.Context, srcs []blocks.Getter) (*Node, *blocks.Mem, []*Node) {
	t.Helper()
	local := blocks.NewMem()
	client, err := NewNode(Config{}, local, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	var servers []*Node
	for _, src := range srcs {
		n, err := NewNode(Config{}, src, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { n.Close() })
		connect(t, ctx, client, n)
		servers = append(servers, n)
	}
	return client, local, servers
}

// someBlocks returns n distinct 16 KiB blocks in a store.
func someBlocks(t *testing.T, n int) ([]blocks.ID, *blocks.Mem) {
	t.Helper()
	st := blocks.NewMem()
	rng := rand.NewChaCha8([32]byte{7})
	var ids []blocks.ID
	for i := 0; i < n; i++ {
		d := make([]byte, 16<<10)
		rng.Read(d)
		b, err := blocks.NewBlock(d)
		if err != nil {
			t.Fatal(err)
		}
		if err := st.Put(context.Background(), b.ID(), d, uint64(i+1)); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, b.ID())
	}
	return ids, st
}

// getAll fetches ids with 64 Gets in flight and checks every block.
func getAll(t *testing.T, ctx context.Context, f *Fetcher, ids []blocks.ID) {
	t.Helper()
	sem := make(chan struct{}, 64)
	errs := make(chan error, len(ids))
	for _, id := range ids {
		sem <- struct{}{}
		go func() {
			defer func() { <-sem }()
			b, err := f.Get(ctx, id)
			if err == nil {
				err = blocks.Check(id, b)
			}
			errs <- err
		}()
	}
	for range ids {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}

// slowGetter answers every Get after a delay.
type slowGetter struct {
	blocks.Getter
	delay time.Duration
}

func (s slowGetter) Get(ctx context.Context, id blocks.ID) ([]byte, error) {
	time.Sleep(s.delay)
	return s.Getter.Get(ctx, id)
}

// TestFetcherSpreadsAndBatches: three holders of every block share the
// work, the requests go out as want-lists of many IDs, and a slow holder
// gets a smaller share than the fast ones.
func TestFetcherSpreadsAndBatches(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	ids, st := someBlocks(t, 600)
	client, local, servers := startServers(t, ctx, []blocks.Getter{st, st, slowGetter{st, 20 * time.Millisecond}})
	f := NewFetcher(client, local)
	getAll(t, ctx, f, ids)

	if s := f.Stats(); s.Blocks != int64(len(ids)) || s.Kept != int64(len(ids)) {
		t.Fatalf("fetched %d blocks and kept %d, want %d of each", s.Blocks, s.Kept, len(ids))
	}
	var requests int64
	share := make([]int64, len(servers))
	for i, n := range servers {
		s := client.Blocks.Peers.Stats(n.Host.ID())
		share[i] = s.BytesIn / (16 << 10)
		requests += s.Successes + s.Failures
	}
	t.Logf("blocks per holder (fast, fast, slow): %v in %d want-lists", share, requests)
	if requests > int64(len(ids))/2 {
		t.Errorf("%d want-lists for %d blocks: not batched", requests, len(ids))
	}
	for i, n := range share[:2] {
		if n == 0 {
			t.Errorf("fast holder %d served nothing", i)
		}
	}
	if share[2]*2 > min(share[0], share[1]) {
		t.Errorf("the slow holder served %d blocks, the fast ones %d and %d: want less than half", share[2], share[0], share[1])
	}
	// Now they are local: no more traffic.
	before := f.Stats().Blocks
	getAll(t, ctx, f, ids[:50])
	if f.Stats().Blocks != before {
		t.Fatal("blocks already kept were fetched again")
	}
}

// liarGetter answers with the bytes of another block.
type liarGetter struct{}

func (liarGetter) Get(context.Context, blocks.ID) ([]byte, error) {
	return bytes.Repeat([]byte("not it"), 2000), nil
}

// stallGetter never answers until the test ends.
type stallGetter struct{ stop <-chan struct{} }

func (s stallGetter) Get(context.Context, blocks.ID) ([]byte, error) {
	<-s.stop
	return nil, blocks.ErrNotFound
}

// vanishGetter serves n blocks, then its node goes away.
type vanishGetter struct {
	blocks.Getter
	mu   sync.Mutex
	n    int
	gone func()
}

func (v *vanishGetter) Get(ctx context.Context, id blocks.ID) ([]byte, error) {
	v.mu.Lock()
	v.n--
	if v.n == 0 {
		go v.gone()
	}
	v.mu.Unlock()
	return v.Getter.Get(ctx, id)
}

// TestFetcherBadPeers: of four holders one lies, one stalls and one
// vanishes mid-transfer; every block still arrives right, from the honest
// one, and the liar is marked.
func TestFetcherBadPeers(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	ids, st := someBlocks(t, 300)
	stop := make(chan struct{})
	defer close(stop)
	vanish := &vanishGetter{Getter: st, n: 40}
	client, local, servers := startServers(t, ctx, []blocks.Getter{liarGetter{}, stallGetter{stop}, vanish, st})
	vanish.gone = func() { servers[2].Close() }
	f := NewFetcher(client, local)
	f.PerPeer = time.Second
	getAll(t, ctx, f, ids)

	if s := client.Blocks.Peers.Stats(servers[0].Host.ID()); s.Lies == 0 || s.BytesIn != 0 {
		t.Errorf("the liar: %+v, want lies counted and no bytes taken", s)
	}
	// The end game may have fetched the staller's blocks elsewhere before
	// its want-list timed out (PerPeer): its failure counts when it does.
	staller := client.Blocks.Peers.Stats(servers[1].Host.ID())
	for deadline := time.Now().Add(5 * time.Second); staller.Failures == 0 && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
		staller = client.Blocks.Peers.Stats(servers[1].Host.ID())
	}
	if staller.Failures == 0 || staller.BytesIn != 0 {
		t.Errorf("the staller: %+v, want failures and no bytes", staller)
	}
	if s := client.Blocks.Peers.Stats(servers[2].Host.ID()); s.Failures == 0 {
		t.Errorf("the vanished peer: %+v, want failures", s)
	}
	if s := client.Blocks.Peers.Stats(servers[3].Host.ID()); s.BytesIn == 0 {
		t.Error("the honest peer served nothing")
	}
}

// putList is the block list st's record of res's file holds.
func putList(t testing.TB, st blocks.Filer, res recipe.PutResult) []blocks.ID {
	t.Helper()
	f, err := st.File(context.Background(), res.Recipe.Key())
	if err != nil {
		t.Fatalf("the list of %s: %v", res.Recipe.Name, err)
	}
	return f.Blocks
}
