// Package config is the daemon's settings: its flags, REPO/config.json
// (every key optional; a flag given on the command line wins), the
// resource profiles, and the checked values the node runs with.
package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/blockmix/blockmix/blocks/erasure"
	"github.com/blockmix/blockmix/cmd/blockmix/internal/atomicfile"
	"github.com/blockmix/blockmix/cmd/blockmix/internal/size"
	"github.com/blockmix/blockmix/cmd/blockmix/internal/usage"
	"github.com/libp2p/go-libp2p/core/peer"
)

// File is REPO/config.json. Every key is optional; a flag given on
// the command line wins over its key.
type File struct {
	Listen    []string `json:"listen,omitempty"`
	Bootstrap []string `json:"bootstrap,omitempty"`
	API       *string  `json:"api,omitempty"`
	Replicas  *int     `json:"replicas,omitempty"`
	Cache     *string  `json:"cache,omitempty"`
	Quota     *string  `json:"quota,omitempty"`
	Profile   *string  `json:"profile,omitempty"`
	Donor     *bool    `json:"donor,omitempty"`
	Share     *string  `json:"share,omitempty"`
	// RepairInterval is a duration such as "1h" or "30m" ("0": never).
	RepairInterval *string `json:"repair_interval,omitempty"`
	// RelayService and MDNS: see --relay-service and --mdns.
	RelayService *bool `json:"relay_service,omitempty"`
	MDNS         *bool `json:"mdns,omitempty"`
	// Site: see --site.
	Site *string `json:"site,omitempty"`
	// Allow: see --allow (a list of peer IDs).
	Allow []string `json:"allow,omitempty"`
	// Pool: see --pool (a list of repo directories).
	Pool []string `json:"pool,omitempty"`
	// Redundancy is the puts' default: "r:3", "rs:4+2".
	Redundancy *string `json:"redundancy,omitempty"`
	// PartnerCopies: see --partner-copies.
	PartnerCopies *int `json:"partner_copies,omitempty"`
}

// configKeys spells the keys for error messages.
const configKeys = "listen, bootstrap, api, replicas, cache, quota, profile, donor, share, repair_interval, relay_service, mdns, site, allow, pool, redundancy, partner_copies"

// Read reads the config file at path. A missing file is an empty
// config (found is false).
//
// A torn file, as a power cut or a full disk leaves one, is set aside as
// path.damaged-TIME with a warning in log (nil: slog.Default()), and Read
// returns an empty config (found is false): the daemon starts with its
// defaults and flags. Torn means: empty or only white space, holding a NUL
// byte (a text editor writes none; file systems fill lost blocks with
// zeros), or JSON that stops before its end (an object or a string never
// closed). Any other problem is taken for a person's edit and is a usage
// error that names the file, where in it, and what is wrong; an error
// is also returned when a torn file cannot be set aside.
func Read(path string, log *slog.Logger) (c File, found bool, err error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return File{}, false, nil
	}
	if err != nil {
		return File{}, false, fmt.Errorf("read config: %w", err)
	}
	bad := func(format string, a ...any) error {
		return usage.Errorf("config %s: %s", path, fmt.Sprintf(format, a...))
	}
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	err = d.Decode(&c)
	if why := torn(b, err); why != "" {
		aside, serr := atomicfile.SetAside(path)
		if serr != nil {
			return File{}, true, fmt.Errorf("config %s is torn (%s) and cannot be set aside: %w", path, why, serr)
		}
		if log == nil {
			log = slog.Default()
		}
		log.Warn("config.json is torn ("+why+"), as a power cut leaves a file: set aside; the daemon runs with its defaults and flags "+
			"(write config.json again, starting from the copy set aside)", slog.String("file", path), slog.String("set_aside", aside))
		return File{}, false, nil
	}
	if err != nil {
		var syn *json.SyntaxError
		var typ *json.UnmarshalTypeError
		switch {
		case errors.As(err, &syn):
			// Offset is just past the offending byte.
			line, col := position(b, syn.Offset-1)
			return c, true, bad("line %d, column %d: %v", line, col, syn)
		case errors.As(err, &typ):
			line, _ := position(b, typ.Offset)
			return c, true, bad("line %d: %s", line, typeProblem(typ))
		case strings.HasPrefix(err.Error(), "json: unknown field "):
			key := strings.TrimPrefix(err.Error(), "json: unknown field ")
			return c, true, bad("unknown key %s (the keys are %s)", key, configKeys)
		}
		return c, true, bad("%v", err)
	}
	if _, err := d.Token(); err != io.EOF {
		line, _ := position(b, d.InputOffset())
		return c, true, bad("line %d: more text after the JSON object", line)
	}
	if err := c.check(bad); err != nil {
		return c, true, err
	}
	return c, true, nil
}

