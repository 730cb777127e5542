//go:build linux

package main

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// flatBlock is the block size of the ipfs-cat-like baseline: Kubo's default
// chunk (size-262144).
const flatBlock = 256 << 10

// BenchmarkLocalGet times a local `blockmix get -o -` into /dev/null (a
// subprocess, from opening the store to the whole-file hash) against two
// baselines in the same run:
//
//   - cold: `cat FILE > /dev/null` with FILE out of the page cache, against
//     a get with the repo's files out of the page cache (fsync and
//     FADV_DONTNEED: dropping the whole page cache needs
//     /proc/sys/vm/drop_caches, which is not writable here);
//   - warm: an `ipfs cat`-like read of the same file, against a get run
//     right after another get (this machine drops idle page cache after
//     about 30 s, so each warm read follows its warming one at once). The
//     baseline is what Kubo does on a local cat with its default settings,
//     and a bit less: the file in 256 KiB blocks, one file per block in a
//     sharded directory as its flatfs keeps them, each read with
//     os.ReadFile, up to 8 ahead, and written out in order, nothing
//     hashed; in this process, so it pays no start-up and no DAG nodes.
//
// Metrics: the four throughputs and the two ratios the issue sets as goals:
// get_cold/cat_cold ≥ 0.6 and get_warm/ipfs_like_warm ≥ 1.
func BenchmarkLocalGet(b *testing.B) {
	in, size := benchInput(b)
	root := benchRoot(b)
	w := newWorldIn(b, root)
	rc := w.okLine("--no-progress", "put", in)
	flat := makeFlatStore(b, in, filepath.Join(root, "flatfs"))
	devNull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		b.Fatal(err)
	}
	defer devNull.Close()
	get := func() time.Duration {
		b.Helper()
		r := w.runWith(runOpts{stdout: devNull}, "--no-progress", "get", "-o", "-", rc)
		if r.code != 0 { // get checks the whole-file hash: 0 means the bytes were right
			b.Fatalf("%v", r)
		}
		return r.dur
	}
	flatRead := func() time.Duration {
		b.Helper()
		start := time.Now()
		n, err := flatCat(flat, devNull)
		if err != nil || n != size {
			b.Fatalf("ipfs-cat-like read: %d bytes, %v; want %d", n, err, size)
		}
		return time.Since(start)
	}
	b.SetBytes(size)
	var catCold, getCold, flatWarm, getWarm time.Duration
	b.ResetTimer()
	b.StopTimer()
	for range b.N {
		evict(b, in)
		evictTree(b, w.repo)
		syncAll()
		d, _ := shell(b, `cat -- "$1" > /dev/null`, in)
		catCold += d

		evict(b, in)
		evictTree(b, w.repo)
		syncAll()
		b.StartTimer()
		getCold += get()
		b.StopTimer()

		flatRead()
		flatWarm += flatRead()

		get()
		b.StartTimer()
		getWarm += get()
		b.StopTimer()
	}
	n := int64(b.N)
	b.ReportMetric(mbps(size*n, getCold), "get_cold_MB/s")
	b.ReportMetric(mbps(size*n, catCold), "cat_cold_MB/s")
	b.ReportMetric(catCold.Seconds()/getCold.Seconds(), "get_cold/cat_cold")
	b.ReportMetric(mbps(size*n, getWarm), "get_warm_MB/s")
	b.ReportMetric(mbps(size*n, flatWarm), "ipfs_like_warm_MB/s")
	b.ReportMetric(flatWarm.Seconds()/getWarm.Seconds(), "get_warm/ipfs_like_warm")
}

// makeFlatStore cuts the file at path into flatBlock pieces, stores each
// as dir/XX/<sha256>.data (XX: two digits of the name, as flatfs shards)
// and returns their paths in file order.
func makeFlatStore(b *testing.B, path, dir string) []string {
	b.Helper()
	f, err := os.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	var paths []string
	buf := make([]byte, flatBlock)
	for {
		n, err := io.ReadFull(f, buf)
		if n > 0 {
			sum := sha256.Sum256(buf[:n])
			name := hex.EncodeToString(sum[:])
			p := filepath.Join(dir, name[len(name)-3:len(name)-1], name+".data")
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				b.Fatal(err)
			}
			if err := os.WriteFile(p, buf[:n], 0o644); err != nil {
				b.Fatal(err)
			}
			paths = append(paths, p)
		}
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			break
		}
		if err != nil {
			b.Fatal(err)
		}
	}
	syncAll()
	return paths
}

// flatCat writes the blocks at paths to out in order, reading up to 8
// ahead, and returns the bytes written.
func flatCat(paths []string, out io.Writer) (int64, error) {
	type read struct {
		data []byte
		err  error
	}
	ahead := make(chan chan read, 8)
	go func() {
		defer close(ahead)
		for _, p := range paths {
			ch := make(chan read, 1)
			ahead <- ch
			go func() {
				data, err := os.ReadFile(p)
				ch <- read{data, err}
			}()
		}
	}()
	var n int64
	var first error
	for ch := range ahead {
		r := <-ch
		if first != nil {
			continue // drain, so that the reader ends
		}
		if r.err != nil {
			first = r.err
			continue
		}
		k, err := out.Write(r.data)
		n += int64(k)
		first = err
	}
	return n, first
}
