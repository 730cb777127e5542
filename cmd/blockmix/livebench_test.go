package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/blockmix/blockmix/webui/apiv1"
)

// resolveSeq asks w's daemon (its API, no process started) for link's
// latest version's sequence number; 0 when none is found.
func resolveSeq(w *world, link string) uint64 {
	api, err := os.ReadFile(filepath.Join(w.repo, "api"))
	if err != nil {
		return 0
	}
	body, _ := json.Marshal(apiv1.LiveRequest{Link: link})
	resp, err := http.Post(strings.TrimSpace(string(api))+"/api/v1/live/resolve", "application/json", bytes.NewReader(body))
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	var v apiv1.LiveVersion
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&v) != nil {
		return 0
	}
	return v.Seq
}

// BenchmarkLive measures issue 17's two latencies with two daemons on
// 127.0.0.1 at the default settings (--live-poll 5s, a 0.7 s quiet
// period): from a file's change on A until the live link resolves to the
// new version on B (goal: within 5 s), and from then until B's synced
// folder has the file (goal: within 10 s more). The baseline, in the same
// run: the same change shared by hand, `put` on A then `get` on B.
func BenchmarkLive(b *testing.B) {
	a, bw, _, _, _ := liveNet(b, "5s")
	src, dst := a.path("src"), bw.path("dst")
	data := string(randBytes(17, 1<<20))
	writeFile(b, filepath.Join(src, "f.bin"), data)
	var watched apiv1.LiveFolder
	if err := json.Unmarshal(a.ok("watch", "--json", src), &watched); err != nil {
		b.Fatal(err)
	}
	bw.ok("sync", watched.Link, dst)
	waitUntil(b, "the first version on B", hasContent(filepath.Join(dst, "f.bin"), data))
	var toLink, toSync, put, get time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		seq := liveFolders(b, a, "watch")[0].Seq
		data = string(randBytes(uint64(100+i), 1<<20))
		start := time.Now()
		writeFile(b, filepath.Join(src, "f.bin"), data)
		waitUntil(b, "the link resolves to the new version on B", func() (bool, string) { return resolveSeq(bw, watched.Link) > seq, "" })
		linked := time.Now()
		waitUntil(b, "B has the new file", hasContent(filepath.Join(dst, "f.bin"), data))
		toLink += linked.Sub(start)
		toSync += time.Since(linked)

		// The baseline: the same bytes by hand.
		by := randBytes(uint64(200+i), 1<<20)
		t0 := time.Now()
		rc := a.okLine("put", a.file("by-hand.bin", by))
		put += time.Since(t0)
		t0 = time.Now()
		if got := bw.getFile(rc); !bytes.Equal(got, by) {
			b.Fatal("the baseline get gave other bytes")
		}
		get += time.Since(t0)
	}
	n := float64(b.N)
	b.ReportMetric(toLink.Seconds()/n, "change_to_link_s")
	b.ReportMetric(toSync.Seconds()/n, "link_to_synced_s")
	b.ReportMetric(put.Seconds()/n, "baseline_put_s")
	b.ReportMetric(get.Seconds()/n, "baseline_get_s")
}
