//go:build linux

package main

// Benchmarks of the README's goals, each against a baseline measured in the
// same run (this machine's page cache and buffered writes are too jumpy to
// compare with a fixed time). They run the real binary, once per b.N, and
// are meant for -benchtime 1x (make bench). BENCH_SIZE sets the big file in
// bytes (default 1 GiB); BENCH_DIR where it and the repos go (default the
// temporary directory, unless that is in memory, then /var/tmp).

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

const defaultBenchSize = 1 << 30

// benchSize is BENCH_SIZE, or 1 GiB.
func benchSize(b *testing.B) int64 {
	s := os.Getenv("BENCH_SIZE")
	if s == "" {
		return defaultBenchSize
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 {
		b.Fatalf("BENCH_SIZE=%q: want a positive number of bytes", s)
	}
	return n
}

// onDisk reports whether dir is on a real file system, not in memory.
func onDisk(dir string) bool {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return false
	}
	return st.Type != unix.TMPFS_MAGIC && st.Type != unix.RAMFS_MAGIC
}

// benchShared is made once per test binary and removed by TestMain.
var benchShared struct {
	once   sync.Once
	err    error
	root   string // the directory every benchmark works under
	input  string // BENCH_SIZE random bytes
	size   int64
	sum    [32]byte
	create time.Duration
}

// benchInput returns the shared random input file, creating it (and fsyncing
// it, so that later timings do not flush it) on first use.
func benchInput(b *testing.B) (path string, size int64) {
	b.Helper()
	size = benchSize(b)
	s := &benchShared
	s.once.Do(func() {
		base := os.Getenv("BENCH_DIR")
		if base == "" {
			base = os.TempDir()
			if !onDisk(base) && onDisk("/var/tmp") {
				base = "/var/tmp"
			}
		}
		if !onDisk(base) {
			s.err = fmt.Errorf("%s is in memory; set BENCH_DIR to a directory on disk", base)
			return
		}
		if s.root, s.err = os.MkdirTemp(base, "blockmix-bench-"); s.err != nil {
			return
		}
		afterRun = append(afterRun, func() { os.RemoveAll(s.root) })
		s.input, s.size = filepath.Join(s.root, "input.bin"), size
		start := time.Now()
		s.sum, s.err = createRandomFile(s.input, 0xb10c, size)
		s.create = time.Since(start)
	})
	if s.err != nil {
		b.Fatalf("bench input: %v", s.err)
	}
	if s.size != size {
		b.Fatalf("BENCH_SIZE changed")
	}
	return s.input, s.size
}

// createRandomFile writes n seeded random bytes to path and fsyncs them.
func createRandomFile(path string, seed uint64, n int64) ([32]byte, error) {
	f, err := os.Create(path)
	if err != nil {
		return [32]byte{}, err
	}
	defer f.Close()
	h := sha256.New()
	// A pseudo-random stream per 64 MiB keeps it quick and reproducible.
	const chunk = 64 << 20
	for off := int64(0); off < n; off += chunk {
		data := randBytes(seed^uint64(off), int(min(chunk, n-off)))
		h.Write(data)
		if _, err := f.Write(data); err != nil {
			return [32]byte{}, err
		}
	}
	if err := f.Sync(); err != nil {
		return [32]byte{}, err
	}
	return [32]byte(h.Sum(nil)), f.Close()
}

// benchRoot returns a fresh directory for one benchmark, next to the input.
func benchRoot(b *testing.B) string {
	b.Helper()
	benchInput(b)
	dir, err := os.MkdirTemp(benchShared.root, strings.ReplaceAll(b.Name(), "/", "_")+"-")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// evict writes path's dirty pages and drops it from the page cache (no
// root needed: fsync, then FADV_DONTNEED).
func evict(b *testing.B, path string) {
	b.Helper()
	f, err := os.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		b.Fatalf("fsync %s: %v", path, err)
	}
	if err := unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED); err != nil {
		b.Fatalf("fadvise %s: %v", path, err)
	}
}

