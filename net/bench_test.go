package net

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/blockmix/blockmix/blocks"
	"github.com/blockmix/blockmix/mixer"
	"github.com/blockmix/blockmix/recipe"
)

// benchSize is the file size of the network benchmarks: NET_BENCH_SIZE
// bytes, default 256 MiB.
func benchSize(b *testing.B) int64 {
	if s := os.Getenv("NET_BENCH_SIZE"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n <= 0 {
			b.Fatalf("NET_BENCH_SIZE=%q", s)
		}
		return n
	}
	return 256 << 20
}

// diskNode is a node on a real disk store in a temporary directory that
// takes every push.
func diskNode(b *testing.B) (*Node, *blocks.Disk) {
	b.Helper()
	st, err := blocks.OpenDisk(b.TempDir(), blocks.DiskOptions{})
	if err != nil {
		b.Fatal(err)
	}
	n, err := NewNode(Config{}, st, NewStoreSink(st))
	if err != nil {
		st.Close()
		b.Fatal(err)
	}
	b.Cleanup(func() {
		n.Close()
		st.Close()
	})
	return n, st
}

// seededReader is size bytes of a seeded pseudo-random stream.
func seededReader(seed byte, size int64) io.Reader {
	return io.LimitReader(rand.NewChaCha8([32]byte{seed}), size)
}

// uploadTo puts files of the given sizes on a fresh uploader node, places
// every block on the holders (R = number of holders), and closes the
// uploader: the files now live only on the holders.
func uploadTo(b *testing.B, ctx context.Context, holders []*Node, sizes ...int64) []recipe.Recipe {
	b.Helper()
	up, st := diskNode(b)
	for _, h := range holders {
		connectB(b, ctx, up, h)
	}
	m, err := mixer.New(st, mixer.Options{})
	if err != nil {
		b.Fatal(err)
	}
	var out []recipe.Recipe
	for i, size := range sizes {
		res, err := recipe.Put(ctx, m, st, seededReader(byte(i+1), size), size, fmt.Sprintf("f%d", i), "", nil)
		if err != nil {
			b.Fatal(err)
		}
		// Place in slices, as the daemon would for a big file.
		for ids := putList(b, st, res); len(ids) > 0; {
			k := min(len(ids), 1024)
			var bs []blocks.Block
			for _, id := range ids[:k] {
				blk, err := blocks.GetBlock(ctx, st, id)
				if err != nil {
					b.Fatal(err)
				}
				bs = append(bs, blk)
			}
			if _, err := up.Place(ctx, bs, len(holders)); err != nil {
				b.Fatal(err)
			}
			ids = ids[k:]
		}
		out = append(out, res.Recipe)
	}
	up.Close()
	return out
}

func connectB(b *testing.B, ctx context.Context, x, y *Node) {
	b.Helper()
	if err := x.Host.Connect(ctx, y.AddrInfo()); err != nil {
		b.Fatal(err)
	}
}

// settledIn returns the node's libp2p bytes in once the meter, which
// libp2p sweeps once a second, has caught up.
func settledIn(n *Node) int64 {
	time.Sleep(1100 * time.Millisecond)
	return n.Bandwidth().TotalIn
}

// rawProtocol streams zeros: the baseline for what libp2p itself moves.
const rawProtocol = "/blockmix-bench/raw/1.0.0"

// serveRaw answers each raw stream with the number of bytes it asks for.
func serveRaw(n *Node) {
	n.Host.SetStreamHandler(rawProtocol, func(s network.Stream) {
		defer s.Close()
		var want [8]byte
		if _, err := io.ReadFull(s, want[:]); err != nil {
			_ = s.Reset()
			return
		}
		left := int64(0)
		for _, c := range want {
			left = left<<8 | int64(c)
		}
		buf := make([]byte, 128<<10)
		for left > 0 {
			k := min(left, int64(len(buf)))
			if _, err := s.Write(buf[:k]); err != nil {
				_ = s.Reset()
				return
			}
			left -= k
		}
	})
}

