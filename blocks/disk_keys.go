package blocks

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Layout of the goleveldb index under dir/index. Every key starts with a
// one-byte prefix:
//
//	b id(32)                         → entry (see entry.encode)
//	t tag(8, big endian) id(32)      → empty: tag index, several blocks may share a tag
//	h tag(8, big endian)             → empty: some block may carry tag (see hasTagKey)
//	f key                            → file record, JSON (diskFile)
//	o order(8, big endian)           → key: files in order of arrival
//	l len(key)(uvarint) key chunk(4) → up to fileListChunk block IDs, 32 bytes each
//	p order(8, big endian)           → key: a block list being added (disk_filelist.go)
//	a order(8, big endian) id(32)    → empty: that block is in that list
//	q id(32)                         → quarantine reason
//	d seg(4, big endian)             → dead bytes in that segment (8, big endian)
//	m name                           → a mark (see Marker)
//	c name                           → counter (8, big endian); ccounts: see counts
//	u, s                             → randomizer candidates (see disk_counts.go)
//	v                                → format version (see formatVersion)
const (
	prefixBlock   = 'b'
	prefixTag     = 't'
	prefixHasTag  = 'h'
	prefixFile    = 'f'
	prefixOrder   = 'o'
	prefixList    = 'l'
	prefixQuar    = 'q'
	prefixDead    = 'd'
	prefixMark    = 'm'
	fileListChunk = 2048 // IDs per list chunk: 64 KiB values
)

const (
	// formatVersion is the store format: "2" since segments take v2
	// records (with a CRC) and the index keeps counters and candidate
	// lists (disk_counts.go). A store of format "1" holds v1 records only
	// and neither; OpenDisk adds the counters and lists with one walk and
	// moves its marker to "2" before it writes anything else to it, so
	// that an older blockmix, which can read neither v2 records nor keep
	// the counters, refuses the store instead of dropping entries or
	// letting the counters go wrong.
	//
	// "3" adds the h keys (see hasTagKey). A store of format "2" gets
	// them, the same way, with one walk before its marker moves: an older
	// blockmix would add blocks without their h key, and HasTag would
	// answer false for their tags.
	//
	// "4" lets a file's list be journalled in parts ("begin", "part",
	// "commit": see disk_filelist.go), which an older blockmix's replay
	// would skip, losing the file. A store of format "3" needs nothing
	// more: its marker moves before the first such list.
	formatVersion = "4"
	formatV3      = "3"
	formatV2      = "2"
	formatV1      = "1"
)

var (
	keyFormat  = []byte("v")
	keySeq     = []byte("cseq")
	keyFileSeq = []byte("cfile")
	errIndex   = errors.New("damaged index entry")
)

func blockKey(id ID) []byte {
	k := make([]byte, 1+len(id))
	k[0] = prefixBlock
	copy(k[1:], id[:])
	return k
}

func blockKeyID(k []byte) (ID, error) {
	var id ID
	if len(k) != 1+len(id) {
		return id, fmt.Errorf("block key %x: %w", k, errIndex)
	}
	copy(id[:], k[1:])
	return id, nil
}

func tagPrefix(tag uint64) []byte {
	return binary.BigEndian.AppendUint64([]byte{prefixTag}, tag)
}

func tagKey(tag uint64, id ID) []byte { return append(tagPrefix(tag), id[:]...) }

// hasTagKey is the key that lets HasTag answer with one point lookup,
// which the index's Bloom filter answers without a read when the key is
// absent (a prefix walk of the t keys opens an iterator on every level of
// goleveldb's tree, which cost a small put most of its CPU). Every tag with
// a t key has its h key: setEntry writes both in one batch, and a recovery
// or an upgrade adds the missing ones from the entries. The converse may
// fail for a while (an h key is deleted only after a committed batch
// deleted the tag's last t key, see dropHasTags; a crash between leaves
// it): HasTag may then say a tag is taken that no block carries, which
// only costs the picker one choice.
func hasTagKey(tag uint64) []byte {
	return binary.BigEndian.AppendUint64([]byte{prefixHasTag}, tag)
}

func quarKey(id ID) []byte {
	k := blockKey(id)
	k[0] = prefixQuar
	return k
}

func deadKey(seg uint32) []byte {
	return binary.BigEndian.AppendUint32([]byte{prefixDead}, seg)
}

