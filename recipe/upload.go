package recipe

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"time"

	"github.com/blockmix/blockmix/blocks"
	"github.com/blockmix/blockmix/mixer"
)

// partBlocks is how many blocks one part of an Upload holds.
const partBlocks = 16

// Upload is a Put in parts. The caller reads each part of the stream
// itself, without holding the Mixer, and hands it to Add; so a slow
// stream holds the Mixer only while one part is mixed, and uploads that
// run at once share one Mixer, a part at a time. An Upload is used by one
// goroutine at a time; Add and Finish must not run at the same time as any
// other use of their Mixer.
//
// The blocks an unfinished Upload stored (New) and the blocks its tuples
// name (Used) are referenced by no file yet: whoever deletes unreferenced
// blocks meanwhile (an eviction) must leave them, and another upload
// mixed later may use them as randomizers.
type Upload struct {
	name, typ string
	size      int64 // as said, or −1
	class     int
	h         hash.Hash
	read      int64
	tuples    []mixer.Tuple
	newIDs    []blocks.ID
	newBlocks int   // len(newIDs)
	newBytes  int64 // their bytes
	last      bool  // the last part was added
}

// NewUpload begins an upload of a file of size bytes (−1: unknown).
func NewUpload(size int64, name, typ string) *Upload {
	return &Upload{name: name, typ: typ, size: size, class: mixer.ClassFor(size), h: sha256.New()}
}

// PartSize is the length of every part but the last: a whole number of
// blocks.
func (u *Upload) PartSize() int { return partBlocks * u.class }

// Add mixes one part of the stream into the store with m. part holds
// PartSize bytes, or fewer (even none) when last; after the last part
// only Finish may follow. On error the part's blocks are gone again
// (mixer.Mix discards them), m must not be used again, and the Upload
// fails: give New to the discard.
func (u *Upload) Add(ctx context.Context, m *mixer.Mixer, part []byte, last bool, prog mixer.Progress) error {
	switch {
	case u.last:
		return errors.New("upload: a part after the last one")
	case !last && len(part) != u.PartSize():
		return fmt.Errorf("upload: a part of %d bytes, want %d", len(part), u.PartSize())
	}
	u.last = last
	if len(part) == 0 && len(u.tuples) > 0 {
		return nil // the stream ended on a part's end
	}
	if u.size >= 0 && u.read+int64(len(part)) > u.size {
		return fmt.Errorf("mix %s: %w: read more than the %d bytes said (did the file change while it was read?)", u.name, ErrSizeMismatch, u.size)
	}
	res, err := m.Mix(ctx, bytes.NewReader(part), u.class, prog)
	if err != nil {
		return fmt.Errorf("mix %s: %w", u.name, err)
	}
	u.h.Write(part)
	u.read += res.Size
	u.tuples = append(u.tuples, res.Tuples...)
	u.newIDs = append(u.newIDs, res.New...)
	u.newBlocks += len(res.New)
	u.newBytes += int64(len(res.New)) * int64(u.class)
	return nil
}

// New returns the blocks the upload stored so far (fresh randomizers
// included): what a failed upload deletes, unless something else uses
// them meanwhile.
func (u *Upload) New() []blocks.ID { return u.newIDs }

// Used calls fn for every block the upload's tuples name so far, and for
// every block it stored.
func (u *Upload) Used(fn func(blocks.ID)) {
	for _, tu := range u.tuples {
		for _, id := range tu {
			fn(id)
		}
	}
	for _, id := range u.newIDs {
		fn(id)
	}
}

// Finish checks the size, writes the descriptor with m and records the
// file in st, as Put does. The file is durable only after st.Sync. On
// error nothing is recorded, m must not be used again, and the blocks in
// New are for the caller to discard.
func (u *Upload) Finish(ctx context.Context, m *mixer.Mixer, st Store) (PutResult, error) {
	if !u.last {
		return PutResult{}, errors.New("upload: finished before its last part")
	}
	if u.size >= 0 && u.read != u.size {
		m.Break(ErrSizeMismatch)
		return PutResult{}, fmt.Errorf("mix %s: %w: read %d bytes, expected %d (did the file change while it was read?)", u.name, ErrSizeMismatch, u.read, u.size)
	}
	res := mixer.Result{Tuples: u.tuples, Class: u.class, T: len(u.tuples[0]), Size: u.read}
	copy(res.SHA256[:], u.h.Sum(nil))
	blocks0, bytes0 := m.Added()
	root, descClass, descIDs, err := writeDescriptor(ctx, m, res)
	if err != nil {
		m.Break(err)
		return PutResult{}, fmt.Errorf("descriptor of %s: %w", u.name, err)
	}
	blocks1, bytes1 := m.Added()
	rc := Recipe{Root: root, DescClass: descClass, Size: res.Size, Type: u.typ, Name: CleanName(u.name)}
	var ids []blocks.ID
	for _, tu := range res.Tuples {
		ids = append(ids, tu...)
	}
	ids = blocks.Dedup(append(ids, descIDs...))
	out := PutResult{
		Recipe:    rc,
		Tuples:    len(res.Tuples),
		NewBlocks: u.newBlocks + blocks1 - blocks0,
		NewBytes:  u.newBytes + bytes1 - bytes0,
		Blocks:    ids,
	}
	if err := st.AddFile(ctx, blocks.FileRecord{
		Key: rc.Key(), Name: rc.Name, Size: rc.Size, Type: rc.Type,
		Recipe: rc.String(), Added: time.Now().UTC(), Blocks: ids,
	}); err != nil {
		m.Break(err)
		return PutResult{}, fmt.Errorf("record %s: %w", u.name, err)
	}
	return out, nil
}
