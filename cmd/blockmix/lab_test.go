package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/blockmix/blockmix/cmd/blockmix/internal/group"
	"github.com/blockmix/blockmix/cmd/blockmix/internal/netlab"
	"github.com/blockmix/blockmix/webui/apiv1"
)

// labNode is a daemon on a lab machine.
type labNode struct {
	w    *world
	p    *started
	id   string
	addr string // its multiaddr on the lab's network, /p2p/ID included
}

// labWorld is a world whose commands run on lab host h.
func labWorld(t testing.TB, h *netlab.Host) *world {
	w := newWorld(t)
	w.host = h
	return w
}

// startLab runs a daemon on w's lab host, listening on TCP port 4001 of
// every address, and waits (bounded) until its API answers.
func startLab(t testing.TB, w *world, args ...string) *labNode {
	t.Helper()
	args = append([]string{"daemon", "--listen", "/ip4/0.0.0.0/tcp/4001", "--api", "127.0.0.1:0", "--log-level", "debug", "--repair-interval", "0"}, args...)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	c := w.command(ctx, runOpts{}, args...)
	p := &started{cmd: c, stdout: new(bytes.Buffer), stderr: new(bytes.Buffer), done: make(chan struct{})}
	c.Stdout, c.Stderr = p.stdout, lockedWriter{&p.errMu, p.stderr}
	if err := c.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	go func() {
		_ = c.Wait()
		cancel()
		close(p.done)
	}()
	t.Cleanup(func() {
		_ = c.Process.Kill()
		<-p.done
		if t.Failed() {
			t.Logf("daemon on %s (%s) said:\n%s", w.host.Name, w.host.IP, lastLines(p.stderrNow(), 60))
		}
	})
	n := &labNode{w: w, p: p}
	deadline := time.Now().Add(60 * time.Second)
	for {
		r := w.run("id", "--json")
		var info apiv1.IDInfo
		if r.code == 0 && json.Unmarshal(r.stdout, &info) == nil && len(info.Addrs) > 0 {
			n.id = info.ID
			n.addr = fmt.Sprintf("/ip4/%s/tcp/4001/p2p/%s", w.host.IP, info.ID)
			return n
		}
		if p.exited() || time.Now().After(deadline) {
			t.Fatalf("daemon on %s did not come up:\n%s", w.host.Name, p.stderrNow())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// lastLines returns the last n lines of s.
func lastLines(s string, n int) string {
	ls := strings.Split(s, "\n")
	return strings.Join(ls[max(0, len(ls)-n):], "\n")
}

// status asks n's daemon for its status.
func (n *labNode) status(t testing.TB) apiv1.StatusInfo {
	t.Helper()
	var s apiv1.StatusInfo
	if err := json.Unmarshal(n.w.ok("status", "--json"), &s); err != nil {
		t.Fatal(err)
	}
	return s
}

// waitReach waits (bounded) until n's reachability is one of states.
func (n *labNode) waitReach(t testing.TB, timeout time.Duration, states ...string) apiv1.StatusInfo {
	t.Helper()
	var s apiv1.StatusInfo
	waitFor(t, n.w.host.Name+" reachable as "+strings.Join(states, " or "), timeout, func() bool {
		s = n.status(t)
		for _, st := range states {
			if s.Reach.State == st {
				return true
			}
		}
		return false
	})
	return s
}

// peers lists n's daemon's peers.
func (n *labNode) peers(t testing.TB) []apiv1.PeerInfo {
	t.Helper()
	var ps []apiv1.PeerInfo
	if err := json.Unmarshal(n.w.ok("peers", "--json"), &ps); err != nil {
		t.Fatal(err)
	}
	return ps
}

// TestLabHomes: three homes behind masquerading routers (40 Mbit/s up)
// and a public node. The public node finds it is reachable and relays;
// the homes find they are behind NAT and reserve a slot on it. A put on a
// home with R = 3 gives every block its three copies (the public node and
// the two other homes, reached by hole punching), and a fresh node on the
// public side gets a file that only a home holds.
func TestLabHomes(t *testing.T) {
	lab := netlab.New(t)
	pub := lab.Public("public")
	fresh := lab.Public("fresh")
	var homes []*netlab.Host
	for i := 1; i <= 3; i++ {
		homes = append(homes, lab.Home(fmt.Sprintf("home%d", i), 40*netlab.Mbit).Host(fmt.Sprintf("home%d", i)))
	}

	// A file that only the third home holds: put before its daemon runs.
	wh3 := labWorld(t, homes[2])
	only := randBytes(1401, 700<<10+13)
	wh3.file("only.bin", only)
	var onlyPut apiv1.PutInfo
	if err := json.Unmarshal(wh3.ok("--no-progress", "put", "--json", "only.bin"), &onlyPut); err != nil {
		t.Fatal(err)
	}

	p := startLab(t, labWorld(t, pub))
	var hs []*labNode
	for i, h := range homes {
		w := labWorld(t, h)
		if i == 2 {
			w = wh3
		}
		hs = append(hs, startLab(t, w, "--bootstrap", p.addr))
	}
	ps := p.waitReach(t, 90*time.Second, "direct")
	if !strings.Contains(ps.Reach.Words, "reachable directly") {
		t.Errorf("public node's words: %q", ps.Reach.Words)
	}
	for _, h := range hs {
		s := h.waitReach(t, 90*time.Second, "relay")
		if len(s.Reach.Relays) == 0 || s.Reach.Relays[0] != p.id || !strings.Contains(s.Reach.Words, "behind NAT") {
			t.Errorf("%s: reach %+v", h.w.host.Name, s.Reach)
		}
	}
	waitFor(t, "public node relaying", 30*time.Second, func() bool { return p.status(t).Reach.Relaying })

	// A put on the first home: every block gets its three copies.
	data := randBytes(1402, 1<<20+77)
	h1 := hs[0]
	h1.w.file("shared.bin", data)
	put := putPlaced(t, h1.w, "shared.bin", "a put on a home with R = 3")
	if put.Nodes != 3 {
		t.Errorf("the put reached %d nodes, want 3 (the public node and two homes): %+v", put.Nodes, put)
	}
	for _, h := range hs[1:] {
		direct := false
		for _, pi := range h.peers(t) {
			if pi.ID == h1.id && pi.BytesIn == 0 && pi.Conn != "" && !strings.HasPrefix(pi.Conn, "relayed") {
				direct = true
			}
		}
		if !direct {
			t.Errorf("%s: no direct connection to the uploading home: %+v", h.w.host.Name, h.peers(t))
		}
	}

	// The third home announces its file; a fresh public node gets it.
	hs[2].w.ok("pin", onlyPut.Recipe)
	f := startLab(t, labWorld(t, fresh), "--bootstrap", p.addr)
	if got := f.w.getFile(onlyPut.Recipe); !bytes.Equal(got, only) {
		t.Fatal("the fresh node did not get the home's file byte for byte")
	}
	fromHome := false
	for _, pi := range f.peers(t) {
		if pi.ID == hs[2].id && pi.BytesIn > 0 {
			fromHome = true
			if strings.HasPrefix(pi.Conn, "relayed") {
				t.Errorf("blocks came over a relayed connection: %+v", pi)
			}
		}
	}
	if !fromHome {
		t.Errorf("the fresh node fetched nothing from the home that holds the file: %+v", f.peers(t))
	}
	if out := string(hs[0].w.ok("status")); !strings.Contains(out, "behind NAT") {
		t.Errorf("status of a home does not say it is behind NAT:\n%s", out)
	}
}

// TestLabLAN: two hosts on one home LAN find each other by mDNS, with no
// bootstrap address, and share a file; a third host in the same home
// with --mdns=false stays alone.
func TestLabLAN(t *testing.T) {
	lab := netlab.New(t)
	home := lab.Home("home", 40*netlab.Mbit)
	a := startLab(t, labWorld(t, home.Host("laptop")), "--replicas", "1")
	b := startLab(t, labWorld(t, home.Host("pi")), "--replicas", "1")
	c := startLab(t, labWorld(t, home.Host("quiet")), "--replicas", "1", "--mdns=false")
	for _, n := range []*labNode{a, b} {
		waitFor(t, n.w.host.Name+" finds a peer on the LAN", 60*time.Second, func() bool { return n.status(t).Peers > 0 })
	}
	data := randBytes(1403, 900<<10+5)
	a.w.file("photo.bin", data)
	put := putPlaced(t, a.w, "photo.bin", "a put on the LAN")
	if got := b.w.getFile(put.Recipe); !bytes.Equal(got, data) {
		t.Fatal("the other host on the LAN did not get the file byte for byte")
	}
	for _, pi := range b.peers(t) {
		if pi.ID == c.id {
			t.Errorf("a host with --mdns=false was found: %+v", pi)
		}
	}
	if s := c.status(t); s.Peers != 0 {
		t.Errorf("the host with --mdns=false has %d peers, want 0", s.Peers)
	}
}

// TestLabSymmetricNAT: two homes behind routers that map every
// connection to a random port reach each other only through the relay:
// hole punching fails, no block goes through the relay, and a get says
// why the other home's blocks cannot come.
func TestLabSymmetricNAT(t *testing.T) {
	lab := netlab.New(t)
	pub := lab.Public("public")
	wa := labWorld(t, lab.SymmetricHome("home-a", 40*netlab.Mbit).Host("holder"))
	data := randBytes(1404, 300<<10)
	wa.file("held.bin", data)
	var put apiv1.PutInfo
	if err := json.Unmarshal(wa.ok("--no-progress", "put", "--json", "held.bin"), &put); err != nil {
		t.Fatal(err)
	}
	p := startLab(t, labWorld(t, pub), "--share", "0")
	a := startLab(t, wa, "--bootstrap", p.addr)
	b := startLab(t, labWorld(t, lab.SymmetricHome("home-b", 40*netlab.Mbit).Host("getter")), "--bootstrap", p.addr)
	start := time.Now()
	a.waitReach(t, 90*time.Second, "relay")
	b.waitReach(t, 90*time.Second, "relay")
	t.Logf("both homes behind their relay after %v", time.Since(start).Round(time.Millisecond))
	a.w.ok("pin", put.Recipe) // announce it
	r := b.w.run("get", "-o", b.w.path("held.bin"), put.Recipe)
	t.Logf("the get failed after %v", r.dur.Round(time.Millisecond))
	if r.code == 0 {
		t.Fatalf("the get worked, though no direct path can exist:\n%v", r)
	}
	if !strings.Contains(string(r.stderr), "reached only through a relay") {
		t.Errorf("the get does not say the holder is reached only through a relay:\n%v", r)
	}
	for _, pi := range b.peers(t) {
		if pi.ID == a.id && (pi.BytesIn > 0 || !strings.HasPrefix(pi.Conn, "relayed")) {
			t.Errorf("the other home: %+v", pi)
		}
	}
	if s := b.status(t); !strings.Contains(s.Reach.Words, "hole punch to") || !strings.Contains(s.Reach.Words, "failed") {
		t.Errorf("status does not say the hole punch failed: %q", s.Reach.Words)
	}
}

// TestLabGroup: a private group of a public node and two homes. The
// invite carries an address friends can reach (never loopback); the homes
// reserve relay slots and punch holes within the group's key, and a put
// on one home places every block on the public node and the other home.
func TestLabGroup(t *testing.T) {
	lab := netlab.New(t)
	wp := labWorld(t, lab.Public("public"))
	wp.ok("group", "create", "friends")
	p := startLab(t, wp)
	invite := wp.okLine("group", "invite")
	var hs []*labNode
	for i := 1; i <= 2; i++ {
		w := labWorld(t, lab.Home(fmt.Sprintf("home%d", i), 40*netlab.Mbit).Host(fmt.Sprintf("home%d", i)))
		if out := w.okLine("group", "join", invite); !strings.HasPrefix(out, "joined group friends") {
			t.Fatalf("join from a home: %q", out)
		}
		hs = append(hs, startLab(t, w, "--replicas", "2")) // bootstraps from the invite
	}
	for _, h := range hs {
		if s := h.waitReach(t, 90*time.Second, "relay"); s.Group != "friends" {
			t.Errorf("%s: group %q", h.w.host.Name, s.Group)
		}
	}
	data := randBytes(1405, 600<<10)
	hs[0].w.file("club.bin", data)
	put := putPlaced(t, hs[0].w, "club.bin", "a put in a group behind NAT")
	if put.Nodes != 2 {
		t.Errorf("the put reached %d nodes, want 2: %+v", put.Nodes, put)
	}
	if got := hs[1].w.getFile(put.Recipe); !bytes.Equal(got, data) {
		t.Error("the other home did not get the file byte for byte")
	}
	for _, pi := range hs[1].peers(t) {
		if pi.ID == hs[0].id && strings.HasPrefix(pi.Conn, "relayed") {
			t.Errorf("the homes are connected only through the relay: %+v", pi)
		}
	}
	if _, _, ai, err := group.ParseInvite(invite); err != nil || len(ai.Addrs) != 1 || !strings.HasPrefix(ai.Addrs[0].String(), "/ip4/198.18.0.") {
		t.Errorf("the invite does not carry the public address (%s): %+v, %v", p.addr, ai, err)
	}
}