func markKey(name string) []byte { return append([]byte{prefixMark}, name...) }

func fileKey(key string) []byte { return append([]byte{prefixFile}, key...) }

func orderKey(n uint64) []byte {
	return binary.BigEndian.AppendUint64([]byte{prefixOrder}, n)
}

// listPrefix is the prefix of the block-list chunks of a file. The key's
// length comes first, so no key's prefix is another key's.
func listPrefix(key string) []byte {
	p := binary.AppendUvarint([]byte{prefixList}, uint64(len(key)))
	return append(p, key...)
}

func listKey(key string, chunk uint32) []byte {
	return binary.BigEndian.AppendUint32(listPrefix(key), chunk)
}

// listKeyFile returns the file key of list chunk key k.
func listKeyFile(k []byte) (string, bool) {
	k = k[1:]
	n, w := binary.Uvarint(k)
	if w <= 0 || uint64(len(k)-w) < n {
		return "", false
	}
	return string(k[w : w+int(n)]), true
}

func encodeUint64(n uint64) []byte { return binary.BigEndian.AppendUint64(nil, n) }

func decodeUint64(b []byte) (uint64, error) {
	if len(b) != 8 {
		return 0, fmt.Errorf("counter of %d bytes: %w", len(b), errIndex)
	}
	return binary.BigEndian.Uint64(b), nil
}

// entry is what the index keeps per block.
type entry struct {
	Seg  uint32       // segment number
	Off  int64        // offset of the record (header, then bytes) in the segment
	Len  int          // length of the block's bytes
	Rec  recordFormat // the record's format; the zero value is v2, what is written now
	Tag  uint64
	Refs int
	Seq  uint64
}

// The first byte of an encoded entry says the format of the record it
// points to; the rest is the same for both.
const (
	entryRecordV1 = 1 // a "bmx1" record (every entry of a format 1 store)
	entryRecordV2 = 2 // a "bmx2" record
)

// recordSize is the size of the record e points to, header included.
func (e entry) recordSize() int64 { return int64(e.Rec.headerSize() + e.Len) }

// encode: the record format byte (entryRecordV1 or entryRecordV2), then
// uvarints seg, off, len, refs, seq, then the tag as 8 bytes big endian
// (tags are random, so a varint would not help).
func (e entry) encode() []byte {
	b := make([]byte, 0, 1+5*binary.MaxVarintLen64+8)
	v := byte(entryRecordV2)
	if e.Rec == recordV1 {
		v = entryRecordV1
	}
	b = append(b, v)
	b = binary.AppendUvarint(b, uint64(e.Seg))
	b = binary.AppendUvarint(b, uint64(e.Off))
	b = binary.AppendUvarint(b, uint64(e.Len))
	b = binary.AppendUvarint(b, uint64(e.Refs))
	b = binary.AppendUvarint(b, e.Seq)
	return binary.BigEndian.AppendUint64(b, e.Tag)
}

func decodeEntry(b []byte) (entry, error) {
	var rec recordFormat
	switch {
	case len(b) < 1:
		return entry{}, fmt.Errorf("entry %x: %w", b, errIndex)
	case b[0] == entryRecordV1:
		rec = recordV1
	case b[0] == entryRecordV2:
		rec = recordV2
	default:
		return entry{}, fmt.Errorf("entry %x: %w", b, errIndex)
	}
	p := b[1:]
	var v [5]uint64
	for i := range v {
		n, k := binary.Uvarint(p)
		if k <= 0 {
			return entry{}, fmt.Errorf("entry %x: %w", b, errIndex)
		}
		v[i], p = n, p[k:]
	}
	if len(p) != 8 || v[0] > 1<<32-1 || v[1] > 1<<62 || v[2] > MaxBlockSize || v[3] > 1<<62 {
		return entry{}, fmt.Errorf("entry %x: %w", b, errIndex)
	}
	return entry{
		Seg:  uint32(v[0]),
		Off:  int64(v[1]),
		Len:  int(v[2]),
		Rec:  rec,
		Refs: int(v[3]),
		Seq:  v[4],
		Tag:  binary.BigEndian.Uint64(p),
	}, nil
}

func (e entry) meta() Meta { return Meta{Size: e.Len, Tag: e.Tag, Refs: e.Refs, Seq: e.Seq} }
