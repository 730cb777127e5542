package recipe

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/blockmix/blockmix/blocks"
	"github.com/blockmix/blockmix/mixer"
)

// cheapKDF makes a derivation take microseconds: for the tests that check
// the layout and the parser, not the key derivation.
var cheapKDF = kdfParams{time: 1, memKiB: 8, threads: 1}

func cheapSeal(t testing.TB, rc Recipe, pass string) Sealed {
	t.Helper()
	s, err := seal(rc, []byte(pass), sealVersion, cheapKDF, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// sampleRecipe is a recipe with distinct root IDs.
func sampleRecipe(name string) Recipe {
	rc := Recipe{Root: make(mixer.Tuple, DescT), DescClass: mixer.Small, Size: 123456, Type: "text/plain; charset=utf-8", Name: name}
	for i := range rc.Root {
		rc.Root[i] = blocks.Sum([]byte{byte(i)})
	}
	return rc
}

// sameRecipe: got is want as its plain spelling would give it back (a type
// too long for the recipe dropped, the name cleaned).
func sameRecipe(t *testing.T, got, want Recipe) {
	t.Helper()
	want, err := Parse(want.String())
	if err != nil {
		t.Fatal(err)
	}
	if got.Key() != want.Key() || got.Name != want.Name || got.Size != want.Size || got.Type != want.Type {
		t.Fatalf("opened %+v, want %+v", got, want)
	}
}

// TestSealOpenRoundTrip: a real put, sealed with the real parameters, opens
// from either spelling and rebuilds the file.
func TestSealOpenRoundTrip(t *testing.T) {
	st := blocks.NewMem()
	m := newMixer(t, st, 1)
	data := randomBytes(7, 300<<10)
	res := put(t, m, st, data, "holiday photos.tar")
	pass := []byte("correct horse battery staple")
	start := time.Now()
	s, err := Seal(res.Recipe, pass)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("Seal (one Argon2id derivation, %+v): %v", sealParams[sealVersion], time.Since(start))
	for _, text := range []string{s.String(), s.URL(""), s.URL("http://pi.local:7788/")} {
		rc, sd, err := ParseAny(text)
		if err != nil || sd == nil {
			t.Fatalf("ParseAny(%q) = %v, %v", text, sd, err)
		}
		if rc.Root != nil {
			t.Fatalf("ParseAny(%q) returned a plain recipe too", text)
		}
		start := time.Now()
		got, err := OpenSealed(*sd, pass)
		if err != nil {
			t.Fatalf("OpenSealed(%q): %v", text, err)
		}
		t.Logf("OpenSealed: %v", time.Since(start))
		sameRecipe(t, got, res.Recipe)
		if out := get(t, st, got.String()); !bytes.Equal(out, data) {
			t.Fatal("the opened recipe rebuilds other bytes")
		}
	}
	if !strings.HasPrefix(s.String(), "blockmix:sealed:") || !strings.HasPrefix(s.URL(""), "http://127.0.0.1:7788/r/sealed:") {
		t.Fatalf("spellings %q, %q", s.String(), s.URL(""))
	}
}

// TestSealNames: every kind of name, type and size survives sealing.
func TestSealNames(t *testing.T) {
	long := strings.Repeat("ä", 150) // 300 bytes: CleanName cuts it to 200
	for _, name := range []string{"", "a", "it's.txt", "日本語.pdf", "end.", "exactly-sixteen!", long, "dir/sub/x.bin"} {
		for _, rc := range []Recipe{sampleRecipe(name), {Root: make(mixer.Tuple, DescT), DescClass: mixer.Large, Size: 1 << 60, Type: strings.Repeat("t", 300), Name: name}} {
			s := cheapSeal(t, rc, "pw")
			sd, err := ParseSealed(s.String())
			if err != nil {
				t.Fatalf("%q: %v", name, err)
			}
			got, err := openSealed(sd, []byte("pw"), cheapKDF)
			if err != nil {
				t.Fatalf("%q: %v", name, err)
			}
			sameRecipe(t, got, rc)
		}
	}
}

// TestSealWrongPassphrase: a wrong passphrase is told apart from damage.
func TestSealWrongPassphrase(t *testing.T) {
	rc := sampleRecipe("secret.txt")
	s, err := Seal(rc, []byte("open sesame"))
	if err != nil {
		t.Fatal(err)
	}
	for _, wrong := range []string{"open sesamE", "open sesame ", "", "x"} {
		_, err := OpenSealed(s, []byte(wrong))
		if !errors.Is(err, ErrWrongPassphrase) || errors.Is(err, ErrDamaged) {
			t.Errorf("passphrase %q: %v, want ErrWrongPassphrase only", wrong, err)
		}
		if err != nil && !strings.Contains(err.Error(), "wrong passphrase") {
			t.Errorf("passphrase %q: message %q", wrong, err)
		}
	}
	if _, err := Seal(rc, nil); err == nil {
		t.Error("Seal with an empty passphrase succeeded")
	}
}

// TestSealDamaged: a typo anywhere, a cut, extra characters and an unknown
// version are damaged recipes, found before any key derivation.
func TestSealDamaged(t *testing.T) {
	s := cheapSeal(t, sampleRecipe("a.txt"), "pw")
	key := s.Key()
	for i := range key {
		typo := []byte(key)
		typo[i] = map[bool]byte{true: 'b', false: 'a'}[typo[i] == 'a']
		for _, text := range []string{SealedScheme + string(typo), DefaultWeb + webPath + sealedTag + string(typo)} {
			_, sd, err := ParseAny(text)
			if !errors.Is(err, ErrDamaged) || sd != nil {
				t.Fatalf("typo at %d: %v, want ErrDamaged", i, err)
			}
		}
	}
	for _, text := range []string{
		SealedScheme, SealedScheme + key[:len(key)-1], SealedScheme + key[:len(key)/2], SealedScheme + key + "aa",
		SealedScheme + key[1:], "blockmix:sealed:!!", "blockmix:sealed:" + strings.Repeat("a", 5000),
		s.String()[:len(s.String())/2],
	} {
		if _, err := ParseSealed(text); !errors.Is(err, ErrDamaged) {
			t.Errorf("ParseSealed(%.80q) = %v, want ErrDamaged", text, err)
		}
		if _, _, err := ParseAny(text); !errors.Is(err, ErrDamaged) {
			t.Errorf("ParseAny(%.80q) = %v, want ErrDamaged", text, err)
		}
	}

	// A version this program does not know, with a checksum that matches.
	b := bytes.Clone(s.b)
	b[0] = 99
	resum := func(b []byte) Sealed {
		body := b[:len(b)-checkLen]
		sum := sha256.Sum256(body)
		copy(b[len(b)-checkLen:], sum[:checkLen])
		return Sealed{b: b}
	}
	v99 := resum(b)
	if _, err := ParseSealed(v99.String()); !errors.Is(err, ErrDamaged) || !strings.Contains(err.Error(), "version 99") {
		t.Errorf("version 99: %v", err)
	}
	if _, err := OpenSealed(v99, []byte("pw")); !errors.Is(err, ErrDamaged) {
		t.Errorf("OpenSealed version 99: %v", err)
	}
	// Altered ciphertext behind a recomputed checksum: the AEAD refuses it
	// (it cannot tell this from a wrong passphrase).
	b = bytes.Clone(s.b)
	b[sealHeaderLen+3] ^= 1
	if _, err := openSealed(resum(b), []byte("pw"), cheapKDF); !errors.Is(err, ErrWrongPassphrase) {
		t.Errorf("altered ciphertext: %v", err)
	}
	if _, err := OpenSealed(Sealed{}, []byte("pw")); !errors.Is(err, ErrDamaged) {
		t.Errorf("zero Sealed: %v", err)
	}
	// Plaintexts that decrypt but do not decode.
	for _, plain := range [][]byte{{}, {200, 1, 2}, append([]byte{3, 1, 2, 3}, make([]byte, 12)...), append(append([]byte{0}, "name\x00x"...), make([]byte, 9)...)} {
		sd, err := sealPlain(plain, []byte("pw"), sealVersion, cheapKDF, rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := openSealed(sd, []byte("pw"), cheapKDF); !errors.Is(err, ErrDamaged) {
			t.Errorf("plaintext %q: %v, want ErrDamaged", plain, err)
		}
	}
}

// TestSealedRevealsNothing: neither spelling holds the name, the plain key
// or a root ID, and two seals of one recipe differ (fresh salt and nonce).
func TestSealedRevealsNothing(t *testing.T) {
	rc := sampleRecipe("Quarterly-Report-Confidential.pdf")
	a, b := cheapSeal(t, rc, "pw"), cheapSeal(t, rc, "pw")
	if a.String() == b.String() || bytes.Equal(a.b[1:sealHeaderLen], b.b[1:sealHeaderLen]) {
		t.Fatal("two seals of the same recipe are alike")
	}
	if len(a.String()) != len(b.String()) {
		t.Errorf("two seals of the same recipe differ in length")
	}
	for _, s := range []Sealed{a, b} {
		for _, text := range []string{s.String(), s.URL("")} {
			low := strings.ToLower(text)
			for _, secret := range []string{"quarterly", "report", "confidential", ".pdf", "text/plain", rc.Key()[:16], escapeName(rc.Name)} {
				if strings.Contains(low, strings.ToLower(secret)) {
					t.Errorf("%q holds %q", text, secret)
				}
			}
		}
		for _, secret := range [][]byte{[]byte(rc.Name), []byte("Report"), []byte(rc.Type), rc.Root[0][:8], rc.Root[2][24:]} {
			if bytes.Contains(s.b, secret) {
				t.Errorf("the sealed bytes hold %q", secret)
			}
		}
	}
	// Names within one padding step give texts of one length.
	if x, y := cheapSeal(t, sampleRecipe("ab"), "pw"), cheapSeal(t, sampleRecipe("abcdefgh"), "pw"); len(x.String()) != len(y.String()) {
		t.Errorf("names of 2 and 8 bytes: lengths %d and %d", len(x.String()), len(y.String()))
	}
}

// TestParseAnyForgiving: the sealed spellings are found as Parse finds the
// plain ones; plain recipes still parse; the first intact one wins.
func TestParseAnyForgiving(t *testing.T) {
	plain := sampleRecipe("my file.txt")
	s := cheapSeal(t, plain, "pw")
	text, web, key := s.String(), s.URL(""), s.Key()
	cases := []string{
		text, web, "  " + text + "  ", "look: " + text + ".", "<" + web + ">", "(" + web + ").",
		strings.ToUpper(text[:30]) + text[30:], strings.ToUpper(web),
		"'" + text + "'", `"` + web + `"`, "«" + text + "»",
		"blockmix:sealed:" + key[:50] + "\n" + key[50:120] + "\r\n> " + key[120:] + "\n",
		"blockmix:sealed:\n" + key, "> " + text[:70] + "\n> " + text[70:] + "\n> bye",
		text + " and some words after it", text + "/my-name.txt",
		"see https://example.org/r/about and blockmix:nope, then " + web + " — enjoy",
	}
	for _, c := range cases {
		rc, sd, err := ParseAny(c)
		if err != nil || sd == nil || rc.Root != nil {
			t.Errorf("ParseAny(%q): %v, %v", c, sd, err)
			continue
		}
		if sd.Key() != key {
			t.Errorf("ParseAny(%q): other key", c)
		}
		got, err := openSealed(*sd, []byte("pw"), cheapKDF)
		if err != nil {
			t.Errorf("ParseAny(%q): %v", c, err)
			continue
		}
		sameRecipe(t, got, plain)
	}
	// Plain recipes, alone or before a sealed one.
	for _, c := range []string{plain.String(), plain.URL(""), plain.String() + " or " + text, "x " + web[:40] + " then " + plain.URL("")} {
		rc, sd, err := ParseAny(c)
		if err != nil || sd != nil || rc.Key() != plain.Key() || rc.Name != plain.Name {
			t.Errorf("ParseAny(%.100q) = %q, %v, %v; want the plain recipe", c, rc.Key(), sd, err)
		}
	}
	// A sealed one before a plain one wins.
	if _, sd, err := ParseAny(web + " or " + plain.String()); err != nil || sd == nil {
		t.Errorf("sealed first: %v, %v", sd, err)
	}
	// Parse itself does not take a sealed recipe for a plain one.
	if _, err := Parse(text); !errors.Is(err, ErrDamaged) {
		t.Errorf("Parse(sealed) = %v, want ErrDamaged", err)
	}
	if _, _, err := ParseAny("nothing here"); !errors.Is(err, ErrDamaged) {
		t.Errorf("ParseAny(nothing): %v", err)
	}
}

// TestSealedLength reports how long a sealed recipe is. The fixed part is
// 61 bytes (version, salt, nonce, tag, check) over the plain payload less
// its check, plus the name, padded to 16 bytes.
func TestSealedLength(t *testing.T) {
	for _, name := range []string{"", "holiday.jpg", "a-rather-long-file-name-2024.tar.gz", strings.Repeat("n", 200)} {
		rc := sampleRecipe(name)
		rc.Type = "image/jpeg"
		s := cheapSeal(t, rc, "pw")
		t.Logf("name %3d bytes: sealed %d characters (%d as a link), plain %d before the name (%d in all)",
			len(name), len(s.String()), len(s.URL("")), len(Scheme+rc.Key()), len(rc.String()))
		if len(s.Key()) > MaxSealedChars {
			t.Errorf("%d characters, more than MaxSealedChars", len(s.Key()))
		}
		if name == "holiday.jpg" && len(s.String()) > 336 {
			t.Errorf("sealed recipe for %q is %d characters, want ≤ 336", name, len(s.String()))
		}
	}
}

// FuzzOpenSealed: any text and passphrase either open into a recipe that
// seals and opens again to the same, or fail with ErrDamaged or
// ErrWrongPassphrase; nothing panics. The text also stands for a
// plaintext that decrypts fine but may not decode. (Cheap key derivation:
// the parsing is what is fuzzed.)
func FuzzOpenSealed(f *testing.F) {
	rc := sampleRecipe("a b.txt")
	s, err := seal(rc, []byte("pw"), sealVersion, cheapKDF, rand.Reader)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(s.String(), []byte("pw"))
	f.Add(s.URL(""), []byte("wrong"))
	f.Add("blockmix:sealed:"+s.Key()[:60]+"\n"+s.Key()[60:]+".", []byte("pw"))
	f.Add(s.String()[:100], []byte("pw"))
	f.Add(rc.String(), []byte(""))
	f.Add("blockmix:sealed:aaaa", []byte("x"))
	f.Add("", []byte(nil))
	f.Fuzz(func(t *testing.T, text string, pass []byte) {
		check := func(what string, err error) {
			if err != nil && !errors.Is(err, ErrDamaged) && !errors.Is(err, ErrWrongPassphrase) {
				t.Fatalf("%s: unexpected error %v", what, err)
			}
		}
		// Arbitrary bytes as a plaintext that decrypts.
		if sd, err := sealPlain([]byte(text), []byte("k"), sealVersion, cheapKDF, rand.Reader); err != nil {
			t.Fatal(err)
		} else if got, err := openSealed(sd, []byte("k"), cheapKDF); err == nil {
			again := cheapSeal(t, got, "k")
			back, err := openSealed(again, []byte("k"), cheapKDF)
			if err != nil || back.Key() != got.Key() || back.Name != got.Name {
				t.Fatalf("re-seal of a decoded plaintext: %v", err)
			}
		} else if !errors.Is(err, ErrDamaged) {
			t.Fatalf("plaintext %q: %v", text, err)
		}

		// Arbitrary text, as pasted.
		plain, sd, err := ParseAny(text)
		check("ParseAny", err)
		if err != nil {
			return
		}
		if sd == nil {
			if _, err := Parse(plain.String()); err != nil {
				t.Fatalf("plain %q does not parse back: %v", plain.String(), err)
			}
			return
		}
		for _, spelling := range []string{sd.String(), sd.URL("")} {
			back, err := ParseSealed(spelling)
			if err != nil || back.Key() != sd.Key() {
				t.Fatalf("re-parse %q: %v", spelling, err)
			}
		}
		got, err := openSealed(*sd, pass, cheapKDF)
		check("openSealed", err)
		if err == nil {
			if _, err := Parse(got.String()); err != nil {
				t.Fatalf("opened recipe %q does not parse: %v", got.String(), err)
			}
		}
	})
}
