package blocks

// A power-cut simulator in the style of ALICE and CrashMonkey: an in-memory
// machine whose files keep what is durable apart from what was only
// written, and which can produce the state a power loss leaves behind.
//
// What it models:
//   - A file is durable content plus a list of pending writes, in the order
//     they were made. Sync on a file makes all of its pending writes
//     durable (except in the "lying fsync" mode of the negative control,
//     where segFile.Sync returns nil and keeps them pending).
//   - A directory has durable entries plus a list of pending entry
//     operations (create, remove, rename). SyncDir makes them durable. For
//     the segment files that is the only way: a created segment whose
//     directory was never synced may vanish at a cut, a removed one may
//     come back (POSIX's promise, no more).
//   - goleveldb's storage lives in a directory of the same machine with the
//     same rules, plus one: a Writer.Sync also commits the pending entries
//     of its directory. That is what ext4 (and xfs) do: fsync of a file
//     commits the journal transaction that holds its creation and every
//     earlier metadata change, so it is not kinder than a real ext4.
//     goleveldb relies on it for a new journal (its directory is synced
//     only when the manifest is). SetMeta does what goleveldb's file storage
//     does: it writes CURRENT.n, syncs it, renames it over CURRENT and syncs
//     the directory, so it is durable on return.
//   - A cut keeps the durable state and, for each pending write on its own,
//     drops it, keeps it whole, or keeps a prefix of it (torn), so a later
//     write may survive while an earlier one is lost; the holes read as
//     zeros. Each pending directory operation survives or not on its own
//     (in order, where it still applies). The choices come from a seeded
//     RNG.
//
// What it does not model: directories themselves (MkdirAll is durable at
// once), file metadata other than size and names, reordering of a torn
// write's sectors (a tear is a prefix), garbage (not zeros) in torn or
// unwritten areas, reads of data that the kernel has not yet written back
// failing, and errors such as ENOSPC or EIO before the cut.

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"github.com/syndtr/goleveldb/leveldb/storage"
)

// errPowerCut is what every call on a machine returns once its power is off.
var errPowerCut = errors.New("crashfs: the power is off")

type crashWrite struct {
	off  int64
	data []byte
}

// crashInode is a file's content: durable, and as the running system sees
// it (durable with pending applied).
type crashInode struct {
	durable []byte
	cur     []byte
	pending []crashWrite
}

type crashOpKind int

const (
	crashCreate crashOpKind = iota // name → ino (replacing what was there)
	crashRemove                    // name (which was ino) is gone
	crashRename                    // name (which was ino) → to
)

type crashDirOp struct {
	kind     crashOpKind
	name, to string
	ino      *crashInode
}

type crashDir struct {
	durable map[string]*crashInode
	cur     map[string]*crashInode
	ops     []crashDirOp
}

func newCrashDir() *crashDir {
	return &crashDir{durable: map[string]*crashInode{}, cur: map[string]*crashInode{}}
}

// crashFS is one simulated machine: it implements fileSystem, and
// crashStorage gives goleveldb a directory of it. Safe for concurrent use.
type crashFS struct {
	mu   sync.Mutex
	dirs map[string]*crashDir

	// lyingSync: segFile.Sync returns nil without making anything durable
	// (the negative control).
	lyingSync bool

	dead      bool
	mutations int // calls that changed something, so far
	// cutAt, when not zero, cuts the power just before mutation number
	// cutAt, with cutRng; the state it leaves is in cutState.
	cutAt    int
	cutRng   *rand.Rand
	cutState *crashFS
}

func newCrashFS() *crashFS { return &crashFS{dirs: map[string]*crashDir{}} }

// cutBefore arranges for the power to go off just before the n-th mutation
// from now (n ≥ 1), the state after the cut being drawn from rng.
func (m *crashFS) cutBefore(n int, rng *rand.Rand) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.cutAt, m.cutRng = m.mutations+n, rng
}

// isDead reports whether the power is off.
func (m *crashFS) isDead() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.dead
}

// powerCut turns the power off, if a cutBefore has not already, and
// returns the state the machine is left in: a new machine, with nothing
// pending. Every later call on m fails with errPowerCut.
func (m *crashFS) powerCut(rng *rand.Rand) *crashFS {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.dead {
		m.cutState = m.cutLocked(rng)
		m.dead = true
	}
	return m.cutState
}

