package net

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	kb "github.com/libp2p/go-libp2p-kbucket"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/blockmix/blockmix/blocks"
)

// Placement is where one block went.
type Placement struct {
	ID      blocks.ID
	Holders []peer.ID // peers that accepted it, closest first
	Refused []string  // why others did not take it
}

// ErrUnderReplicated: some blocks have fewer than R holders. The error
// says how many and why.
var ErrUnderReplicated = errors.New("not every block has its copies")

// BlockKey is a block's key in the DHT keyspace: its multihash.
func BlockKey(id blocks.ID) string { return string(id.CID().Hash()) }

// candidates returns the other peers this node knows: the DHT's routing
// table and the open connections, without the peers that are not
// connected and whose last request failed (likely gone: a node that left
// must not count as a holder or keep its blocks from being repaired), and
// without liars (their claims count for nothing).
func (n *Node) candidates() []peer.ID {
	seen := map[peer.ID]bool{n.Host.ID(): true}
	now := time.Now()
	var out []peer.ID
	for _, p := range append(n.DHT.RoutingTable().ListPeers(), n.Host.Network().Peers()...) {
		if seen[p] {
			continue
		}
		seen[p] = true
		st := n.Blocks.Peers.Stats(p)
		if st.Liar(now) || n.Host.Network().Connectedness(p) != network.Connected && st.Down(now) {
			continue
		}
		out = append(out, p)
	}
	return out
}

// maxWalks bounds the DHT walks of one Place call.
const maxWalks = 16

// explore walks the DHT towards the regions of the keyspace the blocks'
// keys fall in, at most maxWalks walks (one per region, by the keys' first
// byte), so that in a network larger than the routing table the closest
// nodes become known: one walk per region, never one per block (see
// go-libp2p-kad-dht#824). Walks that fail are skipped: placement then uses
// the peers already known.
func (n *Node) explore(ctx context.Context, ids []blocks.ID) {
	if n.DHT.RoutingTable().Size() == 0 {
		return
	}
	regions := map[byte]blocks.ID{}
	for _, id := range ids {
		k := kb.ConvertKey(BlockKey(id))
		if _, ok := regions[k[0]]; !ok && len(regions) < maxWalks {
			regions[k[0]] = id
		}
	}
	var wg sync.WaitGroup
	for _, id := range regions {
		wg.Add(1)
		go func() {
			defer wg.Done()
			wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			_, _ = n.Closest(wctx, id, 20) // fills the routing table
		}()
	}
	wg.Wait()
}

// Place gives each block to the r other nodes closest to its key (with
// the closest partner donors moved up for the node's partner share, and
// one moved up so that they stand in two sites, when the network has
// them: see layout.order), falling back to the next closest when one refuses or
// cannot be reached (and, when that leaves the r holders in one site, to
// one more node of another site). Blocks
// are grouped by peer: one stream per peer and round, many pushes in
// flight, and no DHT walk per block (a few walks find the nodes near the
// blocks' keys; the candidates are then the peers this node knows, sorted
// by XOR distance to each key). It returns one Placement per block, in
// order, and an error wrapping ErrUnderReplicated when a block has fewer
// than r holders.
func (n *Node) Place(ctx context.Context, bs []blocks.Block, r int) ([]Placement, error) {
	ids := make([]blocks.ID, len(bs))
	for i, b := range bs {
		ids[i] = b.ID()
	}
	n.explore(ctx, ids)
	return n.place(ctx, bs, r)
}

