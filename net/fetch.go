package net

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sort"
	"sync"
	"time"

	kb "github.com/libp2p/go-libp2p-kbucket"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/blockmix/blockmix/blocks"
)

// LocalStore is what a Fetcher needs of the node's own store.
type LocalStore interface {
	blocks.Getter
	blocks.BlockPutter
}

// Quarantiner is a LocalStore that can take a corrupt block out of
// service; with it, a Fetcher repairs what it reads (see Get).
type Quarantiner interface {
	Quarantine(ctx context.Context, id blocks.ID, reason string) error
}

// Fetcher is a blocks.Getter that reads the local store first and then
// asks peers, BitTorrent-style: the Gets of many concurrent callers are
// queued per peer and sent as batched want-lists, several per peer at
// once, so that many blocks are in flight across several peers.
//
// For each block the Fetcher asks first the nodes closest to its key (where
// placement put it), then the other peers it knows and the hinted ones
// (providers of the file), and last the peers a DHT walk finds closest.
// Among equals it picks the peer with the least work queued per unit of
// score (see PeerStats.Score), so a slow or failing peer gets a smaller
// share, and liars none. A peer that fails, lies, stalls past PerPeer or
// does not have the block passes it on to the next one.
//
// A fetched block (verified on arrival) is kept in the local store with a
// fresh local tag when Keep allows, so it serves later reads and other
// files. Concurrent Gets of one ID share one request. Safe for concurrent
// use.
type Fetcher struct {
	n     *Node
	local LocalStore

	// PerPeer bounds one want-list's answer; 0 means 30 s.
	PerPeer time.Duration
	// Streams is the number of want-lists in flight per peer; 0 means 4.
	Streams int
	// Batch is the most IDs per want-list; 0 means 32.
	Batch int
	// Near is how many of the closest peers hold a block (the replica
	// count); 0 means 3.
	Near int
	// Keep says whether to keep a fetched block locally; nil keeps all.
	Keep func(id blocks.ID, size int) bool
	// Observe, if set, is told of every block that came from a peer: how
	// long since its first Get asked for it, and its size.
	Observe func(wait time.Duration, size int)

	mu       sync.Mutex
	queues   map[peer.ID]*peerQueue
	inflight map[blocks.ID]*want
	hints    []peer.ID
	stats    FetchStats
}

// FetchStats counts what a Fetcher did.
type FetchStats struct {
	Blocks     int64 // blocks that came from peers
	Bytes      int64 // their bytes
	Kept       int64 // of those, kept in the local store
	KeepFailed int64 // could not be kept (the store failed); still served
	Lookups    int64 // DHT walks for blocks no known peer had
}

type peerQueue struct {
	pending []*want
	load    int // IDs queued or in flight
	active  int // workers sending want-lists
	// What this Fetcher measured of the peer: lists in flight, since
	// when (busy), the blocks that came since then, and the time per
	// block as they came (gap; 0: not measured yet).
	lists int
	busy  time.Time
	got   int
	gap   time.Duration
}

// pace is q's time per block now: the gap measured, or, while a list is
// out, the time since busy per block that came plus one (a peer that
// stalled is slow before its first block comes). 0: not measured.
func (q *peerQueue) pace(now time.Time) time.Duration {
	if q == nil {
		return 0
	}
	g := q.gap
	if q.lists > 0 && (q.got > 0 || now.Sub(q.busy) > stealAge) {
		g = max(g, now.Sub(q.busy)/time.Duration(q.got+1))
	}
	return g
}

// pace is p's expected time per block: what this Fetcher measured, else
// the peer book's latency per block of a want-list spread over the lists
// sent at once.
func (f *Fetcher) pace(p peer.ID, now time.Time) time.Duration {
	if g := f.queues[p].pace(now); g > 0 {
		return g
	}
	lat := f.n.Blocks.Peers.Stats(p).Latency
	if lat <= 0 {
		lat = unknownLatency
	}
	return lat / time.Duration(f.streams())
}

