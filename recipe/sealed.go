package recipe

import (
	"bytes"
	"cmp"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"unicode/utf8"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/chacha20poly1305"
)

// The spellings of a sealed (passphrase-protected) recipe. Like a plain
// recipe's, both are accepted everywhere ParseAny reads; neither carries the
// file's name in clear.
const (
	SealedScheme = Scheme + sealedTag // "blockmix:sealed:"
	sealedTag    = "sealed:"
)

// Sealed layout (before base32, lowercase, no padding):
//
//	version  u8     selects the key derivation's parameters (sealParams)
//	salt     16     Argon2id salt, random per seal
//	nonce    24     XChaCha20-Poly1305 nonce, random per seal
//	box      n+16   the sealed plaintext and its Poly1305 tag
//	check    4      first bytes of sha256(everything before)
//
// The plaintext is the plain recipe's payload without its own check (the
// tag authenticates it), its name, and zero bytes up to a multiple of
// sealPad:
//
//	payLen   u8     length of the payload that follows
//	payload  payLen what Recipe.Key encodes, less its 4 check bytes
//	name     the cleaned name (CleanName), UTF-8 without NUL
//	padding  zero bytes
//
// The version byte and the salt are the AEAD's additional data. The check
// is over public bytes only: it tells a typo (ErrDamaged) from a wrong
// passphrase (ErrWrongPassphrase) without running the slow key derivation.
const (
	saltLen       = 16
	sealHeaderLen = 1 + saltLen + chacha20poly1305.NonceSizeX
	sealOverhead  = sealHeaderLen + chacha20poly1305.Overhead + checkLen
	// sealPad rounds the plaintext up so that the sealed text's length
	// tells the name's length only to within sealPad bytes.
	sealPad = 16
	// MaxSealedChars bounds the sealed payload's base32 text: the longest
	// plain payload, the longest name, padding and overhead, with room.
	MaxSealedChars = 1024
)

// kdfParams are Argon2id's parameters for one sealed version.
type kdfParams struct {
	time    uint32 // passes over the memory
	memKiB  uint32 // memory in KiB
	threads uint8  // lanes; part of the result, not only of the speed
}

// sealVersion is the version Seal writes.
const sealVersion = 1

// sealParams maps each version byte to its key derivation. Old versions
// stay here so that recipes sealed with them still open.
//
// Version 1 is Argon2id with time=2, memory=64 MiB, threads=1. The memory
// is what makes guessing costly on GPUs and ASICs; 64 MiB is the memory of
// RFC 9106's second recommended option (there with 3 passes and 4 lanes)
// and fits easily in a Raspberry Pi's RAM (a Pi Zero has 512 MiB) beside a
// put's ~25 MiB. Two passes add time on top. One derivation takes about
// 90 ms on the development machines with x/crypto's SSE assembly and
// 135 ms with its generic Go code, which is what ARM boards run; a
// Raspberry Pi 4's core is several times slower, so about a second there
// (estimated, not measured): unnoticed by a person typing a passphrase, a
// few guesses a second for an attacker per such core. One lane keeps a
// one-core board (the first Pi Zero) as fast as it can be; more lanes
// would speed up only the machines with cores to spare, and the lane count
// is part of the result, so it cannot differ by machine.
var sealParams = map[byte]kdfParams{
	1: {time: 2, memKiB: 64 << 10, threads: 1},
}

// ErrWrongPassphrase: the sealed recipe is intact but the passphrase does
// not open it.
var ErrWrongPassphrase = errors.New("wrong passphrase")

// Sealed is a recipe encrypted under a passphrase: without it, it tells
// neither the blocks, the size, the type nor the name of the file (only,
// within 16 bytes, how long the name and type are). Its zero value is not
// a valid sealed recipe.
type Sealed struct {
	b []byte // the sealed bytes, check included
}

// String returns the "blockmix:sealed:<payload>" spelling.
func (s Sealed) String() string { return SealedScheme + s.Key() }

// URL returns the clickable spelling under base (DefaultWeb when empty):
// base + "/r/sealed:<payload>".
func (s Sealed) URL(base string) string {
	if base == "" {
		base = DefaultWeb
	}
	return strings.TrimRight(base, "/") + webPath + sealedTag + s.Key()
}

// Key returns the sealed payload, base32 lowercase without padding.
func (s Sealed) Key() string { return strings.ToLower(b32.EncodeToString(s.b)) }

// Seal encrypts rc under passphrase, with a fresh random salt and nonce:
// sealing the same recipe twice gives two different texts. rc's name is
// cleaned (CleanName) as String would clean it. An empty passphrase is an
// error.
func Seal(rc Recipe, passphrase []byte) (Sealed, error) {
	return seal(rc, passphrase, sealVersion, sealParams[sealVersion], rand.Reader)
}

