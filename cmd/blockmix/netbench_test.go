//go:build linux

package main

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/blockmix/blockmix/blocks"
	"github.com/blockmix/blockmix/webui/apiv1"
)

// Benchmarks of the network goals with real daemon processes on
// 127.0.0.1 (see also `go test -bench . ./net` for the fetch against raw
// libp2p streams). NET_BENCH_SIZE sets the file (default 256 MiB).

func netBenchSize(b *testing.B) int64 { return envBytes(b, "NET_BENCH_SIZE", 256<<20) }

// envBytes reads a size in bytes from the environment variable name, or
// returns def when it is not set.
func envBytes(b *testing.B, name string, def int64) int64 {
	if s := os.Getenv(name); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n <= 0 {
			b.Fatalf("%s=%q: want a positive number of bytes", name, s)
		}
		return n
	}
	return def
}

// benchNetwork starts n daemons on 127.0.0.1 under root, joined through the
// first, and waits until every routing table holds the others.
func benchNetwork(b *testing.B, root string, n int) []*world {
	b.Helper()
	var ws []*world
	var boot []string
	for i := range n {
		w := newWorldIn(b, root)
		w.repo = filepath.Join(root, fmt.Sprintf("node-%d", i))
		_, info := startDaemon(b, w, boot)
		if i == 0 {
			boot = []string{info.Addrs[0]}
		}
		ws = append(ws, w)
	}
	deadline := time.Now().Add(60 * time.Second)
	for _, w := range ws {
		for {
			info, ok := daemonID(w)
			if ok && info.RoutingTable >= n-1 {
				break
			}
			if time.Now().After(deadline) {
				b.Fatalf("%s: routing table %d of %d", w.repo, info.RoutingTable, n-1)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return ws
}

// BenchmarkNetPut: `blockmix put` of a NET_BENCH_SIZE file through a daemon
// in a five-node network with R = 3 (it returns once every block has three
// holders), next to the same put into an offline repo in the same run.
func BenchmarkNetPut(b *testing.B) {
	root := benchRoot(b)
	size := netBenchSize(b)
	in := filepath.Join(root, "net-input.bin")
	if _, err := createRandomFile(in, 0x5e7, size); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(size)
	var netDur, offDur time.Duration
	b.ResetTimer()
	b.StopTimer()
	for i := range b.N {
		off := newWorldIn(b, root)
		off.repo = filepath.Join(root, fmt.Sprintf("offline-%d", i))
		r := off.run("--no-progress", "put", in)
		if r.code != 0 {
			b.Fatalf("%v", r)
		}
		offDur += r.dur

		ws := benchNetwork(b, filepath.Join(root, fmt.Sprintf("net-%d", i)), 5)
		b.StartTimer()
		r = ws[1].run("--no-progress", "put", "--json", in)
		b.StopTimer()
		if r.code != 0 {
			b.Fatalf("%v", r)
		}
		var put apiv1.PutInfo
		if err := json.Unmarshal(r.stdout, &put); err != nil || put.Short == nil || *put.Short != 0 {
			b.Fatalf("put through the daemon: %s", r.stdout)
		}
		netDur += r.dur
	}
	n := int64(b.N)
	b.ReportMetric(mbps(size*n, netDur), "net_put_MB/s")
	b.ReportMetric(netDur.Seconds()/float64(n), "net_put_s")
	b.ReportMetric(mbps(size*n, offDur), "offline_put_MB/s")
	b.ReportMetric(netDur.Seconds()/offDur.Seconds(), "net/offline_time")
}

// BenchmarkDaemonIdle: a donor at rest. It runs with --donor, a quota
// that fits, --replicas 2 and a repair and a scrub every 2 s; a second
// daemon (--replicas 1, bootstrapped to it) puts the BENCH_SIZE (1 GiB)
// file, so the donor holds a copy of every block. Once a repair round
// that started after the put has finished (it asked the uploader for
// every block and found none short) and a scrub interval has passed,
// the donor is left to its rounds for 30 s: idle_RSS_MiB is its resident
// memory (VmRSS) at the end, idle_CPU_% the CPU it used in that time
// (repair and scrub included: at the default --scrub-rate a big store's
// scrub runs the whole time), repo_GiB the block bytes it holds.
func BenchmarkDaemonIdle(b *testing.B) {
	in, size := benchInput(b)
	root := benchRoot(b)
	const interval = 2 * time.Second
	var rss, cpu, held float64
	for i := range b.N {
		donor := newWorldIn(b, root)
		donor.repo = filepath.Join(root, fmt.Sprintf("idle-%d", i))
		quota := strconv.FormatInt(4*size+(256<<20), 10)
		p, info := startDaemonWith(b, donor, daemonArgs("--donor", "--quota", quota, "--replicas", "2",
			"--repair-interval", interval.String(), "--scrub-interval", interval.String())...)
		up := newWorldIn(b, root)
		up.repo = filepath.Join(root, fmt.Sprintf("idle-up-%d", i))
		startDaemonWith(b, up, daemonArgs("--bootstrap", info.Addrs[0], "--replicas", "1")...)
		waitRoutingTable(b, up, 1)
		r := up.run("--no-progress", "put", "--json", in)
		var put apiv1.PutInfo
		if r.code != 0 || json.Unmarshal(r.stdout, &put) != nil || put.Short == nil || *put.Short != 0 {
			b.Fatalf("put through the second daemon: not placed in full:\n%v", r)
		}
		putDone := time.Now()

		// At rest: a repair round over the blocks now held has run, and a
		// scrub interval has passed since they came.
		var st apiv1.StatusInfo
		deadline := time.Now().Add(2*time.Minute + 3*interval)
		for {
			decodeStrict(b, donor.ok("status", "--json"), &st)
			if st.Repair.Started.After(putDone) && !st.Repair.Finished.IsZero() && time.Since(putDone) >= interval {
				break
			}
			if time.Now().After(deadline) {
				b.Fatalf("no repair round finished on the donor within %v of the put: %+v", time.Since(putDone).Round(time.Second), st.Repair)
			}
			time.Sleep(100 * time.Millisecond)
		}
		if st.Store.Blocks == 0 || st.Repair.Checked != st.Store.Blocks || st.Repair.Short != 0 {
			b.Fatalf("the donor is not at rest: it holds %d blocks; its repair round: %+v", st.Store.Blocks, st.Repair)
		}
		b.Logf("donor holds %d blocks (%d bytes); last repair round checked %d in %v",
			st.Store.Blocks, st.Store.Bytes, st.Repair.Checked, st.Repair.Finished.Sub(st.Repair.Started).Round(time.Millisecond))

		pid := p.cmd.Process.Pid
		t0 := cpuTicks(b, pid)
		const idle = 30 * time.Second
		time.Sleep(idle) // the measured span
		cpu += float64(cpuTicks(b, pid)-t0) / 100 / idle.Seconds()
		rss += float64(procStatus(b, pid, "VmRSS")) / 1024
		held += float64(st.Store.Bytes) / (1 << 30)
	}
	n := float64(b.N)
	b.ReportMetric(rss/n, "idle_RSS_MiB")
	b.ReportMetric(100*cpu/n, "idle_CPU_%")
	b.ReportMetric(held/n, "repo_GiB")
}

// procStatus reads a kB field of /proc/PID/status.
func procStatus(b testing.TB, pid int, field string) int64 {
	b.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				b.Fatal(err)
			}
			return kb
		}
	}
	b.Fatalf("no %s in /proc/%d/status", field, pid)
	return 0
}

