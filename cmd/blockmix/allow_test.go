//go:build linux

package main

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/blockmix/blockmix/webui/apiv1"
)

// TestAllowlistDaemons: a daemon with --allow talks to the listed peers
// only. A listed node joins through it and gets a file put there; an
// unlisted one cannot connect (the gated daemon logs the refusal) and
// cannot get the file.
func TestAllowlistDaemons(t *testing.T) {
	wb, wd, wc, wa := newWorld(t), newWorld(t), newWorld(t), newWorld(t)
	_, b := startDaemonWith(t, wb, daemonArgs()...)
	// D's identity: its daemon makes it when it first starts.
	pd, di := startDaemonWith(t, wd, daemonArgs()...)
	stopDaemon(t, pd)
	d := di.ID
	pa, a := startDaemonWith(t, wa, daemonArgs("--replicas", "1", "--allow", b.ID, "--allow", d, "--bootstrap", b.Addrs[0])...)
	if s := statusOf(t, wa); s.Allowlist != 2 {
		t.Fatalf("status allowlist %d, want 2", s.Allowlist)
	}
	waitRoutingTable(t, wa, 1)
	sum := writeRandomFile(t, wa.path("f.bin"), 3, 1<<20)
	rc := putPlaced(t, wa, wa.path("f.bin"), "a put to the listed peer").Recipe

	// The listed node joins through A and gets the file.
	_, di = startDaemonWith(t, wd, daemonArgs("--bootstrap", a.Addrs[0])...)
	if di.ID != d {
		t.Fatalf("D runs as %s, A lists %s", di.ID, d)
	}
	if wd.getSum(rc) != sum {
		t.Fatal("the listed node got a different file")
	}

	// The unlisted node bootstraps through A: refused.
	_, ci := startDaemonWith(t, wc, daemonArgs("--bootstrap", a.Addrs[0])...)
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(pa.stderrNow(), "refused a peer not on the allowlist") || !strings.Contains(pa.stderrNow(), ci.ID) {
		if time.Now().After(deadline) {
			t.Fatalf("A logged no refusal of C (%s):\n%s", ci.ID, pa.stderrNow())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if r := wc.run("get", "-o", wc.path("got"), rc); r.code == 0 {
		t.Fatalf("the unlisted node got the file:\n%s", r)
	}
	var ps []apiv1.PeerInfo
	if err := json.Unmarshal(wa.ok("peers", "--json"), &ps); err != nil {
		t.Fatal(err)
	}
	for _, p := range ps {
		if p.ID == ci.ID {
			t.Fatalf("A lists the unlisted node among its peers")
		}
	}
	if n := strings.Count(pa.stderrNow(), ci.ID); n != 1 {
		t.Errorf("A logged C %d times, want once (a refused peer is told at most once a minute)", n)
	}
}

// TestAllowFlagErrors: a bad --allow, and a bootstrap peer left off the
// list, are usage errors.
func TestAllowFlagErrors(t *testing.T) {
	w := newWorld(t)
	r := w.want(2, append([]string{"daemon"}, daemonArgs("--allow", "not-a-peer")...)...)
	if e := string(r.stderr); !strings.Contains(e, "--allow \"not-a-peer\": not a peer ID") {
		t.Fatalf("daemon --allow not-a-peer: %s", r)
	}
	const other = "12D3KooWLeZ5J62W78E3fBB3HWkkkZixztTHSWVEEj5hkZC8jWjd"
	const boot = "/ip4/127.0.0.1/tcp/1/p2p/12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA"
	r = w.want(2, append([]string{"daemon"}, daemonArgs("--allow", other, "--bootstrap", boot)...)...)
	if e := string(r.stderr); !strings.Contains(e, "is not in --allow") {
		t.Fatalf("a bootstrap peer off the list: %s", r)
	}
}
