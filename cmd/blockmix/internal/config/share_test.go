package config

import "testing"

// TestShare: --share is read as a size; not given is the default (0),
// --share 0 takes nothing (< 0); a bad size names the flag. The default
// is 1 GiB or 5 % of the free space, whichever is smaller.
func TestShare(t *testing.T) {
	no := func(string) bool { return false }
	for _, c := range []struct {
		in   string
		want int64
	}{{"", 0}, {"0", -1}, {"2GiB", 2 << 30}, {"500MiB", 500 << 20}} {
		o := Defaults()
		o.Share = c.in
		s, err := o.Check(File{}, "config.json", no)
		if err != nil || s.Share != c.want {
			t.Errorf("--share %q: %d, %v; want %d", c.in, s.Share, err, c.want)
		}
	}
	o := Defaults()
	o.Share = "lots"
	if _, err := o.Check(File{}, "config.json", no); err == nil {
		t.Error("--share lots was taken")
	}
	v := "3GiB"
	if o := (File{Share: &v}).Apply(Defaults(), no); o.Share != "3GiB" {
		t.Errorf("config key share: %q", o.Share)
	}
	for free, want := range map[int64]int64{100 << 30: 1 << 30, 10 << 30: 512 << 20, 0: 0, -1: 0} {
		if got := DefaultShare(free); got != want {
			t.Errorf("DefaultShare(%d) = %d, want %d", free, got, want)
		}
	}
}
