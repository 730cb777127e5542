// Package recipe turns a stream into a recipe and a recipe back into a
// stream. A file's tuples are listed in a descriptor, a tree of nodes each
// exactly one block long, mixed and stored like file data; the recipe holds
// the root node's tuple plus the file's size, name and media type.
package recipe

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"

	"github.com/blockmix/blockmix/mixer"
)

// DescT is the tuple size of descriptor nodes, whatever the file's: it keeps
// the recipe's root tuple at three IDs.
const DescT = 3

// Descriptor node layout (little endian), padded with random bytes to the
// descriptor's block class:
//
//	magic      [4]byte "BMXD"
//	version    u8      1
//	level      u8      0 for a leaf (entries are data tuples), k for a node
//	                   whose entries are level k−1 nodes
//	entryT     u8      tuple size of the entries
//	entryClass u8      log2 of the entries' block size
//	dataClass  u8      log2 of the file's block size
//	dataT      u8      tuple size of the file's data tuples
//	count      u16     entries in this node
//	size       u64     file size in bytes
//	sha256     [32]    of the whole file
//	total      u64     data tuples in the file
//	entries    count × entryT × 32-byte sha2-256 digests
const (
	nodeMagic   = "BMXD"
	nodeVersion = 1
	headerSize  = 60
)

// ErrBadDescriptor: a descriptor node does not decode or does not fit the
// recipe. It means a damaged recipe or a bug, never a missing block.
var ErrBadDescriptor = errors.New("bad descriptor")

type header struct {
	level      int
	entryT     int
	entryClass int
	dataClass  int
	dataT      int
	count      int
	size       int64
	sha        [32]byte
	total      int64
}

type node struct {
	header
	entries []mixer.Tuple
}

// capacity returns how many tuples of t IDs a node of class bytes holds.
func capacity(class, t int) int { return (class - headerSize) / (t * 32) }

func log2(n int) int { return bits.Len(uint(n)) - 1 }

// encodeNode writes n into a buffer of class bytes; pad fills the rest.
func encodeNode(n node, class int, pad []byte) ([]byte, error) {
	need := headerSize + len(n.entries)*n.entryT*32
	if need > class {
		return nil, fmt.Errorf("descriptor node needs %d bytes, class is %d", need, class)
	}
	buf := make([]byte, class)
	copy(buf, nodeMagic)
	buf[4] = nodeVersion
	buf[5] = byte(n.level)
	buf[6] = byte(n.entryT)
	buf[7] = byte(log2(n.entryClass))
	buf[8] = byte(log2(n.dataClass))
	buf[9] = byte(n.dataT)
	binary.LittleEndian.PutUint16(buf[10:], uint16(len(n.entries)))
	binary.LittleEndian.PutUint64(buf[12:], uint64(n.size))
	copy(buf[20:52], n.sha[:])
	binary.LittleEndian.PutUint64(buf[52:], uint64(n.total))
	off := headerSize
	for _, tu := range n.entries {
		if len(tu) != n.entryT {
			return nil, fmt.Errorf("descriptor entry of %d IDs, want %d", len(tu), n.entryT)
		}
		for _, id := range tu {
			off += copy(buf[off:], id[:])
		}
	}
	copy(buf[off:], pad)
	return buf, nil
}

func classOK(lg byte) (int, bool) {
	if lg > 30 {
		return 0, false
	}
	c := 1 << lg
	return c, mixer.ValidClass(c) == nil
}

// decodeNode parses a node block. It checks every field against the limits
// of the format, never panics, and copies what it keeps.
func decodeNode(b []byte) (node, error) {
	bad := func(format string, a ...any) (node, error) {
		return node{}, fmt.Errorf("%w: %s", ErrBadDescriptor, fmt.Sprintf(format, a...))
	}
	if mixer.ValidClass(len(b)) != nil {
		return bad("node of %d bytes", len(b))
	}
	if !bytes.Equal(b[:4], []byte(nodeMagic)) {
		return bad("no descriptor magic")
	}
	if b[4] != nodeVersion {
		return bad("version %d, this program reads %d", b[4], nodeVersion)
	}
	var n node
	n.level = int(b[5])
	n.entryT = int(b[6])
	var ok bool
	if n.entryClass, ok = classOK(b[7]); !ok {
		return bad("entry class 2^%d", b[7])
	}
	if n.dataClass, ok = classOK(b[8]); !ok {
		return bad("data class 2^%d", b[8])
	}
	n.dataT = int(b[9])
	n.count = int(binary.LittleEndian.Uint16(b[10:]))
	n.size = int64(binary.LittleEndian.Uint64(b[12:]))
	copy(n.sha[:], b[20:52])
	n.total = int64(binary.LittleEndian.Uint64(b[52:]))
	if mixer.ValidT(n.entryT) != nil || mixer.ValidT(n.dataT) != nil {
		return bad("tuple sizes %d/%d", n.entryT, n.dataT)
	}
	if n.level == 0 && (n.entryT != n.dataT || n.entryClass != n.dataClass) {
		return bad("leaf entries differ from the data's")
	}
	if n.level > 0 && n.entryT != DescT {
		return bad("inner node entries of %d", n.entryT)
	}
	if n.level > 8 {
		return bad("depth %d", n.level)
	}
	if n.count == 0 || n.count > capacity(len(b), n.entryT) {
		return bad("%d entries", n.count)
	}
	if n.size < 0 || n.total < 1 || n.total > (n.size/int64(n.dataClass))+1 {
		return bad("size %d with %d tuples", n.size, n.total)
	}
	n.entries = make([]mixer.Tuple, n.count)
	off := headerSize
	for i := range n.entries {
		tu := make(mixer.Tuple, n.entryT)
		for j := range tu {
			copy(tu[j][:], b[off:off+32])
			off += 32
		}
		n.entries[i] = tu
	}
	return n, nil
}
