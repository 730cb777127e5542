package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/pflag"
)

// TestRelayServiceAndMDNS: the relay service is on by default and off for
// the lowpower profile unless asked; mDNS is left to the node (nil) unless
// asked; a bad value names the flag; the config keys relay_service and mdns
// fill them in unless the flag was given; a bare --mdns means true.
func TestRelayServiceAndMDNS(t *testing.T) {
	no := func(string) bool { return false }
	for _, c := range []struct {
		profile, relay, mdns string
		wantRelay            bool
		wantMDNS             string // "", "true", "false"
	}{
		{"default", "", "", true, ""},
		{"lowpower", "", "", false, ""},
		{"lowpower", "true", "", true, ""},
		{"default", "false", "false", false, "false"},
		{"default", "", "true", true, "true"},
	} {
		o := Defaults()
		o.Profile, o.RelayService, o.MDNS = c.profile, c.relay, c.mdns
		s, err := o.Check(File{}, "config.json", no)
		got := ""
		if s.MDNS != nil {
			got = map[bool]string{true: "true", false: "false"}[*s.MDNS]
		}
		if err != nil || s.RelayService != c.wantRelay || got != c.wantMDNS {
			t.Errorf("%+v: relay %v, mdns %q, %v", c, s.RelayService, got, err)
		}
	}
	o := Defaults()
	o.MDNS = "sometimes"
	if _, err := o.Check(File{}, "config.json", no); err == nil || !strings.Contains(err.Error(), "--mdns") {
		t.Errorf("--mdns sometimes: %v", err)
	}

	path := filepath.Join(t.TempDir(), "config.json")
	if err := os.WriteFile(path, []byte(`{"relay_service": false, "mdns": true}`), 0o644); err != nil {
		t.Fatal(err)
	}
	f, _, err := Read(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if o := f.Apply(Defaults(), no); o.RelayService != "false" || o.MDNS != "true" {
		t.Errorf("config keys: relay %q, mdns %q", o.RelayService, o.MDNS)
	}
	given := func(flag string) bool { return flag == "mdns" }
	if o := f.Apply(Defaults(), given); o.MDNS != "" {
		t.Errorf("a flag given lost to the config key: mdns %q", o.MDNS)
	}
	if err := os.WriteFile(path, []byte(`{"mdns": "yes"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := Read(path, nil); err == nil || !strings.Contains(err.Error(), `"mdns"`) {
		t.Errorf("mdns of the wrong kind: %v", err)
	}

	fs := pflag.NewFlagSet("daemon", pflag.ContinueOnError)
	fo := Defaults()
	fo.AddFlags(fs)
	if err := fs.Parse([]string{"--mdns", "--relay-service=false"}); err != nil || fo.MDNS != "true" || fo.RelayService != "false" {
		t.Errorf("flags: mdns %q, relay %q, %v", fo.MDNS, fo.RelayService, err)
	}
}
