package blocks

import (
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The power-cut test: a random workload against a Disk on a simulated
// machine (crashfs_test.go), a power cut at a random point (between two
// operations or inside one, counted in file system calls), then the store
// opened on what the cut left and checked:
//
//   - it opens;
//   - every acknowledged block (a Sync, or a Close, returned nil after its
//     Put, and no Delete was called since) reads back with its bytes;
//   - every block Enumerate lists reads back intact (no ErrCorrupt);
//   - every acknowledged file (AddFile, then a Sync; no RemoveFile since)
//     is in Files, with its block list;
//   - no block reads back as wrong bytes;
//   - the store takes a Put and a Sync and closes cleanly.
//
// Seeds 1..N run (N = 300, BLOCKMIX_POWERCUT_ROUNDS to change it, e.g. in
// make soak); BLOCKMIX_POWERCUT_SEED=n runs seed n alone, with its
// operations logged. A failure names its seed and cut point. The workload
// and the cut are drawn from the seed; goleveldb's background compaction
// adds file system calls at times the seed does not decide, so a replay
// cuts at the same call number but that call may differ.

const powerCutSegSize = 64 << 10

// powerCutFailure is one broken invariant of one round.
type powerCutFailure struct {
	kind   string // what broke, without details, to group rounds by
	detail string
}

// powerCutModel is what the workload did, as far as the test knows.
type powerCutModel struct {
	data      map[ID][]byte
	liveSince map[ID]int // op at which the block became held; absent: deleted
	live      []ID       // held blocks, for picking
	files     map[string]powerCutFile
	lastSync  int // op of the last Sync (or Close) that returned nil; -1: none
}

type powerCutFile struct {
	since  int
	blocks []ID
}

func (m *powerCutModel) acked(id ID) bool {
	s, ok := m.liveSince[id]
	return ok && s < m.lastSync
}

func (m *powerCutModel) dropLive(id ID) {
	delete(m.liveSince, id)
	if i := slices.Index(m.live, id); i >= 0 {
		m.live = slices.Delete(m.live, i, i+1)
	}
}

// powerCutRound runs seed's workload on a simulated machine, cuts the
// power, and checks the store on what is left. lying puts the simulator in
// its lying-fsync mode. It returns the broken invariants; errors of the
// harness itself go to t.
func powerCutRound(t *testing.T, seed uint64, lying bool, verbose bool) []powerCutFailure {
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(seed, 0x706f776572637574))
	cutRng := rand.New(rand.NewPCG(seed, 2))
	dir := t.TempDir()
	logf := func(format string, args ...any) {
		if verbose {
			t.Logf(format, args...)
		}
	}

	if seed%10 == 0 {
		// A big file's list finds its repeats through member keys in
		// the index past its first 6000 blocks (see memberAfter).
		defer func(n int) { memberAfter = n }(memberAfter)
		memberAfter = 6000
	}
	m := newCrashFS()
	m.lyingSync = lying
	open := func(m *crashFS) (*Disk, error) {
		return OpenDisk(dir, DiskOptions{
			fs:          m,
			index:       newCrashStorage(m, filepath.Join(dir, indexDir)),
			SegmentSize: powerCutSegSize,
			SmallIndex:  seed%2 == 1, // the lowpower profile's index on odd seeds
		})
	}
	s, err := open(m)
	if err != nil {
		t.Fatalf("seed %d: open: %v", seed, err)
	}

	nops := 20 + rng.IntN(100)
	cutOp := rng.IntN(nops)
	cutCall := 1 + rng.IntN(40) // file system calls into op cutOp
	// In one round in eight every third op adds a big file, so that
	// goleveldb's 2 MiB memtable fills and moves to a new journal. (Few,
	// because the store looks up every ID of a file it adds.)
	bigRound := rng.IntN(8) == 0
	md := &powerCutModel{
		data:      map[ID][]byte{},
		liveSince: map[ID]int{},
		files:     map[string]powerCutFile{},
		lastSync:  -1,
	}
	var fails []powerCutFailure
	fail := func(kind, format string, args ...any) {
		fails = append(fails, powerCutFailure{kind: kind, detail: fmt.Sprintf(format, args...)})
	}
	nfile := 0
	pick := func() (ID, bool) {
		if len(md.live) == 0 {
			return ID{}, false
		}
		return md.live[rng.IntN(len(md.live))], true
	}

	cutAt := ""
ops:
	for op := 0; op < nops; op++ {
		if op == cutOp {
			m.cutBefore(cutCall, cutRng)
		}
		var err error
		var what string
		r := rng.IntN(100)
		big := rng.IntN(3) == 0
		if bigRound && rng.IntN(3) == 0 {
			r, big = 70, true
		}
		switch {
		case r < 45: // put a new block, or again one held
			var b Block
			if id, ok := pick(); ok && r < 4 {
				b = Block{id: id, data: md.data[id]}
			} else {
				size := 1 << 10
				if rng.IntN(5) < 2 {
					size = 16 << 10
				}
				data := make([]byte, size)
				for i := 0; i < size; i += 8 {
					binary.LittleEndian.PutUint64(data[i:], rng.Uint64())
				}
				if b, err = NewBlock(data); err != nil {
					t.Fatal(err)
				}
			}
			what = fmt.Sprintf("put %s (%d bytes)", b.ID(), len(b.Data()))
			md.data[b.ID()] = b.Data()
			err = s.PutBlock(ctx, b, rng.Uint64N(4))
			if err == nil {
				if _, ok := md.liveSince[b.ID()]; !ok {
					md.liveSince[b.ID()] = op
					md.live = append(md.live, b.ID())
				}
			}
		case r < 62:
			what = "sync"
			if err = s.Sync(); err == nil {
				md.lastSync = op
			}
		case r < 72: // a file of held blocks (and perhaps one not held)
			nfile++
			f := FileRecord{
				Key:    fmt.Sprintf("file-%d", nfile),
				Name:   fmt.Sprintf("name-%d", nfile),
				Size:   int64(nfile) * 1000,
				Recipe: fmt.Sprintf("recipe-%d", nfile),
				Added:  time.Unix(1700000000+int64(nfile), 0).UTC(),
			}
			for range 1 + rng.IntN(4) {
				if id, ok := pick(); ok {
					f.Blocks = append(f.Blocks, id)
				}
			}
			if rng.IntN(4) == 0 {
				f.Blocks = append(f.Blocks, Sum([]byte(f.Key)))
			}
			if big {
				// A big file, as a 1 GiB one lists some 25000 IDs: its
				// block list fills goleveldb's 2 MiB memtable after a
				// few dozen, which then moves to a new journal.
				for i := range 4000 + rng.IntN(21000) {
					f.Blocks = append(f.Blocks, Sum(fmt.Appendf(nil, "%s/%d", f.Key, i)))
				}
			}
			what = fmt.Sprintf("add file %s (%d blocks)", f.Key, len(f.Blocks))
			if err = s.AddFile(ctx, f); err == nil {
				md.files[f.Key] = powerCutFile{since: op, blocks: Dedup(f.Blocks)}
			}
		case r < 74:
			keys := sortedKeys(md.files)
			if len(keys) == 0 {
				continue
			}
			key := keys[rng.IntN(len(keys))]
			what = "remove file " + key
			delete(md.files, key) // from now on it may be gone
			err = s.RemoveFile(ctx, key)
		case r < 84:
			id, ok := pick()
			if !ok {
				continue
			}
			what = fmt.Sprintf("delete %s", id)
			md.dropLive(id) // from now on it may be gone
			err = s.Delete(ctx, id)
		case r < 89:
			what = "compact"
			_, err = s.Compact(ctx, 0.5)
		case r < 92:
			what = "close and reopen"
			err = s.Close()
			if err == nil {
				md.lastSync = op
			}
			s = nil
			if err == nil {
				s, err = open(m)
			}
		default:
			id, ok := pick()
			if !ok {
				continue
			}
			what = fmt.Sprintf("get %s", id)
			var got []byte
			if got, err = s.Get(ctx, id); err == nil && string(got) != string(md.data[id]) {
				fail("live store: wrong bytes", "op %d: get %s: wrong bytes", op, id)
			}
		}
		logf("op %d: %s: %v", op, what, err)
		if m.isDead() {
			cutAt = fmt.Sprintf("inside op %d (%s), before file system call %d of it", op, what, cutCall)
			break ops
		}
		if err != nil {
			fail("live store: error", "op %d: %s: %v", op, what, err)
			break
		}
		if op == cutOp {
			break
		}
	}
	if cutAt == "" {
		cutAt = fmt.Sprintf("after op %d", cutOp)
	}
	after := m.powerCut(cutRng)
	logf("power cut %s", cutAt)
	// The process is dead; its Disk sees only errPowerCut now. Close it
	// to stop goleveldb's goroutines; its error means nothing.
	if s != nil {
		_ = s.Close()
	}

	s2, err := open(after)
	if err != nil {
		fail("open after cut fails", "open: %v", err)
		return withCut(fails, cutAt)
	}
	defer func() {
		if s2 != nil {
			s2.Close()
		}
	}()

	ids := sortedIDs(md.data)
	for _, id := range ids {
		got, err := s2.Get(ctx, id)
		switch {
		case err == nil && string(got) != string(md.data[id]):
			fail("wrong bytes", "get %s: wrong bytes", id)
		case err != nil && md.acked(id):
			held, herr := s2.Has(ctx, id)
			kind := "acknowledged block lost: bytes corrupt"
			if herr == nil && !held {
				kind = "acknowledged block lost: not in the index"
			}
			fail(kind, "get %s (acknowledged at op %d, last sync op %d): %v", id, md.liveSince[id], md.lastSync, err)
		}
	}
	err = s2.Enumerate(ctx, func(id ID, _ Meta) error {
		if _, err := s2.Get(ctx, id); err != nil {
			kind := "enumerated block unreadable"
			if _, ok := md.data[id]; !ok {
				kind = "enumerated block never put"
			}
			fail(kind, "enumerate lists %s: get: %v", id, err)
		}
		return nil
	})
	if err != nil {
		fail("enumerate fails", "enumerate: %v", err)
	}
	if err := s2.checkDerived(); err != nil {
		fail("counters or candidates wrong", "%v", err)
	}
	files, err := s2.Files(ctx)
	if err != nil {
		fail("files fails", "files: %v", err)
	}
	listed := map[string]bool{}
	for _, f := range files {
		listed[f.Key] = true
	}
	for _, key := range sortedKeys(md.files) {
		mf := md.files[key]
		if mf.since >= md.lastSync {
			continue // not acknowledged
		}
		if !listed[key] {
			fail("acknowledged file lost", "file %s (added at op %d, last sync op %d) is not in Files", key, mf.since, md.lastSync)
			continue
		}
		f, err := s2.File(ctx, key)
		if err != nil {
			fail("acknowledged file lost", "file %s: %v", key, err)
			continue
		}
		if !slices.Equal(f.Blocks, mf.blocks) {
			fail("acknowledged file's blocks wrong", "file %s: blocks %v, want %v", key, f.Blocks, mf.blocks)
		}
	}

	// The store goes on working.
	b, err := NewBlock([]byte(fmt.Sprintf("after the cut, seed %d", seed)))
	if err != nil {
		t.Fatal(err)
	}
	if err := s2.PutBlock(ctx, b, 0); err != nil {
		fail("store broken after cut", "put: %v", err)
	} else if err := s2.Sync(); err != nil {
		fail("store broken after cut", "sync: %v", err)
	} else if got, err := s2.Get(ctx, b.ID()); err != nil || string(got) != string(b.Data()) {
		fail("store broken after cut", "get of a block put after the cut: %v", err)
	}
	err = s2.Close()
	s2 = nil
	if err != nil {
		fail("store broken after cut", "close: %v", err)
	}
	return withCut(fails, cutAt)
}

