package blocks

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// snapshot lists every file under dir with its size and modification time.
func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		out[p] = fmt.Sprint(fi.ModTime().Format(time.RFC3339Nano), " ", fi.Size())
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestDiskReadOnly: a store opened read-only answers every read, refuses
// every write with ErrReadOnly, and changes no file on disk: so stat,
// files and get work on a full disk.
func TestDiskReadOnly(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	if _, err := OpenDisk(filepath.Join(dir, "none"), DiskOptions{ReadOnly: true}); err == nil {
		t.Fatal("a read-only open of no store succeeded")
	}
	if _, err := os.Stat(filepath.Join(dir, "none")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a read-only open made a directory: %v", err)
	}
	rw, err := OpenDisk(dir, DiskOptions{})
	if err != nil {
		t.Fatal(err)
	}
	data := []byte("a block of the read-only test")
	id := Sum(data)
	if err := rw.Put(ctx, id, data, 3); err != nil {
		t.Fatal(err)
	}
	if err := rw.AddFile(ctx, FileRecord{Key: "k", Name: "f", Blocks: []ID{id}}); err != nil {
		t.Fatal(err)
	}
	if err := rw.Close(); err != nil {
		t.Fatal(err)
	}
	before := snapshot(t, dir)

	ro, err := OpenDisk(dir, DiskOptions{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := ro.Get(ctx, id); err != nil || string(got) != string(data) {
		t.Fatalf("Get: %q, %v", got, err)
	}
	if st, err := ro.Stats(ctx); err != nil || st.Blocks != 1 || st.Files != 1 {
		t.Fatalf("Stats: %+v, %v", st, err)
	}
	if fs, err := ro.Files(ctx); err != nil || len(fs) != 1 {
		t.Fatalf("Files: %v, %v", fs, err)
	}
	other := []byte("another")
	for name, err := range map[string]error{
		"Put":        ro.Put(ctx, Sum(other), other, 4),
		"Delete":     ro.Delete(ctx, id),
		"AddFile":    ro.AddFile(ctx, FileRecord{Key: "k2", Name: "g"}),
		"RemoveFile": ro.RemoveFile(ctx, "k"),
		"Quarantine": ro.Quarantine(ctx, id, "test"),
	} {
		if !errors.Is(err, ErrReadOnly) {
			t.Errorf("%s on a read-only store: %v, want ErrReadOnly", name, err)
		}
	}
	if _, err := ro.Compact(ctx, 0); !errors.Is(err, ErrReadOnly) {
		t.Errorf("Compact on a read-only store: %v", err)
	}
	if err := ro.Sync(); err != nil {
		t.Errorf("Sync: %v", err)
	}
	if err := ro.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	after := snapshot(t, dir)
	for p, v := range before {
		if after[p] != v {
			t.Errorf("%s changed under a read-only store", p)
		}
	}
	for p := range after {
		if _, ok := before[p]; !ok {
			t.Errorf("%s appeared under a read-only store", p)
		}
	}
}