// Check checks the values of c as Read does, for a config about to be
// written (the web page's settings). The error says which key is wrong.
func (c File) Check() error {
	return c.check(func(format string, a ...any) error {
		return usage.Errorf("config: %s", fmt.Sprintf(format, a...))
	})
}

// check checks the values of c; bad makes the error.
func (c File) check(bad func(format string, a ...any) error) error {
	if c.Listen != nil && len(c.Listen) == 0 {
		return bad(`"listen" is an empty list: give at least one multiaddr, or leave the key out`)
	}
	for _, a := range c.Listen {
		if !strings.HasPrefix(a, "/") {
			return bad(`"listen": %q is not a multiaddr (want one such as "/ip4/0.0.0.0/tcp/4001")`, a)
		}
	}
	for _, a := range c.Bootstrap {
		if _, err := peer.AddrInfoFromString(a); err != nil {
			return bad(`"bootstrap": %q: %v (want a multiaddr ending in /p2p/PEER-ID)`, a, err)
		}
	}
	if c.API != nil && *c.API == "" {
		return bad(`"api" is empty: give an address such as "127.0.0.1:7788", or leave the key out`)
	}
	if c.Replicas != nil && *c.Replicas < 1 {
		return bad(`"replicas" is %d: it must be at least 1`, *c.Replicas)
	}
	if c.PartnerCopies != nil && *c.PartnerCopies < 0 {
		return bad(`"partner_copies" is %d: it must be 0 or more (and less than replicas)`, *c.PartnerCopies)
	}
	if c.Redundancy != nil {
		if _, err := erasure.ParseRedundancy(*c.Redundancy); err != nil {
			return bad(`"redundancy": %v`, err)
		}
	}
	if c.Cache != nil {
		if _, err := size.Parse(*c.Cache); err != nil {
			return bad(`"cache": %v`, err)
		}
	}
	if c.Quota != nil {
		if n, err := size.Parse(*c.Quota); err != nil || n <= 0 {
			return bad(`"quota": %q is not a size such as "50GiB"`, *c.Quota)
		}
	}
	if c.Share != nil {
		if _, err := size.Parse(*c.Share); err != nil {
			return bad(`"share": %v`, err)
		}
	}
	if c.Profile != nil {
		if _, err := ProfileNamed(*c.Profile); err != nil {
			return bad(`"profile": %v`, err)
		}
	}
	if c.RepairInterval != nil {
		if d, err := time.ParseDuration(*c.RepairInterval); err != nil || d < 0 {
			return bad(`"repair_interval": %q is not a duration such as "1h" or "30m" ("0": never)`, *c.RepairInterval)
		}
	}
	return nil
}

// torn says why config text b, which decoded with err, is torn (see
// Read), or "" when it is not.
func torn(b []byte, err error) string {
	switch {
	case len(bytes.TrimSpace(b)) == 0:
		return "empty"
	case bytes.IndexByte(b, 0) >= 0:
		return "NUL bytes"
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "the JSON stops before its end"
	}
	return ""
}