// cpuTicks is the process's user+system time in clock ticks (1/100 s).
func cpuTicks(b *testing.B, pid int) int64 {
	b.Helper()
	ut, st := cpuTicksSplit(b, pid)
	return ut + st
}

// cpuTicksSplit is cpuTicks as user and system time.
func cpuTicksSplit(b *testing.B, pid int) (user, sys int64) {
	b.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Fatal(err)
	}
	// Fields after the command name, which is in parentheses.
	f := strings.Fields(string(data[strings.LastIndexByte(string(data), ')')+2:]))
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		b.Fatalf("bad /proc/%d/stat", pid)
	}
	return ut, st
}

// BenchmarkPageGet: a NET_BENCH_SIZE file held by another node, fetched
// and saved through the web page in Chromium (Get, then Save) on one fresh
// node, and with `blockmix get -o` on another fresh node, in the same run.
func BenchmarkPageGet(b *testing.B) {
	root := benchRoot(b)
	size := netBenchSize(b)
	in := filepath.Join(root, "page-input.bin")
	sum, err := createRandomFile(in, 0x9a9e, size)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(size)
	var pageDur, cliDur time.Duration
	for i := range b.N {
		net := filepath.Join(root, fmt.Sprintf("page-%d", i))
		ws := make([]*world, 4)
		for k := range ws {
			ws[k] = newWorldIn(b, root)
			ws[k].repo = filepath.Join(net, fmt.Sprintf("node-%d", k))
		}
		_, ida := startDaemon(b, ws[0], nil)
		startDaemon(b, ws[1], []string{ida.Addrs[0]})
		waitRoutingTable(b, ws[0], 1)
		var put apiv1.PutInfo
		r := ws[0].run("--no-progress", "put", "--json", in)
		if r.code != 0 || json.Unmarshal(r.stdout, &put) != nil {
			b.Fatalf("%v", r)
		}
		startDaemon(b, ws[2], []string{ida.Addrs[0]})
		startDaemon(b, ws[3], []string{ida.Addrs[0]})
		waitRoutingTable(b, ws[2], 2)
		waitRoutingTable(b, ws[3], 2)

		out := filepath.Join(net, "cli.out")
		r = ws[3].run("--no-progress", "get", "-o", out, put.Recipe)
		if r.code != 0 {
			b.Fatalf("%v", r)
		}
		cliDur += r.dur
		if fileSum(b, out) != sum {
			b.Fatal("blockmix get gave another file")
		}

		ctx := newBrowser(b)
		do(b, ctx, "open the page", chromedp.Navigate(ws[2].apiBase(b)+"/"), chromedp.Click(chromedp.ID("tab-get")),
			chromedp.SendKeys(chromedp.ID("recipe-input"), put.Recipe))
		poll[bool](b, ctx, "the recipe's name", `document.querySelector('#recipe-info').textContent.includes('page-input.bin')`, 30*time.Second)
		start := time.Now()
		do(b, ctx, "get", chromedp.Click(chromedp.ID("get-button")))
		poll[bool](b, ctx, "the Save link", visible("#save-link"), 10*time.Minute)
		got := download(b, ctx, "#save-link", net)
		pageDur += time.Since(start)
		if sha256.Sum256(got) != sum {
			b.Fatal("the page saved another file")
		}
	}
	n := int64(b.N)
	b.ReportMetric(mbps(size*n, pageDur), "page_MB/s")
	b.ReportMetric(mbps(size*n, cliDur), "cli_get_MB/s")
	b.ReportMetric(cliDur.Seconds()/pageDur.Seconds(), "page/cli_speed")
}

