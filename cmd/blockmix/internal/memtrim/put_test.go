package memtrim

import (
	"runtime/debug"
	"testing"
)

// gcSettings reads GOGC and the soft memory limit without changing them.
func gcSettings() (int, int64) {
	gc := debug.SetGCPercent(-1)
	debug.SetGCPercent(gc)
	return gc, debug.SetMemoryLimit(-1)
}

// TestTightenForPut: the put's settings apply only where they are tighter
// than what is set, and restore puts back exactly what was there; GOGC
// and GOMEMLIMIT in the environment win.
func TestTightenForPut(t *testing.T) {
	gc0, lim0 := gcSettings()
	defer func() { debug.SetGCPercent(gc0); debug.SetMemoryLimit(lim0) }()
	cases := []struct {
		name        string
		env         string // GOGC and GOMEMLIMIT, both set when not ""
		gc          int
		lim         int64
		duringGC    int
		duringLim   int64
		restoredGC  int
		restoredLim int64
	}{
		{"default profile", "", 100, 192 << 20, 50, 64 << 20, 100, 192 << 20},
		{"tighter already (lowpower)", "", 30, 48 << 20, 30, 48 << 20, 30, 48 << 20},
		{"the environment wins", "set", 100, 192 << 20, 100, 192 << 20, 100, 192 << 20},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Setenv("GOGC", map[bool]string{true: "100"}[c.env != ""])
			t.Setenv("GOMEMLIMIT", map[bool]string{true: "192MiB"}[c.env != ""])
			debug.SetGCPercent(c.gc)
			debug.SetMemoryLimit(c.lim)
			restore := TightenForPut()
			if gc, lim := gcSettings(); gc != c.duringGC || lim != c.duringLim {
				t.Fatalf("during a put: GOGC %d, limit %d MiB; want %d, %d MiB", gc, lim>>20, c.duringGC, c.duringLim>>20)
			}
			restore()
			if gc, lim := gcSettings(); gc != c.restoredGC || lim != c.restoredLim {
				t.Fatalf("after: GOGC %d, limit %d MiB; want %d, %d MiB", gc, lim>>20, c.restoredGC, c.restoredLim>>20)
			}
		})
	}
}
