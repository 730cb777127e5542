package ledger

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/blockmix/blockmix/blocks"
)

// counts returns a given func and a givenTo func that read m (nil: none).
func counts(m map[string]int64) (func() map[string]int64, func(string) int64) {
	return func() map[string]int64 {
			out := make(map[string]int64, len(m))
			for p, n := range m {
				out[p] = n
			}
			return out
		}, func(p string) int64 {
			return m[p]
		}
}

func load(t *testing.T, path string, given map[string]int64) *Ledger {
	t.Helper()
	g, gt := counts(given)
	l, err := Load(path, nil, g, gt)
	if err != nil {
		t.Fatalf("Load(%s): %v", path, err)
	}
	return l
}

func writeFile(t *testing.T, path, s string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestLoadMissingIsEmpty(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "ledger.json")
	l := load(t, path, nil)
	for _, p := range []string{"", "peerA", "peerB"} {
		if e := l.Entry(p); e != (Entry{}) {
			t.Errorf("Entry(%q) = %+v on a fresh ledger, want zero", p, e)
		}
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("Load created %s (stat err %v); it should only read", path, err)
	}
}

func TestReceivedAccumulatesPerPeer(t *testing.T) {
	l := load(t, filepath.Join(t.TempDir(), "ledger.json"), map[string]int64{"a": 3, "c": 11})
	l.Received("a", 10)
	l.Received("b", 7)
	l.Received("a", 5)
	want := map[string]Entry{
		"a": {StoredHere: 15, HoldsForUs: 3},
		"b": {StoredHere: 7, HoldsForUs: 0},
		"c": {StoredHere: 0, HoldsForUs: 11},
		"d": {},
	}
	for p, w := range want {
		if e := l.Entry(p); e != w {
			t.Errorf("Entry(%q) = %+v, want %+v", p, e, w)
		}
	}
}

func TestEntryAddsSavedBase(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ledger.json")
	writeFile(t, path, `{"a":{"stored_here":100,"holds_for_us":40},"b":{"stored_here":1,"holds_for_us":2}}`)
	l := load(t, path, map[string]int64{"a": 5})
	l.Received("a", 10)
	if e, w := l.Entry("a"), (Entry{StoredHere: 110, HoldsForUs: 45}); e != w {
		t.Errorf("Entry(a) = %+v, want saved base + this run = %+v", e, w)
	}
	if e, w := l.Entry("b"), (Entry{StoredHere: 1, HoldsForUs: 2}); e != w {
		t.Errorf("Entry(b) = %+v, want the saved base %+v", e, w)
	}
}

func TestSaveThenLoadRestoresTotals(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "ledger.json")
	writeFile(t, path, `{"a":{"stored_here":100,"holds_for_us":40}}`)

	// First run: a saved base, pushes received, pushes given (c only gave).
	l := load(t, path, map[string]int64{"a": 5, "c": 9})
	l.Received("a", 10)
	l.Received("b", 20)
	if err := l.Save(); err != nil {
		t.Fatalf("Save: %v", err)
	}
	// A second Save in the same run must not count anything twice.
	if err := l.Save(); err != nil {
		t.Fatalf("second Save: %v", err)
	}

	want := map[string]Entry{
		"a": {StoredHere: 110, HoldsForUs: 45},
		"b": {StoredHere: 20},
		"c": {HoldsForUs: 9},
	}
	// Next run: nothing new yet.
	l2 := load(t, path, nil)
	for p, w := range want {
		if e := l2.Entry(p); e != w {
			t.Errorf("after reload Entry(%q) = %+v, want %+v", p, e, w)
		}
	}
	// And this run's counts add on top of the restored ones.
	l3 := load(t, path, map[string]int64{"c": 1})
	l3.Received("b", 2)
	if e, w := l3.Entry("b"), (Entry{StoredHere: 22}); e != w {
		t.Errorf("Entry(b) = %+v, want %+v", e, w)
	}
	if e, w := l3.Entry("c"), (Entry{HoldsForUs: 10}); e != w {
		t.Errorf("Entry(c) = %+v, want %+v", e, w)
	}
	if err := l3.Save(); err != nil {
		t.Fatalf("Save: %v", err)
	}
	l4 := load(t, path, nil)
	want["b"], want["c"] = Entry{StoredHere: 22}, Entry{HoldsForUs: 10}
	for p, w := range want {
		if e := l4.Entry(p); e != w {
			t.Errorf("after the second run Entry(%q) = %+v, want %+v", p, e, w)
		}
	}
}

