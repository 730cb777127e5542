//go:build linux

package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/blockmix/blockmix/webui/apiv1"
)

// putCost is what one put cost: its wall time, the CPU (user+sys) of the
// processes that did the work, and the peak RSS of the one that mixed.
type putCost struct {
	dur    time.Duration
	cpu    time.Duration
	peakKB int64
}

// offlinePut puts in into a fresh repo under root with no daemon: the
// CLI process mixes, so its rusage and peak RSS are the put's.
func offlinePut(b *testing.B, root, name, in string) putCost {
	b.Helper()
	w := newWorldIn(b, root)
	w.repo = filepath.Join(root, name)
	rssFile := filepath.Join(root, name+".rss")
	r := w.runWith(runOpts{env: []string{"BLOCKMIX_PEAK_RSS_FILE=" + rssFile}}, "--no-progress", "put", in)
	if r.code != 0 {
		b.Fatalf("%v", r)
	}
	ru := rusage(r.state)
	cpu := time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	c := putCost{dur: r.dur, cpu: cpu, peakKB: peakRSS(b, rssFile)}
	if err := os.RemoveAll(w.repo); err != nil {
		b.Fatal(err)
	}
	return c
}

// daemonPut starts a network of nodes daemons with R = 3 under root and
// puts in through the first: the put's time, the CPU of the uploading
// daemon and of the CLI that streamed the file to it, and the daemon's
// peak RSS (VmHWM: since it started, so the put's peak unless idling
// cost more). It fails unless every block got its three copies.
func daemonPut(b *testing.B, root string, nodes int, in string) putCost {
	b.Helper()
	ws, ps := benchNetworkStarted(b, root, nodes)
	pid := ps[0].cmd.Process.Pid
	t0 := cpuTicks(b, pid)
	r := ws[0].run("--no-progress", "put", "--json", in)
	t1 := cpuTicks(b, pid)
	if r.code != 0 {
		b.Fatalf("%v", r)
	}
	var put apiv1.PutInfo
	if err := json.Unmarshal(r.stdout, &put); err != nil || put.Short == nil || *put.Short != 0 || put.Replicas != 3 {
		b.Fatalf("put through the daemon: not placed in full: %s", r.stdout)
	}
	ru := rusage(r.state)
	cpu := time.Duration(ru.Utime.Nano()+ru.Stime.Nano()) + time.Duration(t1-t0)*10*time.Millisecond
	c := putCost{dur: r.dur, cpu: cpu, peakKB: procStatus(b, pid, "VmHWM")}
	for _, p := range ps {
		_ = p.cmd.Process.Kill()
		<-p.done
	}
	if err := os.RemoveAll(root); err != nil {
		b.Fatal(err)
	}
	return c
}

// BenchmarkDaemonPut: the BENCH_SIZE file (1 GiB) put offline and through
// a daemon in a five-node network with R = 3, in the same run.
// Metrics: both speeds and their ratio (net/offline_speed, goal ≥ 0.5),
// the uploading daemon's peak RSS (goal ≤ 96 MiB), the offline put's peak
// and the CPU of each put. With PUT_BENCH_4X=1 the same runs again with a
// file four times as big (disk: about 6× BENCH_SIZE at once), and the
// ratios big/small of time and of CPU (goal ≤ 4.4) and the big daemon
// put's peak RSS are reported too.
func BenchmarkDaemonPut(b *testing.B) {
	in, size := benchInput(b)
	root := benchRoot(b)
	sizes := []int64{size}
	inputs := []string{in}
	if v, _ := strconv.ParseBool(os.Getenv("PUT_BENCH_4X")); v {
		big := filepath.Join(root, "input-4x.bin")
		if _, err := createRandomFile(big, 0x4b16, 4*size); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { os.Remove(big) })
		sizes, inputs = append(sizes, 4*size), append(inputs, big)
	}
	off := make([]putCost, len(sizes))
	net := make([]putCost, len(sizes))
	for i := range b.N {
		for k, path := range inputs {
			evict(b, path)
			syncAll()
			o := offlinePut(b, root, fmt.Sprintf("offline-%d-%d", i, k), path)
			evict(b, path)
			syncAll()
			d := daemonPut(b, filepath.Join(root, fmt.Sprintf("net-%d-%d", i, k)), 5, path)
			b.Logf("%d MiB: offline %v (CPU %v, peak %d MiB); daemon %v (CPU %v, peak %d MiB)",
				sizes[k]>>20, o.dur.Round(time.Millisecond), o.cpu.Round(time.Millisecond), o.peakKB>>10,
				d.dur.Round(time.Millisecond), d.cpu.Round(time.Millisecond), d.peakKB>>10)
			off[k].dur += o.dur
			off[k].cpu += o.cpu
			off[k].peakKB = max(off[k].peakKB, o.peakKB)
			net[k].dur += d.dur
			net[k].cpu += d.cpu
			net[k].peakKB = max(net[k].peakKB, d.peakKB)
		}
	}
	n := int64(b.N)
	b.ReportMetric(mbps(size*n, off[0].dur), "offline_put_MB/s")
	b.ReportMetric(mbps(size*n, net[0].dur), "net_put_MB/s")
	b.ReportMetric(off[0].dur.Seconds()/net[0].dur.Seconds(), "net/offline_speed")
	b.ReportMetric(float64(net[0].peakKB)/1024, "daemon_put_peak_RSS_MiB")
	b.ReportMetric(float64(off[0].peakKB)/1024, "offline_put_peak_RSS_MiB")
	b.ReportMetric(off[0].cpu.Seconds()/float64(n), "offline_put_CPU_s")
	b.ReportMetric(net[0].cpu.Seconds()/float64(n), "daemon_put_CPU_s")
	if len(sizes) > 1 {
		b.ReportMetric(float64(net[1].peakKB)/1024, "4x_daemon_put_peak_RSS_MiB")
		b.ReportMetric(float64(off[1].peakKB)/1024, "4x_offline_put_peak_RSS_MiB")
		b.ReportMetric(off[1].dur.Seconds()/off[0].dur.Seconds(), "offline_4x/1x_time")
		b.ReportMetric(off[1].cpu.Seconds()/off[0].cpu.Seconds(), "offline_4x/1x_CPU")
		b.ReportMetric(net[1].dur.Seconds()/net[0].dur.Seconds(), "daemon_4x/1x_time")
		b.ReportMetric(net[1].cpu.Seconds()/net[0].cpu.Seconds(), "daemon_4x/1x_CPU")
	}
}