// BenchmarkDonor: a donor in the lowpower profile holding DONOR_SIZE bytes
// of blocks (default 2 GiB), with one peer: its RSS and CPU after 60 s
// idle; then four nodes fetching four different 64 MiB files from it at
// once: the donor's peak RSS (VmHWM) and the total throughput.
func BenchmarkDonor(b *testing.B) {
	root := benchRoot(b)
	size := int64(2 << 30)
	if s := os.Getenv("DONOR_SIZE"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n <= 0 {
			b.Fatalf("DONOR_SIZE=%q", s)
		}
		size = n
	}
	const files, fileSize = 4, 64 << 20
	var rss, cpu, peak, mbs float64
	for i := range b.N {
		net := filepath.Join(root, fmt.Sprintf("donor-%d", i))
		donor := newWorldIn(b, root)
		donor.repo = filepath.Join(net, "donor")
		bulk := filepath.Join(net, "bulk.bin")
		if err := os.MkdirAll(net, 0o755); err != nil {
			b.Fatal(err)
		}
		if _, err := createRandomFile(bulk, 0xd0, size); err != nil {
			b.Fatal(err)
		}
		if r := donor.run("--no-progress", "put", bulk); r.code != 0 {
			b.Fatalf("%v", r)
		}
		os.Remove(bulk)
		var recipes []string
		for f := range files {
			path := filepath.Join(net, fmt.Sprintf("f%d.bin", f))
			if _, err := createRandomFile(path, uint64(0xf0+f), fileSize); err != nil {
				b.Fatal(err)
			}
			r := donor.run("--no-progress", "put", path)
			if r.code != 0 {
				b.Fatalf("%v", r)
			}
			recipes = append(recipes, strings.TrimSpace(string(r.stdout)))
		}
		p, info := startDaemonWith(b, donor, daemonArgs("--donor", "--quota", "1TB", "--profile", "lowpower")...)
		peer := newWorldIn(b, root)
		peer.repo = filepath.Join(net, "peer")
		startDaemon(b, peer, []string{info.Addrs[0]})
		time.Sleep(5 * time.Second)
		pid := p.cmd.Process.Pid
		t0 := cpuTicks(b, pid)
		const idle = 60 * time.Second
		time.Sleep(idle)
		cpu += float64(cpuTicks(b, pid)-t0) / 100 / idle.Seconds()
		rss += float64(procStatus(b, pid, "VmRSS")) / 1024

		clients := make([]*world, files)
		for k := range clients {
			clients[k] = newWorldIn(b, root)
			clients[k].repo = filepath.Join(net, fmt.Sprintf("client-%d", k))
			startDaemon(b, clients[k], []string{info.Addrs[0]})
		}
		start := time.Now()
		errs := make(chan error, files)
		for k, w := range clients {
			go func() {
				r := w.run("--no-progress", "get", "-o", filepath.Join(net, fmt.Sprintf("out-%d", k)), recipes[k])
				if r.code != 0 {
					errs <- fmt.Errorf("%v", r)
					return
				}
				errs <- nil
			}()
		}
		for range clients {
			if err := <-errs; err != nil {
				b.Fatal(err)
			}
		}
		mbs += float64(files*fileSize) / 1e6 / time.Since(start).Seconds()
		peak += float64(procStatus(b, pid, "VmHWM")) / 1024
	}
	n := float64(b.N)
	b.ReportMetric(rss/n, "idle_RSS_MiB")
	b.ReportMetric(100*cpu/n, "idle_CPU_%")
	b.ReportMetric(peak/n, "serving_peak_RSS_MiB")
	b.ReportMetric(mbs/n, "serving_MB/s")
	b.ReportMetric(float64(size)/(1<<30), "held_GiB")
}

