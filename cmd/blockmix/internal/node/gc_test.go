package node

import (
	"runtime/debug"
	"testing"
)

// TestTightenGC: the put's settings apply only where they are tighter
// than what is set, and restore puts back exactly what was there; GOGC
// and GOMEMLIMIT in the environment win.
func TestTightenGC(t *testing.T) {
	t.Setenv("GOGC", "")
	t.Setenv("GOMEMLIMIT", "")
	gc0, lim0 := debug.SetGCPercent(100), debug.SetMemoryLimit(192<<20)
	defer func() { debug.SetGCPercent(gc0); debug.SetMemoryLimit(lim0) }()

	restore := tightenGC(50, 64<<20)
	if gc, lim := debug.SetGCPercent(-1), debug.SetMemoryLimit(-1); gc != 50 || lim != 64<<20 {
		t.Fatalf("during a put: GOGC %d, limit %d MiB; want 50, 64 MiB", gc, lim>>20)
	}
	debug.SetGCPercent(50)
	restore()
	if gc, lim := debug.SetGCPercent(-1), debug.SetMemoryLimit(-1); gc != 100 || lim != 192<<20 {
		t.Fatalf("after: GOGC %d, limit %d MiB; want 100, 192 MiB", gc, lim>>20)
	}

	// Tighter already (the lowpower profile): left alone.
	debug.SetGCPercent(30)
	debug.SetMemoryLimit(48 << 20)
	restore = tightenGC(50, 64<<20)
	if gc, lim := debug.SetGCPercent(-1), debug.SetMemoryLimit(-1); gc != 30 || lim != 48<<20 {
		t.Fatalf("tighter settings changed: GOGC %d, limit %d MiB", gc, lim>>20)
	}
	debug.SetGCPercent(30)
	restore()
	if gc, lim := debug.SetGCPercent(-1), debug.SetMemoryLimit(-1); gc != 30 || lim != 48<<20 {
		t.Fatalf("restore changed tighter settings: GOGC %d, limit %d MiB", gc, lim>>20)
	}

	// The environment wins.
	debug.SetGCPercent(100)
	debug.SetMemoryLimit(192 << 20)
	t.Setenv("GOGC", "100")
	t.Setenv("GOMEMLIMIT", "192MiB")
	tightenGC(50, 64<<20)()
	if gc, lim := debug.SetGCPercent(-1), debug.SetMemoryLimit(-1); gc != 100 || lim != 192<<20 {
		t.Fatalf("with GOGC and GOMEMLIMIT set: GOGC %d, limit %d MiB", gc, lim>>20)
	}
	debug.SetGCPercent(100)
}
