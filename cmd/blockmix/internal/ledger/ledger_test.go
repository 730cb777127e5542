package ledger

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
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
	l, err := Load(path, g, gt)
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

func TestLoadDamagedNamesFile(t *testing.T) {
	for name, content := range map[string]string{
		"garbage":   "this is not json",
		"truncated": `{"a":{"stored_here":1`,
		"empty":     "",
		"wrongtype": `{"a":{"stored_here":"lots"}}`,
	} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "ledger.json")
			writeFile(t, path, content)
			g, gt := counts(nil)
			l, err := Load(path, g, gt)
			if err == nil {
				t.Fatalf("Load of a damaged ledger succeeded: %+v", l)
			}
			if l != nil {
				t.Errorf("Load returned a ledger with its error")
			}
			if !strings.Contains(err.Error(), path) {
				t.Errorf("error %q does not name %s", err, path)
			}
		})
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
