//go:build linux

package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/blockmix/blockmix/webui/apiv1"
)

// erasureRun is what one network measured for one redundancy.
type erasureRun struct {
	stored      float64 // bytes the other nodes hold per file byte
	getUp       float64 // seconds for a fresh node to get the file, all nodes up
	getDown     float64 // the same with 2 of the 6 donors gone
	repairBytes float64 // bytes sent (libp2p, all live nodes) per byte the dead held, until healthy
	repairS     float64
}

// measureRedundancy puts a size-byte file with red on a network of an
// uploader and six donors, then: what the donors hold; a get by a fresh
// node; the uploader leaves and two donors are killed; a get by another
// fresh node; the repair (for r:N the holders' repair rounds, every
// second; for rs, `check --repair` on a fresh node that holds nothing,
// since only a node with the recipe knows the stripes) until a check
// says healthy, with the bytes every live node sent meanwhile. Fresh
// nodes run with --cache 0: they keep nothing they fetch, so no copy of
// theirs counts as a holder.
func measureRedundancy(b *testing.B, in string, size int64, red string) erasureRun {
	b.Helper()
	args := daemonArgs("--replicas", "3", "--repair-interval", "1s", "--repair-rate", "0", "--scrub-interval", "0")
	up, pu, donors, procs := uploaderAndDonors(b, 6, args)
	var info apiv1.PutInfo
	if err := json.Unmarshal(up.ok("--no-progress", "put", "--json", "--redundancy", red, in), &info); err != nil {
		b.Fatal(err)
	}
	if info.Short == nil || *info.Short != 0 {
		b.Fatalf("put %s: %+v", red, info)
	}
	var run erasureRun
	held := func(ws []*world) int64 {
		var n int64
		for _, w := range ws {
			n += w.stat().Bytes
		}
		return n
	}
	run.stored = float64(held(donors)) / float64(size)
	b.Logf("%s: the donors hold %.3f bytes per file byte, %.3f per byte the uploader holds", red, run.stored, float64(held(donors))/float64(up.stat().Bytes))
	fresh := func() *world {
		w := newWorld(b)
		boot, _ := daemonID(donors[2])
		startDaemonWith(b, w, append(args, "--bootstrap", boot.Addrs[0], "--cache", "0")...)
		waitRoutingTable(b, w, 3)
		return w
	}
	timeGet := func() float64 {
		w := fresh()
		start := time.Now()
		w.getSum(info.Recipe)
		return time.Since(start).Seconds()
	}
	run.getUp = timeGet()

	if err := pu.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		b.Fatal(err)
	}
	<-pu.done
	lost := held(donors[:2])
	for _, p := range procs[:2] {
		if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
			b.Fatal(err)
		}
		<-p.done
	}
	run.getDown = timeGet()

	repairer := fresh()
	live := append([]*world{repairer}, donors[2:]...)
	sent := func() int64 {
		var n int64
		for _, w := range live {
			n += statusOfB(b, w).BytesOut
		}
		return n
	}
	out0 := sent()
	start := time.Now()
	for deadline := time.Now().Add(10 * time.Minute); ; {
		more := []string{"--json", info.Recipe}
		if red != "r:3" {
			more = append(more, "--repair")
		}
		r := repairer.run(append([]string{"check"}, more...)...)
		var h apiv1.HealthInfo
		if err := json.Unmarshal(r.stdout, &h); err != nil {
			b.Fatalf("check: %v\n%v", err, r)
		}
		// Healthy: every block back to 3 copies (r:3), every stripe on
		// six nodes again (rs:4+2: only four donors and the fresh node
		// are left, so five: every stripe can lose one more).
		if h.State == apiv1.HealthHealthy || h.Parity != "" && h.StripesShort == 0 && h.MinCopies >= 3 {
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("%s: not repaired after 10 minutes: %s", red, h.Verdict)
		}
		time.Sleep(300 * time.Millisecond)
	}
	run.repairS = time.Since(start).Seconds()
	time.Sleep(1100 * time.Millisecond) // libp2p's counters catch up
	run.repairBytes = float64(sent()-out0) / float64(lost)
	b.Logf("%s: the two dead donors held %d bytes; the live nodes sent %d bytes while it healed", red, lost, sent()-out0)
	return run
}

// BenchmarkErasure compares rs:4+2 with r:3 (the baseline, same run, same
// file, each on its own network of an uploader and six donors): stored
// bytes per file byte; a fresh node's get with all nodes up and with two
// donors gone; repair traffic per byte the dead nodes held.
// ERASURE_SIZE sets the file (default 32 MiB).
func BenchmarkErasure(b *testing.B) {
	size := int64(32 << 20)
	if s := os.Getenv("ERASURE_SIZE"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n <= 0 {
			b.Fatalf("ERASURE_SIZE=%q", s)
		}
		size = n
	}
	in := filepath.Join(b.TempDir(), "erasure-input.bin")
	if _, err := createRandomFile(in, 0xe5a5, size); err != nil {
		b.Fatal(err)
	}
	var rs, r3 erasureRun
	for range b.N {
		a := measureRedundancy(b, in, size, "rs:4+2")
		c := measureRedundancy(b, in, size, "r:3")
		rs.stored += a.stored
		rs.getUp += a.getUp
		rs.getDown += a.getDown
		rs.repairBytes += a.repairBytes
		rs.repairS += a.repairS
		r3.stored += c.stored
		r3.getUp += c.getUp
		r3.getDown += c.getDown
		r3.repairBytes += c.repairBytes
		r3.repairS += c.repairS
	}
	n := float64(b.N)
	b.ReportMetric(rs.stored/n, "rs_stored/byte")
	b.ReportMetric(r3.stored/n, "r3_stored/byte")
	b.ReportMetric(rs.getUp/n, "rs_get_up_s")
	b.ReportMetric(rs.getDown/n, "rs_get_2gone_s")
	b.ReportMetric(rs.getDown/rs.getUp, "rs_get_2gone/up")
	b.ReportMetric(r3.getUp/n, "r3_get_up_s")
	b.ReportMetric(r3.getDown/n, "r3_get_2gone_s")
	b.ReportMetric(rs.repairBytes/n, "rs_repair_bytes/lost_byte")
	b.ReportMetric(r3.repairBytes/n, "r3_repair_bytes/lost_byte")
	b.ReportMetric(rs.repairS/n, "rs_repair_s")
	b.ReportMetric(r3.repairS/n, "r3_repair_s")
	b.Logf("rs:4+2 against r:3, %d MiB: stored %.3f against %.3f bytes per file byte (%.2f×); get with 2 of 6 donors gone %.2f s against %.2f s all up (%.2f×; r:3 %.2f s against %.2f s); repair %.2f against %.2f bytes sent per byte lost (%.2f×)",
		size>>20, rs.stored/n, r3.stored/n, rs.stored/r3.stored, rs.getDown/n, rs.getUp/n, rs.getDown/rs.getUp, r3.getDown/n, r3.getUp/n,
		rs.repairBytes/n, r3.repairBytes/n, rs.repairBytes/r3.repairBytes)
}
