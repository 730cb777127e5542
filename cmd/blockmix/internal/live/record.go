package live

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"time"

	"golang.org/x/crypto/chacha20poly1305"
)

// Namespace is the DHT namespace of live records: their keys are
// "/bmlive/" + the folder's raw 32-byte public key.
const Namespace = "bmlive"

// MaxRecord bounds a record's encoding: a holder keeps no more for one key.
const MaxRecord = 4096

// Record layout (all integers big-endian):
//
//	version u8   1
//	pub     32   the folder's Ed25519 public key (the DHT key names it)
//	seq     u64  the version's sequence number: higher is newer
//	time    i64  when it was published, Unix seconds (for people only)
//	nonce   24   XChaCha20-Poly1305 nonce
//	box     n+16 the payload (the folder's recipe), sealed under
//	             payloadKey(link), with everything before as additional data
//	sig     64   Ed25519 over recordDomain + everything before
//
// A holder checks the signature with the record's own public key, which
// the DHT key binds; it never learns the payload.
const (
	recordVersion = 1
	headerLen     = 1 + ed25519.PublicKeySize + 8 + 8 + chacha20poly1305.NonceSizeX
	minRecord     = headerLen + chacha20poly1305.Overhead + ed25519.SignatureSize
	// MaxPayload is the longest payload a record carries.
	MaxPayload   = MaxRecord - minRecord
	recordDomain = "blockmix live record v1\x00"
)

// Errors a record's check returns; ErrBadRecord wraps them all.
var (
	ErrBadRecord = errors.New("bad live record")
	// ErrWrongKey: the record is intact but the link's secret does not
	// open it (a link with a changed secret).
	ErrWrongKey = errors.New("the live link's secret does not open its record")
)

// Record is one published version of a live folder.
type Record struct {
	Pub  ed25519.PublicKey
	Seq  uint64
	Time time.Time
	raw  []byte
}

// Bytes returns the record's encoding (what the DHT holds).
func (r Record) Bytes() []byte { return r.raw }

// DHTKey is the DHT key of the folder whose public key is pub.
func DHTKey(pub ed25519.PublicKey) string { return "/" + Namespace + "/" + string(pub) }

// payloadKey derives the payload's encryption key from the link: its
// secret and its public key.
func payloadKey(l Link) []byte {
	h := sha256.New()
	h.Write([]byte("blockmix live payload v1\x00"))
	h.Write(l.Secret[:])
	h.Write(l.Pub)
	return h.Sum(nil)
}

// Sign makes the record of one version: payload sealed for the link's
// holders, signed with priv (whose public key must be the link's).
func Sign(priv ed25519.PrivateKey, l Link, seq uint64, at time.Time, payload []byte) (Record, error) {
	pub := priv.Public().(ed25519.PublicKey)
	if !pub.Equal(l.Pub) {
		return Record{}, errors.New("sign a live record: the key is not the link's")
	}
	if len(payload) > MaxPayload {
		return Record{}, fmt.Errorf("sign a live record: a payload of %d bytes, at most %d", len(payload), MaxPayload)
	}
	b := make([]byte, headerLen, headerLen+len(payload)+chacha20poly1305.Overhead+ed25519.SignatureSize)
	b[0] = recordVersion
	copy(b[1:], pub)
	binary.BigEndian.PutUint64(b[33:], seq)
	binary.BigEndian.PutUint64(b[41:], uint64(at.Unix()))
	if _, err := rand.Read(b[49:headerLen]); err != nil {
		return Record{}, err
	}
	aead, err := chacha20poly1305.NewX(payloadKey(l))
	if err != nil {
		return Record{}, err
	}
	b = aead.Seal(b, b[49:headerLen], payload, b[:headerLen])
	b = append(b, ed25519.Sign(priv, signed(b))...)
	return Record{Pub: pub, Seq: seq, Time: time.Unix(at.Unix(), 0), raw: b}, nil
}

func signed(body []byte) []byte { return append([]byte(recordDomain), body...) }

