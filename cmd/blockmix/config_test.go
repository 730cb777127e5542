package main

import (
	"encoding/json"
	stdnet "net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/blockmix/blockmix/webui/apiv1"
)

// writeConfig writes REPO/config.json.
func writeConfig(t *testing.T, w *world, text string) string {
	t.Helper()
	p := filepath.Join(w.repo, "config.json")
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort(t *testing.T) string {
	t.Helper()
	ln, err := stdnet.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func apiFileURL(t *testing.T, w *world) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(w.repo, "api"))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// TestDaemonConfig: REPO/config.json sets the daemon's listen, bootstrap,
// api and replicas; flags given on the command line win over it; QUIC is
// on when an address asks for it.
func TestDaemonConfig(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three daemons")
	}
	t.Parallel()

	// a listens on QUIC only (the flag turns QUIC on).
	a := newWorld(t)
	_, ida := startDaemonWith(t, a, "--listen", "/ip4/127.0.0.1/udp/0/quic-v1", "--api", "127.0.0.1:0")
	if len(ida.Addrs) == 0 || !strings.Contains(ida.Addrs[0], "/quic-v1/p2p/") {
		t.Fatalf("a daemon told to listen on QUIC has addresses %v", ida.Addrs)
	}

	// b: everything from its config, no flags. It reaches a over QUIC
	// because its bootstrap address says so.
	b := newWorld(t)
	api := freePort(t)
	cfg, _ := json.Marshal(map[string]any{
		"listen": []string{"/ip4/127.0.0.1/tcp/0"}, "bootstrap": []string{ida.Addrs[0]}, "api": api, "replicas": 1,
	})
	writeConfig(t, b, string(cfg))
	pb, idb := startDaemonWith(t, b)
	if got := apiFileURL(t, b); got != "http://"+api {
		t.Errorf("api from config.json %q: the daemon serves on %s", api, got)
	}
	for _, addr := range idb.Addrs {
		if !strings.HasPrefix(addr, "/ip4/127.0.0.1/tcp/") {
			t.Errorf("listen from config.json is TCP on 127.0.0.1; b has %s", addr)
		}
	}
	waitFor(t, "b connects to its bootstrap peer", 30*time.Second, func() bool { return statusOf(t, b).Peers >= 1 })
	if s := statusOf(t, b); s.Replicas != 1 || s.State != apiv1.StateOK {
		t.Errorf("status of b (replicas 1 in config.json): %+v", s)
	}
	var ps []apiv1.PeerInfo
	if err := json.Unmarshal(b.ok("peers", "--json"), &ps); err != nil || len(ps) != 1 || ps[0].ID != ida.ID || !strings.Contains(ps[0].Addr, "/quic-v1") {
		t.Errorf("b's peers (a over QUIC): %+v %v", ps, err)
	}
	stopDaemon(t, pb)
	if !strings.Contains(pb.stdout.String(), "config "+filepath.Join(b.repo, "config.json")) {
		t.Errorf("the daemon does not say which config it read:\n%s", pb.stdout)
	}

	// c: flags given on the command line win over the config.
	c := newWorld(t)
	writeConfig(t, c, `{"listen": ["/ip4/127.0.0.1/udp/0/quic-v1"], "api": "127.0.0.1:1", "replicas": 7, "bootstrap": []}`)
	_, idc := startDaemonWith(t, c, "--listen", "/ip4/127.0.0.1/tcp/0", "--api", "127.0.0.1:0", "--replicas", "2", "--bootstrap", ida.Addrs[0])
	if got := apiFileURL(t, c); got == "http://127.0.0.1:1" {
		t.Errorf("--api did not win over config.json")
	}
	for _, addr := range idc.Addrs {
		if !strings.Contains(addr, "/tcp/") {
			t.Errorf("--listen TCP did not win over config.json's QUIC: %s", addr)
		}
	}
	waitFor(t, "c connects to --bootstrap", 30*time.Second, func() bool { return statusOf(t, c).Peers >= 1 })
	if s := statusOf(t, c); s.Replicas != 2 {
		t.Errorf("--replicas 2 against 7 in config.json: %d", s.Replicas)
	}
}