// rawGet reads total bytes from the peers over streams in parallel
// (per streams per peer) and returns the time it took.
func rawGet(b *testing.B, ctx context.Context, client *Node, ps []peer.ID, per int, total int64) time.Duration {
	b.Helper()
	each := total / int64(len(ps)*per)
	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, len(ps)*per)
	for _, p := range ps {
		for range per {
			wg.Add(1)
			go func() {
				defer wg.Done()
				s, err := client.Host.NewStream(ctx, p, rawProtocol)
				if err != nil {
					errs <- err
					return
				}
				defer s.Close()
				var want [8]byte
				for i := range want {
					want[i] = byte(each >> (56 - 8*i))
				}
				if _, err := s.Write(want[:]); err != nil {
					errs <- err
					return
				}
				n, err := io.Copy(io.Discard, s)
				if err == nil && n != each {
					err = fmt.Errorf("raw stream gave %d of %d bytes", n, each)
				}
				if err != nil {
					errs <- err
				}
			}()
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	return time.Since(start)
}

// BenchmarkNetGet: a node that holds nothing rebuilds a file held by three
// other nodes (disk stores, 127.0.0.1), next to raw parallel libp2p streams
// between the same nodes in the same run. Reports the file's MB/s, the
// wire MB/s (libp2p bytes in) and both against raw. NET_BENCH_SIZE sets the
// file size (default 256 MiB).
func BenchmarkNetGet(b *testing.B) {
	size := benchSize(b)
	ctx := context.Background()
	var holders []*Node
	for range 3 {
		n, _ := diskNode(b)
		serveRaw(n)
		holders = append(holders, n)
	}
	for i, x := range holders {
		for _, y := range holders[i+1:] {
			connectB(b, ctx, x, y)
		}
	}
	rc := uploadTo(b, ctx, holders, size)[0]
	var ps []peer.ID
	for _, h := range holders {
		ps = append(ps, h.Host.ID())
	}
	b.SetBytes(size)
	var raw, get, wire float64
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		client, st := diskNode(b)
		for _, h := range holders {
			connectB(b, ctx, client, h)
		}
		rawTime := rawGet(b, ctx, client, ps, 4, size)
		raw += float64(size) / rawTime.Seconds()
		in0 := settledIn(client)
		b.StartTimer()

		start := time.Now()
		r, err := recipe.Open(ctx, mixer.NewCachedGetter(NewFetcher(client, st), 32<<20), rc, recipe.Options{Workers: 64})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := r.WriteTo(io.Discard); err != nil {
			b.Fatal(err)
		}
		if err := st.Sync(); err != nil {
			b.Fatal(err)
		}
		d := time.Since(start)
		b.StopTimer()
		get += float64(size) / d.Seconds()
		wire += float64(settledIn(client)-in0) / d.Seconds()
		client.Close()
		b.StartTimer()
	}
	n := float64(b.N)
	b.ReportMetric(raw/n/1e6, "raw-MB/s")
	b.ReportMetric(get/n/1e6, "file-MB/s")
	b.ReportMetric(wire/n/1e6, "wire-MB/s")
	b.ReportMetric(get/raw, "file/raw")
	b.ReportMetric(wire/raw, "wire/raw")
}

// BenchmarkNetBytesPerFileByte: libp2p bytes a node receives per byte of
// the file it rebuilds, for a cold node and for the same node's second
// file from the same uploader (whose blocks share randomizers with the
// first). Two files of NET_BENCH_SIZE/4 each.
func BenchmarkNetBytesPerFileByte(b *testing.B) {
	size := benchSize(b) / 4
	ctx := context.Background()
	var holders []*Node
	for range 3 {
		n, _ := diskNode(b)
		holders = append(holders, n)
	}
	rcs := uploadTo(b, ctx, holders, size, size)
	var cold, warm float64
	for range b.N {
		client, st := diskNode(b)
		for _, h := range holders {
			connectB(b, ctx, client, h)
		}
		for i, rc := range rcs {
			in0 := settledIn(client)
			r, err := recipe.Open(ctx, mixer.NewCachedGetter(NewFetcher(client, st), 32<<20), rc, recipe.Options{Workers: 64})
			if err != nil {
				b.Fatal(err)
			}
			if _, err := r.WriteTo(io.Discard); err != nil {
				b.Fatal(err)
			}
			per := float64(settledIn(client)-in0) / float64(size)
			if i == 0 {
				cold += per
			} else {
				warm += per
			}
		}
		client.Close()
	}
	b.ReportMetric(cold/float64(b.N), "cold-bytes/B")
	b.ReportMetric(warm/float64(b.N), "warm-bytes/B")
}