func seal(rc Recipe, passphrase []byte, version byte, p kdfParams, random io.Reader) (Sealed, error) {
	if len(passphrase) == 0 {
		return Sealed{}, errors.New("seal a recipe: the passphrase is empty")
	}
	pay, err := rc.payloadBytes()
	if err != nil {
		return Sealed{}, fmt.Errorf("seal a recipe: %w", err)
	}
	pay = pay[:len(pay)-checkLen]
	name := CleanName(rc.Name)
	plain := make([]byte, 0, 1+len(pay)+len(name)+sealPad)
	plain = append(plain, byte(len(pay)))
	plain = append(plain, pay...)
	plain = append(plain, name...)
	for len(plain)%sealPad != 0 {
		plain = append(plain, 0)
	}
	return sealPlain(plain, passphrase, version, p, random)
}

// sealPlain encrypts plain as it is (the fuzz test seals arbitrary bytes).
func sealPlain(plain, passphrase []byte, version byte, p kdfParams, random io.Reader) (Sealed, error) {
	b := make([]byte, sealHeaderLen, sealHeaderLen+len(plain)+chacha20poly1305.Overhead+checkLen)
	b[0] = version
	if _, err := io.ReadFull(random, b[1:]); err != nil {
		return Sealed{}, fmt.Errorf("seal a recipe: random salt and nonce: %w", err)
	}
	salt, nonce := b[1:1+saltLen], b[1+saltLen:sealHeaderLen]
	aead, err := chacha20poly1305.NewX(deriveKey(passphrase, salt, p))
	if err != nil {
		return Sealed{}, err
	}
	b = aead.Seal(b, nonce, plain, b[:1+saltLen])
	sum := sha256.Sum256(b)
	return Sealed{b: append(b, sum[:checkLen]...)}, nil
}

func deriveKey(passphrase, salt []byte, p kdfParams) []byte {
	return argon2.IDKey(passphrase, salt, p.time, p.memKiB, p.threads, chacha20poly1305.KeySize)
}

// OpenSealed decrypts s with passphrase. A wrong passphrase returns an
// error wrapping ErrWrongPassphrase; a sealed recipe this program cannot
// read (an unknown version) or whose contents do not decode returns one
// wrapping ErrDamaged. It takes about as long as Seal (see sealParams).
func OpenSealed(s Sealed, passphrase []byte) (Recipe, error) {
	if len(s.b) < sealOverhead {
		return Recipe{}, fmt.Errorf("%w: not a sealed recipe", ErrDamaged)
	}
	p, ok := sealParams[s.b[0]]
	if !ok {
		return Recipe{}, fmt.Errorf("%w: sealed recipe version %d, this program reads %d (a newer blockmix made it?)", ErrDamaged, s.b[0], sealVersion)
	}
	return openSealed(s, passphrase, p)
}

// openSealed is OpenSealed with the key derivation's parameters given.
func openSealed(s Sealed, passphrase []byte, p kdfParams) (Recipe, error) {
	plain, err := openPlain(s.b, passphrase, p)
	if err != nil {
		return Recipe{}, err
	}
	return decodeSealedPlain(plain)
}

// openPlain decrypts sealed bytes (check included) to their plaintext.
func openPlain(b, passphrase []byte, p kdfParams) ([]byte, error) {
	if len(b) < sealOverhead {
		return nil, fmt.Errorf("%w: not a sealed recipe", ErrDamaged)
	}
	body := b[:len(b)-checkLen]
	salt, nonce, box := body[1:1+saltLen], body[1+saltLen:sealHeaderLen], body[sealHeaderLen:]
	aead, err := chacha20poly1305.NewX(deriveKey(passphrase, salt, p))
	if err != nil {
		return nil, err
	}
	plain, err := aead.Open(nil, nonce, box, body[:1+saltLen])
	if err != nil {
		// The check matched, so the bytes are as sealed (but for a 2^-32
		// chance): the passphrase is what differs.
		return nil, fmt.Errorf("%w: it does not open this sealed recipe", ErrWrongPassphrase)
	}
	return plain, nil
}

// decodeSealedPlain reads the plaintext layout (see Sealed layout).
func decodeSealedPlain(plain []byte) (Recipe, error) {
	if len(plain) < 1 || len(plain) < 1+int(plain[0]) {
		return Recipe{}, fmt.Errorf("%w: the sealed contents are cut short", ErrDamaged)
	}
	n := int(plain[0])
	pay := slices.Clip(plain[1 : 1+n])
	sum := sha256.Sum256(pay)
	pay = append(pay, sum[:checkLen]...)
	rc, err := decodePayload(strings.ToLower(b32.EncodeToString(pay)))
	if err != nil {
		return Recipe{}, fmt.Errorf("the sealed contents: %w", err)
	}
	name := plain[1+n:]
	if i := bytes.IndexByte(name, 0); i >= 0 {
		if bytes.ContainsFunc(name[i:], func(r rune) bool { return r != 0 }) {
			return Recipe{}, fmt.Errorf("%w: the sealed name is followed by stray bytes", ErrDamaged)
		}
		name = name[:i]
	}
	if !utf8.Valid(name) {
		return Recipe{}, fmt.Errorf("%w: the sealed name is not UTF-8", ErrDamaged)
	}
	// Cleaned as a plain recipe's name is: whoever sealed it may have
	// meant harm, and the rules may have grown since.
	rc.Name = CleanName(string(name))
	rc.Renamed = rc.Name != string(name)
	return rc, nil
}

