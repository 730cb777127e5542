package net

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	kb "github.com/libp2p/go-libp2p-kbucket"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/blockmix/blockmix/blocks"
)

// LocalStore is what a Fetcher needs of the node's own store.
type LocalStore interface {
	blocks.Getter
	blocks.Putter
}

// Fetcher is a blocks.Getter that reads the local store first and then
// asks peers: the nodes closest to the block's key first, then the others,
// each group best-ranked first by the node's peer book; liars are skipped.
// A fetched block (verified on arrival) is kept in the local store with a
// fresh local tag, so it serves later reads and other files. Safe for
// concurrent use.
type Fetcher struct {
	n     *Node
	local LocalStore
	// PerPeer bounds one peer's answer; 0 means 30 s.
	PerPeer time.Duration
}

// NewFetcher returns a Fetcher over n and the local store.
func NewFetcher(n *Node, local LocalStore) *Fetcher { return &Fetcher{n: n, local: local} }

// Get implements blocks.Getter. It returns an error wrapping
// blocks.ErrNotFound when no peer has the block.
func (f *Fetcher) Get(ctx context.Context, id blocks.ID) ([]byte, error) {
	b, err := f.local.Get(ctx, id)
	if err == nil || !errors.Is(err, blocks.ErrNotFound) {
		return b, err
	}
	per := f.PerPeer
	if per <= 0 {
		per = 30 * time.Second
	}
	var tried []string
	peers := f.order(id)
	for _, p := range peers {
		pctx, cancel := context.WithTimeout(ctx, per)
		var got []byte
		_, err := f.n.Blocks.Fetch(pctx, p, []blocks.ID{id}, func(_ blocks.ID, d []byte) error {
			got = append([]byte(nil), d...)
			return nil
		})
		cancel()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if err != nil || got == nil {
			if err != nil {
				tried = append(tried, fmt.Sprintf("%s: %v", p.ShortString(), err))
			}
			continue
		}
		if err := f.local.Put(ctx, id, got, FreshTag()); err != nil {
			return nil, fmt.Errorf("keep fetched block %s: %w", id, err)
		}
		return got, nil
	}
	if len(tried) > 0 {
		return nil, fmt.Errorf("block %s: %w here or at the %d peers asked (%s)", id, blocks.ErrNotFound, len(peers), tried[0])
	}
	return nil, fmt.Errorf("block %s: %w here or at the %d peers asked", id, blocks.ErrNotFound, len(peers))
}

// order lists the peers to ask for id: the closest (by XOR distance to its
// key) first, as placement put it there, each half ranked by the book.
func (f *Fetcher) order(id blocks.ID) []peer.ID {
	ps := kb.SortClosestPeers(f.n.candidates(), kb.ConvertKey(BlockKey(id)))
	const near = 3 // the replication factor's default
	now := time.Now()
	if len(ps) <= near {
		return f.n.Blocks.Peers.Rank(ps, now)
	}
	return append(f.n.Blocks.Peers.Rank(ps[:near], now), f.n.Blocks.Peers.Rank(ps[near:], now)...)
}

// FreshTag is a random local tag for a block from elsewhere: its relation
// to local blocks is unknown, so it counts as fresh randomness here.
func FreshTag() uint64 {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return binary.LittleEndian.Uint64(b[:]) | 1
}
