package net

import (
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/connmgr"
	"github.com/libp2p/go-libp2p/core/control"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
)

// Allowlist is a connection gater that lets the node talk to the listed
// peers only: it refuses to dial any other peer, and drops an inbound
// connection from any other as soon as the handshake proves who it is
// (before any protocol runs on it). Refused, when set, hears of each
// refused peer at most once per refusedEvery (the log line), whatever
// the peer tries. Safe for concurrent use.
type Allowlist struct {
	allowed map[peer.ID]bool
	refused func(p peer.ID, dir network.Direction)

	mu   sync.Mutex
	told map[peer.ID]time.Time // bounded by maxTold
}

var _ connmgr.ConnectionGater = (*Allowlist)(nil)

// refusedEvery is how often one refused peer is reported; maxTold bounds
// the peers whose last report the Allowlist remembers (strangers can
// make up identities: when full, it forgets them all).
const (
	refusedEvery = time.Minute
	maxTold      = 1024
)

// NewAllowlist returns a gater that allows ids only; refused may be nil.
func NewAllowlist(ids []peer.ID, refused func(p peer.ID, dir network.Direction)) *Allowlist {
	a := &Allowlist{allowed: map[peer.ID]bool{}, refused: refused, told: map[peer.ID]time.Time{}}
	for _, id := range ids {
		a.allowed[id] = true
	}
	return a
}

// Allowed reports whether p is on the list.
func (a *Allowlist) Allowed(p peer.ID) bool { return a.allowed[p] }

// check allows p or reports the refusal.
func (a *Allowlist) check(p peer.ID, dir network.Direction) bool {
	if a.allowed[p] {
		return true
	}
	if a.refused == nil {
		return false
	}
	now := time.Now()
	a.mu.Lock()
	last, seen := a.told[p]
	tell := !seen || now.Sub(last) >= refusedEvery
	if tell {
		if len(a.told) >= maxTold {
			clear(a.told)
		}
		a.told[p] = now
	}
	a.mu.Unlock()
	if tell {
		a.refused(p, dir)
	}
	return false
}

// InterceptPeerDial implements connmgr.ConnectionGater.
func (a *Allowlist) InterceptPeerDial(p peer.ID) bool { return a.check(p, network.DirOutbound) }

// InterceptAddrDial implements connmgr.ConnectionGater.
func (a *Allowlist) InterceptAddrDial(p peer.ID, _ ma.Multiaddr) bool {
	return a.check(p, network.DirOutbound)
}

// InterceptAccept implements connmgr.ConnectionGater: who dials is not
// known yet (InterceptSecured decides).
func (a *Allowlist) InterceptAccept(network.ConnMultiaddrs) bool { return true }

// InterceptSecured implements connmgr.ConnectionGater.
func (a *Allowlist) InterceptSecured(dir network.Direction, p peer.ID, _ network.ConnMultiaddrs) bool {
	return a.check(p, dir)
}

// InterceptUpgraded implements connmgr.ConnectionGater.
func (a *Allowlist) InterceptUpgraded(network.Conn) (bool, control.DisconnectReason) { return true, 0 }