// ParseSealed finds a sealed recipe in text, with the same forgiving rules
// as Parse: either spelling, text around it, spaces, line breaks and mail
// quoting (">") inside it, punctuation after it. It checks the checksum
// but needs no passphrase. Anything else returns an error wrapping
// ErrDamaged.
func ParseSealed(text string) (Sealed, error) {
	starts := findSealedStarts(text)
	if len(starts) == 0 {
		return Sealed{}, fmt.Errorf("%w: no %q or %q link found in the text", ErrDamaged, SealedScheme, webPath+sealedTag)
	}
	return firstIntact(text, starts, parseSealedAt)
}

// ParseAny finds a plain or a sealed recipe in text, whichever comes first
// intact; the rules are Parse's. It returns the plain recipe and a nil
// *Sealed, or a zero Recipe and the sealed one (to open with OpenSealed),
// or an error wrapping ErrDamaged that says what is wrong at the first
// place that looked like a recipe.
func ParseAny(text string) (Recipe, *Sealed, error) {
	type start struct {
		at     int
		sealed bool
	}
	var starts []start
	lower := asciiLower(text)
	for _, at := range findStarts(text) {
		// "blockmix:sealed:" and "/r/sealed:" are sealed starts below, not
		// plain recipes spelled "sealed".
		if !strings.HasPrefix(lower[at:], sealedTag) {
			starts = append(starts, start{at, false})
		}
	}
	for _, at := range findSealedStarts(text) {
		starts = append(starts, start{at, true})
	}
	if len(starts) == 0 {
		return Recipe{}, nil, fmt.Errorf("%w: no %q or %q link found in the text", ErrDamaged, Scheme, webPath)
	}
	slices.SortFunc(starts, func(a, b start) int { return a.at - b.at })
	var firstErr error
	for _, st := range starts {
		if st.sealed {
			s, err := parseSealedAt(text[st.at:])
			if err == nil {
				return Recipe{}, &s, nil
			}
			firstErr = cmp.Or(firstErr, err)
			continue
		}
		rc, err := parseAt(text[st.at:])
		if err == nil {
			return rc, nil, nil
		}
		firstErr = cmp.Or(firstErr, err)
	}
	return Recipe{}, nil, firstErr
}

// findSealedStarts returns where a sealed payload may start: after each
// "blockmix:sealed:" and each "/r/sealed:", in order, in any letter case.
func findSealedStarts(text string) []int {
	lower := asciiLower(text)
	var out []int
	for _, at := range findStarts(text) {
		if strings.HasPrefix(lower[at:], sealedTag) {
			out = append(out, at+len(sealedTag))
		}
	}
	return out
}

// parseSealedAt parses the sealed payload at the start of s: base32
// characters, possibly broken by white space. Like parseAt it tries the
// whole run first, then shorter ones cut where white space was, in case
// words after the recipe looked like base32.
func parseSealedAt(s string) (Sealed, error) {
	pay, breaks, _ := scanPayload(s, MaxSealedChars)
	var firstErr error
	for _, n := range cuts(pay, breaks) {
		sd, err := decodeSealed(string(pay[:n]))
		if err == nil {
			return sd, nil
		}
		firstErr = cmp.Or(firstErr, err)
	}
	return Sealed{}, firstErr
}

// decodeSealed checks one sealed payload's spelling, length and checksum.
func decodeSealed(p string) (Sealed, error) {
	if len(p) == 0 {
		return Sealed{}, fmt.Errorf("%w: the sealed recipe is empty", ErrDamaged)
	}
	if len(p) > MaxSealedChars {
		return Sealed{}, fmt.Errorf("%w: more than %d characters, a sealed recipe has at most %d", ErrDamaged, MaxSealedChars, MaxSealedChars)
	}
	b, err := b32.DecodeString(strings.ToUpper(p))
	if err != nil || strings.ToLower(b32.EncodeToString(b)) != p {
		return Sealed{}, fmt.Errorf("%w: the sealed recipe is cut short or has a typo (%d characters)", ErrDamaged, len(p))
	}
	// The smallest plaintext is one pad's worth.
	if len(b) < sealOverhead+sealPad {
		return Sealed{}, fmt.Errorf("%w: the sealed recipe is cut short (%d characters)", ErrDamaged, len(p))
	}
	body, check := b[:len(b)-checkLen], b[len(b)-checkLen:]
	sum := sha256.Sum256(body)
	if !bytes.Equal(sum[:checkLen], check) {
		return Sealed{}, fmt.Errorf("%w: the sealed recipe's checksum does not match: a typo, or part of it is missing", ErrDamaged)
	}
	if _, ok := sealParams[body[0]]; !ok {
		return Sealed{}, fmt.Errorf("%w: sealed recipe version %d, this program reads %d (a newer blockmix made it?)", ErrDamaged, body[0], sealVersion)
	}
	return Sealed{b: b}, nil
}
