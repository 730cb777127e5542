package blocks_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/blockmix/blockmix/blocks"
	"github.com/blockmix/blockmix/blocks/storetest"
)

// compactOpts gives segments of 64 KiB: a few blocks each.
var compactOpts = blocks.DiskOptions{SegmentSize: 64 << 10}

const recordHeader = blocks.RecordHeaderSize // bytes before a block's bytes in a segment

// compactingDisk compacts after every write that can leave dead bytes, so
// that the conformance suite runs against a store that is compacted all the
// time.
type compactingDisk struct{ *blocks.Disk }

func (c compactingDisk) compact(ctx context.Context, err error) error {
	if err != nil {
		return err
	}
	_, err = c.Disk.Compact(ctx, 0)
	return err
}

func (c compactingDisk) Put(ctx context.Context, id blocks.ID, data []byte, tag uint64) error {
	return c.compact(ctx, c.Disk.Put(ctx, id, data, tag))
}

func (c compactingDisk) Delete(ctx context.Context, id blocks.ID) error {
	return c.compact(ctx, c.Disk.Delete(ctx, id))
}

func (c compactingDisk) Quarantine(ctx context.Context, id blocks.ID, reason string) error {
	return c.compact(ctx, c.Disk.Quarantine(ctx, id, reason))
}

func TestDiskConformanceCompacting(t *testing.T) {
	storetest.Run(t, func(t *testing.T) blocks.Store {
		return compactingDisk{openDisk(t, t.TempDir(), blocks.DiskOptions{SegmentSize: 16 << 10})}
	})
}

// filled is a store with blocks put, some deleted and some quarantined.
type filled struct {
	live map[blocks.ID][]byte
	gone []blocks.ID
}

// fill puts n blocks of up to maxSize bytes into s, records a file over the
// first tenth, then deletes about frac of the others (and quarantines two).
func fill(t *testing.T, s *blocks.Disk, r *rand.Rand, n, maxSize int, frac float64) filled {
	t.Helper()
	ctx := context.Background()
	f := filled{live: map[blocks.ID][]byte{}}
	var ids []blocks.ID
	for i := range n {
		id, b := mustPut(t, s, r, 1+r.IntN(maxSize), uint64(i%5))
		f.live[id] = b
		ids = append(ids, id)
	}
	if err := s.AddFile(ctx, blocks.FileRecord{Key: "file", Size: 1, Blocks: ids[:n/10]}); err != nil {
		t.Fatal(err)
	}
	quarantined := 0
	for _, id := range ids[n/10:] {
		if r.Float64() >= frac {
			continue
		}
		var err error
		if quarantined < 2 {
			quarantined++
			err = s.Quarantine(ctx, id, "test")
		} else {
			err = s.Delete(ctx, id)
		}
		if err != nil {
			t.Fatal(err)
		}
		delete(f.live, id)
		f.gone = append(f.gone, id)
	}
	return f
}

// check reads every live block back and finds none of the gone ones.
func (f filled) check(t *testing.T, s blocks.Store) {
	t.Helper()
	ctx := context.Background()
	for id, b := range f.live {
		got, err := s.Get(ctx, id)
		if err != nil || !bytes.Equal(got, b) {
			t.Fatalf("Get(%s): %v (equal %v)", id.Short(), err, bytes.Equal(got, b))
		}
	}
	for _, id := range f.gone {
		if _, err := s.Get(ctx, id); !errors.Is(err, blocks.ErrNotFound) {
			t.Fatalf("Get of a deleted block: err = %v, want ErrNotFound", err)
		}
	}
	n := 0
	if err := s.Enumerate(ctx, func(blocks.ID, blocks.Meta) error { n++; return nil }); err != nil {
		t.Fatal(err)
	}
	if n != len(f.live) {
		t.Fatalf("Enumerate: %d blocks, want %d", n, len(f.live))
	}
}

func segments(t *testing.T, s *blocks.Disk) []blocks.SegmentInfo {
	t.Helper()
	infos, err := s.Segments()
	if err != nil {
		t.Fatalf("Segments: %v", err)
	}
	return infos
}

func segmentBytes(infos []blocks.SegmentInfo) int64 {
	var n int64
	for _, in := range infos {
		n += in.Size
	}
	return n
}

// checkSegmentFiles: the files on disk are exactly the segments listed.
func checkSegmentFiles(t *testing.T, dir string, s *blocks.Disk) {
	t.Helper()
	var want []string
	for _, in := range segments(t, s) {
		want = append(want, filepath.Join(dir, "segments", fmt.Sprintf("%08d.seg", in.Num)))
	}
	got := segmentFiles(t, dir)
	sort.Strings(got)
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("segment files %v, Segments lists %v", got, want)
	}
}

