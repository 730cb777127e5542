package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sync"
)

// ledgerFile keeps the fair-share ledger across restarts.
const ledgerFile = "ledger.json"

// ledger counts, per peer, the bytes of blocks it stored here (pushes this
// node accepted) and the bytes it holds for this node (pushes it accepted
// from here). Totals are the saved ones plus this run's.
type ledger struct {
	path string
	// given reads this run's bytes each peer accepted from us (the peer
	// book's counts).
	given func() map[string]int64
	// givenTo is given for one peer (a push asks it: no map per push).
	givenTo func(peer string) int64

	mu   sync.Mutex
	base map[string]ledgerEntry // as saved at start
	recv map[string]int64       // this run
}

// ledgerEntry is one peer's account.
type ledgerEntry struct {
	StoredHere int64 `json:"stored_here"`  // its blocks this node holds
	HoldsForUs int64 `json:"holds_for_us"` // this node's blocks it took
}

// loadLedger reads the ledger at path (none yet: empty).
func loadLedger(path string, given func() map[string]int64, givenTo func(string) int64) (*ledger, error) {
	l := &ledger{path: path, given: given, givenTo: givenTo, base: map[string]ledgerEntry{}, recv: map[string]int64{}}
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

// entry is peer's account now.
func (l *ledger) entry(peer string) ledgerEntry {
	l.mu.Lock()
	defer l.mu.Unlock()
	e := l.base[peer]
	e.StoredHere += l.recv[peer]
	e.HoldsForUs += l.givenTo(peer)
	return e
}

// received counts n bytes peer stored here.
func (l *ledger) received(peer string, n int64) {
	l.mu.Lock()
	l.recv[peer] += n
	l.mu.Unlock()
}

// save writes the accounts (atomically: a temporary file, then rename).
func (l *ledger) save() error {
	l.mu.Lock()
	all := map[string]ledgerEntry{}
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
	tmp := l.path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("save ledger: %w", err)
	}
	return os.Rename(tmp, l.path)
}