// evictTree evicts every regular file under dir.
func evictTree(b *testing.B, dir string) {
	b.Helper()
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			evict(b, p)
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
}

// resident returns the fraction of path's pages in the page cache.
func resident(b *testing.B, path string) float64 {
	b.Helper()
	f, err := os.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || fi.Size() == 0 {
		return 0
	}
	m, err := unix.Mmap(int(f.Fd()), 0, int(fi.Size()), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		b.Fatalf("mmap %s: %v", path, err)
	}
	defer unix.Munmap(m)
	page := os.Getpagesize()
	vec := make([]byte, (len(m)+page-1)/page)
	if _, _, errno := unix.Syscall(unix.SYS_MINCORE, uintptr(unsafe.Pointer(&m[0])), uintptr(len(m)), uintptr(unsafe.Pointer(&vec[0]))); errno != 0 {
		b.Fatalf("mincore %s: %v", path, errno)
	}
	in := 0
	for _, v := range vec {
		in += int(v & 1)
	}
	return float64(in) / float64(len(vec))
}

// syncAll flushes every file system, so that no earlier write is flushed
// inside a timed step.
func syncAll() { unix.Sync() }

// shell runs a baseline command line with $1, $2… and returns its time.
func shell(b *testing.B, script string, args ...string) (time.Duration, *os.ProcessState) {
	b.Helper()
	c := exec.Command("sh", append([]string{"-c", script, "sh"}, args...)...)
	var stderr bytes.Buffer
	c.Stderr = &stderr
	start := time.Now()
	if err := c.Run(); err != nil {
		b.Fatalf("sh -c %q: %v\n%s", script, err, stderr.Bytes())
	}
	return time.Since(start), c.ProcessState
}

func rusage(ps *os.ProcessState) *syscall.Rusage {
	ru, _ := ps.SysUsage().(*syscall.Rusage)
	if ru == nil {
		return new(syscall.Rusage)
	}
	return ru
}

// peakRSS reads the peak RSS (KiB) a blockmix process wrote to path (see
// reportPeakRSS in main.go; rusage's Maxrss is polluted by this process's).
func peakRSS(b *testing.B, path string) int64 {
	b.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		b.Fatalf("peak RSS: %v", err)
	}
	var kib int64
	if _, err := fmt.Sscan(string(data), &kib); err != nil || kib <= 0 {
		b.Fatalf("peak RSS: %q: %v", data, err)
	}
	return kib
}

func mbps(n int64, d time.Duration) float64 { return float64(n) / 1e6 / d.Seconds() }

