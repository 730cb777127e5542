package memtrim

import (
	"os"
	"strconv"
	"strings"
	"testing"
)

// rssFile reads this process's resident file-backed memory (KiB).
func rssFile(t *testing.T) int64 {
	t.Helper()
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "RssFile:"); ok {
			n, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				t.Fatalf("bad RssFile line %q", line)
			}
			return n
		}
	}
	t.Fatal("no RssFile in /proc/self/status")
	return 0
}

// TestDropCode: the test binary's resident file pages mostly leave when
// DropCode asks (a test binary is several MiB, most of it touched once).
func TestDropCode(t *testing.T) {
	before := rssFile(t)
	n, err := DropCode()
	if err != nil {
		t.Fatal(err)
	}
	after := rssFile(t)
	t.Logf("asked about %d KiB of mappings; resident file pages %d KiB before, %d KiB after", n>>10, before, after)
	if n == 0 || after > before/2 {
		t.Errorf("resident file pages went from %d KiB to %d KiB (mappings of %d bytes asked about); want less than half", before, after, n)
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
