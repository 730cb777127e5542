// Package memtrim gives the memory of a burst of work back to the system
// once the burst is over; call its Tick every few seconds. The Go runtime returns freed memory slowly by
// itself and lowers its heap goal only at the next collection, which an
// idle process may not run for minutes: a donor that took a gigabyte of
// pushes would sit at its burst's size long after. A Trimmer watches how
// much the process allocates; when a burst of allocation is followed by a
// quiet interval, it collects and returns the free memory at once
// (debug.FreeOSMemory), once per burst. A steady load (a scrub reading a
// few MiB a second) is no burst, and costs nothing.
package memtrim

import (
	"runtime/debug"
	"runtime/metrics"
)

// Trimmer decides when to give memory back. The zero value is not
// usable: use New.
type Trimmer struct {
	// Burst is how many bytes must have been allocated since the last
	// trim before another is worth its collection.
	Burst uint64
	// QuietShare: an interval is quiet when it allocated at most this
	// share of the busiest interval since the last trim.
	QuietShare float64

	free      func()        // debug.FreeOSMemory
	allocated func() uint64 // bytes allocated since the process began

	last      uint64 // allocated at the last tick
	sinceTrim uint64 // bytes allocated since the last trim
	busiest   uint64 // the most allocated in one interval since the last trim
	started   bool
}

// New returns a Trimmer of the running process: a burst is 32 MiB of
// allocation, and quiet is at most an eighth of the burst's busiest
// interval.
func New() *Trimmer {
	return &Trimmer{Burst: 32 << 20, QuietShare: 1.0 / 8, free: debug.FreeOSMemory, allocated: heapAllocated}
}

// heapAllocated reads the bytes the heap has allocated in all.
func heapAllocated() uint64 {
	s := []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return s[0].Value.Uint64()
}

// Tick looks at the allocation since the last tick and trims when a
// burst went quiet. It reports whether it trimmed. Not safe for
// concurrent use.
func (t *Trimmer) Tick() bool {
	now := t.allocated()
	if !t.started {
		t.started, t.last = true, now
		return false
	}
	d := now - t.last
	t.last = now
	quiet := float64(d) <= t.QuietShare*float64(t.busiest)
	t.busiest = max(t.busiest, d)
	t.sinceTrim += d
	if t.sinceTrim < t.Burst || !quiet {
		return false
	}
	t.free()
	t.sinceTrim, t.busiest = 0, 0
	return true
}