// want is one block being fetched for one or more callers.
type want struct {
	id     blocks.ID
	cands  []peer.ID // closest first
	tried  map[peer.ID]bool
	errs   []string
	looked bool // a DHT walk added candidates already
	start  time.Time
	// repair: the copy here was corrupt and is quarantined; the block
	// goes back into the store whatever Keep says.
	repair  bool
	waiters []chan fetched
	// left counts the callers still waiting; a want nobody waits for is
	// dropped from the queues.
	left int
	// done: the block came (or the want failed); later answers are
	// dropped. asks counts the requests out for it (queued or in
	// flight), queued those still queued; sent is when it was first
	// sent to a peer, at that peer's queue.
	done         bool
	asks, queued int
	sent         time.Time
	at           *peerQueue
}

type fetched struct {
	b   []byte
	err error
}

// NewFetcher returns a Fetcher over n and the local store.
func NewFetcher(n *Node, local LocalStore) *Fetcher {
	return &Fetcher{n: n, local: local, queues: map[peer.ID]*peerQueue{}, inflight: map[blocks.ID]*want{}}
}

// Hint adds peers to ask after the closest ones, for example the providers
// of the file being fetched.
func (f *Fetcher) Hint(ps ...peer.ID) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, p := range ps {
		if p != f.n.Host.ID() {
			f.hints = append(f.hints, p)
		}
	}
}

// Stats returns what the Fetcher did so far.
func (f *Fetcher) Stats() FetchStats {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.stats
}

// GetInto implements blocks.IntoGetter: a block the local store holds is
// read into buf when the store is a blocks.IntoGetter (a local get of a
// big file then allocates nothing per block); any other goes the way of
// Get, whose bytes are not in buf.
func (f *Fetcher) GetInto(ctx context.Context, id blocks.ID, buf []byte) ([]byte, error) {
	if ig, ok := f.local.(blocks.IntoGetter); ok {
		if b, err := ig.GetInto(ctx, id, buf); err == nil {
			return b, nil
		}
	}
	return f.Get(ctx, id)
}

// Prefetch implements blocks.Prefetcher with the local store's, when it
// has one: the blocks held here are read ahead; the others are not.
func (f *Fetcher) Prefetch(ctx context.Context, ids []blocks.ID) {
	if p, ok := f.local.(blocks.Prefetcher); ok {
		p.Prefetch(ctx, ids)
	}
}

// Get implements blocks.Getter. It returns an error wrapping
// blocks.ErrNotFound when no peer has the block. A local copy that does
// not match its ID is quarantined (when the store is a Quarantiner) and
// fetched again from a peer into the store; when no peer has it, the error
// wraps both blocks.ErrCorrupt and blocks.ErrNotFound and says it is lost.
func (f *Fetcher) Get(ctx context.Context, id blocks.ID) ([]byte, error) {
	b, err := f.local.Get(ctx, id)
	if err == nil {
		return b, nil
	}
	repair := false
	switch {
	case errors.Is(err, blocks.ErrCorrupt) || errors.Is(err, blocks.ErrTooLarge):
		// Read repair: the copy here rotted. Take it out of service and
		// get a good one from a peer, which goes back into the store.
		q, ok := f.local.(Quarantiner)
		if !ok {
			return nil, err
		}
		if qerr := q.Quarantine(ctx, id, err.Error()); qerr != nil && !errors.Is(qerr, blocks.ErrNotFound) {
			return nil, fmt.Errorf("%w (and it could not be quarantined: %v)", err, qerr)
		}
		repair = true
	case !errors.Is(err, blocks.ErrNotFound):
		return nil, err
	}
	ch := make(chan fetched, 1)
	f.mu.Lock()
	w, ok := f.inflight[id]
	if ok {
		w.waiters = append(w.waiters, ch)
		w.left++
		w.repair = w.repair || repair
		f.mu.Unlock()
	} else {
		w = &want{id: id, tried: map[peer.ID]bool{}, waiters: []chan fetched{ch}, left: 1, start: time.Now(), repair: repair}
		w.cands = f.candidates(id)
		f.inflight[id] = w
		f.dispatch(w) // unlocks f.mu
	}
	select {
	case r := <-ch:
		return r.b, r.err
	case <-ctx.Done():
		f.mu.Lock()
		w.left--
		f.mu.Unlock()
		return nil, ctx.Err()
	}
}

