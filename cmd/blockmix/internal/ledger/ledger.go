// Package ledger keeps the fair-share accounts of a node: per peer, the
// bytes of its blocks this node stores and of this node's blocks it holds,
// across restarts, and the one allowance that peers share beyond what
// they hold for this node.
package ledger

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/blockmix/blockmix/blocks"
	"github.com/blockmix/blockmix/cmd/blockmix/internal/atomicfile"
)

// Ledger counts, per peer, the bytes of blocks it stored here (pushes this
// node accepted, less those evicted since) and the bytes it holds for this
// node (pushes it accepted from here). Totals are the saved ones plus this
// run's. It is safe for concurrent use.
//
// The fair-share rule (Reserve): a peer may store here up to what it holds
// for this node without drawing on anything; what it stores beyond that is
// drawn from one pool that all peers share. So strangers (fresh peer IDs
// holding nothing) together store at most the allowance, and a peer earns
// more only by holding blocks for this node. A peer marked a liar
// (Discredit, or the Liar hook) holds nothing as far as the rule goes.
type Ledger struct {
	path string
	log  *slog.Logger
	// given reads this run's bytes each peer accepted from us (the peer
	// book's counts).
	given func() map[string]int64
	// givenTo is given for one peer (a push asks it: no map per push).
	givenTo func(peer string) int64

	// Liar, if set, reports peers whose claims to hold this node's blocks
	// count for nothing (they failed a storage proof, say). Set it before
	// the first push; see also Discredit.
	Liar func(peer string) bool

	mu     sync.Mutex
	base   map[string]Entry  // as saved at start
	recv   map[string]int64  // this run (less evictions)
	liars  map[string]bool   // discredited in this run
	excess map[string]int64  // per peer: stored here beyond what it holds for us, when last looked at
	pool   int64             // the sum of excess: what peers drew on the allowance
	prints map[uint32]string // blocks.PusherPrint of every peer with an account
	full   time.Time         // the last refresh of every peer's excess

	saveMu sync.Mutex // one Save at a time
}

// Entry is one peer's account.
type Entry struct {
	StoredHere int64 `json:"stored_here"`  // its blocks this node holds
	HoldsForUs int64 `json:"holds_for_us"` // this node's blocks it took
}

// Load reads the ledger at path (none yet: empty). A damaged ledger (not
// a ledger's JSON) is set aside as path.damaged-TIME, with a warning in
// log, and the accounts start empty: a bad file must not keep the node
// from starting. An error is returned only when path cannot be read.
func Load(path string, log *slog.Logger, given func() map[string]int64, givenTo func(string) int64) (*Ledger, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	l := &Ledger{path: path, log: log, given: given, givenTo: givenTo, base: map[string]Entry{}, recv: map[string]int64{},
		liars: map[string]bool{}, excess: map[string]int64{}, prints: map[uint32]string{}}
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return l, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read ledger: %w", err)
	}
	var base map[string]Entry
	if err := json.Unmarshal(b, &base); err != nil {
		aside, rerr := atomicfile.SetAside(path)
		if rerr != nil {
			return nil, fmt.Errorf("ledger %s is damaged (%v) and cannot be set aside: %w", path, err, rerr)
		}
		log.Warn("the fair-share ledger is damaged: set aside, the accounts start empty", slog.String("ledger", path),
			slog.String("set_aside", aside), slog.Any("err", err))
		return l, nil
	}
	for p, e := range base {
		l.base[p] = e
		l.prints[blocks.PusherPrint(p)] = p
		if ex := e.StoredHere - e.HoldsForUs; ex > 0 {
			l.excess[p] = ex
			l.pool += ex
		}
	}
	return l, nil
}

// holds is what peer holds for this node as the rule counts it. The
// caller holds mu.
func (l *Ledger) holds(peer string) int64 {
	if l.liars[peer] || l.Liar != nil && l.Liar(peer) {
		return 0
	}
	return l.base[peer].HoldsForUs + l.givenTo(peer)
}

