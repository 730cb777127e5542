//go:build linux

package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/blockmix/blockmix/webui/apiv1"
)

// benchFolderFiles is how many small files BenchmarkPutFolder puts
// (FOLDER_FILES overrides; default 10,000).
func benchFolderFiles(b *testing.B) int {
	if s := os.Getenv("FOLDER_FILES"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 100 {
			b.Fatalf("FOLDER_FILES=%q: want a number ≥ 100", s)
		}
		return n
	}
	return 10_000
}

// BenchmarkPutFolder: `put DIR` of a tree of small files (100 per folder,
// 1–4 KiB each) into an empty repo, against the baseline of the same tree
// as one tar (`tar c` then `put tree.tar`, also into an empty repo),
// measured in the same run, both in files/s; then one file changes and
// the tree is put again: what that re-put stores (bytes, blocks) against
// the first put's.
func BenchmarkPutFolder(b *testing.B) {
	if _, err := exec.LookPath("tar"); err != nil {
		b.Fatal("tar is needed for the baseline")
	}
	n := benchFolderFiles(b)
	root := b.TempDir()
	tree := filepath.Join(root, "tree")
	total := smallTree(b, tree, n)
	for b.Loop() {
		// The baseline: the tree as one tar into an empty repo.
		wt := newWorldIn(b, mkdir(b, filepath.Join(root, "tar")))
		tarFile := filepath.Join(root, "tree.tar")
		start := time.Now()
		if out, err := exec.Command("tar", "cf", tarFile, "-C", root, "tree").CombinedOutput(); err != nil {
			b.Fatalf("tar: %v\n%s", err, out)
		}
		r := runLong(b, wt, runOpts{}, "--no-progress", "put", tarFile)
		tarDur := time.Since(start)
		if r.code != 0 {
			b.Fatalf("put tar: %s", r)
		}

		// put DIR into an empty repo.
		wf := newWorldIn(b, mkdir(b, filepath.Join(root, "folder")))
		first := putFolderBench(b, wf, tree)
		if first.info.Files != n {
			b.Fatalf("put DIR: %d files, want %d", first.info.Files, n)
		}

		// One file changes (file n/2, so any FOLDER_FILES ≥ 100 has it);
		// the tree goes again.
		changed := smallTreeFile(tree, n/2)
		if err := os.WriteFile(changed, randBytes(1<<40, 2000), 0o644); err != nil {
			b.Fatal(err)
		}
		again := putFolderBench(b, wf, tree)
		if again.info.PutFiles != 1 || again.info.ReusedFiles != n-1 {
			b.Fatalf("re-put after one change: %+v", again.info)
		}

		tarRate := float64(n) / tarDur.Seconds()
		dirRate := float64(n) / first.dur.Seconds()
		b.ReportMetric(dirRate, "dir-files/s")
		b.ReportMetric(tarRate, "tar-files/s")
		b.ReportMetric(dirRate/tarRate, "dir/tar")
		b.ReportMetric(float64(again.info.NewBytes), "reput-new-B")
		b.ReportMetric(float64(again.info.NewBytes)/float64(first.info.NewBytes), "reput/put-bytes")
		b.ReportMetric(again.dur.Seconds(), "reput-s")
		b.Logf("%d files, %d bytes: put DIR %v (%.0f files/s, %d new blocks, %d new bytes); tar c + put tar %v (%.0f files/s); "+
			"re-put after one change %v: %d new blocks, %d new bytes (%.4f of the first put's bytes; %d folders reused of %d)",
			n, total, first.dur.Round(time.Millisecond), dirRate, first.info.NewBlocks, first.info.NewBytes, tarDur.Round(time.Millisecond), tarRate,
			again.dur.Round(time.Millisecond), again.info.NewBlocks, again.info.NewBytes, float64(again.info.NewBytes)/float64(first.info.NewBytes),
			again.info.ReusedFolders, again.info.Folders)
		os.RemoveAll(filepath.Join(root, "tar"))
		os.RemoveAll(filepath.Join(root, "folder"))
		os.Remove(tarFile)
		if err := os.WriteFile(changed, smallTreeData(n/2), 0o644); err != nil {
			b.Fatal(err)
		}
	}
}

