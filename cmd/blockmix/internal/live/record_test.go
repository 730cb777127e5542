package live

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/blockmix/blockmix/recipe"
)

func mustLink(t *testing.T) (Link, func(seq uint64, payload string) Record) {
	t.Helper()
	priv, l, err := NewLink()
	if err != nil {
		t.Fatal(err)
	}
	return l, func(seq uint64, payload string) Record {
		t.Helper()
		r, err := Sign(priv, l, seq, time.Now(), []byte(payload))
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
}

func TestRecordSignVerifySelect(t *testing.T) {
	l, sign := mustLink(t)
	r1, r2 := sign(1, "blockmix:first"), sign(2, "blockmix:second")
	v := Validator{}
	key := DHTKey(l.Pub)
	for _, r := range []Record{r1, r2} {
		if err := v.Validate(key, r.Bytes()); err != nil {
			t.Fatalf("valid record refused: %v", err)
		}
	}
	got, err := ParseRecord(r2.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	p, err := got.Open(l)
	if err != nil || string(p) != "blockmix:second" || got.Seq != 2 {
		t.Fatalf("opened %q seq %d err %v", p, got.Seq, err)
	}
	// The payload is not in the record in clear.
	if bytes.Contains(r2.Bytes(), []byte("second")) {
		t.Fatal("the payload is readable without the link's secret")
	}
	// The newest wins whatever the order; a forged one never.
	forged := bytes.Clone(r2.Bytes())
	forged[40] ^= 1 // seq's last byte: 3, higher, but the signature breaks
	for _, vals := range [][][]byte{{r1.Bytes(), r2.Bytes()}, {r2.Bytes(), r1.Bytes()}, {forged, r1.Bytes(), r2.Bytes()}} {
		i, err := v.Select(key, vals)
		if err != nil || !bytes.Equal(vals[i], r2.Bytes()) {
			t.Fatalf("Select picked %d (err %v), want the seq 2 record", i, err)
		}
	}
	if err := v.Validate(key, forged); !errors.Is(err, ErrBadRecord) {
		t.Fatalf("forged record: %v", err)
	}
	// Another key's record under this key; this key's record under another.
	l2, sign2 := mustLink(t)
	if err := v.Validate(key, sign2(9, "x").Bytes()); !errors.Is(err, ErrBadRecord) {
		t.Fatalf("record under another folder's key: %v", err)
	}
	if err := v.Validate(DHTKey(l2.Pub), r1.Bytes()); !errors.Is(err, ErrBadRecord) {
		t.Fatalf("record under another folder's key: %v", err)
	}
	// A wrong secret opens nothing.
	bad := l
	bad.Secret[0] ^= 1
	if _, err := got.Open(bad); !errors.Is(err, ErrWrongKey) {
		t.Fatalf("wrong secret: %v", err)
	}
	if _, err := Select(key, nil); err == nil {
		t.Fatal("Select of nothing succeeded")
	}
}

// Select is Validator.Select, for brevity.
var Select = Validator{}.Select

func TestRecordBounds(t *testing.T) {
	l, sign := mustLink(t)
	big := sign(1, strings.Repeat("a", MaxPayload))
	if len(big.Bytes()) != MaxRecord {
		t.Fatalf("largest record %d bytes, want %d", len(big.Bytes()), MaxRecord)
	}
	if err := (Validator{}).Validate(DHTKey(l.Pub), big.Bytes()); err != nil {
		t.Fatal(err)
	}
	priv, l2, _ := NewLink()
	if _, err := Sign(priv, l2, 1, time.Now(), make([]byte, MaxPayload+1)); err == nil {
		t.Fatal("an oversized payload was signed")
	}
	over := append(bytes.Clone(big.Bytes()), 0)
	if err := (Validator{}).Validate(DHTKey(l.Pub), over); !errors.Is(err, ErrBadRecord) || !strings.Contains(err.Error(), "at most") {
		t.Fatalf("oversized record: %v", err)
	}
	for _, n := range []int{0, 1, minRecord - 1} {
		if _, err := ParseRecord(big.Bytes()[:n]); !errors.Is(err, ErrBadRecord) {
			t.Fatalf("record cut to %d bytes: %v", n, err)
		}
	}
}

func TestLinkSpellings(t *testing.T) {
	l, _ := mustLink(t)
	for _, text := range []string{
		l.String(),
		l.URL(""),
		"see " + l.URL("http://192.0.2.1:7788") + ".",
		"> " + l.String()[:40] + "\n> " + l.String()[40:],
		strings.ToUpper(l.String()),
	} {
		got, sealed, err := Parse(text)
		if err != nil || sealed != nil || !got.Equal(l) {
			t.Fatalf("Parse(%q) = %v, %v, %v", text, got, sealed, err)
		}
	}
	if !strings.HasPrefix(l.URL(""), recipe.DefaultWeb+"/l/") {
		t.Fatal(l.URL(""))
	}
	s := l.String()
	// Every single-character typo and every cut is a damaged link.
	for i := len(Scheme); i < len(s); i++ {
		typo := []byte(s)
		typo[i] = map[bool]byte{true: 'b', false: 'a'}[typo[i] == 'a']
		if _, _, err := Parse(string(typo)); !errors.Is(err, ErrDamaged) {
			t.Fatalf("typo at %d: %v", i, err)
		}
		if _, _, err := Parse(s[:i]); !errors.Is(err, ErrDamaged) {
			t.Fatalf("cut at %d: %v", i, err)
		}
	}
	if _, _, err := Parse("no link here"); !errors.Is(err, ErrDamaged) {
		t.Fatal(err)
	}
	// A recipe is not a live link.
	if _, _, err := Parse("blockmix:aaaa"); !errors.Is(err, ErrDamaged) {
		t.Fatal(err)
	}
}

func TestSealedLink(t *testing.T) {
	l, _ := mustLink(t)
	sl, err := l.Seal([]byte("correct horse"))
	if err != nil {
		t.Fatal(err)
	}
	for _, text := range []string{sl.String(), sl.URL("")} {
		if strings.Contains(text, l.Key()) {
			t.Fatal("the sealed link shows the link")
		}
		_, got, err := Parse(text)
		if err != nil || got == nil {
			t.Fatalf("Parse(%q): %v", text, err)
		}
		open, err := got.Open([]byte("correct horse"))
		if err != nil || !open.Equal(l) {
			t.Fatalf("Open: %v", err)
		}
		if _, err := got.Open([]byte("wrong")); !errors.Is(err, recipe.ErrWrongPassphrase) {
			t.Fatalf("wrong passphrase: %v", err)
		}
	}
	s := sl.String()
	typo := []byte(s)
	typo[len(s)-5] ^= 1
	if _, _, err := Parse(string(typo)); !errors.Is(err, ErrDamaged) {
		t.Fatalf("typo in a sealed link: %v", err)
	}
	if _, _, err := Parse(s[:len(s)-3]); !errors.Is(err, ErrDamaged) {
		t.Fatalf("cut sealed link: %v", err)
	}
}
