package blocks_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/blockmix/blockmix/blocks"
	"github.com/blockmix/blockmix/blocks/storetest"
)

func TestDiskConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) blocks.Store {
		return openDisk(t, t.TempDir(), blocks.DiskOptions{})
	})
}

// TestDiskConformanceSmallSegments runs the suite with segments so small that
// nearly every block starts a new one, and the small index of the lowpower
// profile.
func TestDiskConformanceSmallSegments(t *testing.T) {
	storetest.Run(t, func(t *testing.T) blocks.Store {
		return openDisk(t, t.TempDir(), blocks.DiskOptions{SegmentSize: 16 << 10, SmallIndex: true})
	})
}

func openDisk(t *testing.T, dir string, o blocks.DiskOptions) *blocks.Disk {
	t.Helper()
	s, err := blocks.OpenDisk(dir, o)
	if err != nil {
		t.Fatalf("OpenDisk: %v", err)
	}
	return s
}

func randBlock(r *rand.Rand, n int) (blocks.ID, []byte) {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return blocks.Sum(b), b
}

func mustPut(t *testing.T, s blocks.Store, r *rand.Rand, n int, tag uint64) (blocks.ID, []byte) {
	t.Helper()
	id, b := randBlock(r, n)
	if err := s.Put(context.Background(), id, b, tag); err != nil {
		t.Fatalf("Put: %v", err)
	}
	return id, b
}

type snapshot struct {
	metas map[blocks.ID]blocks.Meta
	files []blocks.FileRecord
	full  map[string]blocks.FileRecord
	stats blocks.Stats
}

func takeSnapshot(t *testing.T, s blocks.Store) snapshot {
	t.Helper()
	ctx := context.Background()
	sn := snapshot{metas: map[blocks.ID]blocks.Meta{}, full: map[string]blocks.FileRecord{}}
	err := s.Enumerate(ctx, func(id blocks.ID, m blocks.Meta) error { sn.metas[id] = m; return nil })
	if err != nil {
		t.Fatalf("Enumerate: %v", err)
	}
	if sn.files, err = s.Files(ctx); err != nil {
		t.Fatalf("Files: %v", err)
	}
	for _, f := range sn.files {
		full, err := s.File(ctx, f.Key)
		if err != nil {
			t.Fatalf("File(%q): %v", f.Key, err)
		}
		sn.full[f.Key] = full
	}
	if sn.stats, err = s.Stats(ctx); err != nil {
		t.Fatalf("Stats: %v", err)
	}
	sn.stats.DiskBytes = 0
	return sn
}

