package main

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// scrape returns the daemon's GET /metrics.
func scrape(t *testing.T, w *world) string {
	t.Helper()
	resp, err := http.Get(apiFileURL(t, w) + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %s, %v", resp.Status, err)
	}
	return string(b)
}

// TestDaemonMetricsAndLog is what an operator sees of a real daemon: its
// /metrics in Prometheus's text format, with blockmix's and libp2p's
// metrics, and its log on standard error at the default level, where a
// refused push and a repair round are one line each.
func TestDaemonMetricsAndLog(t *testing.T) {
	if testing.Short() {
		t.Skip("starts two daemons")
	}
	t.Parallel()
	donor, up := newWorld(t), newWorld(t)
	pd, idd := startDaemonWith(t, donor, daemonArgs("--donor", "--quota", "400KiB", "--repair-interval", "200ms")...)
	pu, _ := startDaemonWith(t, up, daemonArgs("--replicas", "1", "--repair-interval", "200ms", "--bootstrap", idd.Addrs[0])...)
	waitRoutingTable(t, up, 1)
	before := scrape(t, up)
	for _, want := range []string{"blockmix_put_files_total 0", "blockmix_peers 1", "go_goroutines", "libp2p_"} {
		if !strings.Contains(before, want) {
			t.Errorf("/metrics before the put lacks %q", want)
		}
	}
	up.file("f.bin", randBytes(77, 2<<20))
	up.ok("--no-progress", "put", "f.bin")
	if m := scrape(t, up); !strings.Contains(m, "blockmix_put_files_total 1") {
		t.Errorf("/metrics after one put:\n%s", grepLines(m, "blockmix_put"))
	}
	if m := scrape(t, donor); !strings.Contains(m, `blockmix_pushes_refused_total{reason="quota"}`) {
		t.Errorf("the donor's /metrics after pushes past its quota:\n%s", grepLines(m, "blockmix_pushes"))
	}
	waitFor(t, "a repair round", 30e9, func() bool {
		return !strings.Contains(scrape(t, up), "blockmix_repair_rounds_total 0")
	})
	stopDaemon(t, pd)
	stopDaemon(t, pu)
	if log := pd.stderr.String(); !strings.Contains(log, "level=WARN msg=\"push refused\" reason=quota") {
		t.Errorf("the donor's log does not tell of the refused push in one line:\n%s", log)
	}
	if log := pu.stderr.String(); !strings.Contains(log, "msg=\"repair round\" checked=") {
		t.Errorf("the uploader's log does not tell of a repair round in one line:\n%s", log)
	}
}

// grepLines returns the lines of s that contain sub.
func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
