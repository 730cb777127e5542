package config

import (
	"strings"
	"testing"

	"github.com/blockmix/blockmix/cmd/blockmix/internal/usage"
)

// TestPartnerCopies: --partner-copies takes 0 to replicas-1 (replicas
// from --replicas or --redundancy r:N); anything else is a usage error
// that names the flag, the range, and the config file when the value
// came from it.
func TestPartnerCopies(t *testing.T) {
	no := func(string) bool { return false }
	for _, c := range []struct {
		n, replicas int
		redundancy  string
		bad         string // "" when taken
	}{
		{0, 3, "", ""},
		{1, 3, "", ""},
		{2, 3, "", ""},
		{3, 3, "", "--partner-copies 3: want 0 to 2, fewer than the 3 copies"},
		{-1, 3, "", "--partner-copies -1: want 0 to 2"},
		{1, 1, "", "--partner-copies 1: want 0 to 0"},
		{2, 3, "r:2", "--partner-copies 2: want 0 to 1"},
		{3, 3, "r:5", ""},
	} {
		o := Defaults()
		o.PartnerCopies, o.Replicas, o.Redundancy = c.n, c.replicas, c.redundancy
		s, err := o.Check(File{}, "config.json", no)
		switch {
		case c.bad == "" && (err != nil || s.PartnerCopies != c.n):
			t.Errorf("--partner-copies %d --replicas %d %s: %d, %v", c.n, c.replicas, c.redundancy, s.PartnerCopies, err)
		case c.bad != "" && (err == nil || !strings.Contains(err.Error(), c.bad) || !usage.Is(err)):
			t.Errorf("--partner-copies %d --replicas %d %s: %v, want a usage error saying %q", c.n, c.replicas, c.redundancy, err, c.bad)
		}
	}
	// From config.json: the key, and the file named in the error.
	v := 5
	f := File{PartnerCopies: &v}
	o := f.Apply(Defaults(), no)
	if o.PartnerCopies != 5 {
		t.Fatalf("config key partner_copies: %d", o.PartnerCopies)
	}
	if _, err := o.Check(f, "/r/config.json", no); err == nil || !strings.Contains(err.Error(), "(set in /r/config.json)") {
		t.Errorf("partner_copies 5 from config.json: %v", err)
	}
	// The flag wins over the key.
	if o := f.Apply(Options{PartnerCopies: 1}, func(fl string) bool { return fl == "partner-copies" }); o.PartnerCopies != 1 {
		t.Errorf("--partner-copies 1 against 5 in config.json: %d", o.PartnerCopies)
	}
	neg := -1
	if err := (File{PartnerCopies: &neg}).Check(); err == nil || !strings.Contains(err.Error(), `"partner_copies" is -1`) {
		t.Errorf("config partner_copies -1: %v", err)
	}
}
