package blocks_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/blockmix/blockmix/blocks"
)

// TestDiskRecordDamage: one byte flipped anywhere in a record, in its
// bytes or in any field of its header (magic, length, tag, ID, CRC), reads
// as ErrCorrupt, from Get and from GetVerified; its neighbours still read.
func TestDiskRecordDamage(t *testing.T) {
	ctx := context.Background()
	const n = 8 << 10
	rec := int64(blocks.RecordHeaderSize + n)
	for _, c := range []struct {
		what string
		off  int64 // in the middle record
	}{
		{"the first byte of the block", blocks.RecordHeaderSize},
		{"a byte in the middle of the block", blocks.RecordHeaderSize + n/2},
		{"the last byte of the block", rec - 1},
		{"the magic", 3},
		{"the length", 5},
		{"the tag", 12},
		{"the ID", 40},
		{"the CRC", 50},
	} {
		t.Run(c.what, func(t *testing.T) {
			dir := t.TempDir()
			s := openDisk(t, dir, blocks.DiskOptions{})
			defer s.Close()
			r := rand.New(rand.NewPCG(uint64(c.off), 7))
			a, ab := mustPut(t, s, r, n, 5)
			b, _ := mustPut(t, s, r, n, 6)
			d, db := mustPut(t, s, r, n, 7)
			if fi, err := os.Stat(segmentFiles(t, dir)[0]); err != nil || fi.Size() != 3*rec {
				t.Fatalf("segment: %v, %v; want 3 records of %d bytes", fi, err, rec)
			}
			flipByte(t, segmentFiles(t, dir)[0], rec+c.off)
			if _, err := s.Get(ctx, b); !errors.Is(err, blocks.ErrCorrupt) {
				t.Fatalf("Get: err = %v, want ErrCorrupt", err)
			}
			if _, err := s.GetVerified(ctx, b); !errors.Is(err, blocks.ErrCorrupt) {
				t.Fatalf("GetVerified: err = %v, want ErrCorrupt", err)
			}
			for _, x := range []struct {
				id   blocks.ID
				data []byte
			}{{a, ab}, {d, db}} {
				if got, err := s.Get(ctx, x.id); err != nil || !bytes.Equal(got, x.data) {
					t.Fatalf("Get of a neighbour: %v", err)
				}
			}
		})
	}
}

// TestGetVerified: the package function hashes what a plain Getter
// returns, and uses a Verifier's own method.
func TestGetVerified(t *testing.T) {
	ctx := context.Background()
	data := []byte("some block")
	id := blocks.Sum(data)
	liar := getterFunc(func(context.Context, blocks.ID) ([]byte, error) { return []byte("other bytes"), nil })
	if _, err := blocks.GetVerified(ctx, liar, id); !errors.Is(err, blocks.ErrCorrupt) {
		t.Fatalf("GetVerified of a Getter that returns other bytes: err = %v, want ErrCorrupt", err)
	}
	honest := getterFunc(func(context.Context, blocks.ID) ([]byte, error) { return bytes.Clone(data), nil })
	if got, err := blocks.GetVerified(ctx, honest, id); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("GetVerified = %q, %v", got, err)
	}
	m := blocks.NewMem()
	if err := m.Put(ctx, id, data, 0); err != nil {
		t.Fatal(err)
	}
	m.Corrupt(id)
	if _, err := blocks.GetVerified(ctx, m, id); !errors.Is(err, blocks.ErrCorrupt) {
		t.Fatalf("GetVerified of a corrupted Mem block: err = %v, want ErrCorrupt", err)
	}
}

type getterFunc func(context.Context, blocks.ID) ([]byte, error)

func (f getterFunc) Get(ctx context.Context, id blocks.ID) ([]byte, error) { return f(ctx, id) }

// v1Block is block i of the store in testdata/v1store, which the blocks
// package of commit faa2d38 (format 1: "bmx1" records, no CRC) wrote; see
// testdata/v1store.txt.
func v1Block(i int) []byte {
	return bytes.Repeat([]byte(fmt.Sprintf("v1 block %d|", i)), 100+50*i)
}

