//go:build linux

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/blockmix/blockmix/webui/apiv1"
)

// longTimeout bounds the processes of the big benchmarks (cmdTimeout is
// for tests).
const longTimeout = 30 * time.Minute

// runLong runs blockmix args to the end, within longTimeout.
func runLong(b *testing.B, w *world, o runOpts, args ...string) result {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), longTimeout)
	defer cancel()
	c := w.command(ctx, o, args...)
	var stdout, stderr bytes.Buffer
	c.Stdout, c.Stderr = &stdout, &stderr
	start := time.Now()
	err := c.Run()
	r := result{args: args, stdout: stdout.Bytes(), stderr: stderr.Bytes(), state: c.ProcessState, dur: time.Since(start)}
	if ctx.Err() != nil || c.ProcessState == nil {
		b.Fatalf("blockmix %v: %v (timeout %v)\n%v", args, err, longTimeout, r)
	}
	r.code = c.ProcessState.ExitCode()
	return r
}

// startLong starts `blockmix daemon args...` on w's repo, alive for up to
// longTimeout, and waits for its API.
func startLong(b *testing.B, w *world, args ...string) (*started, apiv1.IDInfo) {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), longTimeout)
	c := w.command(ctx, runOpts{}, append([]string{"daemon"}, args...)...)
	p := &started{cmd: c, stdout: new(bytes.Buffer), stderr: new(bytes.Buffer), done: make(chan struct{})}
	c.Stdout, c.Stderr = p.stdout, lockedWriter{&p.errMu, p.stderr}
	if err := c.Start(); err != nil {
		cancel()
		b.Fatal(err)
	}
	go func() {
		_ = c.Wait()
		cancel()
		close(p.done)
	}()
	b.Cleanup(func() {
		_ = c.Process.Kill()
		<-p.done
	})
	deadline := time.Now().Add(60 * time.Second)
	for {
		if info, ok := daemonID(w); ok {
			return p, info
		}
		if p.exited() || time.Now().After(deadline) {
			b.Fatalf("daemon on %s did not come up:\n%s", w.repo, p.stderrNow())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// longNetwork starts n daemons with args under root, joined through the
// first, and waits until every routing table holds the others. With
// PUT_BENCH_PEER_DIR=DIR the repos of all but the first are under DIR
// instead: another file system (a tmpfs, say) stands in for the disks of
// their own that the nodes of a real network have. With
// PUT_BENCH_PROFILE=DIR each daemon writes a CPU profile to DIR/node-I.prof
// when it stops (see stopLong).
func longNetwork(b *testing.B, root string, n int, args ...string) ([]*world, []*started) {
	b.Helper()
	peerRoot := root
	if d := os.Getenv("PUT_BENCH_PEER_DIR"); d != "" {
		var err error
		if peerRoot, err = os.MkdirTemp(d, "blockmix-peers-"); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { os.RemoveAll(peerRoot) })
	}
	var ws []*world
	var ps []*started
	var boot []string
	prof := os.Getenv("PUT_BENCH_PROFILE")
	for i := range n {
		w := newWorldIn(b, root)
		w.repo = filepath.Join(root, fmt.Sprintf("node-%d", i))
		if i > 0 {
			w.repo = filepath.Join(peerRoot, fmt.Sprintf("node-%d", i))
		}
		a := append(daemonArgs(args...), boot...)
		if prof != "" {
			a = append(a, "--cpuprofile", filepath.Join(prof, fmt.Sprintf("node-%d.prof", i)))
		}
		p, info := startLong(b, w, a...)
		if i == 0 {
			boot = []string{"--bootstrap", info.Addrs[0]}
		}
		ws, ps = append(ws, w), append(ps, p)
	}
	for _, w := range ws {
		waitRoutingTable(b, w, n-1)
	}
	return ws, ps
}

// putCost is what one put cost: its wall time, the CPU (user+sys) of the
// processes that did the work, and the peak RSS of the one that mixed.
// For a put through a daemon, netCPU is the CPU of every daemon of the
// network and the CLI (the nodes that took copies too).
type putCost struct {
	dur    time.Duration
	cpu    time.Duration
	user   time.Duration // the user part of cpu: the kernel's share (page cache, writeback) left out
	netCPU time.Duration
	peakKB int64
}

// offlinePut puts in into a fresh repo under root with no daemon: the
// CLI process mixes, so its rusage and peak RSS are the put's.
func offlinePut(b *testing.B, root, name, in string) putCost {
	b.Helper()
	w := newWorldIn(b, root)
	w.repo = filepath.Join(root, name)
	rssFile := filepath.Join(root, name+".rss")
	args := []string{"--no-progress", "put", in}
	if prof := os.Getenv("PUT_BENCH_PROFILE"); prof != "" {
		args = append(args, "--cpuprofile", filepath.Join(prof, name+".prof"))
	}
	r := runLong(b, w, runOpts{env: []string{"BLOCKMIX_PEAK_RSS_FILE=" + rssFile}}, args...)
	if r.code != 0 {
		b.Fatalf("%v", r)
	}
	ru := rusage(r.state)
	cpu := time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	c := putCost{dur: r.dur, cpu: cpu, user: time.Duration(ru.Utime.Nano()), peakKB: peakRSS(b, rssFile)}
	if err := os.RemoveAll(w.repo); err != nil {
		b.Fatal(err)
	}
	return c
}

// daemonPut starts a network of nodes daemons with R = 3 under root (each
// may take 64 GiB of pushes) and puts in through the first: the put's
// time, the CPU of the uploading daemon and of the CLI that streamed the
// file to it, and the daemon's peak RSS (VmHWM: since it started, so the
// put's peak unless idling cost more). It fails unless every block got
// its three copies.
func daemonPut(b *testing.B, root string, nodes int, in string) putCost {
	b.Helper()
	ws, ps := longNetwork(b, root, nodes, "--share", "64GiB")
	pid := ps[0].cmd.Process.Pid
	all := func() (t int64) {
		for _, p := range ps {
			t += cpuTicks(b, p.cmd.Process.Pid)
		}
		return t
	}
	u0, s0 := cpuTicksSplit(b, pid)
	t0, a0 := u0+s0, all()
	args := []string{"--no-progress", "put", "--json", in}
	if prof := os.Getenv("PUT_BENCH_PROFILE"); prof != "" {
		args = append(args, "--cpuprofile", filepath.Join(prof, "cli.prof"))
	}
	r := runLong(b, ws[0], runOpts{}, args...)
	u1, s1 := cpuTicksSplit(b, pid)
	t1, a1 := u1+s1, all()
	if r.code != 0 {
		b.Fatalf("%v", r)
	}
	var put apiv1.PutInfo
	if err := json.Unmarshal(r.stdout, &put); err != nil || put.Short == nil || *put.Short != 0 || put.Replicas != 3 {
		b.Fatalf("put through the daemon: not placed in full: %s", r.stdout)
	}
	ru := rusage(r.state)
	cli := time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	c := putCost{dur: r.dur, cpu: cli + time.Duration(t1-t0)*10*time.Millisecond,
		user:   time.Duration(ru.Utime.Nano()) + time.Duration(u1-u0)*10*time.Millisecond,
		netCPU: cli + time.Duration(a1-a0)*10*time.Millisecond, peakKB: procStatus(b, pid, "VmHWM")}
	stopLong(ps)
	for _, w := range append(ws, &world{repo: root}) {
		if err := os.RemoveAll(w.repo); err != nil {
			b.Fatal(err)
		}
	}
	return c
}

// stopLong stops the daemons ps: with SIGTERM when they write CPU
// profiles (PUT_BENCH_PROFILE: a daemon writes its profile once it has
// stopped), else with SIGKILL.
func stopLong(ps []*started) {
	sig := os.Signal(syscall.SIGKILL)
	if os.Getenv("PUT_BENCH_PROFILE") != "" {
		sig = syscall.SIGTERM
	}
	for _, p := range ps {
		_ = p.cmd.Process.Signal(sig)
	}
	for _, p := range ps {
		<-p.done
	}
}

// BenchmarkDaemonPut: the BENCH_SIZE file (1 GiB) put offline and through
// a daemon in a five-node network with R = 3, in the same run.
// Metrics: both speeds and their ratio (net/offline_speed, goal ≥ 0.5),
// the uploading daemon's peak RSS (goal ≤ 96 MiB), the offline put's peak
// and the CPU of each put. With PUT_BENCH_PROFILE=DIR every process of
// the puts writes a CPU profile there (the offline put's, the daemons'
// node-I.prof, the CLI's cli.prof; each run overwrites the last). With PUT_BENCH_4X=1 the same runs again with a
// file four times as big (disk: about 6× BENCH_SIZE at once), and the
// ratios big/small of time and of CPU (goal ≤ 4.4; and of user CPU alone,
// without the kernel's cost of the page cache) and the big daemon
// put's peak RSS are reported too, with the baseline's ratio: `cp FILE
// DEST && sync` of both files, each timed just before its offline put
// (cp_4x/1x_time; on this machine the kernel's cost of writing 4 GiB of
// page cache is not 4× that of 1 GiB).
//
// The offline puts of every size run first, then the daemon puts: a
// daemon put leaves its networks' gigabytes to be deleted and written
// back, which would land inside the next offline put.
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
	cp := make([]time.Duration, len(sizes))
	for i := range b.N {
		for k, path := range inputs {
			dest := filepath.Join(root, "cp-copy")
			evict(b, path)
			syncAll()
			d, _ := shell(b, `cp -- "$1" "$2" && sync`, path, dest)
			cp[k] += d
			if err := os.Remove(dest); err != nil {
				b.Fatal(err)
			}
			evict(b, path)
			syncAll()
			o := offlinePut(b, root, fmt.Sprintf("offline-%d-%d", i, k), path)
			b.Logf("%d MiB offline: %v (CPU %v, peak %d MiB); cp+sync %v", sizes[k]>>20,
				o.dur.Round(time.Millisecond), o.cpu.Round(time.Millisecond), o.peakKB>>10, d.Round(time.Millisecond))
			off[k].dur += o.dur
			off[k].cpu += o.cpu
			off[k].user += o.user
			off[k].peakKB = max(off[k].peakKB, o.peakKB)
		}
		for k, path := range inputs {
			evict(b, path)
			syncAll()
			d := daemonPut(b, filepath.Join(root, fmt.Sprintf("net-%d-%d", i, k)), 5, path)
			b.Logf("%d MiB through a daemon: %v (CPU %v, of the whole network %v, peak %d MiB)", sizes[k]>>20,
				d.dur.Round(time.Millisecond), d.cpu.Round(time.Millisecond), d.netCPU.Round(time.Millisecond), d.peakKB>>10)
			net[k].dur += d.dur
			net[k].cpu += d.cpu
			net[k].user += d.user
			net[k].netCPU += d.netCPU
			net[k].peakKB = max(net[k].peakKB, d.peakKB)
		}
	}
	n := int64(b.N)
	b.ReportMetric(mbps(size*n, off[0].dur), "offline_put_MB/s")
	b.ReportMetric(mbps(size*n, net[0].dur), "net_put_MB/s")
	b.ReportMetric(off[0].dur.Seconds()/net[0].dur.Seconds(), "net/offline_speed")
	// All the nodes share this machine's cores: the network's CPU over
	// the offline put's bounds the speed ratio the network can reach here.
	b.ReportMetric(net[0].netCPU.Seconds()/off[0].cpu.Seconds(), "network_CPU/offline_CPU")
	b.ReportMetric(float64(net[0].peakKB)/1024, "daemon_put_peak_RSS_MiB")
	b.ReportMetric(float64(off[0].peakKB)/1024, "offline_put_peak_RSS_MiB")
	b.ReportMetric(off[0].cpu.Seconds()/float64(n), "offline_put_CPU_s")
	b.ReportMetric(net[0].cpu.Seconds()/float64(n), "daemon_put_CPU_s")
	if len(sizes) > 1 {
		b.ReportMetric(float64(net[1].peakKB)/1024, "4x_daemon_put_peak_RSS_MiB")
		b.ReportMetric(float64(off[1].peakKB)/1024, "4x_offline_put_peak_RSS_MiB")
		b.ReportMetric(off[1].dur.Seconds()/off[0].dur.Seconds(), "offline_4x/1x_time")
		b.ReportMetric(off[1].cpu.Seconds()/off[0].cpu.Seconds(), "offline_4x/1x_CPU")
		b.ReportMetric(off[1].user.Seconds()/off[0].user.Seconds(), "offline_4x/1x_user_CPU")
		b.ReportMetric(cp[1].Seconds()/cp[0].Seconds(), "cp_4x/1x_time")
		b.ReportMetric(net[1].dur.Seconds()/net[0].dur.Seconds(), "daemon_4x/1x_time")
		b.ReportMetric(net[1].cpu.Seconds()/net[0].cpu.Seconds(), "daemon_4x/1x_CPU")
		b.ReportMetric(net[1].user.Seconds()/net[0].user.Seconds(), "daemon_4x/1x_user_CPU")
	}
}

