package memtrim

import (
	"runtime/debug"
	"runtime/metrics"
	"testing"
)

// fake is a process whose allocation the test sets.
type fake struct {
	total uint64
	trims int
}

func newFake() (*Trimmer, *fake) {
	f := &fake{}
	t := New()
	t.free = func() { f.trims++ }
	t.allocated = func() uint64 { return f.total }
	return t, f
}

// TestTrimAfterBurst: a burst followed by a quiet interval trims once;
// the quiet intervals after it do not trim again, nor does a small burst,
// nor a steady load while it lasts (its end trims once); the next big
// burst trims again once it is over.
func TestTrimAfterBurst(t *testing.T) {
	tr, f := newFake()
	step := func(alloc uint64, want bool, what string) {
		t.Helper()
		f.total += alloc
		before := f.trims
		if got := tr.Tick(); got != want || f.trims-before != map[bool]int{false: 0, true: 1}[want] {
			t.Fatalf("%s: trimmed %v (%d calls), want %v", what, got, f.trims-before, want)
		}
	}
	step(0, false, "first tick")
	for range 5 {
		step(200<<20, false, "a burst")
	}
	step(1<<20, true, "quiet after the burst")
	step(1<<20, false, "still quiet")
	step(0, false, "idle")
	step(20<<20, false, "a small burst")
	step(0, false, "quiet after a small burst")
	for range 40 {
		step(4<<20, false, "a steady scrub")
	}
	step(0, true, "the scrub is over")
	step(300<<20, false, "a second burst")
	step(300<<20, false, "the second burst goes on")
	step(10<<20, true, "the second burst is over")
}

func released() uint64 {
	s := []metrics.Sample{{Name: "/memory/classes/heap/released:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// TestTrimGivesBack: after a real burst of garbage, the trimmer's quiet
// tick returns the free heap to the system at once.
func TestTrimGivesBack(t *testing.T) {
	debug.FreeOSMemory()
	tr := New()
	tr.Tick()
	var sink [][]byte
	for range 64 {
		sink = append(sink, make([]byte, 1<<20))
	}
	sink[0][0] = 1
	sink = nil
	if tr.Tick() {
		t.Fatal("trimmed in the busy interval")
	}
	r0 := released()
	if !tr.Tick() {
		t.Fatal("no trim after 64 MiB of garbage and a quiet tick")
	}
	if r1 := released(); r1 < r0+16<<20 {
		t.Fatalf("released %d MiB before the trim, %d MiB after: want 16 MiB more", r0>>20, r1>>20)
	}
	_ = sink
}
