package blocks

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"math/rand/v2"
	"testing"

	"github.com/syndtr/goleveldb/leveldb/storage"
)

// Tests of the power-cut simulator itself (crashfs_test.go).

const crashTrials = 200 // cuts per property; seeds 1..crashTrials

func crashContent(t *testing.T, m *crashFS, name string) ([]byte, bool) {
	t.Helper()
	f, err := m.Open(name, true)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, false
	}
	if err != nil {
		t.Fatal(err)
	}
	size, err := f.Size()
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, size)
	if _, err := f.ReadAt(buf, 0); err != nil && !(errors.Is(err, io.EOF) && size == 0) {
		t.Fatal(err)
	}
	return buf, true
}

func mustCrash(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestCrashFSSyncMakesDurable(t *testing.T) {
	for seed := uint64(1); seed <= crashTrials; seed++ {
		m := newCrashFS()
		mustCrash(t, m.MkdirAll("/d"))
		f, err := m.Create("/d/a")
		mustCrash(t, err)
		_, err = f.WriteAt([]byte("hello "), 0)
		mustCrash(t, err)
		_, err = f.WriteAt([]byte("world"), 6)
		mustCrash(t, err)
		mustCrash(t, f.Sync())
		mustCrash(t, m.SyncDir("/d"))
		after := m.powerCut(rand.New(rand.NewPCG(seed, 0)))
		got, ok := crashContent(t, after, "/d/a")
		if !ok || string(got) != "hello world" {
			t.Fatalf("seed %d: after a cut, synced file reads %q (exists %v)", seed, got, ok)
		}
		if _, err := f.WriteAt([]byte("x"), 0); !errors.Is(err, errPowerCut) {
			t.Fatalf("seed %d: write after the cut: %v, want errPowerCut", seed, err)
		}
	}
}

// TestCrashFSCutDropsOrTearsUnsynced: after a synced prefix, three unsynced
// writes each survive whole, torn or not at all, independently; the synced
// prefix always survives.
func TestCrashFSCutDropsOrTearsUnsynced(t *testing.T) {
	var whole, lost, torn, laterWithoutEarlier int
	for seed := uint64(1); seed <= crashTrials; seed++ {
		m := newCrashFS()
		mustCrash(t, m.MkdirAll("/d"))
		f, err := m.Create("/d/a")
		mustCrash(t, err)
		_, err = f.WriteAt(bytes.Repeat([]byte("s"), 100), 0)
		mustCrash(t, err)
		mustCrash(t, f.Sync())
		mustCrash(t, m.SyncDir("/d"))
		for i, c := range []byte("abc") {
			_, err = f.WriteAt(bytes.Repeat([]byte{c}, 100), int64(100+100*i))
			mustCrash(t, err)
		}
		after := m.powerCut(rand.New(rand.NewPCG(seed, 0)))
		got, ok := crashContent(t, after, "/d/a")
		if !ok || len(got) < 100 || string(got[:100]) != string(bytes.Repeat([]byte("s"), 100)) {
			t.Fatalf("seed %d: synced prefix lost: %q", seed, got)
		}
		kept := make([]int, 3) // bytes of each write that survived
		for i, c := range []byte("abc") {
			lo := 100 + 100*i
			for j := lo; j < lo+100 && j < len(got); j++ {
				switch got[j] {
				case c:
					kept[i]++
				case 0:
				default:
					t.Fatalf("seed %d: byte %d is %q", seed, j, got[j])
				}
			}
			switch kept[i] {
			case 100:
				whole++
			case 0:
				lost++
			default:
				torn++
			}
		}
		if kept[0] == 0 && kept[2] > 0 {
			laterWithoutEarlier++
		}
	}
	t.Logf("whole %d, lost %d, torn %d; later write without the first %d", whole, lost, torn, laterWithoutEarlier)
	if whole == 0 || lost == 0 || torn == 0 || laterWithoutEarlier == 0 {
		t.Fatalf("in %d cuts: whole %d, lost %d, torn %d, later without earlier %d: want each > 0",
			crashTrials, whole, lost, torn, laterWithoutEarlier)
	}
}

// TestCrashFSDirEntriesNeedSyncDir: a created file whose directory was not
// synced may vanish; a removed one may come back; a renamed one may keep its
// old name; after SyncDir none of that happens.
func TestCrashFSDirEntriesNeedSyncDir(t *testing.T) {
	var vanished, cameBack, oldName int
	for seed := uint64(1); seed <= crashTrials; seed++ {
		m := newCrashFS()
		mustCrash(t, m.MkdirAll("/d"))
		f, err := m.Create("/d/new")
		mustCrash(t, err)
		_, err = f.WriteAt([]byte("data"), 0)
		mustCrash(t, err)
		mustCrash(t, f.Sync()) // the file, not its name
		g, err := m.Create("/d/old")
		mustCrash(t, err)
		mustCrash(t, g.Sync())
		h, err := m.Create("/d/moved")
		mustCrash(t, err)
		mustCrash(t, h.Sync())
		mustCrash(t, m.SyncDir("/d")) // new, old and moved are durable
		k, err := m.Create("/d/new2")
		mustCrash(t, err)
		_, err = k.WriteAt([]byte("data"), 0)
		mustCrash(t, err)
		mustCrash(t, k.Sync())
		mustCrash(t, m.Remove("/d/old"))
		mustCrash(t, m.Rename("/d/moved", "/d/there"))

		after := m.powerCut(rand.New(rand.NewPCG(seed, 0)))
		if got, ok := crashContent(t, after, "/d/new"); !ok || string(got) != "data" {
			t.Fatalf("seed %d: /d/new after SyncDir reads %q (exists %v)", seed, got, ok)
		}
		if got, ok := crashContent(t, after, "/d/new2"); !ok {
			vanished++
		} else if string(got) != "data" {
			t.Fatalf("seed %d: /d/new2 reads %q", seed, got)
		}
		if _, ok := crashContent(t, after, "/d/old"); ok {
			cameBack++
		}
		_, there := crashContent(t, after, "/d/there")
		_, moved := crashContent(t, after, "/d/moved")
		if there == moved {
			t.Fatalf("seed %d: rename half done: there %v, moved %v", seed, there, moved)
		}
		if moved {
			oldName++
		}

		// The same, with SyncDir: all durable.
		m2 := newCrashFS()
		mustCrash(t, m2.MkdirAll("/d"))
		k2, err := m2.Create("/d/new2")
		mustCrash(t, err)
		mustCrash(t, k2.Sync())
		mustCrash(t, m2.SyncDir("/d"))
		mustCrash(t, m2.Remove("/d/new2"))
		mustCrash(t, m2.SyncDir("/d"))
		after2 := m2.powerCut(rand.New(rand.NewPCG(seed, 0)))
		if _, ok := crashContent(t, after2, "/d/new2"); ok {
			t.Fatalf("seed %d: a removal made durable by SyncDir was undone", seed)
		}
	}
	t.Logf("unsynced create vanished %d, removal undone %d, rename undone %d of %d", vanished, cameBack, oldName, crashTrials)
	if vanished == 0 || vanished == crashTrials || cameBack == 0 || oldName == 0 {
		t.Fatalf("want unsynced directory changes to survive sometimes, not always")
	}
}

func TestCrashFSLyingSync(t *testing.T) {
	lost := 0
	for seed := uint64(1); seed <= crashTrials; seed++ {
		m := newCrashFS()
		m.lyingSync = true
		mustCrash(t, m.MkdirAll("/d"))
		f, err := m.Create("/d/a")
		mustCrash(t, err)
		mustCrash(t, m.SyncDir("/d"))
		_, err = f.WriteAt([]byte("data"), 0)
		mustCrash(t, err)
		mustCrash(t, f.Sync()) // returns nil, makes nothing durable
		got, _ := crashContent(t, m.powerCut(rand.New(rand.NewPCG(seed, 0))), "/d/a")
		if string(got) != "data" {
			lost++
		}
	}
	if lost == 0 {
		t.Fatalf("a lying fsync lost nothing in %d cuts", crashTrials)
	}
}

func TestCrashFSCutInsideCall(t *testing.T) {
	m := newCrashFS()
	mustCrash(t, m.MkdirAll("/d"))
	f, err := m.Create("/d/a")
	mustCrash(t, err)
	m.cutBefore(2, rand.New(rand.NewPCG(1, 0)))
	if _, err := f.WriteAt([]byte("one"), 0); err != nil {
		t.Fatalf("first call: %v", err)
	}
	if err := f.Sync(); !errors.Is(err, errPowerCut) {
		t.Fatalf("second call: %v, want errPowerCut", err)
	}
	if !m.isDead() {
		t.Fatal("not dead after the cut")
	}
	// The cut came before the Sync: what is left is at most the write.
	if got, ok := crashContent(t, m.powerCut(nil), "/d/a"); ok && !bytes.HasPrefix([]byte("one"), bytes.TrimRight(got, "\x00")) {
		t.Fatalf("after a cut inside the second call, /d/a reads %q", got)
	}
}

// TestCrashStorage: goleveldb's files follow the same rules; SetMeta is
// durable on return; a Writer.Sync commits its directory, as ext4 does.
func TestCrashStorage(t *testing.T) {
	var lostUnsynced int
	for seed := uint64(1); seed <= crashTrials; seed++ {
		m := newCrashFS()
		s := newCrashStorage(m, "/idx")
		j := storage.FileDesc{Type: storage.TypeJournal, Num: 3}
		w, err := s.Create(j)
		mustCrash(t, err)
		_, err = w.Write([]byte("synced"))
		mustCrash(t, err)
		mustCrash(t, w.Sync())
		mustCrash(t, s.SetMeta(storage.FileDesc{Type: storage.TypeManifest, Num: 2}))
		mf, err := s.Create(storage.FileDesc{Type: storage.TypeManifest, Num: 2})
		mustCrash(t, err)
		mustCrash(t, mf.Sync())
		_, err = w.Write([]byte("-unsynced"))
		mustCrash(t, err)

		after := newCrashStorage(m.powerCut(rand.New(rand.NewPCG(seed, 0))), "/idx")
		fd, err := after.GetMeta()
		if err != nil || fd.Num != 2 {
			t.Fatalf("seed %d: GetMeta after the cut: %v, %v", seed, fd, err)
		}
		r, err := after.Open(j)
		if err != nil {
			t.Fatalf("seed %d: a synced journal is gone: %v", seed, err)
		}
		b, err := io.ReadAll(r)
		mustCrash(t, err)
		if !bytes.HasPrefix(b, []byte("synced")) {
			t.Fatalf("seed %d: synced journal reads %q", seed, b)
		}
		if string(b) != "synced-unsynced" {
			lostUnsynced++
		}
	}
	if lostUnsynced == 0 {
		t.Fatalf("an unsynced append always survived %d cuts", crashTrials)
	}
}
