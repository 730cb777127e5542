//go:build linux

package main

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/blockmix/blockmix/blocks"
	"github.com/blockmix/blockmix/webui/apiv1"
)

// BenchmarkSitesPut: `blockmix put` of a SITES_BENCH_SIZE file (default
// 64 MiB) with R = 2 (one copy in each office) in a six-node network whose nodes stand in two
// sites (three each, --site), next to the same put in the same network
// without sites, in the same run. Metrics: both put times and their
// ratio; the share of the file's blocks whose copies on the other nodes
// (the uploader may leave) stand in both sites, with sites and, for the
// same assignment of nodes to sites, without; and the file's blocks that
// would be lost if either site stopped, with sites.
func BenchmarkSitesPut(b *testing.B) {
	root := b.TempDir()
	size := envBytes(b, "SITES_BENCH_SIZE", 64<<20)
	in := filepath.Join(root, "input.bin")
	if _, err := createRandomFile(in, 0x517e, size); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(size)
	sites := []string{"east", "west", "east", "west", "east", "west"}
	var with, without time.Duration
	var spanWith, spanWithout, lost, total int
	b.ResetTimer()
	b.StopTimer()
	for i := range b.N {
		for _, sited := range []bool{false, true} {
			ws, ps := sitesBenchNetwork(b, filepath.Join(root, fmt.Sprintf("net-%d-%v", i, sited)), sites, sited)
			b.StartTimer()
			r := ws[0].run("--no-progress", "put", "--json", in)
			b.StopTimer()
			var put apiv1.PutInfo
			if err := json.Unmarshal(r.stdout, &put); r.code != 0 || err != nil || put.Short == nil || *put.Short != 0 {
				b.Fatalf("put (sites %v): %v", sited, r)
			}
			ids := ws[0].blockIDs()
			held := map[blocks.ID]map[string]bool{}
			for k, w := range ws[1:] {
				for _, id := range w.blockIDs() {
					if held[id] == nil {
						held[id] = map[string]bool{}
					}
					held[id][sites[k+1]] = true
				}
			}
			span := 0
			for _, id := range ids {
				if len(held[id]) == 2 {
					span++
				} else if sited {
					lost++ // one site's stop leaves it on the uploader alone, or nowhere
				}
			}
			if sited {
				with += r.dur
				spanWith += span
				total += len(ids)
			} else {
				without += r.dur
				spanWithout += span
			}
			for _, p := range ps {
				p.kill(b)
			}
		}
	}
	n := float64(b.N)
	b.ReportMetric(with.Seconds()/n, "put_sites_s")
	b.ReportMetric(without.Seconds()/n, "put_nosites_s")
	b.ReportMetric(with.Seconds()/without.Seconds(), "sites/nosites_time")
	b.ReportMetric(100*float64(spanWith)/float64(total), "span_sites_%")
	b.ReportMetric(100*float64(spanWithout)/float64(total), "span_nosites_%")
	b.ReportMetric(float64(lost)/n, "blocks_lost_one_site")
}

// sitesBenchNetwork starts a daemon per site under root (with --site
// when sited), R = 2, joined through the first, and waits until every
// routing table holds the others and (sited) every node knows the sites.
func sitesBenchNetwork(b *testing.B, root string, sites []string, sited bool) ([]*world, []*started) {
	b.Helper()
	var ws []*world
	var ps []*started
	var boot string
	for i, s := range sites {
		w := newWorldIn(b, root)
		w.repo = filepath.Join(root, fmt.Sprintf("node-%d", i))
		args := daemonArgs("--replicas", "2")
		if sited {
			args = append(args, "--site", s)
		}
		if boot != "" {
			args = append(args, "--bootstrap", boot)
		}
		p, info := startDaemonWith(b, w, args...)
		ps = append(ps, p)
		if boot == "" {
			boot = info.Addrs[0]
		}
		ws = append(ws, w)
	}
	deadline := time.Now().Add(60 * time.Second)
	for _, w := range ws {
		for {
			var s apiv1.StatusInfo
			ok := json.Unmarshal(w.ok("status", "--json"), &s) == nil && s.RoutingTable >= len(sites)-1
			if sited {
				ok = ok && len(s.Sites) == 2 && s.Sites[0].Nodes == 3 && s.Sites[1].Nodes == 3
			}
			if ok {
				break
			}
			if time.Now().After(deadline) {
				b.Fatalf("%s: routing table %d of %d, sites %v", w.repo, s.RoutingTable, len(sites)-1, s.Sites)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return ws, ps
}
