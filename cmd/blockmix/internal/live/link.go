// Package live keeps a folder's recipe current under one stable link.
//
// A live link names a signed record in blockmix's DHT. The record holds the
// folder's current recipe, encrypted; its Ed25519 key is the folder's own
// (one key per watched folder, kept in the repo). The link carries the
// public key and a 16-byte secret: the DHT key is derived from the public
// key alone, so the nodes that hold the record can check its signature and
// keep only the newest (highest sequence number), but only holders of the
// link, which carries the secret, can read the recipe.
//
// Spellings, like a recipe's (recipe/url.go):
//
//	blockmix:live:<payload>
//	http://127.0.0.1:7788/l/<payload>
//
// and sealed with a passphrase (recipe.SealBytes):
//
//	blockmix:live:sealed:<payload>
//	http://127.0.0.1:7788/l/sealed:<payload>
package live

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base32"
	"errors"
	"fmt"
	"strings"

	"github.com/blockmix/blockmix/recipe"
)

// The spellings of a live link.
const (
	Scheme    = "blockmix:live:"
	webPath   = "/l/"
	sealedTag = "sealed:"
)

// SecretLen is the length of the secret a link carries.
const SecretLen = 16

// Link layout (before base32, lowercase, no padding):
//
//	version u8   1
//	pub     32   the folder's Ed25519 public key
//	secret  16   the key to the record's payload (see payloadKey)
//	check   4    first bytes of sha256(everything before)
const (
	linkVersion = 1
	checkLen    = 4
	linkLen     = 1 + ed25519.PublicKeySize + SecretLen + checkLen
	// maxLinkChars bounds a sealed link's base32 text.
	maxLinkChars = 400
)

var b32 = base32.StdEncoding.WithPadding(base32.NoPadding)

// ErrDamaged: the text is not a whole, intact live link (a typo, a
// truncated paste).
var ErrDamaged = errors.New("damaged live link")

// Link is a live folder link: who signs the folder's versions and the
// secret that opens them.
type Link struct {
	Pub    ed25519.PublicKey
	Secret [SecretLen]byte
}

func (l Link) bytes() []byte {
	b := make([]byte, 0, linkLen)
	b = append(b, linkVersion)
	b = append(b, l.Pub...)
	b = append(b, l.Secret[:]...)
	sum := sha256.Sum256(b)
	return append(b, sum[:checkLen]...)
}

// Key returns the link's payload, base32 lowercase.
func (l Link) Key() string { return strings.ToLower(b32.EncodeToString(l.bytes())) }

// String returns the "blockmix:live:<payload>" spelling.
func (l Link) String() string { return Scheme + l.Key() }

// URL returns the clickable spelling under base (recipe.DefaultWeb when
// empty): base + "/l/<payload>".
func (l Link) URL(base string) string {
	if base == "" {
		base = recipe.DefaultWeb
	}
	return strings.TrimRight(base, "/") + webPath + l.Key()
}

// Equal reports whether two links are the same.
func (l Link) Equal(o Link) bool { return l.Pub.Equal(o.Pub) && l.Secret == o.Secret }

// SealedLink is a live link sealed under a passphrase: without it, it
// tells nothing about the folder.
type SealedLink struct{ b []byte }

// String returns the "blockmix:live:sealed:<payload>" spelling.
func (s SealedLink) String() string { return Scheme + sealedTag + s.key() }

// URL returns base + "/l/sealed:<payload>" (recipe.DefaultWeb when base is
// empty).
func (s SealedLink) URL(base string) string {
	if base == "" {
		base = recipe.DefaultWeb
	}
	return strings.TrimRight(base, "/") + webPath + sealedTag + s.key()
}

func (s SealedLink) key() string { return strings.ToLower(b32.EncodeToString(s.b)) }

// Seal seals l under passphrase (Argon2id and XChaCha20-Poly1305, as a
// sealed recipe; recipe.SealBytes). Sealing twice gives two texts.
func (l Link) Seal(passphrase []byte) (SealedLink, error) {
	b, err := recipe.SealBytes(l.bytes(), passphrase)
	if err != nil {
		return SealedLink{}, fmt.Errorf("seal the live link: %w", err)
	}
	return SealedLink{b}, nil
}