func TestDiskReopen(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	o := blocks.DiskOptions{SegmentSize: 256 << 10}
	r := rand.New(rand.NewPCG(1, 2))
	s := openDisk(t, dir, o)
	data := map[blocks.ID][]byte{}
	var ids []blocks.ID
	for i := range 30 {
		id, b := mustPut(t, s, r, 1+r.IntN(64<<10), uint64(i%4))
		data[id] = b
		ids = append(ids, id)
	}
	added := time.Date(2025, 3, 4, 5, 6, 7, 8, time.UTC)
	for i := range 3 {
		f := blocks.FileRecord{Key: fmt.Sprintf("key-%d", 3-i), Name: "n", Size: int64(i) * 1000, Type: "t", Recipe: "r", Added: added, Blocks: ids[i*5 : i*5+10]}
		if err := s.AddFile(ctx, f); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Delete(ctx, ids[29]); err != nil {
		t.Fatal(err)
	}
	if err := s.Quarantine(ctx, ids[28], "test"); err != nil {
		t.Fatal(err)
	}
	before := takeSnapshot(t, s)
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	s = openDisk(t, dir, o)
	defer s.Close()
	after := takeSnapshot(t, s)
	if fmt.Sprint(after.metas) != fmt.Sprint(before.metas) {
		t.Fatalf("blocks changed across reopen:\n%v\n%v", before.metas, after.metas)
	}
	if fmt.Sprint(after.stats) != fmt.Sprint(before.stats) {
		t.Fatalf("Stats changed across reopen: %+v -> %+v", before.stats, after.stats)
	}
	if len(after.files) != 3 || fmt.Sprint(after.full) != fmt.Sprint(before.full) {
		t.Fatalf("files changed across reopen:\n%v\n%v", before.full, after.full)
	}
	for id, b := range data {
		got, err := s.Get(ctx, id)
		switch id {
		case ids[28], ids[29]:
			if !errors.Is(err, blocks.ErrNotFound) {
				t.Fatalf("Get of a deleted or quarantined block after reopen: %v", err)
			}
		default:
			if err != nil || !bytes.Equal(got, b) {
				t.Fatalf("Get after reopen: %v", err)
			}
		}
	}
	// Counters carry on where they were.
	var maxSeq uint64
	for _, m := range after.metas {
		maxSeq = max(maxSeq, m.Seq)
	}
	id, _ := mustPut(t, s, r, 100, 0)
	m, err := s.Stat(ctx, id)
	if err != nil || m.Seq <= maxSeq {
		t.Fatalf("Seq after reopen = %d (%v), want more than %d", m.Seq, err, maxSeq)
	}
	if err := s.AddFile(ctx, blocks.FileRecord{Key: "key-0"}); err != nil {
		t.Fatal(err)
	}
	files, err := s.Files(ctx)
	if err != nil || len(files) != 4 || files[3].Key != "key-0" {
		t.Fatalf("Files after reopen and AddFile = %v, %v; want the new file last", files, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "quarantine", ids[28].String())); err != nil {
		t.Fatalf("quarantine copy: %v", err)
	}
}

func segmentFiles(t *testing.T, dir string) []string {
	t.Helper()
	names, err := filepath.Glob(filepath.Join(dir, "segments", "*.seg"))
	if err != nil {
		t.Fatal(err)
	}
	return names
}

func flipByte(t *testing.T, path string, off int64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, off); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0x20
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

func TestDiskCorruptSegment(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	r := rand.New(rand.NewPCG(3, 4))
	s := openDisk(t, dir, blocks.DiskOptions{})
	defer s.Close()
	const n = 128 << 10
	a, ab := mustPut(t, s, r, n, 0) // first record: header, then bytes
	b, bb := mustPut(t, s, r, n, 0)
	segs := segmentFiles(t, dir)
	if len(segs) != 1 {
		t.Fatalf("segments: %v", segs)
	}
	fi, err := os.Stat(segs[0])
	if err != nil {
		t.Fatal(err)
	}
	rec := fi.Size() / 2 // each record is the same size

	// A byte inside a's bytes, while the store is open.
	flipByte(t, segs[0], rec-1000)
	if _, err := s.Get(ctx, a); !errors.Is(err, blocks.ErrCorrupt) {
		t.Fatalf("Get of a block flipped on disk: err = %v, want ErrCorrupt", err)
	}
	if got, err := s.Get(ctx, b); err != nil || !bytes.Equal(got, bb) {
		t.Fatalf("Get of the neighbour: %v", err)
	}
	// A byte of b's record header.
	flipByte(t, segs[0], rec+20)
	if _, err := s.Get(ctx, b); !errors.Is(err, blocks.ErrCorrupt) {
		t.Fatalf("Get of a block whose record header is damaged: err = %v, want ErrCorrupt", err)
	}

	if err := s.Quarantine(ctx, a, "corrupt on read"); err != nil {
		t.Fatalf("Quarantine: %v", err)
	}
	if _, err := s.Get(ctx, a); !errors.Is(err, blocks.ErrNotFound) {
		t.Fatalf("Get after Quarantine: err = %v, want ErrNotFound", err)
	}
	copyBytes, err := os.ReadFile(filepath.Join(dir, "quarantine", a.String()))
	if err != nil {
		t.Fatalf("quarantine copy: %v", err)
	}
	want := bytes.Clone(ab)
	want[n-1000] ^= 0x20
	if !bytes.Equal(copyBytes, want) {
		t.Fatal("the quarantine copy is not the bytes that were on disk")
	}
	// A good copy may be put again.
	if err := s.Put(ctx, a, ab, 0); err != nil {
		t.Fatalf("Put after Quarantine: %v", err)
	}
	if got, err := s.Get(ctx, a); err != nil || !bytes.Equal(got, ab) {
		t.Fatalf("Get of the block put again: %v", err)
	}
}

// TestDiskGetInto: GetInto reads into the caller's buffer when it has
// room (block size plus ReadSlack), into a new one when it has not, and
// checks the record as Get does.
func TestDiskGetInto(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	r := rand.New(rand.NewPCG(5, 6))
	s := openDisk(t, dir, blocks.DiskOptions{})
	defer s.Close()
	const n = 128 << 10
	a, ab := mustPut(t, s, r, n, 0)
	b, bb := mustPut(t, s, r, n, 0)
	buf := make([]byte, n+blocks.ReadSlack)
	inBuf := func(got []byte) bool { // a change to got shows in buf
		got[0] ^= 0xff
		defer func() { got[0] ^= 0xff }()
		return bytes.Contains(buf, got[:64])
	}
	got, err := s.GetInto(ctx, a, buf)
	if err != nil || !bytes.Equal(got, ab) {
		t.Fatalf("GetInto: %v", err)
	}
	if !inBuf(got) {
		t.Fatal("GetInto with room enough did not read into the buffer")
	}
	small := make([]byte, n)
	if got, err := s.GetInto(ctx, b, small); err != nil || !bytes.Equal(got, bb) {
		t.Fatalf("GetInto with a short buffer: %v", err)
	}
	if got, err := s.GetInto(ctx, b, nil); err != nil || !bytes.Equal(got, bb) {
		t.Fatalf("GetInto with no buffer: %v", err)
	}
	segs := segmentFiles(t, dir)
	fi, err := os.Stat(segs[0])
	if err != nil {
		t.Fatal(err)
	}
	flipByte(t, segs[0], fi.Size()/2-1000) // inside a's bytes
	if _, err := s.GetInto(ctx, a, buf); !errors.Is(err, blocks.ErrCorrupt) {
		t.Fatalf("GetInto of a block flipped on disk: err = %v, want ErrCorrupt", err)
	}
	if _, err := s.GetInto(ctx, blocks.Sum([]byte("not here")), buf); !errors.Is(err, blocks.ErrNotFound) {
		t.Fatalf("GetInto of a missing block: err = %v, want ErrNotFound", err)
	}
}

func TestDiskTruncatedSegment(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	r := rand.New(rand.NewPCG(5, 6))
	s := openDisk(t, dir, blocks.DiskOptions{})
	a, _ := mustPut(t, s, r, 4096, 0)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	seg := segmentFiles(t, dir)[0]
	if err := os.Truncate(seg, 1000); err != nil {
		t.Fatal(err)
	}
	s = openDisk(t, dir, blocks.DiskOptions{})
	defer s.Close()
	if _, err := s.Get(ctx, a); !errors.Is(err, blocks.ErrCorrupt) {
		t.Fatalf("Get of a truncated block: err = %v, want ErrCorrupt", err)
	}
	// Appends go on at the segment's real size.
	b, bb := mustPut(t, s, r, 4096, 0)
	if got, err := s.Get(ctx, b); err != nil || !bytes.Equal(got, bb) {
		t.Fatalf("Get of a block put after truncation: %v", err)
	}
}

func TestDiskLocked(t *testing.T) {
	dir := t.TempDir()
	s := openDisk(t, dir, blocks.DiskOptions{})
	_, err := blocks.OpenDisk(dir, blocks.DiskOptions{})
	if !errors.Is(err, blocks.ErrLocked) {
		t.Fatalf("second OpenDisk: err = %v, want ErrLocked", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openDisk(t, dir, blocks.DiskOptions{})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestDiskSegmentRotation(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	const segSize = 64 << 10
	o := blocks.DiskOptions{SegmentSize: segSize}
	r := rand.New(rand.NewPCG(7, 8))
	s := openDisk(t, dir, o)
	data := map[blocks.ID][]byte{}
	for range 20 {
		id, b := mustPut(t, s, r, 10<<10, 0)
		data[id] = b
	}
	big, bigb := mustPut(t, s, r, 3*segSize, 0) // larger than a segment
	data[big] = bigb
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openDisk(t, dir, o)
	defer s.Close()
	for range 10 {
		id, b := mustPut(t, s, r, 10<<10, 0)
		data[id] = b
	}
	for id, b := range data {
		if got, err := s.Get(ctx, id); err != nil || !bytes.Equal(got, b) {
			t.Fatalf("Get: %v", err)
		}
	}
	files := segmentFiles(t, dir)
	if len(files) < 30*10/64 {
		t.Fatalf("%d segment files for %d KiB in %d KiB segments", len(files), 30*10+3*64, segSize>>10)
	}
	var oversized int
	for _, f := range files {
		fi, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Size() > segSize {
			oversized++
		}
	}
	if oversized != 1 {
		t.Fatalf("%d segments over the segment size, want exactly the one holding the big block", oversized)
	}
	infos, err := s.Segments()
	if err != nil || len(infos) != len(files) {
		t.Fatalf("Segments = %v, %v; want %d", infos, err, len(files))
	}
	for i, in := range infos {
		if in.Num != uint32(i+1) {
			t.Fatalf("Segments()[%d].Num = %d", i, in.Num)
		}
	}
	if st, err := s.Stats(ctx); err != nil || st.DiskBytes < st.Bytes {
		t.Fatalf("Stats = %+v, %v; DiskBytes below Bytes", st, err)
	}
}

func TestDiskDeadBytes(t *testing.T) {
	ctx := context.Background()
	s := openDisk(t, t.TempDir(), blocks.DiskOptions{})
	defer s.Close()
	r := rand.New(rand.NewPCG(9, 10))
	a, _ := mustPut(t, s, r, 5000, 0)
	b, _ := mustPut(t, s, r, 7000, 0)
	mustPut(t, s, r, 3000, 0)
	if err := s.Delete(ctx, a); err != nil {
		t.Fatal(err)
	}
	if err := s.Quarantine(ctx, b, "x"); err != nil {
		t.Fatal(err)
	}
	infos, err := s.Segments()
	if err != nil || len(infos) != 1 {
		t.Fatalf("Segments = %v, %v", infos, err)
	}
	// Dead bytes include the record headers, which are small.
	if d := infos[0].Dead; d < 12000 || d > 12000+2*256 {
		t.Fatalf("dead bytes = %d, want about 12000", d)
	}
	if infos[0].Size < 15000 {
		t.Fatalf("segment size = %d: bytes were reclaimed?", infos[0].Size)
	}
}

// TestDiskCloseWhileBusy closes the store under a load of Puts and Gets:
// each of them must either succeed or return ErrClosed.
func TestDiskCloseWhileBusy(t *testing.T) {
	ctx := context.Background()
	s := openDisk(t, t.TempDir(), blocks.DiskOptions{})
	var wg sync.WaitGroup
	var going atomic.Int64 // workers whose first Put and Get succeeded
	const workers = 8
	errs := make(chan error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(w), 11))
			for n := 0; ; n++ {
				id, b := randBlock(r, 4096)
				err := s.Put(ctx, id, b, 0)
				if err == nil {
					_, err = s.Get(ctx, id)
				}
				if errors.Is(err, blocks.ErrClosed) {
					return
				}
				if err != nil {
					errs <- err
					return
				}
				if n == 0 {
					going.Add(1)
				}
			}
		}()
	}
	// Close once the load runs: every worker is past its first round.
	deadline := time.Now().Add(30 * time.Second)
	for going.Load() < workers && len(errs) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("only %d of %d workers got a Put and a Get done within 30 s", going.Load(), workers)
		}
		time.Sleep(time.Millisecond)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("during Close: %v", err)
	}
}

