//go:build linux

package main

import (
	"encoding/json"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/blockmix/blockmix/blocks"
	"github.com/blockmix/blockmix/webui/apiv1"
)

// siteNode is a daemon of a sites test and its site.
type siteNode struct {
	w    *world
	p    *started
	site string
}

// startSite starts a daemon in site with args, joining through boot
// ("" for none).
func startSite(t *testing.T, site, boot string, args ...string) (*siteNode, apiv1.IDInfo) {
	t.Helper()
	n := &siteNode{w: newWorld(t), site: site}
	args = append(daemonArgs(args...), "--site", site)
	if boot != "" {
		args = append(args, "--bootstrap", boot)
	}
	p, info := startDaemonWith(t, n.w, args...)
	n.p = p
	return n, info
}

// waitSites waits until w's status counts want nodes in each site.
func waitSites(t *testing.T, w *world, want map[string]int) apiv1.StatusInfo {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		s := statusOf(t, w)
		got := map[string]int{}
		for _, x := range s.Sites {
			got[x.Site] = x.Nodes
		}
		same := len(got) == len(want)
		for k, v := range want {
			same = same && got[k] == v
		}
		if same {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: sites %v after 30 s, want %v", w.repo, s.Sites, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// sitesHolding returns, for each of ids, the sites of the nodes of ns
// that hold it.
func sitesHolding(ns []*siteNode, ids []blocks.ID) map[blocks.ID]map[string]bool {
	out := map[blocks.ID]map[string]bool{}
	for _, id := range ids {
		out[id] = map[string]bool{}
	}
	for _, n := range ns {
		for _, id := range n.w.blockIDs() {
			if s, ok := out[id]; ok {
				s[n.site] = true
			}
		}
	}
	return out
}

// killAll stops the daemons of ns at once (SIGKILL to each, then waits).
func killAll(t *testing.T, ns ...*siteNode) {
	t.Helper()
	for _, n := range ns {
		if err := n.p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
	}
	for _, n := range ns {
		<-n.p.done
	}
}

// TestSites: six daemons, three in east (the uploader among them) and
// three in west, R = 2. A put gives every block a copy in each site
// (check says so). Then the whole west site and the uploader stop at
// once: a fresh node still gets the file. Two new nodes join in west:
// repair gives every block a copy there again, and check says the file
// is healthy with no block in one site.
func TestSites(t *testing.T) {
	args := []string{"--replicas", "2", "--repair-interval", "300ms"}
	var ns []*siteNode
	boot := ""
	for _, s := range []string{"east", "east", "east", "west", "west", "west"} {
		n, info := startSite(t, s, boot, args...)
		if boot == "" {
			boot = info.Addrs[0]
		}
		ns = append(ns, n)
	}
	for _, n := range ns {
		waitRoutingTable(t, n.w, 5)
	}
	st := waitSites(t, ns[0].w, map[string]int{"east": 3, "west": 3})
	if st.Site != "east" {
		t.Fatalf("status says site %q, want east", st.Site)
	}
	if out := string(ns[0].w.ok("status")); !strings.Contains(out, "site           east (known sites: east 3 nodes, west 3 nodes") {
		t.Fatalf("status does not show the sites:\n%s", out)
	}
	for _, n := range ns {
		waitSites(t, n.w, map[string]int{"east": 3, "west": 3})
	}
	up := ns[0]
	sum := writeRandomFile(t, up.w.path("f.bin"), 19, 3<<20+12345)
	rc := putPlaced(t, up.w, up.w.path("f.bin"), "the put over two sites").Recipe
	ids := up.w.blockIDs()
	// Among the other nodes (the uploader may leave), every block has a
	// copy in each site.
	for id, sites := range sitesHolding(ns[1:], ids) {
		if !sites["east"] || !sites["west"] {
			t.Fatalf("block %s is held in sites %v, want east and west", id, sites)
		}
	}
	var h apiv1.HealthInfo
	decodeStrict(t, up.w.ok("check", "--json", rc), &h)
	if h.State != apiv1.HealthHealthy || h.Sites != 2 || h.OneSite != 0 {
		t.Fatalf("check after the put: %+v", h)
	}
	var ps []apiv1.PeerInfo
	if err := json.Unmarshal(up.w.ok("peers", "--json"), &ps); err != nil || len(ps) != 5 {
		t.Fatalf("peers --json: %d peers, %v", len(ps), err)
	}
	for _, p := range ps {
		if p.Site != "east" && p.Site != "west" {
			t.Fatalf("peers shows %s in site %q", p.ID, p.Site)
		}
	}

	// The whole west site stops at once, and so does the uploader.
	killAll(t, append([]*siteNode{up}, ns[3:]...)...)
	east := ns[1:3]
	fresh, _ := startSite(t, "east", boot2(t, east[0]), args...)
	if fresh.w.getSum(rc) != sum {
		t.Fatal("the fresh node rebuilt a different file")
	}
	east = append(east, fresh)

	// Two new nodes join in west: repair gives every block a copy there.
	var west []*siteNode
	for range 2 {
		n, _ := startSite(t, "west", boot2(t, east[0]), args...)
		west = append(west, n)
	}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		missing := 0
		for _, sites := range sitesHolding(west, ids) {
			if !sites["west"] {
				missing++
			}
		}
		if missing == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d blocks still have no copy in west after 2 minutes", missing, len(ids))
		}
		time.Sleep(200 * time.Millisecond)
	}
	for {
		decodeStrict(t, east[0].w.ok("check", "--json", rc), &h)
		if h.State == apiv1.HealthHealthy && h.Sites == 2 && h.OneSite == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("check after the new west nodes joined: %+v", h)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// boot2 is the first address of n's daemon.
func boot2(t *testing.T, n *siteNode) string {
	t.Helper()
	info, ok := daemonID(n.w)
	if !ok || len(info.Addrs) == 0 {
		t.Fatalf("%s: no daemon address", n.w.repo)
	}
	return info.Addrs[0]
}

// TestSiteFlagErrors: a bad --site, or a bad site in config.json, is a
// usage error that says what is wrong and where it came from.
func TestSiteFlagErrors(t *testing.T) {
	w := newWorld(t)
	r := w.want(2, append([]string{"daemon"}, daemonArgs("--site", "east/west")...)...)
	if e := string(r.stderr); !strings.Contains(e, "--site") || !strings.Contains(e, "for example") {
		t.Fatalf("daemon --site east/west: %s", r)
	}
	cfg := writeConfig(t, w, `{"site": "`+strings.Repeat("x", 40)+`"}`)
	r = w.want(2, append([]string{"daemon"}, daemonArgs()...)...)
	if e := string(r.stderr); !strings.Contains(e, "--site") || !strings.Contains(e, cfg) || !strings.Contains(e, "40 bytes") {
		t.Fatalf("config site of 40 bytes: %s", r)
	}
}

// TestCheckOneSite: a file put while the network had one site has every
// copy in it; once a node of a second site joins, check says so (at
// risk), and check --repair gives each block a copy in the new site.
// Repair rounds are off: only check --repair moves blocks.
func TestCheckOneSite(t *testing.T) {
	args := []string{"--replicas", "2", "--repair-interval", "0"}
	up, info := startSite(t, "east", "", args...)
	boot := info.Addrs[0]
	ns := []*siteNode{up}
	for range 2 {
		n, _ := startSite(t, "east", boot, args...)
		ns = append(ns, n)
	}
	waitRoutingTable(t, up.w, 2)
	writeRandomFile(t, up.w.path("f.bin"), 7, 1<<20)
	rc := putPlaced(t, up.w, up.w.path("f.bin"), "the put in one site").Recipe
	var h apiv1.HealthInfo
	decodeStrict(t, up.w.ok("check", "--json", rc), &h)
	if h.State != apiv1.HealthHealthy || h.Sites != 1 || h.OneSite != 0 {
		t.Fatalf("check with one site: %+v", h)
	}
	west, _ := startSite(t, "west", boot, args...)
	waitSites(t, up.w, map[string]int{"east": 3, "west": 1})
	r := up.w.want(1, "check", rc)
	if out := string(r.stdout); !strings.Contains(out, "at risk: every copy of ") || !strings.Contains(out, "is in one site") || !strings.Contains(out, "sites 2 known") {
		t.Fatalf("check once west joined:\n%s", r)
	}
	decodeStrict(t, up.w.ok("check", "--json", "--repair", rc), &h)
	if h.State != apiv1.HealthHealthy || h.Sites != 2 || h.OneSite != 0 {
		t.Fatalf("check --repair: %+v", h)
	}
	ids := up.w.blockIDs()
	for id, sites := range sitesHolding([]*siteNode{west}, ids) {
		if !sites["west"] {
			t.Fatalf("after check --repair, block %s has no copy in west", id)
		}
	}
}

// TestPageSites: the Node tab shows the node's site and the sites it
// knows, and each peer's site in the peers table.
func TestPageSites(t *testing.T) {
	a, b := newWorld(t), newWorld(t)
	listen := []string{"--listen", "/ip4/127.0.0.1/tcp/0", "--api", "127.0.0.1:0"}
	ida := startPageDaemon(t, a, nil, append(listen, "--site", "East Office")...)
	idb := startPageDaemon(t, b, nil, append(listen, "--site", "west", "--bootstrap", ida.Addrs[0])...)
	waitSites(t, a, map[string]int{"east-office": 1, "west": 1})
	ctx := newBrowser(t)
	do(t, ctx, "A's Node tab", goTo(a.apiBase(t), "node"))
	words := poll[string](t, ctx, "the site", `(() => { const s = document.getElementById('node-site').textContent; return s.includes('west') ? s : ''; })()`, 30*time.Second)
	if !strings.HasPrefix(words, "east-office") || !strings.Contains(words, "east-office (1 node), west (1 node)") || !strings.Contains(words, "copies go to two of them") {
		t.Fatalf("the Node tab says of sites: %q", words)
	}
	site := poll[string](t, ctx, "B's row", `(() => { const c = document.querySelector('#peers-table code[title=`+jsString(idb.ID)+`]');
		return c ? c.closest('tr').querySelector('td.site').textContent : ''; })()`, 30*time.Second)
	if site != "west" {
		t.Fatalf("B's row shows site %q, want west", site)
	}
}