// mutate counts a mutation, or fails when the power is (or now goes) off.
// The caller holds mu.
func (m *crashFS) mutate() error {
	if m.dead {
		return errPowerCut
	}
	m.mutations++
	if m.cutAt > 0 && m.mutations >= m.cutAt {
		m.cutState = m.cutLocked(m.cutRng)
		m.dead = true
		return errPowerCut
	}
	return nil
}

// cutLocked draws the state a power loss leaves. The caller holds mu.
func (m *crashFS) cutLocked(rng *rand.Rand) *crashFS {
	n := newCrashFS()
	n.lyingSync = m.lyingSync
	copies := map[*crashInode]*crashInode{}
	inode := func(old *crashInode) *crashInode {
		if c, ok := copies[old]; ok {
			return c
		}
		b := bytes.Clone(old.durable)
		for _, w := range old.pending {
			data := w.data
			switch rng.IntN(3) {
			case 0:
				continue // lost
			case 1: // whole
			case 2:
				data = data[:rng.IntN(len(data)+1)] // torn
			}
			b = writeBytesAt(b, w.off, data)
		}
		c := &crashInode{durable: b, cur: bytes.Clone(b)}
		copies[old] = c
		return c
	}
	for _, dn := range sortedKeys(m.dirs) {
		d := m.dirs[dn]
		ents := make(map[string]*crashInode, len(d.durable))
		for k, v := range d.durable {
			ents[k] = v
		}
		for _, op := range d.ops {
			if rng.IntN(2) == 0 {
				continue // this entry change did not reach the disk
			}
			switch op.kind {
			case crashCreate:
				ents[op.name] = op.ino
			case crashRemove:
				if ents[op.name] == op.ino {
					delete(ents, op.name)
				}
			case crashRename:
				if ents[op.name] == op.ino {
					delete(ents, op.name)
					ents[op.to] = op.ino
				}
			}
		}
		nd := newCrashDir()
		for _, name := range sortedKeys(ents) {
			c := inode(ents[name])
			nd.durable[name], nd.cur[name] = c, c
		}
		n.dirs[dn] = nd
	}
	return n
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// writeBytesAt writes p into b at off, growing b with zeros as needed.
func writeBytesAt(b []byte, off int64, p []byte) []byte {
	if end := off + int64(len(p)); end > int64(len(b)) {
		b = append(b, make([]byte, end-int64(len(b)))...)
	}
	copy(b[off:], p)
	return b
}

// lookup finds the directory and base name of path. The caller holds mu.
func (m *crashFS) lookup(op, path string) (*crashDir, string, error) {
	path = filepath.Clean(path)
	d := m.dirs[filepath.Dir(path)]
	if d == nil {
		return nil, "", &fs.PathError{Op: op, Path: path, Err: fs.ErrNotExist}
	}
	return d, filepath.Base(path), nil
}

func (m *crashFS) syncInode(ino *crashInode) {
	ino.durable = bytes.Clone(ino.cur)
	ino.pending = nil
}

func (d *crashDir) commit() {
	d.durable = make(map[string]*crashInode, len(d.cur))
	for k, v := range d.cur {
		d.durable[k] = v
	}
	d.ops = nil
}

func (d *crashDir) create(name string) *crashInode {
	ino := &crashInode{}
	d.cur[name] = ino
	d.ops = append(d.ops, crashDirOp{kind: crashCreate, name: name, ino: ino})
	return ino
}

func (d *crashDir) remove(name string) {
	d.ops = append(d.ops, crashDirOp{kind: crashRemove, name: name, ino: d.cur[name]})
	delete(d.cur, name)
}

func (d *crashDir) rename(from, to string) {
	ino := d.cur[from]
	d.ops = append(d.ops, crashDirOp{kind: crashRename, name: from, to: to, ino: ino})
	delete(d.cur, from)
	d.cur[to] = ino
}

// The fileSystem methods.

func (m *crashFS) MkdirAll(dir string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.mutate(); err != nil {
		return err
	}
	// Like os.MkdirAll, every parent too (durable at once: directories
	// themselves are not modelled).
	for d := filepath.Clean(dir); ; d = filepath.Dir(d) {
		if m.dirs[d] == nil {
			m.dirs[d] = newCrashDir()
		}
		if d == filepath.Dir(d) {
			break
		}
	}
	return nil
}

func (m *crashFS) ReadDir(dir string) ([]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.dead {
		return nil, errPowerCut
	}
	d := m.dirs[filepath.Clean(dir)]
	if d == nil {
		return nil, &fs.PathError{Op: "readdir", Path: dir, Err: fs.ErrNotExist}
	}
	return sortedKeys(d.cur), nil
}

func (m *crashFS) Open(name string, readOnly bool) (segFile, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.dead {
		return nil, errPowerCut
	}
	d, base, err := m.lookup("open", name)
	if err != nil {
		return nil, err
	}
	ino := d.cur[base]
	if ino == nil {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
	return &crashFile{m: m, ino: ino, name: name, readOnly: readOnly}, nil
}

func (m *crashFS) Create(name string) (segFile, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.mutate(); err != nil {
		return nil, err
	}
	d, base, err := m.lookup("create", name)
	if err != nil {
		return nil, err
	}
	if d.cur[base] != nil {
		return nil, &fs.PathError{Op: "create", Path: name, Err: fs.ErrExist}
	}
	return &crashFile{m: m, ino: d.create(base), name: name}, nil
}

func (m *crashFS) Remove(name string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.mutate(); err != nil {
		return err
	}
	d, base, err := m.lookup("remove", name)
	if err != nil {
		return err
	}
	if d.cur[base] == nil {
		return &fs.PathError{Op: "remove", Path: name, Err: fs.ErrNotExist}
	}
	d.remove(base)
	return nil
}

func (m *crashFS) Rename(from, to string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.mutate(); err != nil {
		return err
	}
	d, fb, err := m.lookup("rename", from)
	if err != nil {
		return err
	}
	d2, tb, err := m.lookup("rename", to)
	if err != nil {
		return err
	}
	if d != d2 {
		return fmt.Errorf("crashfs: rename %s to %s: across directories is not simulated", from, to)
	}
	if d.cur[fb] == nil {
		return &fs.PathError{Op: "rename", Path: from, Err: fs.ErrNotExist}
	}
	d.rename(fb, tb)
	return nil
}

func (m *crashFS) SyncDir(dir string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.mutate(); err != nil {
		return err
	}
	d := m.dirs[filepath.Clean(dir)]
	if d == nil {
		return &fs.PathError{Op: "sync", Path: dir, Err: fs.ErrNotExist}
	}
	d.commit()
	return nil
}

// crashFile is an open file of a crashFS: a segFile.
type crashFile struct {
	m        *crashFS
	ino      *crashInode
	name     string
	readOnly bool
}

func readInodeAt(ino *crashInode, p []byte, off int64) (int, error) {
	if off >= int64(len(ino.cur)) {
		return 0, io.EOF
	}
	n := copy(p, ino.cur[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (f *crashFile) ReadAt(p []byte, off int64) (int, error) {
	f.m.mu.Lock()
	defer f.m.mu.Unlock()
	if f.m.dead {
		return 0, errPowerCut
	}
	return readInodeAt(f.ino, p, off)
}

func (f *crashFile) WriteAt(p []byte, off int64) (int, error) {
	f.m.mu.Lock()
	defer f.m.mu.Unlock()
	if err := f.m.mutate(); err != nil {
		return 0, err
	}
	if f.readOnly {
		return 0, &fs.PathError{Op: "write", Path: f.name, Err: fs.ErrPermission}
	}
	f.ino.pending = append(f.ino.pending, crashWrite{off: off, data: bytes.Clone(p)})
	f.ino.cur = writeBytesAt(f.ino.cur, off, p)
	return len(p), nil
}

func (f *crashFile) Sync() error {
	f.m.mu.Lock()
	defer f.m.mu.Unlock()
	if err := f.m.mutate(); err != nil {
		return err
	}
	if !f.m.lyingSync {
		f.m.syncInode(f.ino)
	}
	return nil
}

func (f *crashFile) Close() error { return nil }
func (f *crashFile) Name() string { return f.name }

func (f *crashFile) Size() (int64, error) {
	f.m.mu.Lock()
	defer f.m.mu.Unlock()
	if f.m.dead {
		return 0, errPowerCut
	}
	return int64(len(f.ino.cur)), nil
}

// crashStorage is goleveldb's storage.Storage in directory dir of a
// crashFS, with the durability rules described at the top of this file.
type crashStorage struct {
	m   *crashFS
	dir string

	lockMu sync.Mutex
	locked bool
}

// newCrashStorage makes (durably) directory dir of m and returns goleveldb's
// storage in it.
func newCrashStorage(m *crashFS, dir string) *crashStorage {
	m.mu.Lock()
	defer m.mu.Unlock()
	dir = filepath.Clean(dir)
	if m.dirs[dir] == nil {
		m.dirs[dir] = newCrashDir()
	}
	return &crashStorage{m: m, dir: dir}
}

type crashLock struct{ s *crashStorage }

func (l crashLock) Unlock() {
	l.s.lockMu.Lock()
	l.s.locked = false
	l.s.lockMu.Unlock()
}

func (s *crashStorage) Lock() (storage.Locker, error) {
	s.lockMu.Lock()
	defer s.lockMu.Unlock()
	if s.locked {
		return nil, storage.ErrLocked
	}
	s.locked = true
	return crashLock{s}, nil
}

func (s *crashStorage) Log(string) {}

func (s *crashStorage) d() *crashDir { return s.m.dirs[s.dir] }

// SetMeta does what goleveldb's file storage does: CURRENT.n written and
// synced, renamed over CURRENT, the directory synced.
func (s *crashStorage) SetMeta(fd storage.FileDesc) error {
	if !storage.FileDescOk(fd) {
		return storage.ErrInvalidFile
	}
	m := s.m
	m.mu.Lock()
	defer m.mu.Unlock()
	d := s.d()
	tmp := fmt.Sprintf("CURRENT.%d", fd.Num)
	if err := m.mutate(); err != nil {
		return err
	}
	ino := d.create(tmp)
	if err := m.mutate(); err != nil {
		return err
	}
	content := []byte(fd.String() + "\n")
	ino.pending = append(ino.pending, crashWrite{data: content})
	ino.cur = bytes.Clone(content)
	if err := m.mutate(); err != nil {
		return err
	}
	m.syncInode(ino)
	if err := m.mutate(); err != nil {
		return err
	}
	d.rename(tmp, "CURRENT")
	if err := m.mutate(); err != nil {
		return err
	}
	d.commit()
	return nil
}

func (s *crashStorage) GetMeta() (storage.FileDesc, error) {
	s.m.mu.Lock()
	defer s.m.mu.Unlock()
	if s.m.dead {
		return storage.FileDesc{}, errPowerCut
	}
	d := s.d()
	ino := d.cur["CURRENT"]
	if ino == nil {
		return storage.FileDesc{}, fs.ErrNotExist
	}
	name, ok := strings.CutSuffix(string(ino.cur), "\n")
	fd, ok2 := crashParseName(name)
	if !ok || !ok2 {
		return storage.FileDesc{}, &storage.ErrCorrupted{Err: fmt.Errorf("crashfs: CURRENT holds %q", ino.cur)}
	}
	if d.cur[fd.String()] == nil {
		return storage.FileDesc{}, fs.ErrNotExist
	}
	return fd, nil
}

// crashParseName is goleveldb's fsParseName.
func crashParseName(name string) (storage.FileDesc, bool) {
	var fd storage.FileDesc
	var tail string
	if _, err := fmt.Sscanf(name, "%d.%s", &fd.Num, &tail); err == nil {
		switch tail {
		case "log":
			fd.Type = storage.TypeJournal
		case "ldb", "sst":
			fd.Type = storage.TypeTable
		case "tmp":
			fd.Type = storage.TypeTemp
		default:
			return fd, false
		}
		return fd, true
	}
	if n, _ := fmt.Sscanf(name, "MANIFEST-%d%s", &fd.Num, &tail); n == 1 {
		fd.Type = storage.TypeManifest
		return fd, true
	}
	return fd, false
}

func (s *crashStorage) List(ft storage.FileType) ([]storage.FileDesc, error) {
	s.m.mu.Lock()
	defer s.m.mu.Unlock()
	if s.m.dead {
		return nil, errPowerCut
	}
	var out []storage.FileDesc
	for _, name := range sortedKeys(s.d().cur) {
		if fd, ok := crashParseName(name); ok && fd.Type&ft != 0 {
			out = append(out, fd)
		}
	}
	return out, nil
}

func (s *crashStorage) Open(fd storage.FileDesc) (storage.Reader, error) {
	if !storage.FileDescOk(fd) {
		return nil, storage.ErrInvalidFile
	}
	s.m.mu.Lock()
	defer s.m.mu.Unlock()
	if s.m.dead {
		return nil, errPowerCut
	}
	ino := s.d().cur[fd.String()]
	if ino == nil {
		return nil, &fs.PathError{Op: "open", Path: fd.String(), Err: fs.ErrNotExist}
	}
	return &crashReader{m: s.m, ino: ino}, nil
}

// Create truncates an existing file the way a new one replacing it would.
func (s *crashStorage) Create(fd storage.FileDesc) (storage.Writer, error) {
	if !storage.FileDescOk(fd) {
		return nil, storage.ErrInvalidFile
	}
	s.m.mu.Lock()
	defer s.m.mu.Unlock()
	if err := s.m.mutate(); err != nil {
		return nil, err
	}
	d := s.d()
	if d.cur[fd.String()] != nil {
		d.remove(fd.String())
	}
	return &crashWriter{m: s.m, d: d, ino: d.create(fd.String())}, nil
}

func (s *crashStorage) Remove(fd storage.FileDesc) error {
	if !storage.FileDescOk(fd) {
		return storage.ErrInvalidFile
	}
	s.m.mu.Lock()
	defer s.m.mu.Unlock()
	if err := s.m.mutate(); err != nil {
		return err
	}
	d := s.d()
	if d.cur[fd.String()] == nil {
		return &fs.PathError{Op: "remove", Path: fd.String(), Err: fs.ErrNotExist}
	}
	d.remove(fd.String())
	return nil
}

func (s *crashStorage) Rename(oldfd, newfd storage.FileDesc) error {
	if !storage.FileDescOk(oldfd) || !storage.FileDescOk(newfd) {
		return storage.ErrInvalidFile
	}
	if oldfd == newfd {
		return nil
	}
	s.m.mu.Lock()
	defer s.m.mu.Unlock()
	if err := s.m.mutate(); err != nil {
		return err
	}
	d := s.d()
	if d.cur[oldfd.String()] == nil {
		return &fs.PathError{Op: "rename", Path: oldfd.String(), Err: fs.ErrNotExist}
	}
	d.rename(oldfd.String(), newfd.String())
	return nil
}

func (s *crashStorage) Close() error { return nil }

// crashWriter appends to a goleveldb file.
type crashWriter struct {
	m   *crashFS
	d   *crashDir
	ino *crashInode
}

func (w *crashWriter) Write(p []byte) (int, error) {
	w.m.mu.Lock()
	defer w.m.mu.Unlock()
	if err := w.m.mutate(); err != nil {
		return 0, err
	}
	off := int64(len(w.ino.cur))
	w.ino.pending = append(w.ino.pending, crashWrite{off: off, data: bytes.Clone(p)})
	w.ino.cur = append(w.ino.cur, p...)
	return len(p), nil
}

// Sync makes the file durable and, as ext4's fsync does, commits the
// directory's pending entries with it.
func (w *crashWriter) Sync() error {
	w.m.mu.Lock()
	defer w.m.mu.Unlock()
	if err := w.m.mutate(); err != nil {
		return err
	}
	w.m.syncInode(w.ino)
	w.d.commit()
	return nil
}

func (w *crashWriter) Close() error { return nil }

// crashReader reads a goleveldb file as it is now.
type crashReader struct {
	m   *crashFS
	ino *crashInode
	pos int64
}

func (r *crashReader) ReadAt(p []byte, off int64) (int, error) {
	r.m.mu.Lock()
	defer r.m.mu.Unlock()
	if r.m.dead {
		return 0, errPowerCut
	}
	return readInodeAt(r.ino, p, off)
}

func (r *crashReader) Read(p []byte) (int, error) {
	n, err := r.ReadAt(p, r.pos)
	r.pos += int64(n)
	if n > 0 && err == io.EOF {
		err = nil
	}
	return n, err
}

func (r *crashReader) Seek(off int64, whence int) (int64, error) {
	r.m.mu.Lock()
	size := int64(len(r.ino.cur))
	r.m.mu.Unlock()
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		off += r.pos
	case io.SeekEnd:
		off += size
	default:
		return 0, fmt.Errorf("crashfs: seek whence %d", whence)
	}
	if off < 0 {
		return 0, fmt.Errorf("crashfs: seek to %d", off)
	}
	r.pos = off
	return off, nil
}

func (r *crashReader) Close() error { return nil }

var (
	_ fileSystem      = (*crashFS)(nil)
	_ storage.Storage = (*crashStorage)(nil)
)
