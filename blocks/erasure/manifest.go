package erasure

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/blockmix/blockmix/blocks"
)

// Stripe is K data blocks of one size and their M parity blocks. A
// stripe at the end of a size group may hold fewer than K data blocks:
// the missing ones count as fixed filler blocks, stored nowhere.
type Stripe struct {
	Size   int         // every block's size in bytes
	Data   []blocks.ID // 1..K data blocks
	Parity []blocks.ID // M parity blocks
}

// Shards returns the stripe's stored blocks: data, then parity.
func (s Stripe) Shards() []blocks.ID {
	return append(append([]blocks.ID(nil), s.Data...), s.Parity...)
}

// Manifest lists a file's stripes.
type Manifest struct {
	Scheme
	Stripes []Stripe
}

// Manifest layout (little endian):
//
//	magic   [4]byte "BMXS"
//	version u8      1
//	K, M    u8, u8
//	-       u8      0
//	count   u32     stripes
//	count × (log2 size u8, data count u8, data × 32-byte digests, M × 32-byte digests)
const (
	manifestMagic   = "BMXS"
	manifestVersion = 1
	manifestHeader  = 12
)

// Minimum and maximum block sizes a stripe may hold (2^10 .. 2^17 bytes:
// the block classes).
const (
	minSizeLog = 10
	maxSizeLog = 17
)

// ErrBadManifest: a manifest does not decode, or does not fit its file.
var ErrBadManifest = errors.New("bad parity manifest")

// Encode returns the manifest's bytes.
func (m Manifest) Encode() ([]byte, error) {
	if err := m.Scheme.Valid(); err != nil {
		return nil, err
	}
	b := make([]byte, manifestHeader, manifestHeader+len(m.Stripes)*(2+(m.K+m.M)*32))
	copy(b, manifestMagic)
	b[4], b[5], b[6] = manifestVersion, byte(m.K), byte(m.M)
	binary.LittleEndian.PutUint32(b[8:], uint32(len(m.Stripes)))
	for i, s := range m.Stripes {
		lg := log2(s.Size)
		if lg < minSizeLog || lg > maxSizeLog || 1<<lg != s.Size || len(s.Data) < 1 || len(s.Data) > m.K || len(s.Parity) != m.M {
			return nil, fmt.Errorf("stripe %d: %d-byte blocks, %d data and %d parity", i, s.Size, len(s.Data), len(s.Parity))
		}
		b = append(b, byte(lg), byte(len(s.Data)))
		for _, id := range s.Shards() {
			b = append(b, id[:]...)
		}
	}
	return b, nil
}

func log2(n int) int {
	l := 0
	for n > 1 {
		n >>= 1
		l++
	}
	return l
}

// MaxBytes is the longest manifest a file of at most blocksBound blocks
// (outside its stripes' parity) can have under any scheme: what a reader
// may fetch before it decodes one (each stripe holds at least one of the
// file's blocks, and the last one of each of the three sizes may be short).
func MaxBytes(blocksBound int64) int64 {
	stripes := blocksBound/MinK + 3
	return manifestHeader + stripes*(2+(MaxK+MaxM)*32)
}

// DecodeManifest parses a manifest of at most maxStripes stripes. It
// checks every field against the format's limits (scheme bounds, block
// sizes, counts, exact length, no block twice in a stripe), never
// panics, and copies what it keeps. Errors wrap ErrBadManifest.
func DecodeManifest(b []byte, maxStripes int) (Manifest, error) {
	bad := func(format string, a ...any) (Manifest, error) {
		return Manifest{}, fmt.Errorf("%w: %s", ErrBadManifest, fmt.Sprintf(format, a...))
	}
	if len(b) < manifestHeader || !bytes.Equal(b[:4], []byte(manifestMagic)) {
		return bad("no manifest magic")
	}
	if b[4] != manifestVersion {
		return bad("version %d, this program reads %d", b[4], manifestVersion)
	}
	if b[7] != 0 {
		return bad("reserved byte %d", b[7])
	}
	m := Manifest{Scheme: Scheme{K: int(b[5]), M: int(b[6])}}
	if err := m.Scheme.Valid(); err != nil {
		return bad("%v", err)
	}
	count := int64(binary.LittleEndian.Uint32(b[8:]))
	if count < 1 || count > int64(maxStripes) {
		return bad("%d stripes, at most %d fit the file", count, maxStripes)
	}
	off := manifestHeader
	m.Stripes = make([]Stripe, 0, count)
	for i := int64(0); i < count; i++ {
		if len(b)-off < 2 {
			return bad("cut short in stripe %d", i)
		}
		lg, nd := int(b[off]), int(b[off+1])
		off += 2
		if lg < minSizeLog || lg > maxSizeLog {
			return bad("stripe %d: blocks of 2^%d bytes", i, lg)
		}
		if nd < 1 || nd > m.K {
			return bad("stripe %d: %d data blocks, K is %d", i, nd, m.K)
		}
		need := (nd + m.M) * 32
		if len(b)-off < need {
			return bad("cut short in stripe %d", i)
		}
		s := Stripe{Size: 1 << lg, Data: make([]blocks.ID, nd), Parity: make([]blocks.ID, m.M)}
		seen := make(map[blocks.ID]bool, nd+m.M)
		for j := 0; j < nd+m.M; j++ {
			var id blocks.ID
			copy(id[:], b[off:off+32])
			off += 32
			if seen[id] {
				return bad("stripe %d names a block twice", i)
			}
			seen[id] = true
			if j < nd {
				s.Data[j] = id
			} else {
				s.Parity[j-nd] = id
			}
		}
		m.Stripes = append(m.Stripes, s)
	}
	if off != len(b) {
		return bad("%d bytes after the last stripe", len(b)-off)
	}
	return m, nil
}

// Blocks lists every block the stripes name (data and parity), each once.
func (m Manifest) Blocks() []blocks.ID {
	var out []blocks.ID
	for _, s := range m.Stripes {
		out = append(out, s.Shards()...)
	}
	return blocks.Dedup(out)
}

// ParityBlocks lists the parity blocks.
func (m Manifest) ParityBlocks() []blocks.ID {
	var out []blocks.ID
	for _, s := range m.Stripes {
		out = append(out, s.Parity...)
	}
	return out
}
