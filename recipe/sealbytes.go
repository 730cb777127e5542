package recipe

import (
	"crypto/rand"
	"fmt"
)

// SealBytes seals plain under passphrase exactly as Seal seals a recipe
// (Argon2id, XChaCha20-Poly1305, the same version byte, salt, nonce and
// check; see the Sealed layout), for other short secrets that want a
// passphrase, such as a live folder link. plain is zero-padded to a
// multiple of 16 bytes, so it must not end in zero bytes that matter (its
// own layout must tell its length). The result is the sealed bytes, check
// included; base32 them for text.
func SealBytes(plain, passphrase []byte) ([]byte, error) {
	if len(passphrase) == 0 {
		return nil, fmt.Errorf("seal: the passphrase is empty")
	}
	p := append([]byte(nil), plain...)
	for len(p)%sealPad != 0 || len(p) == 0 {
		p = append(p, 0)
	}
	s, err := sealPlain(p, passphrase, sealVersion, sealParams[sealVersion], rand.Reader)
	return s.b, err
}

// CheckSealedBytes checks sealed bytes as ParseSealed checks a sealed
// recipe's payload (length, checksum, a known version) without the
// passphrase; an error wraps ErrDamaged.
func CheckSealedBytes(b []byte) error {
	if len(b) < sealOverhead+sealPad {
		return fmt.Errorf("%w: the sealed text is cut short", ErrDamaged)
	}
	_, err := decodeSealed(b32Lower(b))
	return err
}

// OpenBytes opens what SealBytes sealed: the plaintext with its padding
// (zero bytes up to a multiple of 16). A wrong passphrase wraps
// ErrWrongPassphrase; damaged bytes wrap ErrDamaged.
func OpenBytes(b, passphrase []byte) ([]byte, error) {
	if err := CheckSealedBytes(b); err != nil {
		return nil, err
	}
	return openPlain(b, passphrase, sealParams[b[0]])
}

func b32Lower(b []byte) string { return asciiLower(b32.EncodeToString(b)) }
