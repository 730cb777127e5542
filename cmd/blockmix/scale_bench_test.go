//go:build linux

package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/blockmix/blockmix/blocks"
)

// scaleBlocks is SCALE_BLOCKS, or a million: the size of the big stores
// of the scale benchmarks.
func scaleBlocks(b *testing.B) int {
	s := os.Getenv("SCALE_BLOCKS")
	if s == "" {
		return 1 << 20
	}
	n, err := strconv.Atoi(s)
	if err != nil || n <= 0 {
		b.Fatalf("SCALE_BLOCKS=%q: want a positive number", s)
	}
	return n
}

// scaleRoot is a directory on disk for a scale benchmark, removed after it.
func scaleRoot(b *testing.B) string {
	b.Helper()
	base := os.Getenv("BENCH_DIR")
	if base == "" {
		base = os.TempDir()
		if !onDisk(base) && onDisk("/var/tmp") {
			base = "/var/tmp"
		}
	}
	dir, err := os.MkdirTemp(base, "scale-")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// fillStore makes a store of n 1 KiB blocks in repo cheaply, in process:
// own blocks in files of 1000 (so that they are the mixer's candidates)
// in the share own of them, blocks pushed by peers (held for the network)
// in the share held, the rest cached (fetched, used by no file).
func fillStore(b *testing.B, repo string, n int, own, held float64) {
	b.Helper()
	ctx := context.Background()
	st, err := blocks.OpenDisk(repo, blocks.DiskOptions{})
	if err != nil {
		b.Fatal(err)
	}
	src := rand.NewChaCha8([32]byte{byte(n)})
	rng := rand.New(src)
	data := make([]byte, 1024)
	var file []blocks.ID
	for i := range n {
		_, _ = src.Read(data)
		blk, err := blocks.NewBlock(data)
		if err != nil {
			b.Fatal(err)
		}
		x := float64(i%1000) / 1000
		tag := rng.Uint64() &^ blocks.ForeignTag
		switch {
		case x < own:
			file = append(file, blk.ID())
		case x < own+held:
			tag = blocks.PushTag(fmt.Sprintf("peer-%d", i%7), rng.Uint64())
		default:
			tag |= blocks.ForeignTag
		}
		if err := st.PutBlock(ctx, blk, tag); err != nil {
			b.Fatal(err)
		}
		if len(file) == 1000 || i == n-1 && len(file) > 0 {
			key := fmt.Sprintf("file-%d", i)
			if err := st.AddFile(ctx, blocks.FileRecord{Key: key, Name: key, Size: int64(len(file)) << 10, Blocks: file}); err != nil {
				b.Fatal(err)
			}
			file = file[:0]
		}
		if i%65536 == 65535 {
			if err := st.Sync(); err != nil {
				b.Fatal(err)
			}
		}
	}
	if err := st.Close(); err != nil {
		b.Fatal(err)
	}
}

// medianRun runs blockmix args in w times times and returns the median
// wall time.
func medianRun(b *testing.B, w *world, times int, args ...string) time.Duration {
	b.Helper()
	var ds []time.Duration
	for range times {
		start := time.Now()
		if r := w.run(args...); r.code != 0 {
			b.Fatalf("%v", r)
		}
		ds = append(ds, time.Since(start))
	}
	slices.Sort(ds)
	return ds[len(ds)/2]
}

// BenchmarkScalePutStat: a 1 KiB put and a stat on a store of
// SCALE_BLOCKS (default a million) 1 KiB blocks, against the same on a
// store of one file, in the same run. The goal: at most 2× (no walk of
// the whole index on either path).
func BenchmarkScalePutStat(b *testing.B) {
	root := scaleRoot(b)
	n := scaleBlocks(b)
	small := newWorldIn(b, filepath.Join(root, "small"))
	big := newWorldIn(b, filepath.Join(root, "big"))
	start := time.Now()
	fillStore(b, big.repo, n, 0.5, 0.3)
	b.Logf("filled a store of %d blocks in %v", n, time.Since(start).Round(time.Second))
	input := filepath.Join(root, "small.bin")
	if _, err := createRandomFile(input, 1, 1024); err != nil {
		b.Fatal(err)
	}
	small.ok("--no-progress", "put", input)
	var putSmall, putBig, statSmall, statBig time.Duration
	for range b.N {
		putSmall += medianRun(b, small, 5, "--no-progress", "put", input)
		putBig += medianRun(b, big, 5, "--no-progress", "put", input)
		statSmall += medianRun(b, small, 5, "stat")
		statBig += medianRun(b, big, 5, "stat")
	}
	nn := float64(b.N)
	b.ReportMetric(putSmall.Seconds()*1e3/nn, "put_1file_ms")
	b.ReportMetric(putBig.Seconds()*1e3/nn, "put_big_ms")
	b.ReportMetric(putBig.Seconds()/putSmall.Seconds(), "put_ratio")
	b.ReportMetric(statSmall.Seconds()*1e3/nn, "stat_1file_ms")
	b.ReportMetric(statBig.Seconds()*1e3/nn, "stat_big_ms")
	b.ReportMetric(statBig.Seconds()/statSmall.Seconds(), "stat_ratio")
	b.ReportMetric(float64(n), "blocks")
}

// BenchmarkScaleDonorRounds: a low-power donor on a store of SCALE_BLOCKS
// 1 KiB blocks (most held for the network, some cached, some its own
// files') runs a repair round, a scrub round and an eviction (gc) at once;
// reports its peak RSS through them (goal ≤ 48 MiB), its RSS at rest
// before, and its peak through start-up (VmHWM when the API answered).
func BenchmarkScaleDonorRounds(b *testing.B) {
	root := scaleRoot(b)
	n := scaleBlocks(b)
	for i := range b.N {
		w := newWorldIn(b, filepath.Join(root, fmt.Sprint(i)))
		start := time.Now()
		fillStore(b, w.repo, n, 0.1, 0.7)
		b.Logf("filled a store of %d blocks in %v", n, time.Since(start).Round(time.Second))
		// Rounds over a million blocks outlast cmdTimeout.
		p := w.startWith(runOpts{life: time.Hour}, append([]string{"daemon"}, daemonArgs("--donor", "--quota", "1TB", "--profile", "lowpower",
			"--repair-interval", "3s", "--repair-rate", "1GiB", "--scrub-interval", "3s", "--scrub-rate", "1GiB")...)...)
		waitFor(b, "the daemon's API", time.Minute, func() bool { _, ok := daemonID(w); return ok || p.exited() })
		pid := p.cmd.Process.Pid
		rest := procStatus(b, pid, "VmRSS")
		// The peak through the rounds, not through start-up: VmHWM
		// starts again from the current RSS (proc(5), clear_refs).
		startPeak := procStatus(b, pid, "VmHWM")
		if err := os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0); err != nil {
			b.Fatalf("reset the daemon's peak RSS: %v", err)
		}
		t0 := time.Now()
		gc := w.run("gc", "--json")
		if gc.code != 0 {
			b.Fatalf("%v", gc)
		}
		for _, line := range []string{"repair round", "scrub round"} {
			deadline := time.Now().Add(30 * time.Minute)
			for !strings.Contains(p.stderrNow(), line) {
				if p.exited() || time.Now().After(deadline) {
					b.Fatalf("no %q in the daemon's log (exited: %v):\n%s", line, p.exited(), p.stderrNow())
				}
				time.Sleep(time.Second)
			}
		}
		took := time.Since(t0)
		peak := procStatus(b, pid, "VmHWM")
		b.Logf("rounds done in %v; gc: %s", took.Round(time.Second), strings.TrimSpace(string(gc.stdout)))
		b.ReportMetric(float64(rest)/1024, "rest_RSS_MiB")
		b.ReportMetric(float64(startPeak)/1024, "start_peak_RSS_MiB")
		b.ReportMetric(float64(peak)/1024, "rounds_peak_RSS_MiB")
		b.ReportMetric(float64(n), "blocks")
		p.kill(b)
	}
}