// TestLoadDamagedSetAside: a damaged ledger does not stop the node: it
// is renamed aside (kept for a look), a warning names both files, and the
// accounts start empty and save anew.
func TestLoadDamagedSetAside(t *testing.T) {
	for name, content := range map[string]string{
		"garbage":   "this is not json",
		"truncated": `{"a":{"stored_here":1`,
		"empty":     "",
		"wrongtype": `{"a":{"stored_here":"lots"}}`,
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "ledger.json")
			writeFile(t, path, content)
			var logs bytes.Buffer
			g, gt := counts(nil)
			l, err := Load(path, slog.New(slog.NewTextHandler(&logs, nil)), g, gt)
			if err != nil {
				t.Fatalf("Load of a damaged ledger: %v", err)
			}
			if e := l.Entry("a"); e != (Entry{}) {
				t.Errorf("Entry(a) = %+v from a damaged ledger, want empty", e)
			}
			aside, _ := filepath.Glob(path + ".damaged-*")
			if len(aside) != 1 {
				t.Fatalf("set aside: %q, want one ledger.json.damaged-TIME", aside)
			}
			if b, _ := os.ReadFile(aside[0]); string(b) != content {
				t.Errorf("the file set aside holds %q, want the damaged %q", b, content)
			}
			if _, err := os.Stat(path); !os.IsNotExist(err) {
				t.Errorf("the damaged ledger is still under its name (stat: %v)", err)
			}
			if !strings.Contains(logs.String(), "level=WARN") || !strings.Contains(logs.String(), aside[0]) {
				t.Errorf("want a warning naming %s; log:\n%s", aside[0], logs.String())
			}
			l.Received("a", 1)
			if err := l.Save(); err != nil {
				t.Fatal(err)
			}
			if e := load(t, path, nil).Entry("a"); e.StoredHere != 1 {
				t.Errorf("after a save the ledger reads %+v", e)
			}
		})
	}
}

// TestConcurrentSaves: saves at once each write a whole ledger (one at a
// time, each through its own temporary file), and the last one's accounts
// are what is read back.
func TestConcurrentSaves(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "ledger.json")
	l := load(t, path, nil)
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for i := 0; i < 16; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l.Received("a", 1)
			errs <- l.Save()
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("Save: %v", err)
		}
	}
	if e := load(t, path, nil).Entry("a"); e.StoredHere != 16 {
		t.Errorf("after 16 concurrent saves the ledger reads %+v, want 16 stored here", e)
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Errorf("%d files left in the directory, want only ledger.json", len(ents))
	}
}

// TestReservePool: beyond what it holds for us, every peer draws on one
// pool; holdings let a peer store without drawing; Evicted gives back;
// Discredit makes holdings count for nothing; fair < 0 never refuses.
func TestReservePool(t *testing.T) {
	holds := map[string]int64{"friend": 100}
	g, gt := counts(holds)
	l, err := Load(filepath.Join(t.TempDir(), "ledger.json"), nil, g, gt)
	if err != nil {
		t.Fatal(err)
	}
	try := func(peer string, n int64, want bool) {
		t.Helper()
		if _, ok := l.Reserve(peer, n, 50); ok != want {
			t.Errorf("Reserve(%s, %d, 50) = %v, want %v", peer, n, ok, want)
		}
	}
	try("x", 30, true)
	try("y", 30, false) // 60 > 50 between strangers
	try("y", 20, true)
	try("z", 1, false)
	try("friend", 100, true) // what it holds for us
	try("friend", 1, false)
	l.Evicted(blocksPrint("x"), 10)
	if e := l.Entry("x"); e.StoredHere != 20 {
		t.Errorf("x after Evicted(10): %+v, want 20 stored here", e)
	}
	try("z", 10, true)
	try("z", 1, false)
	l.Evicted(blocksPrint("nobody"), 10) // unknown: ignored
	l.Discredit("friend")
	l.Evicted(blocksPrint("x"), 20) // 20 back, but friend now draws 100
	try("z", 1, false)
	if _, ok := l.Reserve("z", 1000, -1); !ok {
		t.Error("Reserve with fair < 0 refused")
	}
}

func TestSaveIsAtomic(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "ledger.json")
	writeFile(t, path, `{"old":{"stored_here":1,"holds_for_us":1}}`)
	l := load(t, path, map[string]int64{"a": 3})
	l.Received("a", 4)
	if err := l.Save(); err != nil {
		t.Fatalf("Save: %v", err)
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	if len(names) != 1 || names[0] != "ledger.json" {
		t.Errorf("directory holds %q after Save, want only ledger.json", names)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]Entry
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatalf("saved ledger does not parse: %v\n%s", err, b)
	}
	want := map[string]Entry{"old": {1, 1}, "a": {StoredHere: 4, HoldsForUs: 3}}
	if len(got) != len(want) {
		t.Errorf("saved %+v, want %+v", got, want)
	}
	for p, w := range want {
		if got[p] != w {
			t.Errorf("saved %q = %+v, want %+v", p, got[p], w)
		}
	}
}

func TestSaveFailsIntoMissingDir(t *testing.T) {
	path := filepath.Join(t.TempDir(), "gone", "ledger.json")
	l := load(t, path, nil)
	l.Received("a", 1)
	if err := l.Save(); err == nil {
		t.Fatalf("Save into a missing directory succeeded")
	}
}

func TestConcurrentReceived(t *testing.T) {
	l := load(t, filepath.Join(t.TempDir(), "ledger.json"), nil)
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 100; j++ {
				l.Received("a", 2)
				_ = l.Entry("a")
			}
		}()
	}
	wg.Wait()
	if e := l.Entry("a"); e.StoredHere != 8*100*2 {
		t.Errorf("StoredHere = %d after concurrent Received, want %d", e.StoredHere, 8*100*2)
	}
}

func blocksPrint(p string) uint32 { return blocks.PusherPrint(p) }
