// Package ledger keeps the fair-share accounts of a node: per peer, the
// bytes of its blocks this node stores and of this node's blocks it holds,
// across restarts.
package ledger

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sync"

	"github.com/blockmix/blockmix/cmd/blockmix/internal/atomicfile"
)

// Ledger counts, per peer, the bytes of blocks it stored here (pushes this
// node accepted) and the bytes it holds for this node (pushes it accepted
// from here). Totals are the saved ones plus this run's.
type Ledger struct {
	path string
	// given reads this run's bytes each peer accepted from us (the peer
	// book's counts).
	given func() map[string]int64
	// givenTo is given for one peer (a push asks it: no map per push).
	givenTo func(peer string) int64

	mu   sync.Mutex
	base map[string]Entry // as saved at start
	recv map[string]int64 // this run
}

// Entry is one peer's account.
type Entry struct {
	StoredHere int64 `json:"stored_here"`  // its blocks this node holds
	HoldsForUs int64 `json:"holds_for_us"` // this node's blocks it took
}

// Load reads the ledger at path (none yet: empty).
func Load(path string, given func() map[string]int64, givenTo func(string) int64) (*Ledger, error) {
	l := &Ledger{path: path, given: given, givenTo: givenTo, base: map[string]Entry{}, recv: map[string]int64{}}
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return l, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read ledger: %w", err)
	}
	if err := json.Unmarshal(b, &l.base); err != nil {
		return nil, fmt.Errorf("ledger %s is damaged (remove it to start the accounts afresh): %w", path, err)
	}
	return l, nil
}

// Entry is peer's account now.
func (l *Ledger) Entry(peer string) Entry {
	l.mu.Lock()
	defer l.mu.Unlock()
	e := l.base[peer]
	e.StoredHere += l.recv[peer]
	e.HoldsForUs += l.givenTo(peer)
	return e
}

// Received counts n bytes peer stored here.
func (l *Ledger) Received(peer string, n int64) {
	l.mu.Lock()
	l.recv[peer] += n
	l.mu.Unlock()
}

// Save writes the accounts (atomically: a temporary file, then rename).
func (l *Ledger) Save() error {
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
	l.mu.Unlock()
	for p, n := range l.given() {
		e := all[p]
		e.HoldsForUs += n
		all[p] = e
	}
	b, _ := json.MarshalIndent(all, "", "  ")
	if err := atomicfile.WriteFile(l.path, b, 0o600); err != nil {
		return fmt.Errorf("save ledger: %w", err)
	}
	return nil
}
