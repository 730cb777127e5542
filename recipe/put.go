package recipe

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/blockmix/blockmix/blocks"
	"github.com/blockmix/blockmix/mixer"
)

// Store is what Put needs: the mixer's store plus the file records.
type Store interface {
	mixer.Store
	blocks.Filer
}

// PutResult tells what a Put did.
type PutResult struct {
	Recipe    Recipe
	Tuples    int   // data tuples
	NewBlocks int   // blocks the put added, fresh randomizers included
	NewBytes  int64 // their bytes
	NBlock    int   // how many distinct blocks the file needs (the store's record lists them)
}

// ErrSizeMismatch: a put read more or fewer bytes than it was told.
var ErrSizeMismatch = errors.New("the file's size is not what was said")

// PutOptions are Put's less common choices.
type PutOptions struct {
	Progress mixer.Progress // may be nil
	// TempDir, when set, holds the list of the file's tuples while it is
	// mixed (a temporary file, removed before Put returns), so that a
	// put's memory stays flat in the file's size; "" keeps it in memory
	// (96 bytes a block for t = 3).
	TempDir string
}

// Put mixes r (size bytes, or −1 when unknown) into st with m and records
// the file in st. The file is durable only after st.Sync. On error,
// nothing is recorded and the blocks the put stored are deleted again
// (when st can delete; see mixer.Discard), and m must not be used again.
func Put(ctx context.Context, m *mixer.Mixer, st Store, r io.Reader, size int64, name, typ string, prog mixer.Progress) (PutResult, error) {
	return PutWith(ctx, m, st, r, size, name, typ, PutOptions{Progress: prog})
}

// PutWith is Put with options.
func PutWith(ctx context.Context, m *mixer.Mixer, st Store, r io.Reader, size int64, name, typ string, o PutOptions) (_ PutResult, err error) {
	blocks0, bytes0 := m.Added()
	tuples := newTupleLog(m.T(), o.TempDir)
	defer tuples.close()
	res, err := m.MixStream(ctx, r, mixer.ClassFor(size), mixer.Stream{Progress: o.Progress, Tuple: tuples.add})
	if err != nil {
		return PutResult{}, fmt.Errorf("mix %s: %w", name, err) // Mix discarded its blocks
	}
	defer func() {
		if err != nil {
			mixer.Discard(ctx, st, res.New)
			m.Break(err)
		}
	}()
	if size >= 0 && res.Size != size {
		return PutResult{}, fmt.Errorf("mix %s: %w: read %d bytes, expected %d (did the file change while it was read?)", name, ErrSizeMismatch, res.Size, size)
	}
	root, descClass, descIDs, err := writeDescriptor(ctx, m, dataInfo{class: res.Class, t: res.T, size: res.Size, sha: res.SHA256}, tuples, o.TempDir)
	if err != nil {
		return PutResult{}, fmt.Errorf("descriptor of %s: %w", name, err)
	}
	rc := Recipe{Root: root, DescClass: descClass, Size: res.Size, Type: typ, Name: CleanName(name)}
	blocks1, bytes1 := m.Added()
	n, err := recordFile(ctx, st, rc, tuples, descIDs)
	if err != nil {
		return PutResult{}, fmt.Errorf("record %s: %w", name, err)
	}
	return PutResult{
		Recipe:    rc,
		Tuples:    int(tuples.n),
		NewBlocks: blocks1 - blocks0,
		NewBytes:  bytes1 - bytes0,
		NBlock:    n,
	}, nil
}

// listPart is how many block IDs recordFile gives the store at a time.
const listPart = 4096

// recordFile records rc in st with every block the file needs, in the
// order its tuples and then its descriptor name them, given in parts read
// from the tuple log: neither side holds the list whole. It returns how
// many distinct blocks the record lists.
func recordFile(ctx context.Context, st Store, rc Recipe, tuples *tupleLog, desc []blocks.ID) (int, error) {
	rec := blocks.FileRecord{
		Key: rc.Key(), Name: rc.Name, Size: rc.Size, Type: rc.Type,
		Recipe: rc.String(), Added: time.Now().UTC(),
	}
	return st.AddFileList(ctx, rec, func(add func([]blocks.ID) error) error {
		part := make([]blocks.ID, 0, listPart)
		var aerr error
		flush := func() {
			if aerr == nil && len(part) > 0 {
				aerr = add(part)
			}
			part = part[:0]
		}
		err := tuples.ids(func(id blocks.ID) {
			if part = append(part, id); len(part) == listPart {
				flush()
			}
		})
		if err != nil {
			return fmt.Errorf("list the blocks: %w", err)
		}
		if flush(); aerr != nil {
			return aerr
		}
		return add(desc)
	})
}