// typeProblem says which key has a value of the wrong kind, and what it
// wants.
func typeProblem(e *json.UnmarshalTypeError) string {
	key, _, _ := strings.Cut(e.Field, ".")
	want := map[string]string{
		"listen":        "a list of multiaddr strings",
		"bootstrap":     "a list of multiaddr strings",
		"api":           `a string such as "127.0.0.1:7788"`,
		"replicas":      "a whole number of at least 1",
		"cache":         `a size string such as "10GiB"`,
		"quota":         `a size string such as "50GiB"`,
		"profile":       `"default" or "lowpower"`,
		"donor":         "true or false",
		"share":         `a size string such as "1GiB"`,
		"relay_service": "true or false",
		"mdns":          "true or false",
		"redundancy":    `a string such as "r:3" or "rs:4+2"`,

		"repair_interval": `a duration string such as "1h"`,
		"site":            `a string such as "east-office"`,
		"allow":           "a list of peer ID strings",
		"pool":            "a list of repo directories",
		"partner_copies":  "a whole number from 0 to replicas-1",
	}[key]
	if want == "" {
		return fmt.Sprintf("the file holds a JSON %s; want an object with the keys %s", e.Value, configKeys)
	}
	return fmt.Sprintf("%q has a JSON %s where it wants %s", key, e.Value, want)
}

// position turns a byte offset into a line and a column, both from 1.
func position(b []byte, off int64) (line, col int) {
	off = min(max(off, 0), int64(len(b)))
	before := b[:off]
	line = 1 + bytes.Count(before, []byte("\n"))
	col = int(off) - bytes.LastIndexByte(before, '\n')
	return line, col
}

// Apply fills in o from c for every setting whose flag was not given.
func (c File) Apply(o Options, given func(flag string) bool) Options {
	if c.Listen != nil && !given("listen") {
		o.Listen = c.Listen
	}
	if c.Bootstrap != nil && !given("bootstrap") {
		o.Bootstrap = c.Bootstrap
	}
	if c.API != nil && !given("api") {
		o.API = *c.API
	}
	if c.Replicas != nil && !given("replicas") {
		o.Replicas = *c.Replicas
	}
	if c.Redundancy != nil && !given("redundancy") {
		o.Redundancy = *c.Redundancy
	}
	if c.Cache != nil && !given("cache") {
		o.Cache = *c.Cache
	}
	if c.Quota != nil && !given("quota") {
		o.Quota = *c.Quota
	}
	if c.Profile != nil && !given("profile") {
		o.Profile = *c.Profile
	}
	if c.Donor != nil && !given("donor") {
		o.Donor = *c.Donor
	}
	if c.Share != nil && !given("share") {
		o.Share = *c.Share
	}
	if c.RepairInterval != nil && !given("repair-interval") {
		if d, err := time.ParseDuration(*c.RepairInterval); err == nil {
			o.RepairInterval = d
		}
	}
	if c.RelayService != nil && !given("relay-service") {
		o.RelayService = strconv.FormatBool(*c.RelayService)
	}
	if c.MDNS != nil && !given("mdns") {
		o.MDNS = strconv.FormatBool(*c.MDNS)
	}
	if c.Site != nil && !given("site") {
		o.Site = *c.Site
	}
	if c.Allow != nil && !given("allow") {
		o.Allow = c.Allow
	}
	if c.Pool != nil && !given("pool") {
		o.Pool = c.Pool
	}
	if c.PartnerCopies != nil && !given("partner-copies") {
		o.PartnerCopies = *c.PartnerCopies
	}
	return o
}

// HasQUIC reports whether any of the multiaddrs uses QUIC.
func HasQUIC(addrs ...[]string) bool {
	for _, as := range addrs {
		for _, a := range as {
			if strings.Contains(a, "/quic") {
				return true
			}
		}
	}
	return false
}
