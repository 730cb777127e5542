package blocks

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"slices"
	"sort"
	"sync"
)

// Mem is an in-memory Store for unit tests. Its zero value is not usable;
// call NewMem. Safe for concurrent use.
type Mem struct {
	mu     sync.Mutex
	blocks map[ID]*memBlock
	tags   map[uint64]int // tag -> number of held blocks with it
	files  map[string]FileRecord
	order  []string // file keys, oldest first
	quar   map[ID]string
	marks  map[string][]byte
	seq    uint64
	closed bool
}

type memBlock struct {
	data []byte
	meta Meta
}

// NewMem returns an empty in-memory store.
func NewMem() *Mem {
	return &Mem{
		blocks: map[ID]*memBlock{},
		tags:   map[uint64]int{},
		files:  map[string]FileRecord{},
		quar:   map[ID]string{},
		marks:  map[string][]byte{},
	}
}

func (m *Mem) lock() error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return ErrClosed
	}
	return nil
}

// Get implements Getter.
func (m *Mem) Get(_ context.Context, id ID) ([]byte, error) {
	if err := m.lock(); err != nil {
		return nil, err
	}
	b, ok := m.blocks[id]
	m.mu.Unlock()
	if !ok {
		return nil, fmt.Errorf("block %s: %w", id, ErrNotFound)
	}
	out := bytes.Clone(b.data)
	if err := Check(id, out); err != nil {
		return nil, err
	}
	return out, nil
}

// GetVerified implements Verifier: Mem's Get already hashes every read.
func (m *Mem) GetVerified(ctx context.Context, id ID) ([]byte, error) {
	return m.Get(ctx, id)
}

var _ Verifier = (*Mem)(nil)

// Put implements Putter.
func (m *Mem) Put(ctx context.Context, id ID, data []byte, tag uint64) error {
	if err := Check(id, data); err != nil {
		return err
	}
	return m.put(id, data, tag)
}

// PutBlock implements BlockPutter.
func (m *Mem) PutBlock(_ context.Context, b Block, tag uint64) error {
	return m.put(b.id, b.data, tag)
}

func (m *Mem) put(id ID, data []byte, tag uint64) error {
	if err := m.lock(); err != nil {
		return err
	}
	defer m.mu.Unlock()
	if _, ok := m.blocks[id]; ok {
		return nil
	}
	m.seq++
	delete(m.quar, id) // a good copy is back: the block is in service again
	m.blocks[id] = &memBlock{data: bytes.Clone(data), meta: Meta{Size: len(data), Tag: tag, Seq: m.seq}}
	m.tags[tag]++
	return nil
}

// Corrupt flips a byte of a held block, for tests of the verifying path.
func (m *Mem) Corrupt(id ID) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if b, ok := m.blocks[id]; ok && len(b.data) > 0 {
		b.data[0] ^= 0xff
	}
}

// Has implements Haver.
func (m *Mem) Has(_ context.Context, id ID) (bool, error) {
	if err := m.lock(); err != nil {
		return false, err
	}
	defer m.mu.Unlock()
	_, ok := m.blocks[id]
	return ok, nil
}

// Stat implements Stater.
func (m *Mem) Stat(_ context.Context, id ID) (Meta, error) {
	if err := m.lock(); err != nil {
		return Meta{}, err
	}
	defer m.mu.Unlock()
	b, ok := m.blocks[id]
	if !ok {
		return Meta{}, fmt.Errorf("block %s: %w", id, ErrNotFound)
	}
	return b.meta, nil
}

// Delete implements Deleter.
func (m *Mem) Delete(_ context.Context, id ID) error {
	if err := m.lock(); err != nil {
		return err
	}
	defer m.mu.Unlock()
	m.drop(id)
	return nil
}

func (m *Mem) drop(id ID) {
	b, ok := m.blocks[id]
	if !ok {
		return
	}
	delete(m.blocks, id)
	if m.tags[b.meta.Tag]--; m.tags[b.meta.Tag] <= 0 {
		delete(m.tags, b.meta.Tag)
	}
}

// Enumerate implements Enumerator. It works on a snapshot, so fn may call
// back into the store.
func (m *Mem) Enumerate(ctx context.Context, fn func(ID, Meta) error) error {
	return m.EnumerateFrom(ctx, ID{}, fn)
}