// BenchmarkPutVsCp times `blockmix put FILE` into a fresh repo (it syncs
// before it returns) against `cp FILE DEST && sync` and against
// `dd bs=128K conv=fsync`. Both read the input
// cold. Metrics: put and cp+sync throughput, their time ratio, the put's
// peak RSS, and the bytes the put wrote to disk per byte the store holds
// (the cp's bytes written per input byte, for scale).
func BenchmarkPutVsCp(b *testing.B) {
	in, size := benchInput(b)
	root := benchRoot(b)
	w := newWorldIn(b, root)
	b.SetBytes(size)
	var putDur, cpDur, ddDur time.Duration
	var maxRSS, putWritten, cpWritten, stored, fileBytes int64
	b.ResetTimer()
	b.StopTimer()
	for i := range b.N {
		dest := filepath.Join(root, "cp-dest.bin")
		evict(b, in)
		syncAll()
		d, ps := shell(b, `cp -- "$1" "$2" && sync`, in, dest)
		cpDur += d
		cpWritten += rusage(ps).Oublock * 512
		if err := os.Remove(dest); err != nil {
			b.Fatal(err)
		}
		// A second baseline that, like put, moves the bytes through user
		// space in 128 KiB pieces (cp copies inside the kernel).
		evict(b, in)
		syncAll()
		d, _ = shell(b, `dd if="$1" of="$2" bs=128K conv=fsync status=none`, in, dest)
		ddDur += d
		if err := os.Remove(dest); err != nil {
			b.Fatal(err)
		}

		w.repo = filepath.Join(root, fmt.Sprintf("repo-%d", i))
		evict(b, in)
		syncAll()
		b.StartTimer()
		rssFile := filepath.Join(root, "put.rss")
		r := w.runWith(runOpts{env: []string{"BLOCKMIX_PEAK_RSS_FILE=" + rssFile}}, "--no-progress", "put", in)
		b.StopTimer()
		if r.code != 0 {
			b.Fatalf("%v", r)
		}
		putDur += r.dur
		ru := rusage(r.state)
		maxRSS = max(maxRSS, peakRSS(b, rssFile))
		putWritten += ru.Oublock * 512
		s := w.stat()
		stored += s.Bytes
		fileBytes += s.FileBytes
		if err := os.RemoveAll(w.repo); err != nil {
			b.Fatal(err)
		}
	}
	n := int64(b.N)
	b.ReportMetric(mbps(size*n, putDur), "put_MB/s")
	b.ReportMetric(mbps(size*n, cpDur), "cp_sync_MB/s")
	b.ReportMetric(putDur.Seconds()/cpDur.Seconds(), "put/cp_time")
	b.ReportMetric(putDur.Seconds()/ddDur.Seconds(), "put/dd_time")
	b.ReportMetric(float64(maxRSS)/1024, "put_peak_RSS_MiB")
	b.ReportMetric(float64(putWritten)/float64(stored), "put_written/stored")
	b.ReportMetric(float64(cpWritten)/float64(size*n), "cp_written/size")
	b.ReportMetric(float64(stored)/float64(fileBytes), "stored/size")
}

// BenchmarkGetVsCat times `blockmix get -o OUT` (which fsyncs OUT before it
// renames it) against `cat FILE > /dev/null`, both from a cold page cache.
// get -o - into /dev/null is reported too, the like-for-like comparison
// with cat.
func BenchmarkGetVsCat(b *testing.B) {
	in, size := benchInput(b)
	root := benchRoot(b)
	w := newWorldIn(b, root)
	rc := w.okLine("--no-progress", "put", in)
	devNull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		b.Fatal(err)
	}
	defer devNull.Close()
	out := filepath.Join(root, "get-out.bin")
	b.SetBytes(size)
	var getDur, catDur, stdoutDur time.Duration
	var maxRSS int64
	var inRes, repoRes float64
	b.ResetTimer()
	b.StopTimer()
	for i := range b.N {
		evict(b, in)
		evictTree(b, w.repo)
		syncAll()
		d, _ := shell(b, `cat -- "$1" > /dev/null`, in)
		catDur += d

		evict(b, in)
		evictTree(b, w.repo)
		syncAll()
		inRes = max(inRes, resident(b, in))
		segs, _ := filepath.Glob(filepath.Join(w.repo, "segments", "*.seg"))
		for _, s := range segs {
			repoRes = max(repoRes, resident(b, s))
		}
		b.StartTimer()
		rssFile := filepath.Join(root, "get.rss")
		r := w.runWith(runOpts{env: []string{"BLOCKMIX_PEAK_RSS_FILE=" + rssFile}}, "--no-progress", "get", "-o", out, rc)
		b.StopTimer()
		if r.code != 0 {
			b.Fatalf("%v", r)
		}
		getDur += r.dur
		maxRSS = max(maxRSS, peakRSS(b, rssFile))
		if i == 0 && fileSum(b, out) != benchShared.sum {
			b.Fatalf("get gave back other bytes")
		}
		if err := os.Remove(out); err != nil {
			b.Fatal(err)
		}

		evictTree(b, w.repo)
		syncAll()
		r = w.runWith(runOpts{stdout: devNull}, "--no-progress", "get", "-o", "-", rc)
		if r.code != 0 {
			b.Fatalf("%v", r)
		}
		stdoutDur += r.dur
	}
	if inRes > 0.05 || repoRes > 0.05 {
		b.Logf("eviction left %.0f%% of the input and %.0f%% of a segment in the page cache", 100*inRes, 100*repoRes)
	}
	n := int64(b.N)
	b.ReportMetric(mbps(size*n, getDur), "get_MB/s")
	b.ReportMetric(mbps(size*n, catDur), "cat_MB/s")
	b.ReportMetric(catDur.Seconds()/getDur.Seconds(), "get/cat_throughput")
	b.ReportMetric(mbps(size*n, stdoutDur), "get_stdout_MB/s")
	b.ReportMetric(float64(maxRSS)/1024, "get_peak_RSS_MiB")
}