// The crash test: a child process (this test binary, re-executed) puts blocks
// in a loop and is killed with SIGKILL at a random moment; then the store
// must open, and every block it lists must read back and verify.

const crashEnv = "BLOCKMIX_CRASH_CHILD_DIR"

var crashOpts = blocks.DiskOptions{SegmentSize: 1 << 20}

// TestDiskCrashChild is the child's body; it does nothing unless run by
// TestDiskCrash. It prints "P id" after each Put returned, "D id" before
// each Delete, and "ready" once the store is open.
func TestDiskCrashChild(t *testing.T) {
	dir := os.Getenv(crashEnv)
	if dir == "" {
		t.Skip("run by TestDiskCrash")
	}
	seed, _ := strconv.ParseUint(os.Getenv(crashEnv+"_SEED"), 10, 64)
	s, err := blocks.OpenDisk(dir, crashOpts)
	if err != nil {
		fmt.Printf("open: %v\n", err)
		os.Exit(3)
	}
	fmt.Println("ready")
	ctx := context.Background()
	deadline := time.Now().Add(20 * time.Second) // in case nobody kills us
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(seed, uint64(w)))
			var recent, loose []blocks.ID
			for i := 0; time.Now().Before(deadline); i++ {
				id, b := randBlock(r, 1+r.IntN(128<<10))
				if err := s.Put(ctx, id, b, r.Uint64()%8); err != nil {
					fmt.Printf("put: %v\n", err)
					os.Exit(3)
				}
				fmt.Printf("P %s\n", id)
				if r.IntN(3) == 0 {
					loose = append(loose, id)
				} else {
					recent = append(recent, id)
				}
				switch {
				case len(recent) >= 6:
					f := blocks.FileRecord{Key: fmt.Sprintf("%d-%d-%d", seed, w, i), Size: 1, Blocks: append(recent, recent[0])}
					if err := s.AddFile(ctx, f); err != nil {
						fmt.Printf("addfile: %v\n", err)
						os.Exit(3)
					}
					recent = nil
				case len(loose) >= 4:
					fmt.Printf("D %s\n", loose[0])
					if err := s.Delete(ctx, loose[0]); err != nil {
						fmt.Printf("delete: %v\n", err)
						os.Exit(3)
					}
					loose = loose[1:]
				}
				if i%16 == 15 {
					if err := s.Sync(); err != nil {
						fmt.Printf("sync: %v\n", err)
						os.Exit(3)
					}
				}
			}
		}()
	}
	wg.Wait()
	s.Close()
}