// candidates lists the peers to ask for id: the closest by XOR distance
// to its key first, then the hinted peers not among them.
func (f *Fetcher) candidates(id blocks.ID) []peer.ID {
	ps := kb.SortClosestPeers(f.n.candidates(), kb.ConvertKey(BlockKey(id)))
	seen := make(map[peer.ID]bool, len(ps))
	for _, p := range ps {
		seen[p] = true
	}
	for _, p := range f.hints {
		if !seen[p] {
			seen[p] = true
			ps = append(ps, p)
		}
	}
	return ps
}

// dispatch queues w at its next peer, or finishes it when there is none
// (after one DHT walk). Called with f.mu held; it releases it.
func (f *Fetcher) dispatch(w *want) {
	if w.left <= 0 || w.done {
		f.forget(w)
		f.mu.Unlock()
		return
	}
	if w.asks > 0 {
		// Another peer was asked too (see steal) and may still answer.
		f.mu.Unlock()
		return
	}
	p, ok := f.pick(w)
	if ok {
		w.tried[p] = true
		w.asks++
		w.queued++
		q := f.queues[p]
		if q == nil {
			q = &peerQueue{}
			f.queues[p] = q
		}
		q.pending = append(q.pending, w)
		q.load++
		start := q.active < f.streams()
		if start {
			q.active++
		}
		f.mu.Unlock()
		if start {
			go f.work(p, q)
		}
		return
	}
	if !w.looked {
		w.looked = true
		f.stats.Lookups++
		f.mu.Unlock()
		go f.lookup(w)
		return
	}
	f.finish(w, fetched{err: w.notFound()}) // unlocks
}

// pick chooses w's next peer: among the untried near peers if any are
// left, else among all untried ones, the least loaded per unit of score.
func (f *Fetcher) pick(w *want) (peer.ID, bool) {
	near := f.Near
	if near <= 0 {
		near = 3
	}
	now := time.Now()
	for _, group := range [][]peer.ID{w.cands[:min(near, len(w.cands))], w.cands} {
		best, bestCost := peer.ID(""), 0.0
		for _, p := range group {
			if w.tried[p] {
				continue
			}
			st := f.n.Blocks.Peers.Stats(p)
			if st.Score(now) <= 0 {
				continue // a liar within its penalty
			}
			load := 0
			if q := f.queues[p]; q != nil {
				load = q.load
			}
			// The expected time until the block comes, shared out by
			// reliability: a slow or failing peer gets a small share.
			if cost := float64(load+1) * f.pace(p, now).Seconds() / st.Reliability(); best == "" || cost < bestCost {
				best, bestCost = p, cost
			}
		}
		if best != "" {
			return best, true
		}
	}
	return "", false
}

func (w *want) notFound() error {
	if w.repair {
		return fmt.Errorf("block %s is lost: %w here (now quarantined) and %w at the %s asked", w.id, blocks.ErrCorrupt, blocks.ErrNotFound, plural(len(w.tried), "peer"))
	}
	if len(w.errs) > 0 {
		return fmt.Errorf("block %s: %w here or at the %s asked (%s)", w.id, blocks.ErrNotFound, plural(len(w.tried), "peer"), w.errs[0])
	}
	return fmt.Errorf("block %s: %w here or at the %s asked", w.id, blocks.ErrNotFound, plural(len(w.tried), "peer"))
}