// BenchmarkSharing20x2MiB puts 20 distinct 2 MiB files into a fresh repo,
// one put each, and reports what the README promises: the store holds
// about 1.03× their size, the last file adds about 1.002× its size, and
// most blocks serve two or more files.
func BenchmarkSharing20x2MiB(b *testing.B) {
	const files, fileSize = 20, 2 << 20
	root := benchRoot(b)
	w := newWorldIn(b, root)
	b.SetBytes(files * fileSize)
	var storedRatio, lastNew, shared float64
	b.ResetTimer()
	b.StopTimer()
	for i := range b.N {
		w.repo = filepath.Join(root, fmt.Sprintf("repo-%d", i))
		var paths []string
		for k := range files {
			name := fmt.Sprintf("share-%d-%02d.bin", i, k)
			paths = append(paths, w.file(name, randBytes(uint64(1000*i+k+1), fileSize)))
		}
		var last jsonPut
		b.StartTimer()
		for _, p := range paths {
			outs := jsonLines(b, w.ok("--no-progress", "put", "--json", p))
			last = outs[0]
		}
		b.StopTimer()
		s := w.stat()
		if s.Files != files || s.FileBytes != files*fileSize {
			b.Fatalf("stat after %d puts: %+v", files, s)
		}
		storedRatio += float64(s.Bytes) / float64(files*fileSize)
		lastNew += float64(last.NewBytes) / fileSize
		shared += float64(s.SharedBlocks) / float64(s.Blocks)
		for _, p := range paths {
			os.Remove(p)
		}
		os.RemoveAll(w.repo)
	}
	n := float64(b.N)
	b.ReportMetric(storedRatio/n, "stored/size")
	b.ReportMetric(lastNew/n, "last_new/size")
	b.ReportMetric(shared/n, "shared/blocks")
}

// BenchmarkSmallFile puts a 1 KiB file into a warm repo and reports the
// bytes it added (README: about 2 KiB, its block and its descriptor) and
// the recipe's length before the name (invariant: ≤ 256 characters).
func BenchmarkSmallFile(b *testing.B) {
	root := benchRoot(b)
	w := newWorldIn(b, root)
	// Warm the repo: small files of the 1 KiB class, and a bigger one.
	var warm []string
	for k := range 30 {
		warm = append(warm, w.file(fmt.Sprintf("warm-%02d.bin", k), randBytes(uint64(5000+k), 1<<10)))
	}
	warm = append(warm, w.file("warm-big.bin", randBytes(5100, 2<<20)))
	w.ok(append([]string{"--no-progress", "put"}, warm...)...)
	var newBytes, chars int64
	b.ResetTimer()
	b.StopTimer()
	for i := range b.N {
		name := fmt.Sprintf("small-%d.bin", i)
		p := w.file(name, randBytes(uint64(6000+i), 1<<10))
		b.StartTimer()
		outs := jsonLines(b, w.ok("--no-progress", "put", "--json", p))
		b.StopTimer()
		newBytes += outs[0].NewBytes
		chars += int64(strings.LastIndexByte(outs[0].Recipe, '/'))
		if !strings.HasSuffix(outs[0].Recipe, "/"+name) {
			b.Fatalf("recipe %q does not end in the name", outs[0].Recipe)
		}
	}
	n := float64(b.N)
	b.ReportMetric(float64(newBytes)/n, "new_bytes")
	b.ReportMetric(float64(chars)/n, "recipe_chars_before_name")
}