// place is Place without the DHT walks.
func (n *Node) place(ctx context.Context, bs []blocks.Block, r int) ([]Placement, error) {
	peers := n.candidates()
	l := n.layoutOf(peers)
	sites := l.sites
	out := make([]Placement, len(bs))
	order := make([][]peer.ID, len(bs)) // candidates per block, closest first (with the partner share, over two sites: see layout.order)
	next := make([]int, len(bs))        // next candidate to try
	for i, b := range bs {
		out[i].ID = b.ID()
		order[i] = l.order(kb.SortClosestPeers(append([]peer.ID(nil), peers...), kb.ConvertKey(BlockKey(b.ID()))), r, "", false)
	}
	for {
		// One round: every short block asks its next candidates (not
		// those caught lying meanwhile).
		batches := map[peer.ID][]int{}
		for i := range bs {
			need := r - len(out[i].Holders)
			// r holders in one site of two (another site's node refused):
			// one more copy, in another site (see spread).
			other := need <= 0 && r >= 2 && len(sites) > 0 && !twoSites(out[i].Holders, "", sites)
			if other {
				need = 1
			}
			for ; need > 0 && next[i] < len(order[i]); next[i]++ {
				p := order[i][next[i]]
				if n.Blocks.Peers.Liar(p) || other && !twoSites(append(out[i].Holders[:len(out[i].Holders):len(out[i].Holders)], p), "", sites) {
					continue
				}
				batches[p] = append(batches[p], i)
				need--
			}
		}
		if len(batches) == 0 {
			break
		}
		var mu sync.Mutex
		var wg sync.WaitGroup
		for p, idx := range batches {
			wg.Add(1)
			go func() {
				defer wg.Done()
				push := make([]blocks.Block, len(idx))
				for k, i := range idx {
					push[k] = bs[i]
				}
				// An accept is a claim: a sample of the accepted blocks
				// must be proven before any counts.
				res, proven, err := n.Blocks.PushProven(ctx, p, push, ProveSample)
				mu.Lock()
				defer mu.Unlock()
				for k, i := range idx {
					switch {
					case err != nil:
						// The stream failed: count none of the batch, even
						// those the peer may have taken (a spare copy is
						// harmless, a missing one is not).
						out[i].Refused = append(out[i].Refused, fmt.Sprintf("%s: %v", p.ShortString(), err))
					case res[k] != nil:
						out[i].Refused = append(out[i].Refused, fmt.Sprintf("%s: %v", p.ShortString(), res[k]))
					case !proven:
						out[i].Refused = append(out[i].Refused, fmt.Sprintf("%s: took the blocks but did not prove it holds them", p.ShortString()))
					default:
						out[i].Holders = append(out[i].Holders, p)
					}
				}
			}()
		}
		wg.Wait()
		if ctx.Err() != nil {
			return out, ctx.Err()
		}
	}
	for i := range out {
		out[i].Holders = kb.SortClosestPeers(out[i].Holders, kb.ConvertKey(BlockKey(bs[i].ID())))
	}
	return out, shortfall(out, r, len(peers))
}

// ProveSample is how many of the blocks a peer claims (accepted, or says
// it has) it is asked to prove at a time. A peer that keeps none of what
// it claims is caught by the first; one that keeps a share f of them
// passes with probability f^ProveSample.
const ProveSample = 4

// sample returns up to k elements of xs, chosen at random.
func sample[T any](xs []T, k int) []T {
	if len(xs) <= k {
		return xs
	}
	out := make([]T, 0, k)
	for _, i := range rand.Perm(len(xs))[:k] {
		out = append(out, xs[i])
	}
	return out
}

// shortfall returns an error wrapping ErrUnderReplicated that says how many
// of pls have fewer than r holders and why, or nil when none has.
func shortfall(pls []Placement, r, others int) error {
	var t tally
	t.add(pls, r)
	return t.err(r, others)
}

// tally counts placements as they come: how many, how many are short and
// the first reason one of those was refused, and which peers took blocks.
type tally struct {
	total, short int
	why          string
	holders      map[peer.ID]bool
}

func (t *tally) add(pls []Placement, r int) {
	if t.holders == nil {
		t.holders = map[peer.ID]bool{}
	}
	t.total += len(pls)
	for _, pl := range pls {
		if len(pl.Holders) < r {
			t.short++
			if t.why == "" && len(pl.Refused) > 0 {
				t.why = pl.Refused[0]
			}
		}
		for _, p := range pl.Holders {
			t.holders[p] = true
		}
	}
}

// err returns an error wrapping ErrUnderReplicated that says how many
// blocks have fewer than r holders and why, or nil when none has; others
// is how many other nodes there are.
func (t *tally) err(r, others int) error {
	if t.short == 0 {
		return nil
	}
	hint := ""
	if others < r {
		hint = fmt.Sprintf(" (the network has only %s)", plural(others, "other node"))
	} else if t.why != "" {
		hint = fmt.Sprintf(" (for example %s)", t.why)
	}
	return fmt.Errorf("%w: %d of %d blocks have fewer than %d copies%s", ErrUnderReplicated, t.short, t.total, r, hint)
}