// BenchmarkLowPowerDonorIdle: a donor in the lowpower profile takes the
// BENCH_SIZE file (1 GiB) of pushes (a second daemon with --replicas 1
// puts it), and is then left alone: idle_after_pushes_RSS_MiB is its
// VmRSS a minute after the put returned (goal ≤ 40 MiB). The same donor
// is then restarted on the store it now holds and left alone for the same
// minute: idle_fresh_RSS_MiB, the idle figure to return to, and
// after_pushes/fresh their ratio. push_peak_RSS_MiB is its VmHWM through
// the pushes.
func BenchmarkLowPowerDonorIdle(b *testing.B) {
	in, size := benchInput(b)
	root := benchRoot(b)
	const wait = time.Minute
	var after, fresh, peak float64
	for i := range b.N {
		donor := newWorldIn(b, root)
		donor.repo = filepath.Join(root, fmt.Sprintf("lp-donor-%d", i))
		args := daemonArgs("--donor", "--profile", "lowpower", "--quota", strconv.FormatInt(2*size+(256<<20), 10))
		p, info := startLong(b, donor, args...)
		up := newWorldIn(b, root)
		up.repo = filepath.Join(root, fmt.Sprintf("lp-up-%d", i))
		startLong(b, up, daemonArgs("--bootstrap", info.Addrs[0], "--replicas", "1")...)
		waitRoutingTable(b, up, 1)
		r := runLong(b, up, runOpts{}, "--no-progress", "put", "--json", in)
		var put apiv1.PutInfo
		if r.code != 0 || json.Unmarshal(r.stdout, &put) != nil || put.Short == nil || *put.Short != 0 {
			b.Fatalf("put through the second daemon: not placed in full:\n%v", r)
		}
		time.Sleep(wait) // the measured span: a fixed minute, as the goal says
		pid := p.cmd.Process.Pid
		after += float64(procStatus(b, pid, "VmRSS")) / 1024
		peak += float64(procStatus(b, pid, "VmHWM")) / 1024

		if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			b.Fatal(err)
		}
		<-p.done
		p, _ = startLong(b, donor, args...)
		time.Sleep(wait)
		fresh += float64(procStatus(b, p.cmd.Process.Pid, "VmRSS")) / 1024
	}
	n := float64(b.N)
	b.ReportMetric(after/n, "idle_after_pushes_RSS_MiB")
	b.ReportMetric(fresh/n, "idle_fresh_RSS_MiB")
	b.ReportMetric(after/fresh, "after_pushes/fresh")
	b.ReportMetric(peak/n, "push_peak_RSS_MiB")
}
