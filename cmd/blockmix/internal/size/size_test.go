package size

import "testing"

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{
		"4096": 4096, "0": 0, "10GiB": 10 << 30, "10 gib": 10 << 30, "1.5TB": 1.5e12,
		"500MB": 500e6, "2k": 2048, "7B": 7, " 3 MiB ": 3 << 20,
	} {
		if got, err := Parse(in); err != nil || got != want {
			t.Errorf("Parse(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "GiB", "-1GB", "ten", "5 parsecs", "1e30TB"} {
		if _, err := Parse(in); err == nil {
			t.Errorf("Parse(%q) took it", in)
		}
	}
}