// BenchmarkHeal: eight daemons (R = 3, repair every second, unpaced)
// hold a HEAL_SIZE file (default 1 GiB) put by a ninth, which then leaves;
// two of the eight are killed with SIGKILL. Reports the time until every
// block is back to 3 copies on the six survivors, the blocks that were
// short, and the network bytes the survivors sent meanwhile per byte the
// killed nodes held.
func BenchmarkHeal(b *testing.B) {
	root := benchRoot(b)
	size := int64(1 << 30)
	if s := os.Getenv("HEAL_SIZE"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n <= 0 {
			b.Fatalf("HEAL_SIZE=%q", s)
		}
		size = n
	}
	in := filepath.Join(root, "heal-input.bin")
	if _, err := createRandomFile(in, 0x4ea1, size); err != nil {
		b.Fatal(err)
	}
	var healS, traffic, shortAll float64
	for i := range b.N {
		net := filepath.Join(root, fmt.Sprintf("heal-%d", i))
		args := daemonArgs("--replicas", "3", "--repair-interval", "1s", "--repair-rate", "0", "--scrub-interval", "0")
		var ws []*world
		var ps []*started
		boot := ""
		for k := range 9 {
			w := newWorldIn(b, root)
			w.repo = filepath.Join(net, fmt.Sprintf("node-%d", k))
			a := args
			if boot != "" {
				a = append(append([]string(nil), args...), "--bootstrap", boot)
			}
			p, info := startDaemonWith(b, w, a...)
			if boot == "" {
				boot = info.Addrs[0]
			}
			ws, ps = append(ws, w), append(ps, p)
		}
		waitRoutingTable(b, ws[8], 8)
		up, survivors, doomed := ws[8], ws[:6], ws[6:8]
		if r := up.run("--no-progress", "put", in); r.code != 0 {
			b.Fatalf("%v", r)
		}
		ids := up.blockIDs()
		if err := ps[8].cmd.Process.Signal(syscall.SIGTERM); err != nil {
			b.Fatal(err)
		}
		<-ps[8].done
		var lost int64
		for _, w := range doomed {
			lost += w.stat().Bytes
		}
		out0 := int64(0)
		for _, w := range survivors {
			out0 += statusOfB(b, w).BytesOut
		}
		start := time.Now()
		for _, p := range ps[6:8] {
			if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
				b.Fatal(err)
			}
			<-p.done
		}
		first := -1
		for deadline := time.Now().Add(20 * time.Minute); ; {
			held := map[blocks.ID]int{}
			for _, w := range survivors {
				for _, id := range w.blockIDs() {
					held[id]++
				}
			}
			short := 0
			for _, id := range ids {
				if held[id] < 3 {
					short++
				}
			}
			if first < 0 {
				first = short
			}
			if short == 0 {
				break
			}
			if time.Now().After(deadline) {
				b.Fatalf("%d blocks below 3 copies after 20 minutes", short)
			}
			time.Sleep(time.Second)
		}
		healS += time.Since(start).Seconds()
		shortAll += float64(first)
		time.Sleep(1100 * time.Millisecond) // libp2p's counters catch up
		out1 := int64(0)
		for _, w := range survivors {
			out1 += statusOfB(b, w).BytesOut
		}
		traffic += float64(out1-out0) / float64(lost)
	}
	n := float64(b.N)
	b.ReportMetric(healS/n, "heal_s")
	b.ReportMetric(shortAll/n, "blocks_short")
	b.ReportMetric(traffic/n, "repair_bytes/lost_byte")
	b.ReportMetric(float64(size)/(1<<30), "stored_GiB")
}

func statusOfB(b *testing.B, w *world) apiv1.StatusInfo {
	b.Helper()
	var s apiv1.StatusInfo
	if err := json.Unmarshal(w.ok("status", "--json"), &s); err != nil {
		b.Fatal(err)
	}
	return s
}