func TestDiskCrash(t *testing.T) {
	if os.Getenv(crashEnv) != "" {
		t.Skip("in the child")
	}
	if testing.Short() {
		t.Skip("short")
	}
	dir := t.TempDir()
	r := rand.New(rand.NewPCG(2024, 7))
	want := map[blocks.ID]bool{} // blocks a child reported put and did not delete
	total := 0
	for round := range 5 {
		delay := time.Duration(50+r.IntN(351)) * time.Millisecond
		lines := runCrashChild(t, "TestDiskCrashChild", crashEnv, dir, uint64(round), nil, delay)
		for _, l := range lines {
			kind, s, ok := strings.Cut(l, " ")
			if !ok || (kind != "P" && kind != "D") {
				t.Fatalf("round %d: child said %q", round, l)
			}
			id, err := blocks.ParseID(s)
			if err != nil {
				t.Fatalf("round %d: child said %q: %v", round, l, err)
			}
			want[id] = kind == "P"
			if kind == "P" {
				total++
			}
		}
		checkAfterCrash(t, dir, crashOpts, want)
		t.Logf("round %d: killed after %v, %d puts reported so far", round, delay, total)
	}
	if total == 0 {
		t.Fatal("no child ever completed a Put")
	}
}

// runCrashChild runs the test named child in a child process, with envVar set
// to dir, envVar_SEED to seed and env added, and kills it delay after it is
// ready (unless it killed itself before). It returns the lines it printed.
func runCrashChild(t *testing.T, child, envVar, dir string, seed uint64, env []string, delay time.Duration) []string {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^"+child+"$", "-test.count=1")
	cmd.Env = append(os.Environ(), envVar+"="+dir, fmt.Sprintf("%s_SEED=%d", envVar, seed))
	cmd.Env = append(cmd.Env, env...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ready := make(chan struct{})
	done := make(chan []string)
	go func() {
		var lines []string
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			l := sc.Text()
			switch {
			case l == "ready":
				close(ready)
			case strings.HasPrefix(l, "P ") || strings.HasPrefix(l, "D "):
				lines = append(lines, l)
			default:
				lines = append(lines, l) // an error message: reported by the caller
			}
		}
		done <- lines
	}()
	select {
	case <-ready:
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("child did not get ready; stderr:\n%s", stderr.String())
	}
	stopKiller, killerDone := make(chan struct{}), make(chan struct{})
	go func() {
		// The child may also kill itself first (TestDiskCrashCompactChild).
		defer close(killerDone)
		select {
		case <-time.After(delay):
			cmd.Process.Kill()
		case <-stopKiller:
		}
	}()
	lines := <-done
	close(stopKiller)
	<-killerDone
	err = cmd.Wait()
	if ee := (*exec.ExitError)(nil); !errors.As(err, &ee) || ee.ExitCode() != -1 {
		t.Fatalf("child did not die by the signal: %v; stderr:\n%s\nstdout: %q", err, stderr.String(), lines)
	}
	return lines
}