// compactAll compacts until nothing is left to do and then checks that every
// segment but the append one holds live records only.
func compactAll(t *testing.T, s *blocks.Disk) {
	t.Helper()
	ctx := context.Background()
	for i := 0; ; i++ {
		cs, err := s.Compact(ctx, 0)
		if err != nil {
			t.Fatalf("Compact: %v", err)
		}
		if cs.Segments == 0 {
			if cs != (blocks.CompactStats{}) {
				t.Fatalf("Compact that removed nothing reports %+v", cs)
			}
			break
		}
		if i == 5 {
			t.Fatalf("Compact(0) still removes segments after %d runs", i)
		}
	}
	var live int64
	err := s.Enumerate(ctx, func(_ blocks.ID, m blocks.Meta) error {
		live += int64(recordHeader + m.Size)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	infos := segments(t, s)
	closed := segmentBytes(infos[:len(infos)-1])
	if closed > live {
		t.Fatalf("after a full compaction the closed segments hold %d bytes, more than the %d live ones", closed, live)
	}
	for _, in := range infos[:len(infos)-1] {
		if in.Dead != 0 {
			t.Fatalf("after a full compaction segment %d has %d dead bytes", in.Num, in.Dead)
		}
	}
}

func TestCompactFreesSpace(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := openDisk(t, dir, compactOpts)
	defer func() { s.Close() }()
	r := rand.New(rand.NewPCG(21, 22))
	f := fill(t, s, r, 400, 12<<10, 0.6)
	before := takeSnapshot(t, s)
	stBefore, err := s.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	segsBefore := segments(t, s)

	cs, err := s.Compact(ctx, 0.5)
	if err != nil {
		t.Fatalf("Compact: %v", err)
	}
	t.Logf("Compact(0.5) on %d segments: %+v", len(segsBefore), cs)
	if cs.Segments == 0 || cs.Blocks == 0 || cs.Moved == 0 || cs.Freed <= 0 || cs.Quarantined != 0 {
		t.Fatalf("Compact(0.5) = %+v, want segments removed, blocks moved and bytes freed", cs)
	}
	segsAfter := segments(t, s)
	if got := segmentBytes(segsBefore) - segmentBytes(segsAfter); got != cs.Freed {
		t.Fatalf("segments shrank by %d bytes, Compact says it freed %d", got, cs.Freed)
	}
	if len(segsAfter) >= len(segsBefore) {
		t.Fatalf("%d segments before, %d after", len(segsBefore), len(segsAfter))
	}
	checkSegmentFiles(t, dir, s)
	for _, in := range segsAfter {
		// The append segment at the start was not for this Compact to take.
		if in.Num < segsBefore[len(segsBefore)-1].Num && float64(in.Dead) >= 0.5*float64(in.Size) {
			t.Fatalf("segment %+v is half dead and was left", in)
		}
	}
	stAfter, err := s.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if stAfter.DiskBytes >= stBefore.DiskBytes-cs.Freed/2 {
		t.Fatalf("DiskBytes %d -> %d, but %d bytes were freed", stBefore.DiskBytes, stAfter.DiskBytes, cs.Freed)
	}
	after := takeSnapshot(t, s)
	if fmt.Sprint(after.metas) != fmt.Sprint(before.metas) || fmt.Sprint(after.full) != fmt.Sprint(before.full) {
		t.Fatal("Compact changed the blocks' Meta or the files")
	}
	if fmt.Sprint(after.stats) != fmt.Sprint(before.stats) {
		t.Fatalf("Stats (but DiskBytes) changed: %+v -> %+v", before.stats, after.stats)
	}
	f.check(t, s)

	compactAll(t, s)
	checkSegmentFiles(t, dir, s)
	f.check(t, s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = openDisk(t, dir, compactOpts)
	f.check(t, s)
	if after := takeSnapshot(t, s); fmt.Sprint(after.metas) != fmt.Sprint(before.metas) {
		t.Fatal("Meta changed across compaction and reopen")
	}
	checkSegmentFiles(t, dir, s)
	if cs, err := s.Compact(ctx, 0); err != nil || cs != (blocks.CompactStats{}) {
		t.Fatalf("Compact after a full compaction and reopen = %+v, %v; want nothing done", cs, err)
	}
	// Appends go on after the segments that were removed.
	id, b := mustPut(t, s, r, 50<<10, 0)
	f.live[id] = b
	f.check(t, s)
}

func TestCompactDeadSegments(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := openDisk(t, dir, compactOpts)
	defer s.Close()
	r := rand.New(rand.NewPCG(23, 24))
	f := fill(t, s, r, 60, 8<<10, 0)
	for id := range f.live {
		if err := s.Delete(ctx, id); err != nil {
			t.Fatal(err)
		}
		f.gone = append(f.gone, id)
	}
	clear(f.live)
	before := segments(t, s)
	if len(before) < 4 {
		t.Fatalf("only %d segments", len(before))
	}
	cs, err := s.Compact(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	want := blocks.CompactStats{Segments: len(before) - 1, Freed: segmentBytes(before[:len(before)-1])}
	if cs != want {
		t.Fatalf("Compact(1) of dead segments = %+v, want %+v", cs, want)
	}
	if after := segments(t, s); len(after) != 1 || after[0] != before[len(before)-1] {
		t.Fatalf("Segments after = %+v, want only the append segment %+v", after, before[len(before)-1])
	}
	checkSegmentFiles(t, dir, s)
	f.check(t, s)
	id, b := mustPut(t, s, r, 60<<10, 0)
	f.live[id] = b
	f.check(t, s)
}

func TestCompactMinDead(t *testing.T) {
	ctx := context.Background()
	s := openDisk(t, t.TempDir(), compactOpts)
	defer s.Close()
	for _, bad := range []float64{-0.1, 1.01, math.NaN(), math.Inf(1)} {
		if _, err := s.Compact(ctx, bad); err == nil {
			t.Errorf("Compact(%v) did not fail", bad)
		}
	}
	r := rand.New(rand.NewPCG(25, 26))
	f := fill(t, s, r, 100, 8<<10, 0.3)
	// minDead 1 takes only segments without a live record: none here.
	if cs, err := s.Compact(ctx, 1); err != nil || cs.Blocks != 0 {
		t.Fatalf("Compact(1) = %+v, %v; want no block moved", cs, err)
	}
	// A high threshold takes fewer segments than a low one.
	segs := segments(t, s)
	want := 0
	for _, in := range segs[:len(segs)-1] {
		if float64(in.Dead) >= 0.6*float64(in.Size) {
			want++
		}
	}
	cs, err := s.Compact(ctx, 0.6)
	if err != nil || cs.Segments != want {
		t.Fatalf("Compact(0.6) = %+v, %v; want %d segments removed", cs, err, want)
	}
	f.check(t, s)
	// A canceled context stops it before it starts.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := s.Compact(cctx, 0); !errors.Is(err, context.Canceled) {
		t.Fatalf("Compact with a canceled context: err = %v", err)
	}
}

// TestCompactDeleteDuring deletes and puts blocks between the copies and the
// repointing of their entries.
func TestCompactDeleteDuring(t *testing.T) {
	defer blocks.SetCompactLimits(32<<10, 6, 40)()
	ctx := context.Background()
	dir := t.TempDir()
	r := rand.New(rand.NewPCG(27, 28))
	var s *blocks.Disk
	var f filled
	var calls atomic.Int32
	hookErr := make(chan error, 1)
	defer blocks.SetTestHook(func(point string) {
		if point != "compact-copied" || calls.Add(1) != 2 {
			return
		}
		// Every other live block goes, some of them just copied.
		n := 0
		for id := range f.live {
			if n++; n%2 == 0 {
				continue
			}
			if err := s.Delete(ctx, id); err != nil {
				hookErr <- err
				return
			}
			delete(f.live, id)
			f.gone = append(f.gone, id)
		}
		for range 5 {
			id, b := randBlock(r, 1+r.IntN(8<<10))
			if err := s.Put(ctx, id, b, 0); err != nil {
				hookErr <- err
				return
			}
			f.live[id] = b
		}
	})()
	s = openDisk(t, dir, compactOpts)
	defer s.Close()
	f = fill(t, s, r, 300, 8<<10, 0.5)
	cs, err := s.Compact(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-hookErr:
		t.Fatal(err)
	default:
	}
	if calls.Load() < 3 {
		t.Fatalf("Compact flushed %d times, want several", calls.Load())
	}
	t.Logf("%+v", cs)
	f.check(t, s)
	// The copies of the blocks deleted meanwhile are dead bytes, reclaimed
	// by the next compactions.
	var dead int64
	for _, in := range segments(t, s) {
		dead += in.Dead
	}
	if dead == 0 {
		t.Fatal("no dead bytes after deleting blocks during a compaction")
	}
	compactAll(t, s)
	checkSegmentFiles(t, dir, s)
	f.check(t, s)
}

// TestCompactGetFollowsMove: a Get that looked up its entry before Compact
// moved the block and removed its segment reads it at its new place.
func TestCompactGetFollowsMove(t *testing.T) {
	ctx := context.Background()
	var armed atomic.Bool
	looked, release := make(chan struct{}), make(chan struct{})
	defer blocks.SetTestHook(func(point string) {
		if point == "get-looked-up" && armed.CompareAndSwap(true, false) {
			close(looked)
			select {
			case <-release:
			case <-time.After(10 * time.Second):
			}
		}
	})()
	dir := t.TempDir()
	s := openDisk(t, dir, compactOpts)
	defer s.Close()
	r := rand.New(rand.NewPCG(29, 30))
	x, xb := mustPut(t, s, r, 10<<10, 0) // in segment 1
	y, _ := mustPut(t, s, r, 10<<10, 0)
	for range 10 {
		mustPut(t, s, r, 10<<10, 0)
	}
	if err := s.Delete(ctx, y); err != nil {
		t.Fatal(err)
	}
	armed.Store(true)
	type result struct {
		b   []byte
		err error
	}
	got := make(chan result, 1)
	go func() {
		b, err := s.Get(ctx, x)
		got <- result{b, err}
	}()
	select {
	case <-looked:
	case <-time.After(10 * time.Second):
		t.Fatal("Get did not look up its entry")
	}
	cs, err := s.Compact(ctx, 0)
	if err != nil || cs.Blocks == 0 {
		t.Fatalf("Compact = %+v, %v", cs, err)
	}
	if segments(t, s)[0].Num == 1 {
		t.Fatal("segment 1 was not removed")
	}
	close(release)
	select {
	case res := <-got:
		if res.err != nil || !bytes.Equal(res.b, xb) {
			t.Fatalf("Get across a compaction: %v", res.err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Get did not return")
	}
}

// TestCompactWaitsForReader: Compact does not close a segment while a read
// of it is in flight; the reader gets the old record's bytes.
func TestCompactWaitsForReader(t *testing.T) {
	ctx := context.Background()
	var armed atomic.Bool
	reading, release, repointed := make(chan struct{}), make(chan struct{}), make(chan struct{}, 1)
	defer blocks.SetTestHook(func(point string) {
		switch {
		case point == "read-locked" && armed.CompareAndSwap(true, false):
			close(reading)
			select {
			case <-release:
			case <-time.After(10 * time.Second):
			}
		case point == "compact-repointed":
			select {
			case repointed <- struct{}{}:
			default:
			}
		}
	})()
	dir := t.TempDir()
	s := openDisk(t, dir, compactOpts)
	defer s.Close()
	r := rand.New(rand.NewPCG(31, 32))
	x, xb := mustPut(t, s, r, 10<<10, 0)
	y, _ := mustPut(t, s, r, 10<<10, 0)
	for range 10 {
		mustPut(t, s, r, 10<<10, 0)
	}
	if err := s.Delete(ctx, y); err != nil {
		t.Fatal(err)
	}
	armed.Store(true)
	got := make(chan error, 1)
	go func() {
		b, err := s.Get(ctx, x)
		if err == nil && !bytes.Equal(b, xb) {
			err = errors.New("wrong bytes")
		}
		got <- err
	}()
	select {
	case <-reading:
	case <-time.After(10 * time.Second):
		t.Fatal("Get did not start reading")
	}
	compacted := make(chan error, 1)
	go func() {
		_, err := s.Compact(ctx, 0)
		compacted <- err
	}()
	select {
	case <-repointed:
	case <-time.After(10 * time.Second):
		t.Fatal("Compact did not repoint")
	}
	select {
	case err := <-compacted:
		t.Fatalf("Compact returned (%v) while a read of a segment it removes was in flight", err)
	case <-time.After(100 * time.Millisecond):
	}
	close(release)
	for _, c := range []chan error{got, compacted} {
		select {
		case err := <-c:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("Get or Compact did not return")
		}
	}
	if segments(t, s)[0].Num == 1 {
		t.Fatal("segment 1 was not removed")
	}
	if b, err := s.Get(ctx, x); err != nil || !bytes.Equal(b, xb) {
		t.Fatalf("Get after Compact: %v", err)
	}
}

// TestCompactConcurrent runs Compact over and over while other goroutines
// read, put, delete, enumerate and change files (run it with -race).
func TestCompactConcurrent(t *testing.T) {
	defer blocks.SetCompactLimits(48<<10, 5, 50)()
	ctx := context.Background()
	dir := t.TempDir()
	s := openDisk(t, dir, blocks.DiskOptions{SegmentSize: 32 << 10})
	defer s.Close()
	r := rand.New(rand.NewPCG(33, 34))
	keep := map[blocks.ID][]byte{} // never deleted
	var keepIDs []blocks.ID
	for range 150 {
		id, b := mustPut(t, s, r, 1+r.IntN(6<<10), 1)
		keep[id] = b
		keepIDs = append(keepIDs, id)
	}
	var doomedMu sync.Mutex
	doomed := map[blocks.ID][]byte{} // put and deleted all the time
	var doomedIDs []blocks.ID
	for range 150 {
		id, b := mustPut(t, s, r, 1+r.IntN(6<<10), 2)
		doomed[id] = b
		doomedIDs = append(doomedIDs, id)
	}

	var stop atomic.Bool
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	fail := func(err error) {
		select {
		case errs <- err:
		default:
		}
		stop.Store(true)
	}
	run := func(fn func(r *rand.Rand) error, seed uint64) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(seed, 35))
			for !stop.Load() {
				if err := fn(r); err != nil {
					fail(err)
					return
				}
			}
		}()
	}
	for w := range 3 { // readers
		run(func(r *rand.Rand) error {
			id := keepIDs[r.IntN(len(keepIDs))]
			b, err := s.Get(ctx, id)
			if err != nil {
				return fmt.Errorf("Get of a kept block: %w", err)
			}
			if !bytes.Equal(b, keep[id]) {
				return errors.New("Get of a kept block: wrong bytes")
			}
			doomedMu.Lock()
			id = doomedIDs[r.IntN(len(doomedIDs))]
			want := doomed[id]
			doomedMu.Unlock()
			b, err = s.Get(ctx, id)
			if err == nil && !bytes.Equal(b, want) {
				return errors.New("Get of a doomed block: wrong bytes")
			}
			if err != nil && !errors.Is(err, blocks.ErrNotFound) {
				return fmt.Errorf("Get of a doomed block: %w", err)
			}
			return nil
		}, uint64(w))
	}
	run(func(r *rand.Rand) error { // churn
		id, b := randBlock(r, 1+r.IntN(6<<10))
		doomedMu.Lock()
		doomed[id] = b
		doomedIDs = append(doomedIDs, id)
		victim := doomedIDs[r.IntN(len(doomedIDs))]
		doomedMu.Unlock()
		if err := s.Put(ctx, id, b, 2); err != nil {
			return err
		}
		return s.Delete(ctx, victim)
	}, 10)
	files := 0
	run(func(r *rand.Rand) error { // files: reference counts change during moves
		files++
		key := fmt.Sprint(files)
		start := r.IntN(len(keepIDs) - 10)
		if err := s.AddFile(ctx, blocks.FileRecord{Key: key, Size: 1, Blocks: keepIDs[start : start+10]}); err != nil {
			return err
		}
		if files%2 == 0 {
			return s.RemoveFile(ctx, fmt.Sprint(files-1))
		}
		return nil
	}, 11)
	run(func(*rand.Rand) error { // enumerate
		seen := 0
		err := s.Enumerate(ctx, func(id blocks.ID, _ blocks.Meta) error {
			if _, ok := keep[id]; ok {
				seen++
			}
			return nil
		})
		if err == nil && seen != len(keep) {
			err = fmt.Errorf("Enumerate saw %d of the %d kept blocks", seen, len(keep))
		}
		return err
	}, 12)
	run(func(*rand.Rand) error { return s.Sync() }, 13)

	var total blocks.CompactStats
	runs := 0
	// Three seconds of compactions, or on a loaded machine (where the
	// churn is slow to make dead segments) as long as none was compacted
	// yet, within a minute.
	start := time.Now()
	enough := func() bool {
		d := time.Since(start)
		return d > time.Minute || (d > 3*time.Second && total.Segments > 0 && total.Blocks > 0)
	}
	for !enough() && !stop.Load() && (runs < 30 || total.Segments < 30) {
		cs, err := s.Compact(ctx, 0.3)
		if err != nil {
			fail(err)
			break
		}
		runs++
		total.Segments += cs.Segments
		total.Blocks += cs.Blocks
		total.Moved += cs.Moved
	}
	stop.Store(true)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if t.Failed() {
		return
	}
	t.Logf("%d compactions: %+v", runs, total)
	if total.Segments == 0 || total.Blocks == 0 {
		t.Fatalf("the compactions removed %d segments and moved %d blocks", total.Segments, total.Blocks)
	}
	compactAll(t, s)
	checkSegmentFiles(t, dir, s)
	for id, b := range keep {
		if got, err := s.Get(ctx, id); err != nil || !bytes.Equal(got, b) {
			t.Fatalf("Get of a kept block at the end: %v", err)
		}
	}
	// Reference counts match the file records.
	refs := map[blocks.ID]int{}
	fs, err := s.Files(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fs {
		full, err := s.File(ctx, f.Key)
		if err != nil {
			t.Fatal(err)
		}
		for _, id := range full.Blocks {
			refs[id]++
		}
	}
	for id := range keep {
		if m, err := s.Stat(ctx, id); err != nil || m.Refs != refs[id] {
			t.Fatalf("Stat = %+v, %v; want %d refs", m, err, refs[id])
		}
	}
}

// TestCompactQuarantinesDamaged: a record that does not read back intact is
// quarantined, not moved.
func TestCompactQuarantinesDamaged(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := openDisk(t, dir, compactOpts)
	defer s.Close()
	r := rand.New(rand.NewPCG(37, 38))
	a, ab := mustPut(t, s, r, 10<<10, 0) // the first record of segment 1
	b, _ := mustPut(t, s, r, 10<<10, 0)
	c, cb := mustPut(t, s, r, 10<<10, 0)
	for range 10 {
		mustPut(t, s, r, 10<<10, 0)
	}
	if err := s.Delete(ctx, b); err != nil {
		t.Fatal(err)
	}
	flipByte(t, filepath.Join(dir, "segments", "00000001.seg"), recordHeader+100)
	cs, err := s.Compact(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	if cs.Quarantined != 1 || cs.Segments == 0 {
		t.Fatalf("Compact = %+v, want one block quarantined", cs)
	}
	if _, err := s.Get(ctx, a); !errors.Is(err, blocks.ErrNotFound) {
		t.Fatalf("Get of the damaged block: err = %v, want ErrNotFound", err)
	}
	if got, err := s.Get(ctx, c); err != nil || !bytes.Equal(got, cb) {
		t.Fatalf("Get of its neighbour: %v", err)
	}
	st, err := s.Stats(ctx)
	if err != nil || st.Quarantined != 1 {
		t.Fatalf("Stats = %+v, %v; want 1 quarantined", st, err)
	}
	copyBytes, err := os.ReadFile(filepath.Join(dir, "quarantine", a.String()))
	if err != nil {
		t.Fatalf("quarantine copy: %v", err)
	}
	if bytes.Equal(copyBytes, ab) || len(copyBytes) != len(ab) {
		t.Fatal("the quarantine copy is not the damaged bytes")
	}
}

// TestCompactStops: Close or a canceled context stops a Compact between two
// records; what it did is durable and every block still reads.
func TestCompactStops(t *testing.T) {
	for _, how := range []string{"close", "cancel"} {
		t.Run(how, func(t *testing.T) {
			defer blocks.SetCompactLimits(1<<20, 4, 1000)()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			dir := t.TempDir()
			var s *blocks.Disk
			var calls atomic.Int32
			closed := make(chan error, 1)
			defer blocks.SetTestHook(func(point string) {
				if point != "compact-copied" || calls.Add(1) != 1 {
					return
				}
				if how == "cancel" {
					cancel()
					return
				}
				go func() { closed <- s.Close() }()
				// Wait until Close has begun: then the store refuses new work.
				for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
					if _, err := s.Has(context.Background(), blocks.ID{}); errors.Is(err, blocks.ErrClosed) {
						return
					}
				}
			})()
			s = openDisk(t, dir, compactOpts)
			defer func() { s.Close() }()
			r := rand.New(rand.NewPCG(39, 40))
			f := fill(t, s, r, 200, 8<<10, 0.6)
			cs, err := s.Compact(ctx, 0)
			want := map[string]error{"close": blocks.ErrClosed, "cancel": context.Canceled}[how]
			if !errors.Is(err, want) {
				t.Fatalf("Compact = %+v, %v; want an error wrapping %v", cs, err, want)
			}
			if cs.Blocks == 0 {
				t.Fatalf("Compact = %+v: the first flush moved nothing", cs)
			}
			if how == "close" {
				select {
				case err := <-closed:
					if err != nil {
						t.Fatalf("Close: %v", err)
					}
				case <-time.After(10 * time.Second):
					t.Fatal("Close did not return")
				}
			}
			s.Close()
			s = openDisk(t, dir, compactOpts)
			checkSegmentFiles(t, dir, s)
			f.check(t, s)
			compactAll(t, s)
			f.check(t, s)
		})
	}
}

// The compaction crash test: like TestDiskCrash, with a goroutine that
// compacts all the time while the others put and delete. Some rounds kill the
// child at a chosen point of a compaction (the child kills itself there),
// the others at a random moment.

const crashCompactEnv = "BLOCKMIX_CRASH_COMPACT_CHILD_DIR"

var crashCompactOpts = blocks.DiskOptions{SegmentSize: 64 << 10}

// TestDiskCrashCompactChild is the child's body; it does nothing unless run
// by TestDiskCrashCompact. It prints what TestDiskCrashChild prints, plus
// "C n" after each Compact that removed n segments, and "K point" just
// before it kills itself at the point its _KILL variable names ("point:n",
// the nth time).
func TestDiskCrashCompactChild(t *testing.T) {
	dir := os.Getenv(crashCompactEnv)
	if dir == "" {
		t.Skip("run by TestDiskCrashCompact")
	}
	seed, _ := strconv.ParseUint(os.Getenv(crashCompactEnv+"_SEED"), 10, 64)
	if point, nth, ok := strings.Cut(os.Getenv(crashCompactEnv+"_KILL"), ":"); ok {
		n, _ := strconv.Atoi(nth)
		var hits atomic.Int32
		blocks.SetTestHook(func(p string) {
			if p == point && int(hits.Add(1)) == n {
				fmt.Printf("K %s\n", p)
				if proc, err := os.FindProcess(os.Getpid()); err == nil {
					proc.Kill()
				}
				time.Sleep(time.Minute)
			}
		})
	}
	blocks.SetCompactLimits(96<<10, 8, 200)
	s, err := blocks.OpenDisk(dir, crashCompactOpts)
	if err != nil {
		fmt.Printf("open: %v\n", err)
		os.Exit(3)
	}
	fmt.Println("ready")
	ctx := context.Background()
	deadline := time.Now().Add(20 * time.Second) // in case nobody kills us
	exit := func(what string, err error) {
		fmt.Printf("%s: %v\n", what, err)
		os.Exit(3)
	}
	var wg sync.WaitGroup
	for w := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(seed, uint64(w)))
			var kept, doomed []blocks.ID
			for i := 0; time.Now().Before(deadline); i++ {
				id, b := randBlock(r, 1+r.IntN(16<<10))
				if err := s.Put(ctx, id, b, r.Uint64()%8); err != nil {
					exit("put", err)
				}
				fmt.Printf("P %s\n", id)
				if r.IntN(3) == 0 {
					kept = append(kept, id)
				} else {
					doomed = append(doomed, id)
				}
				if len(kept) >= 6 {
					f := blocks.FileRecord{Key: fmt.Sprintf("c%d-%d-%d", seed, w, i), Size: 1, Blocks: kept}
					if err := s.AddFile(ctx, f); err != nil {
						exit("addfile", err)
					}
					kept = nil
				}
				if len(doomed) >= 3 {
					fmt.Printf("D %s\n", doomed[0])
					if err := s.Delete(ctx, doomed[0]); err != nil {
						exit("delete", err)
					}
					doomed = doomed[1:]
				}
				if i%16 == 15 {
					if err := s.Sync(); err != nil {
						exit("sync", err)
					}
				}
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for time.Now().Before(deadline) {
			cs, err := s.Compact(ctx, 0.25)
			if err != nil {
				exit("compact", err)
			}
			fmt.Printf("C %d\n", cs.Segments)
			time.Sleep(time.Millisecond)
		}
	}()
	wg.Wait()
	s.Close()
}

func TestDiskCrashCompact(t *testing.T) {
	if os.Getenv(crashCompactEnv) != "" || os.Getenv(crashEnv) != "" {
		t.Skip("in the child")
	}
	if testing.Short() {
		t.Skip("short")
	}
	ctx := context.Background()
	dir := t.TempDir()
	r := rand.New(rand.NewPCG(2025, 8))
	want := map[blocks.ID]bool{}
	points := []string{"compact-copied", "compact-repointed", "compact-removed", ""}
	killed := map[string]int{}
	removedByChildren := 0
	for round := range 2 * len(points) {
		point := points[round%len(points)]
		var env []string
		delay := time.Duration(100+r.IntN(500)) * time.Millisecond
		if point != "" {
			env = []string{fmt.Sprintf("%s_KILL=%s:%d", crashCompactEnv, point, 1+r.IntN(30))}
			delay = 10 * time.Second // the child kills itself well before
		}
		lines := runCrashChild(t, "TestDiskCrashCompactChild", crashCompactEnv, dir, uint64(round), env, delay)
		killedAt := ""
		for _, l := range lines {
			kind, arg, _ := strings.Cut(l, " ")
			switch kind {
			case "P", "D":
				id, err := blocks.ParseID(arg)
				if err != nil {
					t.Fatalf("round %d: child said %q: %v", round, l, err)
				}
				want[id] = kind == "P"
			case "C":
				n, err := strconv.Atoi(arg)
				if err != nil {
					t.Fatalf("round %d: child said %q", round, l)
				}
				removedByChildren += n
			case "K":
				killedAt = arg
			default:
				t.Fatalf("round %d: child said %q", round, l)
			}
		}
		if killedAt != "" {
			killed[killedAt]++
		}
		checkAfterCrash(t, dir, crashCompactOpts, want)
		if killedAt == "compact-repointed" {
			// Killed after the index stopped pointing into some segments
			// and before their removal: the next Compact removes them.
			s := openDisk(t, dir, crashCompactOpts)
			cs, err := s.Compact(ctx, 1)
			if err != nil || cs.Segments == 0 || cs.Blocks != 0 {
				t.Fatalf("round %d: Compact(1) after a kill between repointing and removal = %+v, %v; want segments removed, nothing moved", round, cs, err)
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
		}
		if round%2 == 1 {
			s := openDisk(t, dir, crashCompactOpts)
			compactAll(t, s)
			checkSegmentFiles(t, dir, s)
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			checkAfterCrash(t, dir, crashCompactOpts, want)
		}
		t.Logf("round %d: killed at %q after %d lines", round, killedAt, len(lines))
	}
	for _, p := range points[:len(points)-1] {
		if killed[p] == 0 {
			t.Errorf("no child was killed at %s", p)
		}
	}
	if removedByChildren == 0 {
		t.Error("the children's compactions removed no segment")
	}
}

// TestCompactCopyOfDeletedBlockStaysGone: a block deleted while Compact
// copies it, after the copy looked its entry up and before it wrote the
// copy, leaves a copy written after the delete that nothing points to. Neither
// a rebuilt index nor the recovery after a crash (which scans the same
// way) may bring the block back from it, and its bytes count as dead.
func TestCompactCopyOfDeletedBlockStaysGone(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	defer blocks.SetCompactLimits(1<<20, 1, 200)() // one record a flush
	s := openDisk(t, dir, compactOpts)
	r := rand.New(rand.NewPCG(31, 32))
	var ids []blocks.ID
	for range 12 {
		id, _ := mustPut(t, s, r, 8<<10, 1)
		ids = append(ids, id)
	}
	// The first segment holds ids[0] to about ids[6]: one dead record
	// makes Compact take it.
	if err := s.Delete(ctx, ids[0]); err != nil {
		t.Fatal(err)
	}
	// Compact copies ids[1], ids[2], … in order; ids[4] goes between the
	// copy's look-up and its write.
	checked, deleted := 0, false
	defer blocks.SetTestHook(func(p string) {
		if p == "compact-checked" {
			if checked++; checked == 4 {
				deleted = true
				if err := s.Delete(ctx, ids[4]); err != nil {
					t.Error(err)
				}
			}
		}
	})()
	cs, err := s.Compact(ctx, 0)
	if err != nil || !deleted || cs.Blocks == 0 {
		t.Fatalf("Compact = %+v, %v (deleted during it: %v)", cs, err, deleted)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Join(dir, "index")); err != nil {
		t.Fatal(err)
	}
	if _, err := blocks.RebuildIndex(dir, compactOpts); err != nil {
		t.Fatal(err)
	}
	s = openDisk(t, dir, compactOpts)
	defer s.Close()
	for i, id := range ids {
		ok, err := s.Has(ctx, id)
		if err != nil || ok == (i == 0 || i == 4) {
			t.Errorf("block %d held %v (%v) after the index was rebuilt; blocks 0 and 4 were deleted", i, ok, err)
		}
	}
}
