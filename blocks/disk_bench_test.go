package blocks_test

import (
	"context"
	"encoding/binary"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/blockmix/blockmix/blocks"
)

// One benchmark op writes benchBatch blocks of benchBlock bytes (32 MiB), so
// that `-benchtime 1x` still measures something; each benchmark ends with one
// Sync (fsync). Making up the random bytes is not timed. Read the store's
// benchmarks against BenchmarkRawFileWrite128K from the same run: this
// machine's buffered writes vary a lot from one run to the next.
const (
	benchBlock = 128 << 10
	benchBatch = 256
)

type benchData struct {
	r    *rand.Rand
	bufs [][]byte
	ids  []blocks.ID
	blks []blocks.Block
}

func newBenchData() *benchData {
	d := &benchData{r: rand.New(rand.NewPCG(1, 1)), ids: make([]blocks.ID, benchBatch), blks: make([]blocks.Block, benchBatch)}
	for range benchBatch {
		d.bufs = append(d.bufs, make([]byte, benchBlock))
	}
	return d
}

// next fills the buffers with new random blocks; with hash, it also computes
// their IDs and Blocks.
func (d *benchData) next(b *testing.B, hash bool) {
	b.StopTimer()
	defer b.StartTimer()
	for i, buf := range d.bufs {
		for j := 0; j < len(buf); j += 8 {
			binary.LittleEndian.PutUint64(buf[j:], d.r.Uint64())
		}
		if hash {
			blk, err := blocks.NewBlock(buf)
			if err != nil {
				b.Fatal(err)
			}
			d.blks[i], d.ids[i] = blk, blk.ID()
		}
	}
}

func benchDisk(b *testing.B, put func(s *blocks.Disk, d *benchData, i int) error) {
	s, err := blocks.OpenDisk(b.TempDir(), blocks.DiskOptions{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	d := newBenchData()
	b.SetBytes(benchBatch * benchBlock)
	b.ResetTimer()
	for range b.N {
		d.next(b, true)
		for i := range d.bufs {
			if err := put(s, d, i); err != nil {
				b.Fatal(err)
			}
		}
	}
	if err := s.Sync(); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkDiskPut128K puts distinct 128 KiB blocks with Put, which hashes
// each block again (Check).
func BenchmarkDiskPut128K(b *testing.B) {
	ctx := context.Background()
	benchDisk(b, func(s *blocks.Disk, d *benchData, i int) error { return s.Put(ctx, d.ids[i], d.bufs[i], 0) })
}

// BenchmarkDiskPutBlock128K is the same with PutBlock, which does not hash:
// the mixer's path.
func BenchmarkDiskPutBlock128K(b *testing.B) {
	ctx := context.Background()
	benchDisk(b, func(s *blocks.Disk, d *benchData, i int) error { return s.PutBlock(ctx, d.blks[i], 0) })
}

// BenchmarkRawFileWrite128K is the baseline: the same bytes appended to one
// plain file with write(2), then one fsync.
func BenchmarkRawFileWrite128K(b *testing.B) {
	f, err := os.Create(filepath.Join(b.TempDir(), "raw"))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	d := newBenchData()
	b.SetBytes(benchBatch * benchBlock)
	b.ResetTimer()
	for range b.N {
		d.next(b, false)
		for _, buf := range d.bufs {
			if _, err := f.Write(buf); err != nil {
				b.Fatal(err)
			}
		}
	}
	if err := f.Sync(); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkSum128K is the hashing that Put adds over PutBlock.
func BenchmarkSum128K(b *testing.B) {
	buf := make([]byte, benchBlock)
	b.SetBytes(benchBlock)
	for range b.N {
		blocks.Sum(buf)
	}
}

// BenchmarkCompact compacts a store of 256 MiB of 128 KiB blocks in 32 MiB
// segments after every other block was deleted: each op moves 128 MiB of live
// blocks (what MB/s counts) into the append segment, fsyncs, repoints and
// removes the eight old segments. Filling the store is not timed; its
// segments are still in the page cache, so the reads are warm. Compare with
// BenchmarkRawFileWrite128K of the same run at -benchtime 4x (128 MiB and one
// fsync).
func BenchmarkCompact(b *testing.B) {
	const perSeg, segs = 256, 8
	const segSize = perSeg * (benchBlock + blocks.RecordHeaderSize) // 256 records of 128 KiB each
	const n = perSeg * segs
	ctx := context.Background()
	r := rand.New(rand.NewPCG(2, 2))
	buf := make([]byte, benchBlock)
	b.SetBytes(n / 2 * benchBlock)
	b.StopTimer()
	for range b.N {
		s, err := blocks.OpenDisk(b.TempDir(), blocks.DiskOptions{SegmentSize: segSize})
		if err != nil {
			b.Fatal(err)
		}
		for i := range n + 1 { // the last block starts the append segment
			for j := 0; j < len(buf); j += 8 {
				binary.LittleEndian.PutUint64(buf[j:], r.Uint64())
			}
			blk, err := blocks.NewBlock(buf)
			if err != nil {
				b.Fatal(err)
			}
			if err := s.PutBlock(ctx, blk, 0); err != nil {
				b.Fatal(err)
			}
			if i%2 == 1 && i < n {
				if err := s.Delete(ctx, blk.ID()); err != nil {
					b.Fatal(err)
				}
			}
		}
		if err := s.Sync(); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		cs, err := s.Compact(ctx, 0)
		b.StopTimer()
		if err != nil {
			b.Fatal(err)
		}
		if cs.Blocks != n/2 || cs.Segments != segs {
			b.Fatalf("Compact = %+v, want %d blocks moved and %d segments removed", cs, n/2, segs)
		}
		if err := s.Close(); err != nil {
			b.Fatal(err)
		}
	}
}