// EnumerateFrom implements Ranger.
func (m *Mem) EnumerateFrom(ctx context.Context, from ID, fn func(ID, Meta) error) error {
	if err := m.lock(); err != nil {
		return err
	}
	ids := make([]ID, 0, len(m.blocks))
	metas := make(map[ID]Meta, len(m.blocks))
	for id, b := range m.blocks {
		if bytes.Compare(id[:], from[:]) < 0 {
			continue
		}
		ids = append(ids, id)
		metas[id] = b.meta
	}
	m.mu.Unlock()
	sort.Slice(ids, func(i, j int) bool { return bytes.Compare(ids[i][:], ids[j][:]) < 0 })
	for _, id := range ids {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := fn(id, metas[id]); err != nil {
			return err
		}
	}
	return nil
}

// HasTag implements TagIndex.
func (m *Mem) HasTag(_ context.Context, tag uint64) (bool, error) {
	if err := m.lock(); err != nil {
		return false, err
	}
	defer m.mu.Unlock()
	return m.tags[tag] > 0, nil
}

// AddFile implements Filer.
func (m *Mem) AddFile(_ context.Context, f FileRecord) error {
	if err := m.lock(); err != nil {
		return err
	}
	defer m.mu.Unlock()
	if old, ok := m.files[f.Key]; ok {
		old.Name, old.Recipe, old.Type = f.Name, f.Recipe, f.Type
		m.files[f.Key] = old
		return nil
	}
	uniq := Dedup(f.Blocks)
	for _, id := range uniq {
		if b, ok := m.blocks[id]; ok {
			b.meta.Refs++
		}
	}
	f.Blocks = uniq
	f.NBlock = len(uniq)
	m.files[f.Key] = f
	m.order = append(m.order, f.Key)
	return nil
}

// AddFileList implements Filer: the parts are gathered, then added as one
// list.
func (m *Mem) AddFileList(ctx context.Context, f FileRecord, list func(add func([]ID) error) error) (int, error) {
	if err := m.lock(); err != nil {
		return 0, err
	}
	old, ok := m.files[f.Key]
	m.mu.Unlock()
	if ok {
		return old.NBlock, m.AddFile(ctx, f)
	}
	f.Blocks = nil
	if err := list(func(ids []ID) error { f.Blocks = append(f.Blocks, ids...); return nil }); err != nil {
		return 0, fmt.Errorf("add file %q: %w", f.Key, err)
	}
	if err := m.AddFile(ctx, f); err != nil {
		return 0, err
	}
	return len(Dedup(f.Blocks)), nil
}

// FileBlocks implements Filer.
func (m *Mem) FileBlocks(ctx context.Context, key string, fn func([]ID) error) error {
	f, err := m.File(ctx, key)
	if err != nil {
		return err
	}
	return fn(f.Blocks)
}

// RemoveFile implements Filer.
func (m *Mem) RemoveFile(_ context.Context, key string) error {
	if err := m.lock(); err != nil {
		return err
	}
	defer m.mu.Unlock()
	f, ok := m.files[key]
	if !ok {
		return fmt.Errorf("file %q: %w", key, ErrNotFound)
	}
	for _, id := range f.Blocks {
		if b, ok := m.blocks[id]; ok && b.meta.Refs > 0 {
			b.meta.Refs--
		}
	}
	delete(m.files, key)
	for i, k := range m.order {
		if k == key {
			m.order = append(m.order[:i], m.order[i+1:]...)
			break
		}
	}
	return nil
}

// Files implements Filer.
func (m *Mem) Files(_ context.Context) ([]FileRecord, error) {
	if err := m.lock(); err != nil {
		return nil, err
	}
	defer m.mu.Unlock()
	out := make([]FileRecord, 0, len(m.order))
	for _, k := range m.order {
		f := m.files[k]
		f.Blocks = nil
		out = append(out, f)
	}
	return out, nil
}

// File implements Filer.
func (m *Mem) File(_ context.Context, key string) (FileRecord, error) {
	return m.file(key, true)
}

// Record implements Filer.
func (m *Mem) Record(_ context.Context, key string) (FileRecord, error) {
	return m.file(key, false)
}