// PlaceSlice is how many blocks a Placer reads and places at a time, and
// placeSlices how many such slices are in flight: at most
// PlaceSlice·placeSlices blocks are in memory.
const (
	PlaceSlice  = 16
	placeSlices = 4
)

// PlaceAll places the blocks ids from g (see Place) through a Placer. done,
// if not nil, gets the number of blocks placed so far after each slice. It
// returns how many blocks have fewer than r holders and how many distinct
// nodes took blocks, and an error wrapping ErrUnderReplicated when a block
// is short.
func (n *Node) PlaceAll(ctx context.Context, g blocks.Getter, ids []blocks.ID, r int, done func(int)) (short, nodes int, err error) {
	p := n.NewPlacer(ctx, g, r)
	p.Done = done
	for start := 0; start < len(ids); start += PlaceSlice {
		if err := p.Add(ids[start:min(start+PlaceSlice, len(ids))]...); err != nil {
			break // Close says why
		}
	}
	return p.Close()
}

// A Placer places blocks (see Place) while they are being made, so that a
// put's pushes overlap its mixing: Add queues the IDs of blocks already in
// its getter; each slice of PlaceSlice IDs is read and placed in the
// background as it fills, at most placeSlices slices at a time, and Add
// waits for room, so a fast producer runs at most that far ahead of the
// network and the blocks in memory stay bounded whatever the file's size.
// An ID added again soon after is placed once (a randomizer that many of
// a file's tuples name). Close places what is left and reports. A Placer
// is used by one goroutine; Done (optional, set before the first Add)
// gets the number of blocks placed so far after each slice, from the
// placing goroutines, one call at a time. Release (optional, set before
// the first AddBlocks) gets back each block given to AddBlocks once the
// Placer is done with its bytes (placed, or not placed again as one
// added lately), from any goroutine: a caller can reuse its buffer.
type Placer struct {
	Done    func(placed int)
	Release func(blocks.Block)

	n       *Node
	g       blocks.Getter
	r       int
	ctx     context.Context
	cancel  context.CancelFunc
	pending []placeItem
	seen    recent
	regions map[byte]bool // the key regions walked so far (see explore)
	sem     chan struct{}
	wg      sync.WaitGroup

	mu     sync.Mutex
	placed int
	first  error
	t      tally
}

// NewPlacer returns a Placer that gives blocks read from g to r other
// nodes each, until ctx ends.
func (n *Node) NewPlacer(ctx context.Context, g blocks.Getter, r int) *Placer {
	ctx, cancel := context.WithCancel(ctx)
	return &Placer{n: n, g: g, r: r, ctx: ctx, cancel: cancel, regions: map[byte]bool{},
		sem: make(chan struct{}, placeSlices), seen: newRecent(8192)}
}

// Add queues ids for placing; their bytes are read from the Placer's
// getter when their slice goes out. It returns an error once placement
// has failed (a block that cannot be read, ctx ended): stop adding, and
// Close tells the rest. Blocks short of copies are no error here.
func (p *Placer) Add(ids ...blocks.ID) error {
	if p == nil {
		return nil // no placer: a put that places its blocks otherwise
	}
	for _, id := range ids {
		if err := p.queue(placeItem{id: id}); err != nil {
			return err
		}
	}
	return p.failed()
}

// AddBlocks is Add for blocks whose bytes the caller has at hand (a put's
// new blocks, just mixed): they are not read again. The Placer keeps bs
// until they are placed.
func (p *Placer) AddBlocks(bs ...blocks.Block) error {
	if p == nil {
		return nil
	}
	for _, b := range bs {
		if err := p.queue(placeItem{id: b.ID(), blk: b, have: true}); err != nil {
			return err
		}
	}
	return p.failed()
}

// placeItem is a block to place: its bytes, or its ID alone (read from
// the getter when its slice goes out).
type placeItem struct {
	id   blocks.ID
	blk  blocks.Block
	have bool
}

