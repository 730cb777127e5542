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
	Tuples    int         // data tuples
	NewBlocks int         // blocks the put added, fresh randomizers included
	NewBytes  int64       // their bytes
	Blocks    []blocks.ID // every distinct block the file needs
}

// ErrSizeMismatch: a put read more or fewer bytes than it was told.
var ErrSizeMismatch = errors.New("the file's size is not what was said")

// Put mixes r (size bytes, or −1 when unknown) into st with m and records
// the file in st. The file is durable only after st.Sync. On error,
// nothing is recorded and the blocks the put stored are deleted again
// (when st can delete; see mixer.Discard), and m must not be used again.
func Put(ctx context.Context, m *mixer.Mixer, st Store, r io.Reader, size int64, name, typ string, prog mixer.Progress) (_ PutResult, err error) {
	blocks0, bytes0 := m.Added()
	res, err := m.Mix(ctx, r, mixer.ClassFor(size), prog)
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
	root, descClass, descIDs, err := writeDescriptor(ctx, m, res)
	if err != nil {
		return PutResult{}, fmt.Errorf("descriptor of %s: %w", name, err)
	}
	rc := Recipe{Root: root, DescClass: descClass, Size: res.Size, Type: typ, Name: CleanName(name)}
	var ids []blocks.ID
	for _, tu := range res.Tuples {
		ids = append(ids, tu...)
	}
	ids = blocks.Dedup(append(ids, descIDs...))
	blocks1, bytes1 := m.Added()
	out := PutResult{
		Recipe:    rc,
		Tuples:    len(res.Tuples),
		NewBlocks: blocks1 - blocks0,
		NewBytes:  bytes1 - bytes0,
		Blocks:    ids,
	}
	if err := st.AddFile(ctx, blocks.FileRecord{
		Key: rc.Key(), Name: rc.Name, Size: rc.Size, Type: rc.Type,
		Recipe: rc.String(), Added: time.Now().UTC(), Blocks: ids,
	}); err != nil {
		return PutResult{}, fmt.Errorf("record %s: %w", name, err)
	}
	return out, nil
}

// writeDescriptor builds the descriptor tree over res's tuples, mixes and
// stores its nodes, and returns the root's tuple, the nodes' class and every
// block ID the descriptor uses.
func writeDescriptor(ctx context.Context, m *mixer.Mixer, res mixer.Result) (mixer.Tuple, int, []blocks.ID, error) {
	total := int64(len(res.Tuples))
	return writeDescriptorClass(ctx, m, res, mixer.ClassFor(int64(headerSize)+total*int64(res.T)*32))
}

func writeDescriptorClass(ctx context.Context, m *mixer.Mixer, res mixer.Result, class int) (mixer.Tuple, int, []blocks.ID, error) {
	total := int64(len(res.Tuples))
	h := header{
		entryT: res.T, entryClass: res.Class, dataClass: res.Class, dataT: res.T,
		size: res.Size, sha: res.SHA256, total: total,
	}
	var ids []blocks.ID
	level := res.Tuples
	for lv := 0; ; lv++ {
		per := capacity(class, h.entryT)
		var next []mixer.Tuple
		for i := 0; i < len(level); i += per {
			j := min(i+per, len(level))
			n := node{header: h, entries: level[i:j]}
			n.level = lv
			pad := make([]byte, class)
			if _, err := io.ReadFull(m.Rand(), pad); err != nil {
				return nil, 0, nil, fmt.Errorf("read padding: %w", err)
			}
			buf, err := encodeNode(n, class, pad)
			if err != nil {
				return nil, 0, nil, err
			}
			tu, err := m.MixBlock(ctx, buf, DescT)
			if err != nil {
				return nil, 0, nil, err
			}
			ids = append(ids, tu...)
			next = append(next, tu)
		}
		if len(next) == 1 {
			return next[0], class, ids, nil
		}
		level = next
		h.entryT, h.entryClass = DescT, class
	}
}