// finish hands r to every caller waiting for w. Called with f.mu held; it
// releases it.
//
// Every caller owns the bytes it gets (blocks.Getter's contract: the
// mixer XORs into them in place), so each copy is taken before the first
// caller is woken: a copy taken after a send could read bytes that caller
// is already overwriting.
func (f *Fetcher) finish(w *want, r fetched) {
	f.forget(w)
	w.done = true
	ws := w.waiters
	w.waiters = nil
	f.mu.Unlock()
	rs := make([]fetched, len(ws))
	for i := range ws {
		rs[i] = r
		if i > 0 && r.b != nil {
			rs[i].b = append([]byte(nil), r.b...)
		}
	}
	for i, ch := range ws {
		ch <- rs[i]
	}
}

// forget removes w from the wants in flight. Called with f.mu held.
func (f *Fetcher) forget(w *want) {
	if f.inflight[w.id] == w {
		delete(f.inflight, w.id)
	}
}

// lookup walks the DHT for the peers closest to w's key and adds the new
// ones as candidates: in a large network the routing table may not know
// the holders.
func (f *Fetcher) lookup(w *want) {
	ctx, cancel := context.WithTimeout(context.Background(), f.perPeer())
	ps, _ := f.n.Closest(ctx, w.id, 20)
	cancel()
	f.mu.Lock()
	for _, p := range ps {
		if !w.tried[p] && p != f.n.Host.ID() {
			w.cands = append(w.cands, p)
		}
	}
	f.dispatch(w)
}

func (f *Fetcher) streams() int {
	if f.Streams > 0 {
		return f.Streams
	}
	return 4
}

func (f *Fetcher) perPeer() time.Duration {
	if f.PerPeer > 0 {
		return f.PerPeer
	}
	return 30 * time.Second
}

// work sends p's queued wants as want-lists until its queue is empty.
func (f *Fetcher) work(p peer.ID, q *peerQueue) {
	batch := f.Batch
	if batch <= 0 {
		batch = 32
	}
	for {
		f.mu.Lock()
		var ws []*want
		for len(q.pending) > 0 && len(ws) < batch {
			w := q.pending[0]
			q.pending = q.pending[1:]
			w.queued--
			if w.left <= 0 || w.done {
				q.load--
				w.asks--
				f.forget(w)
				continue
			}
			ws = append(ws, w)
		}
		if len(ws) == 0 {
			ws = f.steal(p, q, batch)
		}
		if len(ws) == 0 {
			if f.stealable(p) {
				// Blocks are stuck at slower peers: look again soon.
				f.mu.Unlock()
				time.Sleep(stealAge)
				continue
			}
			q.active--
			f.mu.Unlock()
			return
		}
		now := time.Now()
		for _, w := range ws {
			if w.sent.IsZero() {
				w.sent, w.at = now, q
			}
		}
		if q.lists == 0 {
			q.busy, q.got = now, 0
		}
		q.lists++
		f.mu.Unlock()
		f.ask(p, q, ws)
		f.mu.Lock()
		if q.lists--; q.lists == 0 {
			q.busy = time.Time{}
		}
		f.mu.Unlock()
	}
}

// stealAge is how long a block must have been out at another peer before
// an idle peer asks for it too.
const stealAge = 200 * time.Millisecond

// steal is the end game (as in BitTorrent): when nothing is queued for
// any peer, an idle peer p asks for blocks that were sent to other peers
// at least stealAge ago and have not come, oldest first, up to batch. The
// first answer wins; so a slow peer holds up a get for no longer than a
// fast one takes to fetch its blocks again. Called with f.mu held.
func (f *Fetcher) steal(p peer.ID, q *peerQueue, batch int) []*want {
	for _, o := range f.queues {
		if len(o.pending) > 0 {
			return nil
		}
	}
	var ws []*want
	now := time.Now()
	for _, w := range f.inflight {
		if f.canSteal(p, w, now) {
			ws = append(ws, w)
		}
	}
	sort.Slice(ws, func(i, j int) bool { return ws[i].sent.Before(ws[j].sent) })
	ws = ws[:min(len(ws), batch)]
	for _, w := range ws {
		w.tried[p] = true
		w.asks++
		q.load++
	}
	return ws
}