// queue adds it unless its block came lately.
func (p *Placer) queue(it placeItem) error {
	if p.seen.has(it.id) {
		p.release(it)
		return nil
	}
	p.seen.add(it.id)
	p.pending = append(p.pending, it)
	if len(p.pending) == PlaceSlice {
		return p.flush()
	}
	return nil
}

// release gives its bytes back through Release when they came with it.
func (p *Placer) release(it placeItem) {
	if it.have && p.Release != nil {
		p.Release(it.blk)
	}
}

func (p *Placer) failed() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.first != nil {
		return p.first
	}
	return p.ctx.Err()
}

// flush starts placing the pending slice once a slot is free.
func (p *Placer) flush() error {
	if len(p.pending) == 0 {
		return nil
	}
	slice := p.pending
	p.pending = make([]placeItem, 0, PlaceSlice)
	p.explore(slice)
	select {
	case p.sem <- struct{}{}:
	case <-p.ctx.Done():
		return p.failed()
	}
	p.wg.Add(1)
	go func() {
		defer func() { <-p.sem; p.wg.Done() }()
		pls, err := p.n.placeFrom(p.ctx, p.g, slice, p.r)
		for _, it := range slice {
			p.release(it) // pushed and proven, or failed: no longer read
		}
		p.mu.Lock()
		defer p.mu.Unlock()
		if err != nil {
			if p.first == nil {
				p.first = err
			}
			p.cancel()
			return
		}
		p.t.add(pls, p.r)
		p.placed += len(slice)
		if p.Done != nil {
			p.Done(p.placed)
		}
	}()
	return nil
}

// explore walks the DHT towards the key regions of items not walked yet,
// at most maxWalks regions in all (see Node.explore).
func (p *Placer) explore(items []placeItem) {
	var fresh []blocks.ID
	for _, it := range items {
		k := kb.ConvertKey(BlockKey(it.id))
		if !p.regions[k[0]] && len(p.regions) < maxWalks {
			p.regions[k[0]] = true
			fresh = append(fresh, it.id)
		}
	}
	if len(fresh) > 0 {
		p.n.explore(p.ctx, fresh)
	}
}

// Close places the blocks still queued, waits for every slice, and
// returns how many blocks have fewer than r holders and how many distinct
// nodes took blocks, with an error wrapping ErrUnderReplicated when a
// block is short. Any other error (a block that could not be read, ctx
// ended) comes alone, with zero counts.
func (p *Placer) Close() (short, nodes int, err error) {
	if p == nil {
		return 0, 0, nil
	}
	defer p.cancel()
	if p.failed() == nil {
		_ = p.flush()
	}
	p.wg.Wait()
	if err := p.failed(); err != nil {
		return 0, 0, err
	}
	return p.t.short, len(p.t.holders), p.t.err(p.r, len(p.n.candidates()))
}

// recent is a set of the IDs added last: between n and 2n of them (two
// generations; a hit keeps an ID in the newer one).
type recent struct {
	n         int
	cur, prev map[blocks.ID]struct{}
}

func newRecent(n int) recent {
	return recent{n: n, cur: map[blocks.ID]struct{}{}}
}

func (s *recent) has(id blocks.ID) bool {
	if _, ok := s.cur[id]; ok {
		return true
	}
	if _, ok := s.prev[id]; ok {
		s.add(id)
		return true
	}
	return false
}

func (s *recent) add(id blocks.ID) {
	if len(s.cur) >= s.n {
		s.prev, s.cur = s.cur, make(map[blocks.ID]struct{}, s.n)
	}
	s.cur[id] = struct{}{}
}

// placeFrom places items, reading from g those that came without bytes.
func (n *Node) placeFrom(ctx context.Context, g blocks.Getter, items []placeItem, r int) ([]Placement, error) {
	bs := make([]blocks.Block, len(items))
	for i, it := range items {
		if it.have {
			bs[i] = it.blk
			continue
		}
		b, err := blocks.GetBlock(ctx, g, it.id)
		if err != nil {
			return nil, fmt.Errorf("read block to place: %w", err)
		}
		bs[i] = b
	}
	pls, err := n.place(ctx, bs, r)
	if err != nil && !errors.Is(err, ErrUnderReplicated) {
		return nil, err
	}
	return pls, nil
}
