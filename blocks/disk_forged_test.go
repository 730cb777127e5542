package blocks

import (
	"bytes"
	"context"
	"errors"
	"testing"
)

// TestForgedRecord shows where the CRC's guarantee ends and the hash
// takes over: a v2 record whose bytes do not hash to the ID in its header,
// CRC and all (what a put that skipped Check, or a forgery embedded in a
// block's bytes, would leave), reads back through Get, which checks the
// CRC only, but not through GetVerified; and a RebuildIndex, which scans
// the segments, does not take it back, while it does take a true record.
func TestForgedRecord(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, err := OpenDisk(dir, DiskOptions{})
	if err != nil {
		t.Fatal(err)
	}
	good := bytes.Repeat([]byte("good"), 1000)
	goodID := Sum(good)
	forgedID := Sum([]byte("what the ID names"))
	forged := bytes.Repeat([]byte("forged"), 700)
	if err := s.Put(ctx, goodID, good, 1); err != nil {
		t.Fatal(err)
	}
	if _, err := s.put(forgedID, forged, 2); err != nil { // no Check
		t.Fatal(err)
	}
	if got, err := s.Get(ctx, forgedID); err != nil || !bytes.Equal(got, forged) {
		t.Fatalf("Get of the forged record = %v; want its bytes (Get trusts the CRC)", err)
	}
	if _, err := s.GetVerified(ctx, forgedID); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("GetVerified of the forged record: err = %v, want ErrCorrupt", err)
	}
	if got, err := s.GetVerified(ctx, goodID); err != nil || !bytes.Equal(got, good) {
		t.Fatalf("GetVerified of the true record: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	info, err := RebuildIndex(dir, DiskOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if info.Added != 1 {
		t.Fatalf("RebuildIndex = %+v; want the one true record added", info)
	}
	s, err = OpenDisk(dir, DiskOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Get(ctx, forgedID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get of the forged record after RebuildIndex: err = %v, want ErrNotFound", err)
	}
	if got, err := s.Get(ctx, goodID); err != nil || !bytes.Equal(got, good) {
		t.Fatalf("Get of the true record after RebuildIndex: %v", err)
	}
}
