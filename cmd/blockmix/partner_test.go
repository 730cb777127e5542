//go:build linux

package main

import (
	"crypto/rand"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	kb "github.com/libp2p/go-libp2p-kbucket"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/blockmix/blockmix/blocks"
	"github.com/blockmix/blockmix/cmd/blockmix/internal/repo"
	bmnet "github.com/blockmix/blockmix/net"
	"github.com/blockmix/blockmix/webui/apiv1"
)

// setConfig sets keys of w's config.json (the others stay).
func setConfig(t *testing.T, w *world, keys map[string]any) {
	t.Helper()
	path := filepath.Join(w.repo, "config.json")
	cfg := map[string]any{}
	if b, err := os.ReadFile(path); err == nil {
		if err := json.Unmarshal(b, &cfg); err != nil {
			t.Fatal(err)
		}
	}
	for k, v := range keys {
		cfg[k] = v
	}
	b, _ := json.Marshal(cfg)
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// worldWithKey is a new world whose node's identity stands in one half
// of the DHT keyspace: the first bit of its key is bit.
func worldWithKey(t *testing.T, bit byte) *world {
	t.Helper()
	w := newWorld(t)
	for {
		k, _, err := crypto.GenerateEd25519Key(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		id, err := peer.IDFromPrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		if kb.ConvertPeerID(id)[0]>>7 != bit {
			continue
		}
		b, err := crypto.MarshalPrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(w.repo, repo.IdentityFile), b, 0o600); err != nil {
			t.Fatal(err)
		}
		return w
	}
}

// TestPartnerCopies: group a-club has four nodes of its own (the uploader
// among them) and two partner donors: donors whose main repos are in
// group b-club and which pool a-club's repos (--pool). With R = 3 and
// --partner-copies 1 on every a-club node, every block of a put gets a
// copy on a partner donor, though by distance alone about half would not:
// the identities are chosen so that the uploader's three other own nodes
// stand in one half of the keyspace and the partner donors in the other.
// Check says healthy and counts the partner donors. One partner donor is
// killed: repair gives every block a copy on the other, and check is
// healthy again.
func TestPartnerCopies(t *testing.T) {
	if testing.Short() {
		t.Skip("starts six daemons")
	}
	args := daemonArgs("--replicas", "3", "--partner-copies", "1", "--repair-interval", "300ms")
	own := []*world{worldWithKey(t, 0)}
	own[0].ok("group", "create", "a-club")
	startDaemonWith(t, own[0], args...)
	invA := own[0].okLine("group", "invite")
	for i := range 3 {
		w := worldWithKey(t, 0)
		if i == 2 {
			w = newWorld(t) // the uploader: anywhere
		}
		w.ok("group", "join", invA)
		startDaemonWith(t, w, args...)
		own = append(own, w)
	}
	up := own[3]

	// Two donors of b-club, each pooling a repo of a-club.
	var pooled []*world
	var donors []*started
	invB := ""
	for i := range 2 {
		d, p := newWorld(t), poolRepo(t, worldWithKey(t, 1), invA, "64MiB")
		setConfig(t, p, map[string]any{"replicas": 3, "partner_copies": 1, "repair_interval": "300ms"})
		if i == 0 {
			d.ok("group", "create", "b-club")
		} else {
			d.ok("group", "join", invB)
		}
		pd, _ := startDaemonWith(t, d, daemonArgs("--pool", p.repo)...)
		if i == 0 {
			invB = d.okLine("group", "invite")
		}
		pooled, donors = append(pooled, p), append(donors, pd)
	}
	for _, w := range append(slices.Clone(own), pooled...) {
		waitRoutingTable(t, w, 5)
	}
	var s apiv1.StatusInfo
	waitFor(t, "the uploader knows both partner donors", 30*time.Second, func() bool {
		s = statusOf(t, up)
		return len(s.Partners) == 1 && s.Partners[0] == apiv1.PartnerInfo{Home: "b-club", Nodes: 2}
	})
	if s.PartnerCopies != 1 || s.Home != "" {
		t.Fatalf("the uploader's status: %+v", s)
	}
	if out := string(up.ok("status")); !strings.Contains(out, "partners       b-club 2 nodes; 1 copy of each block goes to them") {
		t.Fatalf("status does not show the partner donors:\n%s", out)
	}
	partner := map[peer.ID]bool{}
	for _, p := range pooled {
		ps := statusOf(t, p)
		if ps.Home != "b-club" || ps.Group != "a-club" {
			t.Fatalf("a pooled node's status: home %q, group %q", ps.Home, ps.Group)
		}
		partner[mustDecodePeer(t, ps.ID)] = true
	}
	var others []peer.ID // the uploader's candidates
	for _, w := range append(slices.Clone(own[:3]), pooled...) {
		others = append(others, mustDecodePeer(t, statusOf(t, w).ID))
	}

	writeRandomFile(t, up.path("f.bin"), 77, 8<<20+321)
	rc := putPlaced(t, up, up.path("f.bin"), "the put with a partner copy").Recipe
	ids := up.blockIDs()
	missed := 0 // blocks whose three closest by distance hold no partner donor
	for _, id := range ids {
		closest := kb.SortClosestPeers(slices.Clone(others), kb.ConvertKey(bmnet.BlockKey(id)))[:3]
		if !slices.ContainsFunc(closest, func(p peer.ID) bool { return partner[p] }) {
			missed++
		}
	}
	t.Logf("%d of %d blocks would have had no partner copy by distance alone", missed, len(ids))
	if missed == 0 {
		t.Fatal("distance alone gives every block a partner copy: the test proves nothing")
	}
	if n := withoutPartnerCopy(pooled, ids); n > 0 {
		t.Fatalf("%d of %d blocks have no copy on a partner donor", n, len(ids))
	}
	h := checkOf(t, up, rc)
	if h.State != apiv1.HealthHealthy || h.PartnerCopies != 1 || h.Partners != 2 || h.NoPartner != 0 {
		t.Fatalf("check after the put: %+v", h)
	}
	if out := string(up.ok("check", rc)); !strings.Contains(out, "partner donors 2 known; 0 blocks have no copy on them") {
		t.Fatalf("check does not count the partner donors:\n%s", out)
	}

	// A partner donor dies: repair puts every block on the other one.
	if err := donors[0].cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-donors[0].done
	waitFor(t, "every block on the other partner donor", 120*time.Second, func() bool {
		return withoutPartnerCopy(pooled[1:], ids) == 0
	})
	waitFor(t, "check healthy with one partner donor", 60*time.Second, func() bool {
		h = checkOf(t, up, rc)
		return h.State == apiv1.HealthHealthy
	})
	if h.Partners != 1 || h.NoPartner != 0 {
		t.Fatalf("check after the repair: %+v", h)
	}
}

// withoutPartnerCopy counts the blocks of ids that no pooled node holds.
func withoutPartnerCopy(pooled []*world, ids []blocks.ID) int {
	held := map[blocks.ID]bool{}
	for _, p := range pooled {
		for _, id := range p.blockIDs() {
			held[id] = true
		}
	}
	n := 0
	for _, id := range ids {
		if !held[id] {
			n++
		}
	}
	return n
}

// mustDecodePeer parses a peer ID.
func mustDecodePeer(t *testing.T, s string) peer.ID {
	t.Helper()
	id, err := peer.Decode(s)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// TestCheckNoPartner: a file put while group a-club had no partner donor
// has no copy on one; once a partner donor joins, check says so (at risk)
// and check --repair gives every block a copy on it. Repair rounds are
// off: only check --repair moves blocks.
func TestCheckNoPartner(t *testing.T) {
	args := daemonArgs("--replicas", "2", "--partner-copies", "1", "--repair-interval", "0")
	up := newWorld(t)
	up.ok("group", "create", "a-club")
	startDaemonWith(t, up, args...)
	invA := up.okLine("group", "invite")
	for range 2 {
		w := newWorld(t)
		w.ok("group", "join", invA)
		startDaemonWith(t, w, args...)
	}
	waitRoutingTable(t, up, 2)
	writeRandomFile(t, up.path("f.bin"), 8, 1<<20)
	rc := putPlaced(t, up, up.path("f.bin"), "the put without partner donors").Recipe
	if h := checkOf(t, up, rc); h.State != apiv1.HealthHealthy || h.Partners != 0 || h.NoPartner != 0 {
		t.Fatalf("check with no partner donor: %+v", h)
	}

	// A donor of b-club pools a-club.
	p := poolRepo(t, newWorld(t), invA, "64MiB")
	setConfig(t, p, map[string]any{"partner_copies": 1, "repair_interval": "0"})
	d := newWorld(t)
	d.ok("group", "create", "b-club")
	startDaemonWith(t, d, daemonArgs("--pool", p.repo)...)
	waitFor(t, "the uploader knows the partner donor", 30*time.Second, func() bool { return len(statusOf(t, up).Partners) == 1 })
	r := up.want(1, "check", rc)
	if out := string(r.stdout); !strings.Contains(out, "at risk: no copy of ") || !strings.Contains(out, "is on a partner group's donors") || !strings.Contains(out, "partner donors 1 known") {
		t.Fatalf("check once the partner donor joined:\n%s", r)
	}
	var h apiv1.HealthInfo
	decodeStrict(t, up.ok("check", "--json", "--repair", rc), &h)
	if h.State != apiv1.HealthHealthy || h.Partners != 1 || h.NoPartner != 0 {
		t.Fatalf("check --repair: %+v", h)
	}
	if n := withoutPartnerCopy([]*world{p}, up.blockIDs()); n > 0 {
		t.Fatalf("after check --repair, %d blocks have no copy on the partner donor", n)
	}
}

// TestPagePartners: the Node tab shows the partner donors a node knows
// and the share of copies that goes to them; a pooled node's tab says it
// is one, and of which home group.
func TestPagePartners(t *testing.T) {
	a := newWorld(t)
	a.ok("group", "create", "a-club")
	startPageDaemon(t, a, nil, daemonArgs("--partner-copies", "1")...)
	p := poolRepo(t, newWorld(t), a.okLine("group", "invite"), "64MiB")
	d := newWorld(t)
	d.ok("group", "create", "b-club")
	startPageDaemon(t, d, nil, daemonArgs("--pool", p.repo)...)
	waitFor(t, "a knows the partner donor", 30*time.Second, func() bool { return len(statusOf(t, a).Partners) == 1 })
	ctx := newBrowser(t)
	for _, c := range []struct {
		w    *world
		want []string
	}{
		{a, []string{"b-club (1 node)", "1 copy of each block goes to them"}},
		{p, []string{"b-club (1 node)", "this node is one: its donor is at home in b-club"}},
	} {
		do(t, ctx, "the Node tab", goTo(c.w.apiBase(t), "node"))
		words := poll[string](t, ctx, "the partner donors", `(() => { const s = document.getElementById('node-partners').textContent; return s.includes('b-club') ? s : ''; })()`, 30*time.Second)
		for _, w := range c.want {
			if !strings.Contains(words, w) {
				t.Fatalf("%s's Node tab says of partner donors %q, want %q in it", c.w.repo, words, w)
			}
		}
	}
}
