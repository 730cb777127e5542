package net

import (
	"context"
	"fmt"
	"sync"
	"time"

	kb "github.com/libp2p/go-libp2p-kbucket"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/blockmix/blockmix/blocks"
)

// Responsible reports whether this node is one of the r nodes closest to
// the block's key among the nodes it knows (itself included): placement
// and repair expect it to hold the block.
func (n *Node) Responsible(id blocks.ID, r int) bool {
	all := append(n.candidates(), n.Host.ID())
	if len(all) <= r {
		return true // one of at most r nodes: one of the r closest
	}
	ps := kb.SortClosestPeers(all, kb.ConvertKey(BlockKey(id)))
	ps = n.layoutOf(all).order(ps, r, "", false) // as placement orders (see layout.order)
	for _, p := range ps[:min(r, len(ps))] {
		if p == n.Host.ID() {
			return true
		}
	}
	return false
}

// Alone reports whether this node knows no other node that could take a
// block (see candidates): then no hand-off can succeed.
func (n *Node) Alone() bool { return len(n.candidates()) == 0 }

// HandOff makes sure r other nodes hold b before this node lets it go:
// it asks the closest others (in placement's order, see layout.order: a
// block short of its partner share goes to the closest partner donor)
// which of them have it and pushes it to the next closest that do not,
// until r have it. A holder counts only once it
// proved it holds b (see Service.Prove): a peer's word is not enough to
// drop what may be the last copy. When the network has two sites, the
// holders (with this node, while it holds b) must stand in two: once r
// hold it all in one site, HandOff goes on to the closest node of another
// site that takes it (one more copy). It returns how many pushes it made
// that the receiver accepted (0 when r others held it already), and an
// error wrapping ErrUnderReplicated when fewer than r others could be
// found to hold it.
func (n *Node) HandOff(ctx context.Context, b blocks.Block, r int) (pushed int, err error) {
	peers := n.candidates()
	l := n.layoutOf(peers)
	sites := l.sites
	have, havePartner := "", false // this node's site and partner copy count while it holds b
	if _, err := n.local(ctx, b.ID()); err == nil {
		have, havePartner = n.site, n.IsPartner(n.Host.ID())
	}
	ps := l.order(kb.SortClosestPeers(peers, kb.ConvertKey(BlockKey(b.ID()))), r, have, havePartner)
	spreadable := twoSites(ps, have, sites)
	var holders []peer.ID
	var lacking []peer.ID
	done := func() bool {
		return len(holders) >= r && (!spreadable || twoSites(holders, have, sites))
	}
	for _, p := range ps {
		if done() {
			return pushed, nil
		}
		if len(holders) >= r && !twoSites(append(holders[:len(holders):len(holders)], p), have, sites) {
			continue // enough copies: only another site's node helps now
		}
		got, err := n.Blocks.Has(ctx, p, []blocks.ID{b.ID()})
		if err != nil {
			continue
		}
		if got[0] {
			if n.Blocks.Proven(ctx, p, []blocks.Block{b}) {
				holders = append(holders, p)
			}
			continue
		}
		lacking = append(lacking, p)
		res, err := n.Blocks.Push(ctx, p, []blocks.Block{b})
		if err != nil || res[0] != nil {
			continue
		}
		pushed++
		if n.Blocks.Proven(ctx, p, []blocks.Block{b}) {
			holders = append(holders, p)
		}
	}
	if len(holders) >= r {
		return pushed, nil
	}
	return pushed, fmt.Errorf("%w: block %s has %d other holders of %d wanted (asked %d, %d lacked it)", ErrUnderReplicated, b.ID(), len(holders), r, len(ps), len(lacking))
}

// Probe dials, at most 8 at a time, every known peer that is not connected
// and not already known to be down, so that a peer that left is marked
// down (Book.Failure) and stops counting for Responsible, placement and
// repair. Repair calls it before each round.
func (n *Node) Probe(ctx context.Context, timeout time.Duration) {
	sem := make(chan struct{}, 8)
	var wg sync.WaitGroup
	for _, p := range n.candidates() {
		if n.Host.Network().Connectedness(p) == network.Connected {
			continue
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			cctx, cancel := context.WithTimeout(ctx, timeout)
			defer cancel()
			if err := n.Host.Connect(cctx, n.Host.Peerstore().PeerInfo(p)); err != nil {
				n.Blocks.Peers.Failure(p)
			} else {
				n.Blocks.Peers.Answered(p)
			}
		}()
	}
	wg.Wait()
}