// entry is peer's account now. The caller holds mu.
func (l *Ledger) entry(peer string) Entry {
	return Entry{StoredHere: l.base[peer].StoredHere + l.recv[peer], HoldsForUs: l.holds(peer)}
}

// refresh looks at peer's excess again. The caller holds mu.
func (l *Ledger) refresh(peer string) {
	e := l.entry(peer)
	ex := max(0, e.StoredHere-e.HoldsForUs)
	l.pool += ex - l.excess[peer]
	if ex == 0 {
		delete(l.excess, peer)
	} else {
		l.excess[peer] = ex
	}
}

// refreshAll looks at every peer's excess again: what peers hold for this
// node grows, so the pool's figure may be stale (too high, never too
// low, but after a Liar hook changes its mind). The caller holds mu.
func (l *Ledger) refreshAll() {
	for p := range l.base {
		l.refresh(p)
	}
	for p := range l.recv {
		l.refresh(p)
	}
	l.full = time.Now()
}

// Entry is peer's account now (HoldsForUs is 0 for a liar).
func (l *Ledger) Entry(peer string) Entry {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.entry(peer)
}

// Received counts n bytes peer stored here (n < 0: gives back a count,
// for a push that was not stored after all).
func (l *Ledger) Received(peer string, n int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.recv[peer] += n
	l.prints[blocks.PusherPrint(peer)] = peer
	l.refresh(peer)
}

// Reserve counts n bytes peer stores here if the fair-share rule allows
// them (fair < 0: always), in one step: pushes from many peers at once
// cannot pass the allowance together. Up to what peer holds for this node
// it stores freely; beyond that, all peers together store at most fair
// bytes. It returns peer's account (before the push) and whether the bytes
// were counted.
func (l *Ledger) Reserve(peer string, n, fair int64) (Entry, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.refresh(peer)
	e := l.entry(peer)
	draw := func() int64 { return max(0, e.StoredHere+n-e.HoldsForUs) - l.excess[peer] }
	if fair >= 0 && draw() > 0 && l.pool+draw() > fair {
		if time.Since(l.full) < time.Second {
			return e, false
		}
		l.refreshAll()
		if l.pool+draw() > fair {
			return e, false
		}
	}
	l.recv[peer] += n
	l.prints[blocks.PusherPrint(peer)] = peer
	l.refresh(peer)
	return e, true
}

// Evicted takes n bytes off the account of the peer whose fingerprint
// (blocks.PusherPrint) is pusher: a block it pushed here was evicted. A
// fingerprint of no known peer is ignored (a block pushed before the
// accounts were set aside).
func (l *Ledger) Evicted(pusher uint32, n int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	p, ok := l.prints[pusher]
	if !ok {
		return
	}
	l.recv[p] -= n
	if s := l.base[p].StoredHere + l.recv[p]; s < 0 {
		l.recv[p] -= s // never below nothing
	}
	l.refresh(p)
}

// Discredit marks peer as a liar for the rest of this run: what it claims
// to hold for this node counts for nothing from now on.
func (l *Ledger) Discredit(peer string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.liars[peer] = true
	l.refresh(peer)
}

// Save writes the accounts durably and atomically (a temporary file,
// fsync, rename; see atomicfile), one Save at a time, so that a later
// Save's accounts are never overwritten by an earlier one's.
func (l *Ledger) Save() error {
	l.saveMu.Lock()
	defer l.saveMu.Unlock()
	l.mu.Lock()
	all := map[string]Entry{}
	for p, e := range l.base {
		all[p] = e
	}
	for p, n := range l.recv {
		e := all[p]
		e.StoredHere += n
		all[p] = e
	}
	l.refreshAll()
	l.mu.Unlock()
	for p, n := range l.given() {
		e := all[p]
		e.HoldsForUs += n
		all[p] = e
	}
	b, err := json.MarshalIndent(all, "", "  ")
	if err != nil {
		return fmt.Errorf("save ledger: %w", err)
	}
	if err := atomicfile.WriteFile(l.path, b, 0o600); err != nil {
		return fmt.Errorf("save ledger: %w", err)
	}
	return nil
}
