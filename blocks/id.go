// Package blocks holds block IDs, the small capability interfaces of a block
// store, the one place where a block's bytes are checked against its ID, and
// two stores: an in-memory one for tests and the on-disk one the program uses.
//
// Package blocks imports nothing else of blockmix.
package blocks

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"

	cid "github.com/ipfs/go-cid"
	mh "github.com/multiformats/go-multihash"
)

// ID names a block by the sha2-256 digest of its bytes. It is a value type:
// cheap to copy and compare and usable as a map key. On the wire and in
// listings it is spelled as a CIDv1 with the raw codec (the IDs IPFS uses for
// raw leaves), see String and ParseID.
type ID [32]byte

// Sum returns the ID of data.
func Sum(data []byte) ID { return ID(sha256.Sum256(data)) }

// String returns the CIDv1 (raw, sha2-256, base32) spelling, "bafkrei…".
func (id ID) String() string { return id.CID().String() }

// Short returns the first 12 hex digits, for logs.
func (id ID) Short() string { return hex.EncodeToString(id[:6]) }

// CID returns the ID as a cid.Cid.
func (id ID) CID() cid.Cid {
	m, err := mh.Encode(id[:], mh.SHA2_256)
	if err != nil { // cannot happen: the digest length is fixed
		panic(err)
	}
	return cid.NewCidV1(cid.Raw, m)
}

// IsZero reports whether id is the zero value.
func (id ID) IsZero() bool { return id == ID{} }

// ErrBadID is returned by ParseID and FromCID for anything that is not a
// CIDv1/raw/sha2-256 block ID.
var ErrBadID = errors.New("not a blockmix block ID")

// FromCID converts a CID; only CIDv1, raw codec, sha2-256 is accepted.
func FromCID(c cid.Cid) (ID, error) {
	if c.Version() != 1 || c.Type() != cid.Raw {
		return ID{}, fmt.Errorf("%w: want CIDv1 raw, got %s", ErrBadID, c)
	}
	d, err := mh.Decode(c.Hash())
	if err != nil {
		return ID{}, fmt.Errorf("%w: %v", ErrBadID, err)
	}
	if d.Code != mh.SHA2_256 || len(d.Digest) != 32 {
		return ID{}, fmt.Errorf("%w: want sha2-256, got %s", ErrBadID, d.Name)
	}
	return ID(d.Digest), nil
}

// ParseID parses the spelling String produces (any multibase is accepted).
func ParseID(s string) (ID, error) {
	c, err := cid.Decode(s)
	if err != nil {
		return ID{}, fmt.Errorf("%w: %q: %v", ErrBadID, s, err)
	}
	return FromCID(c)
}

// MarshalText implements encoding.TextMarshaler (JSON uses the CID spelling).
func (id ID) MarshalText() ([]byte, error) { return []byte(id.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (id *ID) UnmarshalText(b []byte) error {
	v, err := ParseID(string(b))
	if err != nil {
		return err
	}
	*id = v
	return nil
}
