package main

import (
	"testing"
	"time"

	"github.com/blockmix/blockmix/blocks"
	"github.com/blockmix/blockmix/webui/apiv1"
)

// TestPipelinedPutCopies: a put through a daemon places its blocks while
// it mixes (many parts, several placement slices); once it reports done,
// every block the uploader stored for the file (data, randomizers, the
// descriptor's) is held by each of the three other nodes (R = 3).
func TestPipelinedPutCopies(t *testing.T) {
	if testing.Short() {
		t.Skip("starts four daemons")
	}
	var ws []*world
	var boot []string
	for range 4 {
		w := newWorld(t)
		_, info := startDaemon(t, w, boot)
		if boot == nil {
			boot = []string{info.Addrs[0]}
		}
		ws = append(ws, w)
	}
	deadline := time.Now().Add(30 * time.Second)
	for _, w := range ws {
		for {
			if info, ok := daemonID(w); ok && info.RoutingTable >= 3 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: fewer than 3 peers after 30 s", w.repo)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	up := ws[0]
	up.file("big.bin", randBytes(77, 5<<20+12345)) // 41 blocks: 3 parts
	var out apiv1.PutInfo
	decodeStrict(t, up.ok("--no-progress", "put", "--json", "big.bin"), &out)
	if out.Short == nil || *out.Short != 0 || out.Replicas != 3 || out.Placement != "" || out.Nodes != 3 {
		t.Fatalf("put through the daemon: %+v", out)
	}
	mine := up.blockIDs()
	if len(mine) < 41 || out.Blocks != len(mine) {
		t.Fatalf("the uploader holds %d blocks, the put says the file needs %d", len(mine), out.Blocks)
	}
	for _, w := range ws[1:] {
		held := map[blocks.ID]bool{}
		for _, id := range w.blockIDs() {
			held[id] = true
		}
		for _, id := range mine {
			if !held[id] {
				t.Fatalf("%s lacks block %s of the file", w.repo, id)
			}
		}
	}
}