// TestDaemonConfigMalformed: a bad config.json (a person's edit, not a
// torn file: see TestDaemonConfigTorn) stops the daemon at once with exit
// code 2 and an error naming the file and what is wrong.
func TestDaemonConfigMalformed(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	cases := []struct{ text, want string }{
		{"{\n  \"listen\": [\"/ip4/127.0.0.1/tcp/0\",]\n}", "line 2, column 37: invalid character ']'"},
		{`{"listn": ["/ip4/127.0.0.1/tcp/0"]}`, `unknown key "listn" (the keys are listen, bootstrap, api, replicas, cache, quota, profile, donor, share, repair_interval, relay_service, mdns, site, allow, pool, redundancy, partner_copies)`},
		{`{"listen": "/ip4/127.0.0.1/tcp/0"}`, `"listen" has a JSON string where it wants a list of multiaddr strings`},
		{`{"replicas": "3"}`, `"replicas" has a JSON string where it wants a whole number`},
		{`{"replicas": 0}`, `"replicas" is 0: it must be at least 1`},
		{`{"partner_copies": -1}`, `"partner_copies" is -1: it must be 0 or more`},
		{`{"redundancy": "rs:4+0"}`, `"redundancy": bad redundancy: M = 0 parity blocks per stripe; M must be 1 to 8`},
		{`{"redundancy": 3}`, `"redundancy" has a JSON number where it wants a string such as "r:3" or "rs:4+2"`},
		{`{"api": ""}`, `"api" is empty`},
		{`{"cache": "lots"}`, `"cache": "lots" is not a size`},
		{`{"cache": 10}`, `"cache" has a JSON number where it wants a size string`},
		{`{"listen": []}`, `"listen" is an empty list`},
		{`{"listen": ["0.0.0.0:4001"]}`, `"0.0.0.0:4001" is not a multiaddr`},
		{`{"bootstrap": ["/ip4/127.0.0.1/tcp/1"]}`, `want a multiaddr ending in /p2p/PEER-ID`},
		{`["/ip4/127.0.0.1/tcp/0"]`, "want an object with the keys"},
		{`{} {}`, "more text after the JSON object"},
	}
	for _, c := range cases {
		path := writeConfig(t, w, c.text)
		// The flags keep the daemon on 127.0.0.1 should it wrongly start;
		// a malformed config is an error even when flags override it.
		r := w.run("daemon", "--listen", "/ip4/127.0.0.1/tcp/0", "--api", "127.0.0.1:0")
		if r.code != 2 || !strings.Contains(string(r.stderr), "config "+path+": ") || !strings.Contains(string(r.stderr), c.want) {
			t.Errorf("config %q: want exit 2 naming %s and saying %q:\n%v", c.text, path, c.want, r)
		}
		mustNotExist(t, filepath.Join(w.repo, "api"))
	}
}

// TestDaemonConfigTorn: a config.json a power cut tore (empty, or JSON
// that stops before its end) does not stop the daemon: it is set aside
// with its bytes, a warning says so, and the daemon runs with its
// defaults and flags.
func TestDaemonConfigTorn(t *testing.T) {
	t.Parallel()
	for _, text := range []string{``, `{"listen": ["/ip4/127.0.0.1/tcp/0"], "repl`} {
		w := newWorld(t)
		path := writeConfig(t, w, text)
		p, _ := startDaemon(t, w, nil)
		stopDaemon(t, p)
		aside, _ := filepath.Glob(path + ".damaged-*")
		if len(aside) != 1 {
			t.Fatalf("config %q set aside as %v, want one copy", text, aside)
		}
		if b, err := os.ReadFile(aside[0]); err != nil || string(b) != text {
			t.Errorf("the copy set aside holds %q (%v), want %q", b, err, text)
		}
		if log := p.stderr.String(); !strings.Contains(log, "level=WARN") || !strings.Contains(log, "config.json is torn") || !strings.Contains(log, aside[0]) {
			t.Errorf("config %q: no warning naming the copy:\n%s", text, log)
		}
		if strings.Contains(p.stdout.String(), "config "+path) {
			t.Errorf("the daemon says it read the torn config:\n%s", p.stdout)
		}
	}
}