// canSteal reports whether idle peer p may ask for w too: w went out at
// least stealAge ago to a peer at least slowerBy times slower than p.
// Called with f.mu held.
func (f *Fetcher) canSteal(p peer.ID, w *want, now time.Time) bool {
	return !w.done && w.left > 0 && w.asks > 0 && w.queued == 0 && !w.tried[p] && w.at != nil &&
		now.Sub(w.sent) >= stealAge && w.at.pace(now) > slowerBy*f.pace(p, now) && slices.Contains(w.cands, p)
}

// slowerBy is how much slower than an idle peer the peer a block is out
// at must be for the idle one to ask for it too.
const slowerBy = 3

// stealable reports whether some block out at another peer may become
// p's to steal (see steal). Called with f.mu held.
func (f *Fetcher) stealable(p peer.ID) bool {
	for _, w := range f.inflight {
		if !w.done && w.left > 0 && w.asks > 0 && !w.tried[p] && slices.Contains(w.cands, p) {
			return true
		}
	}
	return false
}

// ask sends one want-list to p and settles every want in it: delivered,
// or passed on to its next peer.
func (f *Fetcher) ask(p peer.ID, q *peerQueue, ws []*want) {
	ids := make([]blocks.ID, len(ws))
	byID := make(map[blocks.ID]*want, len(ws))
	for i, w := range ws {
		ids[i] = w.id
		byID[w.id] = w
	}
	ctx, cancel := context.WithTimeout(context.Background(), f.perPeer())
	defer cancel()
	done := make(map[blocks.ID]bool, len(ws))
	_, err := f.n.Blocks.Fetch(ctx, p, ids, func(blk blocks.Block) error {
		blk = blk.Clone()
		id, b := blk.ID(), blk.Data()
		kept, keepErr := false, error(nil)
		f.mu.Lock()
		w := byID[id]
		repair, late := w.repair, w.done
		f.mu.Unlock()
		if late {
			// Another peer's answer came first (see steal).
			done[id] = true
			f.mu.Lock()
			w.asks--
			q.load--
			f.mu.Unlock()
			return nil
		}
		if f.Keep == nil || repair || f.Keep(id, len(b)) {
			keepErr = f.local.PutBlock(ctx, blk, FreshTag())
			kept = keepErr == nil
		}
		done[id] = true
		f.mu.Lock()
		w.asks--
		q.load--
		q.got++
		q.gap = time.Since(q.busy) / time.Duration(q.got)
		if w.done {
			// Another peer's answer came while this one was kept.
			f.mu.Unlock()
			return nil
		}
		f.stats.Blocks++
		f.stats.Bytes += int64(len(b))
		if kept {
			f.stats.Kept++
		} else if keepErr != nil {
			f.stats.KeepFailed++
		}
		f.finish(w, fetched{b: b}) // unlocks
		if f.Observe != nil {
			f.Observe(time.Since(w.start), len(b))
		}
		return nil
	})
	for _, w := range ws {
		if done[w.id] {
			continue
		}
		f.mu.Lock()
		q.load--
		w.asks--
		if err != nil {
			w.errs = append(w.errs, fmt.Sprintf("%s: %v", p.ShortString(), err))
		}
		f.dispatch(w) // unlocks
	}
}

// FreshTag is a random local tag for a block from elsewhere, with
// blocks.ForeignTag set: its relation to other blocks is unknown here, so
// the mixer never uses it as a randomizer.
func FreshTag() uint64 {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return binary.LittleEndian.Uint64(b[:]) | blocks.ForeignTag | 1
}

// plural spells n things: "1 peer", "0 peers", "3 peers".
func plural(n int, thing string) string {
	if n == 1 {
		return "1 " + thing
	}
	return fmt.Sprintf("%d %ss", n, thing)
}
