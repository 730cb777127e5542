//go:build linux

package main

import (
	"syscall"
	"time"

	"github.com/blockmix/blockmix/blocks"
)

// faultSites are the sites of the fault suite's nodes, by turns: node 0
// (the bootstrap) stands in east.
var faultSites = [2]string{"east", "west"}

// sitesOf returns, for each block held on the live nodes, their sites.
func (f *faultNet) sitesOf() map[blocks.ID]map[string]bool {
	out := map[blocks.ID]map[string]bool{}
	for _, n := range f.live() {
		for _, id := range n.w.blockIDs() {
			if out[id] == nil {
				out[id] = map[string]bool{}
			}
			out[id][n.site] = true
		}
	}
	return out
}

// spanned counts the blocks of want with copies in two sites or more.
func (f *faultNet) spanned(want []blocks.ID) int {
	by := f.sitesOf()
	k := 0
	for _, id := range want {
		if len(by[id]) >= 2 {
			k++
		}
	}
	return k
}

// loseSite stops every live node of west at once (SIGKILL), after
// adding east nodes when fewer than three live there (so that the
// survivors can hold three copies). At once, before any repair, every
// file must rebuild on a surviving node: no file is lost.
func (f *faultNet) loseSite(recipes []string, sums [][32]byte) {
	f.t.Helper()
	east := 0
	for _, n := range f.live() {
		if n.site == faultSites[0] {
			east++
		}
	}
	for ; east < 3; east++ {
		n := &faultNode{w: newWorld(f.t), site: faultSites[0]}
		f.nodes = append(f.nodes, n)
		f.start(n)
	}
	var lost []*faultNode
	for _, n := range f.live() {
		if n.site == faultSites[1] {
			if err := n.p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
				f.t.Fatal(err)
			}
			lost = append(lost, n)
		}
	}
	for _, n := range lost {
		<-n.p.done
		n.alive = false
	}
	f.lostSite = append(f.lostSite, lost...)
	f.rebuild(recipes, sums)
}

// siteBack restarts the nodes loseSite stopped and, when both sites have
// live nodes, waits until every block of want has copies in both again.
func (f *faultNet) siteBack(want []blocks.ID) {
	f.t.Helper()
	for _, n := range f.lostSite {
		if !n.alive {
			f.start(n)
		}
	}
	f.lostSite = nil
	live := map[string]bool{}
	for _, n := range f.live() {
		live[n.site] = true
	}
	if len(live) < 2 {
		return // (a soak round's kills took every node of a site: nothing to spread to)
	}
	for deadline := time.Now().Add(healWithin); f.spanned(want) < len(want); {
		if time.Now().After(deadline) {
			f.t.Fatalf("%d of %d blocks still in one site %v after the site came back", len(want)-f.spanned(want), len(want), healWithin)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
