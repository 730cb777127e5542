package net

import (
	"context"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Budget bounds the bytes a node holds for the peers it serves: blocks read
// for an answer and not yet written. Each peer may hold at most PerPeer of
// them and all peers together at most Total, so a few peers that ask much
// and read nothing cannot take the memory that others are served from.
// Safe for concurrent use.
type Budget struct {
	total, perPeer int64

	mu     sync.Mutex
	used   int64
	byPeer map[string]int64
	freed  chan struct{} // closed (and replaced) at each release
}

// NewBudget returns a Budget of total bytes, at most perPeer of them for
// one peer. A peer holding nothing may always take one grant (a block
// larger than perPeer is still served), as long as total allows it.
func NewBudget(total, perPeer int64) *Budget {
	return &Budget{total: total, perPeer: perPeer, byPeer: map[string]int64{}, freed: make(chan struct{})}
}

// Acquire waits until peer may hold n more bytes and counts them, or
// returns ctx's error. Each Acquire that returns nil needs one Release of
// the same n.
func (b *Budget) Acquire(ctx context.Context, peer string, n int64) error {
	for {
		b.mu.Lock()
		mine := b.byPeer[peer]
		if b.used+n <= b.total && (mine == 0 || mine+n <= b.perPeer) {
			b.used += n
			b.byPeer[peer] = mine + n
			b.mu.Unlock()
			return nil
		}
		wait := b.freed
		b.mu.Unlock()
		select {
		case <-wait:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Release gives back n bytes that peer held.
func (b *Budget) Release(peer string, n int64) {
	b.mu.Lock()
	b.used -= n
	if left := b.byPeer[peer] - n; left > 0 {
		b.byPeer[peer] = left
	} else {
		delete(b.byPeer, peer)
	}
	close(b.freed)
	b.freed = make(chan struct{})
	b.mu.Unlock()
}

// Used returns the bytes held now, by all peers and by peer.
func (b *Budget) Used(peer string) (all, mine int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.used, b.byPeer[peer]
}

// ProofRate bounds the proofs a node computes for its peers (each a block
// read and hashed): per peer, and for all peers together. Safe for
// concurrent use.
type ProofRate struct {
	all     *rate.Limiter
	perPeer rate.Limit
	burst   int

	mu    sync.Mutex
	peers map[string]*peerRate
}

type peerRate struct {
	lim  *rate.Limiter
	used time.Time
}

// NewProofRate allows perPeer proofs a second to one peer and all a second
// to every peer together, each with a burst of a second's worth.
func NewProofRate(perPeer, all int) *ProofRate {
	return &ProofRate{all: rate.NewLimiter(rate.Limit(all), all), perPeer: rate.Limit(perPeer), burst: perPeer, peers: map[string]*peerRate{}}
}

// Wait waits until peer may have one more proof, or returns ctx's error.
func (r *ProofRate) Wait(ctx context.Context, peer string) error {
	now := time.Now()
	r.mu.Lock()
	p, ok := r.peers[peer]
	if !ok {
		if len(r.peers) >= 4096 {
			// Forget the peers idle for a minute: a full bucket again.
			for k, v := range r.peers {
				if now.Sub(v.used) > time.Minute {
					delete(r.peers, k)
				}
			}
		}
		p = &peerRate{lim: rate.NewLimiter(r.perPeer, r.burst)}
		r.peers[peer] = p
	}
	p.used = now
	r.mu.Unlock()
	if err := p.lim.Wait(ctx); err != nil {
		return err
	}
	return r.all.Wait(ctx)
}