// copyDir copies the tree src to dst.
func copyDir(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestDiskFormat1Store: a store written by the previous version (v1
// records, checked with sha256) opens read-only as it is and writable; its
// blocks, tags, file and references read back next to new v2 records,
// through a reopen and a RebuildIndex (which scans both formats); a byte
// flipped in a v1 record reads as ErrCorrupt; Compact rewrites the v1
// records it moves as v2 ones and accounts for their larger headers.
func TestDiskFormat1Store(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "store")
	copyDir(t, filepath.Join("testdata", "v1store"), dir)
	old := make([]blocks.ID, 6)
	for i := range old {
		old[i] = blocks.Sum(v1Block(i))
	}
	// Blocks 0–4 are held (5 was deleted), with tag 1000+i; 0–2 make up
	// the file "v1-file".
	checkOld := func(s *blocks.Disk, skip ...int) {
		t.Helper()
		for i := range 5 {
			if slices.Contains(skip, i) {
				continue
			}
			for _, get := range []func(context.Context, blocks.ID) ([]byte, error){s.Get, s.GetVerified} {
				if got, err := get(ctx, old[i]); err != nil || !bytes.Equal(got, v1Block(i)) {
					t.Fatalf("block %d of the format 1 store: %v", i, err)
				}
			}
			m, err := s.Stat(ctx, old[i])
			if wantRefs := min(1, max(0, 3-i)); err != nil || m.Tag != uint64(1000+i) || m.Refs != wantRefs {
				t.Fatalf("Stat of block %d = %+v, %v; want tag %d, %d refs", i, m, err, 1000+i, wantRefs)
			}
		}
	}

	ro := openDisk(t, dir, blocks.DiskOptions{ReadOnly: true})
	checkOld(ro)
	if _, err := ro.Get(ctx, old[5]); !errors.Is(err, blocks.ErrNotFound) {
		t.Fatalf("Get of the deleted block: err = %v, want ErrNotFound", err)
	}
	if err := ro.Close(); err != nil {
		t.Fatal(err)
	}

	// Small segments: the new records go to new segments.
	o := blocks.DiskOptions{SegmentSize: 16 << 10}
	s := openDisk(t, dir, o)
	checkOld(s)
	files, err := s.Files(ctx)
	if err != nil || len(files) != 1 || files[0].Key != "v1-file" {
		t.Fatalf("Files = %+v, %v; want v1-file", files, err)
	}
	r := rand.New(rand.NewPCG(11, 12))
	type held struct {
		id   blocks.ID
		data []byte
	}
	var added []held
	for range 6 {
		id, data := mustPut(t, s, r, 4<<10, 9)
		added = append(added, held{id, data})
	}
	checkNew := func(s *blocks.Disk) {
		t.Helper()
		for _, h := range added {
			if got, err := s.Get(ctx, h.id); err != nil || !bytes.Equal(got, h.data) {
				t.Fatalf("new block: %v", err)
			}
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	if _, err := blocks.RebuildIndex(dir, o); err != nil {
		t.Fatalf("RebuildIndex: %v", err)
	}
	s = openDisk(t, dir, o)
	defer s.Close()
	checkOld(s)
	checkNew(s)

	// A v1 record has no CRC; its bytes are hashed.
	seg1 := filepath.Join(dir, "segments", "00000001.seg")
	rec0 := int64(48 + len(v1Block(0)))
	flipByte(t, seg1, rec0+48+10) // in block 1's bytes
	if _, err := s.Get(ctx, old[1]); !errors.Is(err, blocks.ErrCorrupt) {
		t.Fatalf("Get of a damaged v1 record: err = %v, want ErrCorrupt", err)
	}

	if err := s.Delete(ctx, old[4]); err != nil {
		t.Fatal(err)
	}
	cs, err := s.Compact(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	if cs.Quarantined != 1 {
		t.Fatalf("Compact = %+v; want the damaged block quarantined", cs)
	}
	if _, err := os.Stat(seg1); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("segment 1 after Compact: %v", err)
	}
	for _, p := range segmentFiles(t, dir) {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(b, []byte("bmx1")) {
			t.Fatalf("%s still holds a v1 record after Compact", p)
		}
	}
	checkOld(s, 1, 4)
	checkNew(s)
	// Every segment byte is a live record, each with a v2 header, and no
	// dead byte is left counted.
	var want int64
	err = s.Enumerate(ctx, func(_ blocks.ID, m blocks.Meta) error {
		want += int64(blocks.RecordHeaderSize + m.Size)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var size, dead int64
	for _, in := range segments(t, s) {
		size += in.Size
		dead += in.Dead
	}
	if dead != 0 || size != want {
		t.Fatalf("segments hold %d bytes, %d dead; want %d, none dead", size, dead, want)
	}
}