// file returns the record of key, with a copy of its list when withList.
func (m *Mem) file(key string, withList bool) (FileRecord, error) {
	if err := m.lock(); err != nil {
		return FileRecord{}, err
	}
	defer m.mu.Unlock()
	f, ok := m.files[key]
	if !ok {
		return FileRecord{}, fmt.Errorf("file %q: %w", key, ErrNotFound)
	}
	f.Blocks = nil
	if withList {
		f.Blocks = append([]ID(nil), m.files[key].Blocks...)
	}
	return f, nil
}

// Quarantine implements Store.
func (m *Mem) Quarantine(_ context.Context, id ID, reason string) error {
	if err := m.lock(); err != nil {
		return err
	}
	defer m.mu.Unlock()
	if _, ok := m.blocks[id]; !ok {
		return fmt.Errorf("block %s: %w", id, ErrNotFound)
	}
	m.drop(id)
	m.quar[id] = reason
	return nil
}

// Stats implements Store.
func (m *Mem) Stats(_ context.Context) (Stats, error) {
	if err := m.lock(); err != nil {
		return Stats{}, err
	}
	defer m.mu.Unlock()
	s := Stats{Blocks: len(m.blocks), Files: len(m.files), Quarantined: len(m.quar)}
	for _, b := range m.blocks {
		s.Bytes += int64(b.meta.Size)
		if b.meta.Refs >= 1 {
			s.UsedBlocks++
			s.UsedBytes += int64(b.meta.Size)
		}
		if b.meta.Refs >= 2 {
			s.SharedBlocks++
		}
		if HeldForNetwork(b.meta.Tag) {
			s.HeldBlocks++
			s.HeldBytes += int64(b.meta.Size)
		}
	}
	for _, f := range m.files {
		s.FileBytes += f.Size
	}
	return s, nil
}

// UnderShared implements Candidates (by a walk: Mem is for tests).
func (m *Mem) UnderShared(ctx context.Context, size int, after uint64, fn func(ID, Meta) bool) error {
	return m.candidates(ctx, size, func(a Meta) bool { return a.Refs == 1 && a.Seq > after },
		func(a, b Meta) int { return cmp.Compare(a.Seq, b.Seq) }, fn)
}

// Shared implements Candidates (by a walk: Mem is for tests).
func (m *Mem) Shared(ctx context.Context, size int, fn func(ID, Meta) bool) error {
	return m.candidates(ctx, size, func(a Meta) bool { return a.Refs >= 2 },
		func(a, b Meta) int { return cmp.Or(cmp.Compare(b.Refs, a.Refs), cmp.Compare(a.Seq, b.Seq)) }, fn)
}

func (m *Mem) candidates(ctx context.Context, size int, keep func(Meta) bool, order func(a, b Meta) int, fn func(ID, Meta) bool) error {
	type cand struct {
		id ID
		m  Meta
	}
	var cs []cand
	if err := m.Enumerate(ctx, func(id ID, meta Meta) error {
		if meta.Size == size && meta.Tag&ForeignTag == 0 && keep(meta) {
			cs = append(cs, cand{id, meta})
		}
		return nil
	}); err != nil {
		return err
	}
	slices.SortFunc(cs, func(a, b cand) int { return order(a.m, b.m) })
	for _, c := range cs {
		if !fn(c.id, c.m) {
			break
		}
	}
	return nil
}

// Mark implements Marker.
func (m *Mem) Mark(name string) ([]byte, error) {
	if err := m.lock(); err != nil {
		return nil, err
	}
	defer m.mu.Unlock()
	return bytes.Clone(m.marks[name]), nil
}

// SetMark implements Marker.
func (m *Mem) SetMark(name string, v []byte) error {
	if err := m.lock(); err != nil {
		return err
	}
	defer m.mu.Unlock()
	if v == nil {
		delete(m.marks, name)
	} else {
		m.marks[name] = bytes.Clone(v)
	}
	return nil
}

// Sync implements Store; memory has nothing to flush.
func (m *Mem) Sync() error { return nil }

// Close implements Store.
func (m *Mem) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.closed = true
	return nil
}

// Dedup returns ids without repeats, in first-seen order.
func Dedup(ids []ID) []ID {
	seen := make(map[ID]struct{}, len(ids))
	out := make([]ID, 0, len(ids))
	for _, id := range ids {
		if _, ok := seen[id]; ok {
			continue
		}
		seen[id] = struct{}{}
		out = append(out, id)
	}
	return out
}

var (
	_ Store      = (*Mem)(nil)
	_ Candidates = (*Mem)(nil)
	_ Resumable  = (*Mem)(nil)
)