// Open opens a sealed link. A wrong passphrase wraps
// recipe.ErrWrongPassphrase; contents that are not a link wrap ErrDamaged.
func (s SealedLink) Open(passphrase []byte) (Link, error) {
	plain, err := recipe.OpenBytes(s.b, passphrase)
	if err != nil {
		return Link{}, err
	}
	if len(plain) < linkLen || !allZero(plain[linkLen:]) {
		return Link{}, fmt.Errorf("%w: the sealed contents are not a live link", ErrDamaged)
	}
	return decodeLink(plain[:linkLen])
}

func allZero(b []byte) bool { return !bytes.ContainsFunc(b, func(r rune) bool { return r != 0 }) }

// Parse finds a live link in text: either spelling, plain or sealed, with
// text around it and white space inside it (as mail programs break long
// lines). It returns the plain link, or the sealed one (to Open with the
// passphrase). Anything else wraps ErrDamaged and says what is wrong.
func Parse(text string) (Link, *SealedLink, error) {
	lower := strings.ToLower(text)
	var firstErr error
	found := false
	for i := 0; i < len(lower); i++ {
		var at int
		switch {
		case strings.HasPrefix(lower[i:], Scheme):
			at = i + len(Scheme)
		case strings.HasPrefix(lower[i:], webPath):
			at = i + len(webPath)
		default:
			continue
		}
		found = true
		sealed := strings.HasPrefix(lower[at:], sealedTag)
		if sealed {
			at += len(sealedTag)
		}
		pay := scan(lower[at:])
		var err error
		if sealed {
			var b []byte
			if b, err = decodeB32(pay); err == nil {
				if err = recipe.CheckSealedBytes(b); err == nil {
					return Link{}, &SealedLink{b}, nil
				}
				err = fmt.Errorf("%w: %w", ErrDamaged, err)
			}
		} else {
			var b []byte
			if b, err = decodeB32(pay); err == nil {
				var l Link
				if l, err = decodeLink(b); err == nil {
					return l, nil, nil
				}
			}
		}
		if firstErr == nil {
			firstErr = err
		}
	}
	if !found {
		return Link{}, nil, fmt.Errorf("%w: no %q or %q link found in the text", ErrDamaged, Scheme, webPath)
	}
	return Link{}, nil, firstErr
}

// scan collects the base32 characters at the start of s, skipping white
// space and mail quoting, up to maxLinkChars+1 of them.
func scan(s string) string {
	var b strings.Builder
	for i := 0; i < len(s) && b.Len() <= maxLinkChars; i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z' || c >= '2' && c <= '7':
			b.WriteByte(c)
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '>':
		default:
			return b.String()
		}
	}
	return b.String()
}

func decodeB32(p string) ([]byte, error) {
	if p == "" {
		return nil, fmt.Errorf("%w: the link is empty", ErrDamaged)
	}
	if len(p) > maxLinkChars {
		return nil, fmt.Errorf("%w: more than %d characters", ErrDamaged, maxLinkChars)
	}
	b, err := b32.DecodeString(strings.ToUpper(p))
	if err != nil || strings.ToLower(b32.EncodeToString(b)) != p {
		return nil, fmt.Errorf("%w: it is cut short or has a typo (%d characters)", ErrDamaged, len(p))
	}
	return b, nil
}

func decodeLink(b []byte) (Link, error) {
	if len(b) != linkLen {
		return Link{}, fmt.Errorf("%w: %d bytes, a live link has %d: cut short or too long", ErrDamaged, len(b), linkLen)
	}
	body, check := b[:linkLen-checkLen], b[linkLen-checkLen:]
	sum := sha256.Sum256(body)
	if !bytes.Equal(sum[:checkLen], check) {
		return Link{}, fmt.Errorf("%w: its checksum does not match: a typo, or part of it is missing", ErrDamaged)
	}
	if body[0] != linkVersion {
		return Link{}, fmt.Errorf("%w: version %d, this program reads %d", ErrDamaged, body[0], linkVersion)
	}
	l := Link{Pub: ed25519.PublicKey(bytes.Clone(body[1 : 1+ed25519.PublicKeySize]))}
	copy(l.Secret[:], body[1+ed25519.PublicKeySize:])
	return l, nil
}