// ParseRecord checks a record's size, layout and signature, as a DHT
// holder does (no secret needed). Errors wrap ErrBadRecord.
func ParseRecord(b []byte) (Record, error) {
	if len(b) > MaxRecord {
		return Record{}, fmt.Errorf("%w: %d bytes, at most %d", ErrBadRecord, len(b), MaxRecord)
	}
	if len(b) < minRecord {
		return Record{}, fmt.Errorf("%w: %d bytes, cut short", ErrBadRecord, len(b))
	}
	if b[0] != recordVersion {
		return Record{}, fmt.Errorf("%w: version %d, this program reads %d", ErrBadRecord, b[0], recordVersion)
	}
	pub := ed25519.PublicKey(bytes.Clone(b[1:33]))
	body, sig := b[:len(b)-ed25519.SignatureSize], b[len(b)-ed25519.SignatureSize:]
	if !ed25519.Verify(pub, signed(body), sig) {
		return Record{}, fmt.Errorf("%w: the signature does not match", ErrBadRecord)
	}
	return Record{Pub: pub, Seq: binary.BigEndian.Uint64(b[33:]), Time: time.Unix(int64(binary.BigEndian.Uint64(b[41:])), 0), raw: bytes.Clone(b)}, nil
}

// Open returns the payload of a record ParseRecord (or Sign) made, with
// the link's secret. A record of another folder wraps ErrBadRecord; a
// secret that does not open it wraps ErrWrongKey.
func (r Record) Open(l Link) ([]byte, error) {
	if !r.Pub.Equal(l.Pub) {
		return nil, fmt.Errorf("%w: it is another folder's", ErrBadRecord)
	}
	b := r.raw
	aead, err := chacha20poly1305.NewX(payloadKey(l))
	if err != nil {
		return nil, err
	}
	plain, err := aead.Open(nil, b[49:headerLen], b[headerLen:len(b)-ed25519.SignatureSize], b[:headerLen])
	if err != nil {
		return nil, ErrWrongKey
	}
	return plain, nil
}

// Validator is the DHT's check of live records (a record.Validator for
// Namespace): a record is valid when it is intact, signed by the key its
// DHT key names, and at most MaxRecord bytes; of several, the highest
// sequence number wins, so a holder refuses an older record once it has
// a newer one (a replay) and a forged one always.
type Validator struct{}

// Validate implements record.Validator.
func (Validator) Validate(key string, value []byte) error {
	_, err := checkKeyed(key, value)
	return err
}

func checkKeyed(key string, value []byte) (Record, error) {
	pub, ok := strings.CutPrefix(key, "/"+Namespace+"/")
	if !ok || len(pub) != ed25519.PublicKeySize {
		return Record{}, fmt.Errorf("%w: the key is not a live folder's", ErrBadRecord)
	}
	r, err := ParseRecord(value)
	if err != nil {
		return Record{}, err
	}
	if string(r.Pub) != pub {
		return Record{}, fmt.Errorf("%w: signed by another key than its DHT key names", ErrBadRecord)
	}
	return r, nil
}

// Select implements record.Validator: the index of the valid record with
// the highest sequence number (of equal ones, the greatest bytes, so that
// every holder picks the same).
func (Validator) Select(key string, vals [][]byte) (int, error) {
	best, bestRec := -1, Record{}
	for i, v := range vals {
		r, err := checkKeyed(key, v)
		if err != nil {
			continue
		}
		if best < 0 || r.Seq > bestRec.Seq || r.Seq == bestRec.Seq && bytes.Compare(v, vals[best]) > 0 {
			best, bestRec = i, r
		}
	}
	if best < 0 {
		return 0, fmt.Errorf("%w: no valid record among %d", ErrBadRecord, len(vals))
	}
	return best, nil
}

// NewLink makes a new folder key and its link.
func NewLink() (ed25519.PrivateKey, Link, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, Link{}, err
	}
	l := Link{Pub: pub}
	if _, err := rand.Read(l.Secret[:]); err != nil {
		return nil, Link{}, err
	}
	return priv, l, nil
}
