//go:build linux

package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/blockmix/blockmix/blocks"
	"github.com/blockmix/blockmix/webui/apiv1"
)

// groupPair makes a private group name on two daemons (R = 2) and returns
// them and the invite.
func groupPair(t *testing.T, name string) (*world, *world, string) {
	t.Helper()
	a, b := newWorld(t), newWorld(t)
	a.ok("group", "create", name)
	startDaemonWith(t, a, daemonArgs("--replicas", "2")...)
	invite := a.okLine("group", "invite")
	b.ok("group", "join", invite)
	startDaemonWith(t, b, daemonArgs("--replicas", "2")...)
	return a, b, invite
}

// poolRepo joins p, a fresh repo, to the group of invite and sets its
// config.json for a pooled donor on 127.0.0.1 with quota.
func poolRepo(t *testing.T, p *world, invite, quota string) *world {
	t.Helper()
	p.ok("group", "join", invite)
	path := filepath.Join(p.repo, "config.json")
	cfg := map[string]any{}
	if b, err := os.ReadFile(path); err == nil {
		if err := json.Unmarshal(b, &cfg); err != nil {
			t.Fatal(err)
		}
	}
	cfg["listen"] = []string{"/ip4/127.0.0.1/tcp/0"}
	cfg["donor"], cfg["quota"] = true, quota
	cfg["replicas"] = 2
	b, _ := json.Marshal(cfg)
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestPooledDonor: a donor serves two private groups at once (--pool,
// one libp2p host per group key in its process, a quota per group). Each
// group's put places a copy on it, in that group's store only. The donor
// then leaves one group (restarts without it): the other group's file
// stays healthy and the donor still holds its copies there.
func TestPooledDonor(t *testing.T) {
	a1, _, inv1 := groupPair(t, "east-club")
	b1, _, inv2 := groupPair(t, "west-club")
	p1, p2 := poolRepo(t, newWorld(t), inv1, "64MiB"), poolRepo(t, newWorld(t), inv2, "32MiB")
	d := newWorld(t)
	pd, _ := startDaemonWith(t, d, daemonArgs("--pool", p1.repo, "--pool", p2.repo)...)
	waitRoutingTable(t, p1, 2)
	waitRoutingTable(t, p2, 2)
	waitRoutingTable(t, a1, 2)
	waitRoutingTable(t, b1, 2)
	s1, s2 := statusOf(t, p1), statusOf(t, p2)
	// The donor is in no group: its pooled nodes tell no home (they are
	// nobody's partner donors).
	if s1.Group != "east-club" || s2.Group != "west-club" || s1.Quota != 64<<20 || s2.Quota != 32<<20 || s1.ID == s2.ID || s1.Home != "" || len(s1.Partners) != 0 {
		t.Fatalf("pooled nodes: %+v / %+v", s1, s2)
	}

	writeRandomFile(t, a1.path("e.bin"), 1, 1<<20)
	rc1 := putPlaced(t, a1, a1.path("e.bin"), "east-club's put").Recipe
	writeRandomFile(t, b1.path("w.bin"), 2, 1<<20)
	rc2 := putPlaced(t, b1, b1.path("w.bin"), "west-club's put").Recipe
	// Each group's check finds every block of its file on the donor's
	// node for that group; the two stores share no block.
	for _, c := range []struct {
		up     *world
		rc     string
		pooled apiv1.StatusInfo
	}{{a1, rc1, s1}, {b1, rc2, s2}} {
		var h apiv1.HealthInfo
		decodeStrict(t, c.up.ok("check", "--json", c.rc), &h)
		found := false
		for _, x := range h.Holders {
			if x.Peer == c.pooled.ID {
				found = x.Blocks == h.Blocks
			}
		}
		if !found || h.State != apiv1.HealthHealthy {
			t.Fatalf("group %s: the pooled node %s does not hold every block of the file: %+v", c.pooled.Group, c.pooled.ID, h)
		}
	}
	in2 := map[blocks.ID]bool{}
	for _, id := range p2.blockIDs() {
		in2[id] = true
	}
	for _, id := range p1.blockIDs() {
		if in2[id] {
			t.Fatalf("block %s is in both groups' stores", id)
		}
	}

	// The donor leaves east-club: it restarts pooling west-club only.
	stopDaemon(t, pd)
	startDaemonWith(t, d, daemonArgs("--pool", p2.repo)...)
	waitRoutingTable(t, p2, 2)
	if _, ok := daemonID(p1); ok {
		t.Fatal("east-club's pooled node still answers after the donor left the group")
	}
	var h apiv1.HealthInfo
	decodeStrict(t, b1.ok("check", "--json", rc2), &h)
	if h.State != apiv1.HealthHealthy || h.MinCopies < 3 {
		t.Fatalf("west-club's file after the donor left east-club: %+v", h)
	}
	decodeStrict(t, a1.ok("check", "--json", rc1), &h)
	if h.MinCopies != 2 {
		t.Fatalf("east-club's file after the donor left: %+v (want the uploader's and the other member's copies)", h)
	}
	if r := d.run(append([]string{"daemon"}, daemonArgs("--pool", d.repo)...)...); r.code != 2 || !strings.Contains(string(r.stderr), "own repo") {
		t.Fatalf("--pool of the daemon's own repo: %s", r)
	}
}
