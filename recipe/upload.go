package recipe

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"

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
//
// The Upload's list of tuples goes to a temporary file in Dir (when set
// before the first Add), so that its memory does not grow with the file;
// the list of blocks it stored (New) stays in memory, 32 bytes a block.
type Upload struct {
	// Dir, when not "", holds the upload's tuples while it runs (see
	// PutOptions.TempDir); set it before the first Add.
	Dir string
	// Attach, when not nil, is called by Finish once, before the
	// descriptor's root is mixed, with every block the file needs but
	// the root's own (see Attachment); the attachment's recipe goes into
	// the root, and its blocks (extra) join the file's blocks. An error
	// fails the Finish.
	Attach func(ctx context.Context, m *mixer.Mixer, ids []blocks.ID) (att Recipe, extra []blocks.ID, err error)
	// Stored, when not nil, gets every block Add stores, as
	// mixer.Stream.Stored does (the bytes are valid only during the call;
	// the descriptor's blocks, which Finish stores, are not given).
	Stored func(blocks.Block)

	name, typ string
	size      int64 // as said, or −1
	class     int
	h         hash.Hash
	read      int64
	tuples    *tupleLog
	taken     []blocks.ID // named since the last TakeBlocks
	newIDs    []blocks.ID
	newBlocks int   // len(newIDs)
	newBytes  int64 // their bytes
	last      bool  // the last part was added
	err       error // the tuples could not be read back: the upload failed
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
	case u.err != nil:
		return u.err
	case u.last:
		return errors.New("upload: a part after the last one")
	case !last && len(part) != u.PartSize():
		return fmt.Errorf("upload: a part of %d bytes, want %d", len(part), u.PartSize())
	}
	if u.tuples == nil {
		u.tuples = newTupleLog(m.T(), u.Dir)
	}
	u.last = last
	if len(part) == 0 && u.tuples.n > 0 {
		return nil // the stream ended on a part's end
	}
	if u.size >= 0 && u.read+int64(len(part)) > u.size {
		return fmt.Errorf("mix %s: %w: read more than the %d bytes said (did the file change while it was read?)", u.name, ErrSizeMismatch, u.size)
	}
	res, err := m.MixStream(ctx, bytes.NewReader(part), u.class, mixer.Stream{Progress: prog, NoHash: true, Tuple: u.addTuple, Stored: u.Stored})
	if err != nil {
		return fmt.Errorf("mix %s: %w", u.name, err)
	}
	u.h.Write(part)
	u.read += res.Size
	u.newIDs = append(u.newIDs, res.New...)
	u.newBlocks += len(res.New)
	u.newBytes += int64(len(res.New)) * int64(u.class)
	return nil
}

func (u *Upload) addTuple(tu mixer.Tuple) error {
	u.taken = append(u.taken, tu...)
	return u.tuples.add(tu)
}

// TakeBlocks returns the blocks that the tuples mixed since the last call
// name (the descriptor's too, after Finish), repeats included, and
// forgets them: what a networked put places as it goes. Without calls it
// grows with the file.
func (u *Upload) TakeBlocks() []blocks.ID {
	ids := u.taken
	u.taken = nil
	return ids
}

// New returns the blocks the upload stored so far (fresh randomizers
// included): what a failed upload deletes, unless something else uses
// them meanwhile.
func (u *Upload) New() []blocks.ID { return u.newIDs }

// Used calls fn for every block the upload's tuples name so far, and for
// every block it stored. When its tuples cannot be read back (their file
// is on a failing disk) it names only the blocks it stored, and the
// Upload fails: its next Add or Finish returns the error, so none of the
// other blocks needs to stay for it.
func (u *Upload) Used(fn func(blocks.ID)) {
	if u.tuples != nil && u.err == nil {
		if err := u.tuples.ids(fn); err != nil {
			u.err = fmt.Errorf("upload %s: %w", u.name, err)
		}
	}
	for _, id := range u.newIDs {
		fn(id)
	}
}

// Close removes the upload's temporary file, if any. Finish closes the
// Upload; one that fails before is closed by whoever gives up on it.
func (u *Upload) Close() {
	if u.tuples != nil {
		u.tuples.close()
	}
}

// Finish checks the size, writes the descriptor with m and records the
// file in st, as Put does, and closes the Upload. The file is durable
// only after st.Sync. On error nothing is recorded, m must not be used
// again, and the blocks in New are for the caller to discard.
func (u *Upload) Finish(ctx context.Context, m *mixer.Mixer, st Store) (PutResult, error) {
	if u.err != nil {
		return PutResult{}, u.err
	}
	if !u.last || u.tuples == nil {
		return PutResult{}, errors.New("upload: finished before its last part")
	}
	defer u.Close()
	if u.size >= 0 && u.read != u.size {
		m.Break(ErrSizeMismatch)
		return PutResult{}, fmt.Errorf("mix %s: %w: read %d bytes, expected %d (did the file change while it was read?)", u.name, ErrSizeMismatch, u.read, u.size)
	}
	d := dataInfo{class: u.class, t: u.tuples.t, size: u.read}
	copy(d.sha[:], u.h.Sum(nil))
	blocks0, bytes0 := m.Added()
	root, descClass, descIDs, extra, err := u.writeDescriptor(ctx, m, d)
	if err != nil {
		m.Break(err)
		return PutResult{}, fmt.Errorf("descriptor of %s: %w", u.name, err)
	}
	u.taken = append(append(u.taken, descIDs...), extra...)
	blocks1, bytes1 := m.Added()
	rc := Recipe{Root: root, DescClass: descClass, Size: d.size, Type: u.typ, Name: CleanName(u.name)}
	n, err := recordFile(ctx, st, rc, u.tuples, append(descIDs, extra...))
	if err != nil {
		m.Break(err)
		return PutResult{}, fmt.Errorf("record %s: %w", u.name, err)
	}
	return PutResult{
		Recipe:    rc,
		Tuples:    int(u.tuples.n),
		NewBlocks: u.newBlocks + blocks1 - blocks0,
		NewBytes:  u.newBytes + bytes1 - bytes0,
		NBlock:    n,
	}, nil
}