func withCut(fails []powerCutFailure, cutAt string) []powerCutFailure {
	for i := range fails {
		fails[i].detail = "cut " + cutAt + ": " + fails[i].detail
	}
	return fails
}

func sortedIDs[V any](m map[ID]V) []ID {
	ids := make([]ID, 0, len(m))
	for id := range m {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return string(ids[i][:]) < string(ids[j][:]) })
	return ids
}

// powerCutSeeds returns the seeds to run: BLOCKMIX_POWERCUT_SEED alone, or
// 1..BLOCKMIX_POWERCUT_ROUNDS (def by default).
func powerCutSeeds(t *testing.T, def int) (seeds []uint64, replay bool) {
	if v := os.Getenv("BLOCKMIX_POWERCUT_SEED"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("BLOCKMIX_POWERCUT_SEED=%q: %v", v, err)
		}
		return []uint64{n}, true
	}
	rounds := def
	if v := os.Getenv("BLOCKMIX_POWERCUT_ROUNDS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			t.Fatalf("BLOCKMIX_POWERCUT_ROUNDS=%q: want a positive number", v)
		}
		rounds = n
	}
	for i := 1; i <= rounds; i++ {
		seeds = append(seeds, uint64(i))
	}
	return seeds, false
}

func TestPowerCut(t *testing.T) {
	def := powerCutRounds
	if testing.Short() {
		def = 50
	}
	seeds, replay := powerCutSeeds(t, def)
	t.Logf("power-cut rounds: %d (seeds %d..%d); replay one with BLOCKMIX_POWERCUT_SEED=n", len(seeds), seeds[0], seeds[len(seeds)-1])
	byKind := map[string][]uint64{}
	for _, seed := range seeds {
		fails := powerCutRound(t, seed, false, replay)
		seen := map[string]bool{}
		for i, f := range fails {
			if i < 3 {
				t.Errorf("seed %d (BLOCKMIX_POWERCUT_SEED=%d): %s: %s", seed, seed, f.kind, f.detail)
			}
			if !seen[f.kind] {
				seen[f.kind] = true
				byKind[f.kind] = append(byKind[f.kind], seed)
			}
		}
		if len(fails) > 3 {
			t.Errorf("seed %d: and %d more", seed, len(fails)-3)
		}
	}
	for _, kind := range sortedKeys(byKind) {
		s := byKind[kind]
		t.Errorf("summary: %s: %d of %d rounds, seeds %s", kind, len(s), len(seeds), seedList(s))
	}
}

func seedList(s []uint64) string {
	var b strings.Builder
	for i, n := range s {
		if i == 20 {
			fmt.Fprintf(&b, " …")
			break
		}
		if i > 0 {
			b.WriteString(" ")
		}
		fmt.Fprint(&b, n)
	}
	return b.String()
}

// TestPowerCutDetectsLyingFsync is the negative control: with a segment
// Sync that returns nil without making anything durable, the same rounds
// must find an acknowledged block lost, or the simulator could not fail.
func TestPowerCutDetectsLyingFsync(t *testing.T) {
	const maxRounds = 200
	for seed := uint64(1); seed <= maxRounds; seed++ {
		for _, f := range powerCutRound(t, seed, true, false) {
			if strings.HasPrefix(f.kind, "acknowledged block lost") {
				t.Logf("lying fsync caught at seed %d: %s: %s", seed, f.kind, f.detail)
				return
			}
		}
	}
	t.Fatalf("a segment fsync that does nothing went unnoticed in %d rounds", maxRounds)
}
