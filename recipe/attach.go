package recipe

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/blockmix/blockmix/blocks"
	"github.com/blockmix/blockmix/mixer"
)

// An attachment is a small second file hung on a file's descriptor: its
// recipe sits in a trailer at the end of the descriptor's root node, in
// what was random padding. So the recipe URL does not change or grow; a
// reader finds the attachment from the recipe alone (the root is the
// first block it reads); descriptors without one (every older recipe)
// open as before, and an older blockmix opens a file with one as if it
// had none. An attachment is mixed and stored like any file (noise on
// disk), and checked like any file (its whole-file sha256). Erasure
// coding keeps its parity manifest there.
//
// Trailer layout, the last trailerLen bytes of the root node (little
// endian):
//
//	magic     [4]byte "BMXA"
//	version   u8      1
//	descClass u8      log2 of the attachment's root node size
//	-         u16     0
//	size      u64     the attachment's size in bytes
//	root      3×32    the attachment's root tuple
//	check     4       first bytes of sha256(everything before)
//
// Random padding passes for a trailer with probability 2^-72 (magic,
// version, zero bytes and check).
const (
	trailerMagic   = "BMXA"
	trailerVersion = 1
	trailerLen     = 4 + 1 + 1 + 2 + 8 + DescT*32 + checkLen
)

// ErrNoRoom: the descriptor's root has no room for an attachment's
// trailer (a file whose root node is within two entries of full: about
// 76 GiB with 128 KiB blocks). Put such a file without one.
var ErrNoRoom = errors.New("the descriptor's root has no room for the parity manifest's reference (put this file with replication)")

func encodeTrailer(a Recipe) ([]byte, error) {
	if len(a.Root) != DescT {
		return nil, fmt.Errorf("attachment root of %d IDs", len(a.Root))
	}
	if err := mixer.ValidClass(a.DescClass); err != nil {
		return nil, err
	}
	b := make([]byte, 0, trailerLen)
	b = append(b, trailerMagic...)
	b = append(b, trailerVersion, byte(log2(a.DescClass)), 0, 0)
	b = binary.LittleEndian.AppendUint64(b, uint64(a.Size))
	for _, id := range a.Root {
		b = append(b, id[:]...)
	}
	sum := sha256.Sum256(b)
	return append(b, sum[:checkLen]...), nil
}

// decodeTrailer reads the attachment of a root node whose entries end at
// used, if it has one.
func decodeTrailer(node []byte, used int) (Recipe, bool) {
	if len(node)-used < trailerLen {
		return Recipe{}, false
	}
	b := node[len(node)-trailerLen:]
	body, check := b[:trailerLen-checkLen], b[trailerLen-checkLen:]
	if !bytes.Equal(b[:4], []byte(trailerMagic)) || b[4] != trailerVersion || b[6] != 0 || b[7] != 0 {
		return Recipe{}, false
	}
	sum := sha256.Sum256(body)
	if !bytes.Equal(sum[:checkLen], check) {
		return Recipe{}, false
	}
	cls, ok := classOK(b[5])
	size := binary.LittleEndian.Uint64(b[8:])
	if !ok || size > 1<<40 {
		return Recipe{}, false
	}
	a := Recipe{DescClass: cls, Size: int64(size), Root: make(mixer.Tuple, DescT)}
	for i := range a.Root {
		copy(a.Root[i][:], b[16+32*i:])
	}
	return a, true
}

// Attachment returns the recipe of the file's attachment, if its
// descriptor has one. Its size comes from the file's descriptor: a
// caller bounds it before it opens it.
func (r *Reader) Attachment() (Recipe, bool) { return r.attach, r.hasAttach }

// Root returns the recipe's root tuple: the blocks read first.
func (r *Reader) Root() []blocks.ID { return append([]blocks.ID(nil), r.rc.Root...) }

// BlocksBound bounds how many blocks the file's data tuples and
// descriptor can name: what bounds anything sized by the file's blocks.
func (r *Reader) BlocksBound() int64 {
	t := r.root.total * int64(r.root.dataT)
	return 2*t + int64(DescT)
}

// writeDescriptor writes the upload's descriptor, with the attachment
// (see Upload.Attach) in its root when asked for one, and returns what
// writeDescriptor does plus the attachment's blocks.
func (u *Upload) writeDescriptor(ctx context.Context, m *mixer.Mixer, d dataInfo) (mixer.Tuple, int, []blocks.ID, []blocks.ID, error) {
	if u.Attach == nil {
		root, cls, ids, err := writeDescriptor(ctx, m, d, u.tuples, u.Dir)
		return root, cls, ids, nil, err
	}
	var extra []blocks.ID
	attach := func(desc []blocks.ID) ([]byte, error) {
		ids, err := fileBlocks(u.tuples, desc)
		if err != nil {
			return nil, err
		}
		a, more, err := u.Attach(ctx, m, ids)
		if err != nil {
			return nil, err
		}
		extra = more
		return encodeTrailer(a)
	}
	// The class writeDescriptor would take, or the next that leaves room
	// for the trailer in the root.
	class := mixer.ClassFor(int64(headerSize) + u.tuples.n*int64(d.t)*32)
	for _, c := range mixer.Classes {
		if c >= class && rootRoom(c, u.tuples.n, d.t) {
			class = c
			break
		}
	}
	root, cls, ids, err := writeDescriptorTree(ctx, m, d, u.tuples, u.Dir, class, attach)
	return root, cls, ids, extra, err
}

// rootRoom reports whether the root of a descriptor of class over n
// tuples of t IDs has room for a trailer.
func rootRoom(class int, n int64, t int) bool {
	per := int64(capacity(class, t))
	for n > per {
		n = (n + per - 1) / per
		t = DescT
		per = int64(capacity(class, t))
	}
	return int64(headerSize)+n*int64(t)*32+trailerLen <= int64(class)
}

// PutBlob mixes data into m's store as a file that is recorded nowhere
// (an attachment) and returns its recipe (no name, no type) and every
// block it needs. Like any put, its blocks stay only while something
// references them.
func PutBlob(ctx context.Context, m *mixer.Mixer, data []byte) (Recipe, []blocks.ID, error) {
	tuples := newTupleLog(m.T(), "")
	defer tuples.close()
	res, err := m.MixStream(ctx, bytes.NewReader(data), mixer.ClassFor(int64(len(data))), mixer.Stream{Tuple: tuples.add})
	if err != nil {
		return Recipe{}, nil, err
	}
	root, descClass, descIDs, err := writeDescriptor(ctx, m, dataInfo{class: res.Class, t: res.T, size: res.Size, sha: res.SHA256}, tuples, "")
	if err != nil {
		return Recipe{}, nil, err
	}
	ids, err := fileBlocks(tuples, descIDs)
	if err != nil {
		return Recipe{}, nil, err
	}
	return Recipe{Root: root, DescClass: descClass, Size: res.Size}, ids, nil
}

// fileBlocks lists every distinct block a file needs, in the order its
// tuples and then its descriptor name them: the whole list, 32 bytes a
// block, for an attachment's builder (a put records the list in parts:
// see recordFile).
func fileBlocks(tuples *tupleLog, desc []blocks.ID) ([]blocks.ID, error) {
	seen := map[blocks.ID]struct{}{}
	var ids []blocks.ID
	add := func(id blocks.ID) {
		if _, ok := seen[id]; !ok {
			seen[id] = struct{}{}
			ids = append(ids, id)
		}
	}
	if err := tuples.ids(add); err != nil {
		return nil, err
	}
	for _, id := range desc {
		add(id)
	}
	return ids, nil
}
