package memtrim

import (
	"os"
	"strconv"
	"strings"
	"testing"
)

// exeResident reads how much of this program's own read-only mappings is
// resident (KiB), from /proc/self/smaps: the pages DropCode asks about,
// without the shared libraries a -race binary maps too.
func exeResident(t *testing.T) int64 {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile("/proc/self/smaps")
	if err != nil {
		t.Fatal(err)
	}
	var kib int64
	in := false
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) > 0 && strings.Contains(f[0], "-") && !strings.HasSuffix(f[0], ":") {
			_, _, in = readOnlyMappingOf(line, exe)
			continue
		}
		if v, ok := strings.CutPrefix(line, "Rss:"); ok && in {
			n, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				t.Fatalf("bad Rss line %q", line)
			}
			kib += n
		}
	}
	return kib
}

// TestDropCode: a good share of the test binary's resident code pages
// leaves when DropCode asks (a test binary is several MiB, most of it
// touched once). How much leaves is the kernel's choice: it keeps pages
// still dirty from the link a moment ago and large folios it cannot
// split. Here 41 to 85 % of them went, in CI at least 40 %; the test asks
// for a quarter. A DropCode that missed the mappings drops nothing.
func TestDropCode(t *testing.T) {
	before := exeResident(t)
	n, err := DropCode()
	if err != nil {
		t.Fatal(err)
	}
	after := exeResident(t)
	t.Logf("asked about %d KiB of mappings; resident %d KiB before, %d KiB after", n>>10, before, after)
	if n == 0 || before == 0 || after > before*3/4 {
		t.Errorf("the program's resident pages went from %d KiB to %d KiB (mappings of %d bytes asked about); want a quarter of them gone", before, after, n)
	}
}

func TestReadOnlyMappingOf(t *testing.T) {
	const exe = "/usr/bin/some prog"
	for _, c := range []struct {
		line       string
		start, end uintptr
		ok         bool
	}{
		{"00400000-01172000 r-xp 00000000 fe:01 123 /usr/bin/some prog", 0x400000, 0x1172000, true},
		{"01172000-02314000 r--p 00d72000 fe:01 123 /usr/bin/some prog", 0x1172000, 0x2314000, true},
		{"02314000-02404000 rw-p 01f14000 fe:01 123 /usr/bin/some prog", 0, 0, false}, // writable data
		{"7f00-8f00 r-xp 00000000 fe:01 9 /usr/lib/libc.so.6", 0, 0, false},           // another file
		{"02404000-044cd000 rw-p 00000000 00:00 0", 0, 0, false},                      // anonymous
		{"zz-01 r-xp 0 fe:01 123 /usr/bin/some prog", 0, 0, false},                    // damaged
		{"0500-0400 r-xp 0 fe:01 123 /usr/bin/some prog", 0, 0, false},                // end before start
	} {
		s, e, ok := readOnlyMappingOf(c.line, exe)
		if s != c.start || e != c.end || ok != c.ok {
			t.Errorf("%q: %#x-%#x %v; want %#x-%#x %v", c.line, s, e, ok, c.start, c.end, c.ok)
		}
	}
}