type folderPut struct {
	info apiv1.FolderInfo
	dur  time.Duration
}

func putFolderBench(b *testing.B, w *world, dir string) folderPut {
	b.Helper()
	r := runLong(b, w, runOpts{}, "--no-progress", "put", "--json", dir)
	if r.code != 0 {
		b.Fatalf("put DIR: %s", r)
	}
	var fp folderPut
	if err := json.Unmarshal(r.stdout, &fp.info); err != nil {
		b.Fatalf("put --json: %v\n%s", err, r.stdout)
	}
	fp.dur = r.dur
	return fp
}

func mkdir(b *testing.B, p string) string {
	if err := os.MkdirAll(p, 0o755); err != nil {
		b.Fatal(err)
	}
	return p
}

// smallTree writes n files of 1–4 KiB, 100 per folder, under dir, and
// returns their bytes.
func smallTree(b *testing.B, dir string, n int) int64 {
	var total int64
	for i := range n {
		p := smallTreeFile(dir, i)
		if i%100 == 0 {
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				b.Fatal(err)
			}
		}
		data := smallTreeData(i)
		total += int64(len(data))
		if err := os.WriteFile(p, data, 0o644); err != nil {
			b.Fatal(err)
		}
	}
	return total
}

// smallTreeFile is the path of file i of smallTree's tree under dir.
func smallTreeFile(dir string, i int) string {
	return filepath.Join(dir, fmt.Sprintf("d%03d", i/100), fmt.Sprintf("f%05d.dat", i))
}

// smallTreeData is the content of file i of smallTree's tree.
func smallTreeData(i int) []byte { return randBytes(uint64(i), 1024+i%3072) }

// BenchmarkPutFolderDaemon: `put DIR` through a running daemon (each file
// a POST /api/v1/put, four at once, then the manifest), against `put DIR`
// offline into an empty repo in the same run, in files/s;
// FOLDER_DAEMON_FILES files (default 2,000).
func BenchmarkPutFolderDaemon(b *testing.B) {
	n := 2000
	if v := os.Getenv("FOLDER_DAEMON_FILES"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 100 {
			b.Fatalf("FOLDER_DAEMON_FILES=%q: want a number ≥ 100", v)
		}
	}
	root := b.TempDir()
	tree := filepath.Join(root, "tree")
	smallTree(b, tree, n)
	for round := 0; b.Loop(); round++ {
		wo := newWorldIn(b, mkdir(b, filepath.Join(root, fmt.Sprint("offline", round))))
		off := putFolderBench(b, wo, tree)
		wd := newWorldIn(b, mkdir(b, filepath.Join(root, fmt.Sprint("daemon", round))))
		startLong(b, wd, "--listen", "/ip4/127.0.0.1/tcp/0", "--api", "127.0.0.1:0", "--replicas", "1")
		dmn := putFolderBench(b, wd, tree)
		if dmn.info.Files != n || dmn.info.PutFiles != n {
			b.Fatalf("put DIR through the daemon: %+v", dmn.info)
		}
		offRate, dRate := float64(n)/off.dur.Seconds(), float64(n)/dmn.dur.Seconds()
		b.ReportMetric(dRate, "daemon-files/s")
		b.ReportMetric(offRate, "offline-files/s")
		b.ReportMetric(dRate/offRate, "daemon/offline")
		b.Logf("%d files: put DIR through the daemon %v (%.0f files/s), offline %v (%.0f files/s)",
			n, dmn.dur.Round(time.Millisecond), dRate, off.dur.Round(time.Millisecond), offRate)
	}
}