func checkAfterCrash(t *testing.T, dir string, o blocks.DiskOptions, want map[blocks.ID]bool) {
	t.Helper()
	ctx := context.Background()
	s, err := blocks.OpenDisk(dir, o)
	if err != nil {
		t.Fatalf("OpenDisk after kill: %v", err)
	}
	defer s.Close()
	for id, must := range want {
		ok, err := s.Has(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if must && !ok {
			t.Fatalf("block %s was put before the kill and is gone", id)
		}
	}
	held := map[blocks.ID]blocks.Meta{}
	err = s.Enumerate(ctx, func(id blocks.ID, m blocks.Meta) error {
		held[id] = m
		return nil
	})
	if err != nil {
		t.Fatalf("Enumerate after kill: %v", err)
	}
	seqs := map[uint64]bool{}
	for id, m := range held {
		b, err := s.Get(ctx, id)
		if err != nil {
			t.Fatalf("Get(%s) after kill: %v", id, err)
		}
		if len(b) != m.Size {
			t.Fatalf("Get(%s): %d bytes, Meta says %d", id, len(b), m.Size)
		}
		if seqs[m.Seq] {
			t.Fatalf("Seq %d used twice", m.Seq)
		}
		seqs[m.Seq] = true
	}
	// Reference counts agree with the file records (AddFile is atomic).
	files, err := s.Files(ctx)
	if err != nil {
		t.Fatalf("Files after kill: %v", err)
	}
	counted := map[blocks.ID]int{}
	for _, f := range files {
		full, err := s.File(ctx, f.Key)
		if err != nil {
			t.Fatalf("File(%q) after kill: %v", f.Key, err)
		}
		if len(full.Blocks) != f.NBlock {
			t.Fatalf("File(%q): %d blocks, record says %d", f.Key, len(full.Blocks), f.NBlock)
		}
		for _, id := range full.Blocks {
			counted[id]++
		}
	}
	for id, m := range held {
		if m.Refs != counted[id] {
			t.Fatalf("block %s: Refs %d, but %d files list it", id, m.Refs, counted[id])
		}
	}
	st, err := s.Stats(ctx)
	if err != nil {
		t.Fatalf("Stats after kill: %v", err)
	}
	if st.Blocks != len(held) || st.Files != len(files) {
		t.Fatalf("Stats = %+v; Enumerate found %d blocks, Files %d", st, len(held), len(files))
	}
	r := rand.New(rand.NewPCG(uint64(len(held)), 99))
	id, b := mustPut(t, s, r, 128<<10, 0)
	if got, err := s.Get(ctx, id); err != nil || !bytes.Equal(got, b) {
		t.Fatalf("Get of a new block after kill: %v", err)
	}
	if err := s.Delete(ctx, id); err != nil { // keep Refs bookkeeping simple for the next round
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close after kill: %v", err)
	}
}

// TestDiskRecoverIndex damages goleveldb's CURRENT file: OpenDisk must
// repair the index with leveldb.RecoverFile and find the blocks again.
func TestDiskRecoverIndex(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	r := rand.New(rand.NewPCG(12, 13))
	s := openDisk(t, dir, blocks.DiskOptions{})
	data := map[blocks.ID][]byte{}
	for range 20 {
		id, b := mustPut(t, s, r, 4096, 0)
		data[id] = b
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "index", "CURRENT"), []byte("garbage"), 0o644); err != nil {
		t.Fatal(err)
	}
	s = openDisk(t, dir, blocks.DiskOptions{})
	defer s.Close()
	for id, b := range data {
		if got, err := s.Get(ctx, id); err != nil || !bytes.Equal(got, b) {
			t.Fatalf("Get after index recovery: %v", err)
		}
	}
	mustPut(t, s, r, 4096, 0)
}