// dataInfo is what a descriptor says about the file besides its tuples.
type dataInfo struct {
	class, t int
	size     int64
	sha      [32]byte
}

// writeDescriptor builds the descriptor tree over the file's tuples, mixes
// and stores its nodes, and returns the root's tuple, the nodes' class and
// every block ID the descriptor uses. It goes level by level, each read
// from a tupleLog (in dir, when set) and each writing the next: it holds
// one node at a time, and mixes the nodes in the same order for any size.
func writeDescriptor(ctx context.Context, m *mixer.Mixer, d dataInfo, data *tupleLog, dir string) (mixer.Tuple, int, []blocks.ID, error) {
	return writeDescriptorClass(ctx, m, d, data, dir, mixer.ClassFor(int64(headerSize)+data.n*int64(d.t)*32))
}

func writeDescriptorClass(ctx context.Context, m *mixer.Mixer, d dataInfo, data *tupleLog, dir string, class int) (mixer.Tuple, int, []blocks.ID, error) {
	return writeDescriptorTree(ctx, m, d, data, dir, class, nil)
}

// writeDescriptorTree is writeDescriptorClass with an attachment: when
// attach is not nil, it is called once, just before the root node is
// mixed, with the IDs of the descriptor's other nodes' blocks, and the
// trailer it returns goes at the end of the root node (see attach.go).
func writeDescriptorTree(ctx context.Context, m *mixer.Mixer, d dataInfo, data *tupleLog, dir string, class int, attach func([]blocks.ID) ([]byte, error)) (mixer.Tuple, int, []blocks.ID, error) {
	h := header{
		entryT: d.t, entryClass: d.class, dataClass: d.class, dataT: d.t,
		size: d.size, sha: d.sha, total: data.n,
	}
	var ids []blocks.ID
	level := data
	for lv := 0; ; lv++ {
		per := capacity(class, h.entryT)
		isRoot := level.n <= int64(per)
		if attach != nil && isRoot && int64(headerSize)+level.n*int64(h.entryT)*32+trailerLen > int64(class) {
			if level != data {
				level.close()
			}
			return nil, 0, nil, ErrNoRoom
		}
		next := newTupleLog(DescT, dir)
		flat := make([]blocks.ID, per*h.entryT) // the node's entries' IDs
		entries := make([]mixer.Tuple, 0, per)
		emit := func() error {
			n := node{header: h, entries: entries}
			n.level = lv
			pad := make([]byte, class)
			if _, err := io.ReadFull(m.Rand(), pad); err != nil {
				return fmt.Errorf("read padding: %w", err)
			}
			buf, err := encodeNode(n, class, pad)
			if err != nil {
				return err
			}
			if attach != nil && isRoot {
				tr, err := attach(ids)
				if err != nil {
					return err
				}
				copy(buf[class-len(tr):], tr)
			}
			tu, err := m.MixBlock(ctx, buf, DescT)
			if err != nil {
				return err
			}
			ids = append(ids, tu...)
			entries = entries[:0]
			return next.add(tu)
		}
		err := level.each(func(tu mixer.Tuple) error {
			k := len(entries) * h.entryT
			e := mixer.Tuple(flat[k : k+h.entryT : k+h.entryT])
			copy(e, tu)
			entries = append(entries, e)
			if len(entries) == per {
				return emit()
			}
			return nil
		})
		if err == nil && len(entries) > 0 {
			err = emit()
		}
		if level != data {
			level.close()
		}
		if err != nil {
			next.close()
			return nil, 0, nil, err
		}
		if next.n == 0 {
			return nil, 0, nil, fmt.Errorf("descriptor level %d has no entries", lv)
		}
		if next.n == 1 {
			var root mixer.Tuple
			err := next.each(func(tu mixer.Tuple) error { root = append(mixer.Tuple(nil), tu...); return nil })
			next.close()
			return root, class, ids, err
		}
		level = next
		h.entryT, h.entryClass = DescT, class
	}
}
