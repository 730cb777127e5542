package recipe

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/url"
	"strings"
	"testing"

	"github.com/blockmix/blockmix/blocks"
	"github.com/blockmix/blockmix/mixer"
)

func seeded(n uint64) io.Reader {
	var seed [32]byte
	seed[0], seed[1] = byte(n), byte(n>>8)
	return rand.NewChaCha8(seed)
}

func randomBytes(seed uint64, n int) []byte {
	b := make([]byte, n)
	seeded(seed + 1000).Read(b)
	return b
}

func newMixer(t testing.TB, st mixer.Store, seed uint64) *mixer.Mixer {
	t.Helper()
	m, err := mixer.New(st, mixer.Options{Rand: seeded(seed)})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func put(t testing.TB, m *mixer.Mixer, st Store, data []byte, name string) PutResult {
	t.Helper()
	res, err := Put(context.Background(), m, st, bytes.NewReader(data), int64(len(data)), name, "application/octet-stream", nil)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func get(t testing.TB, g blocks.Getter, rcText string) []byte {
	t.Helper()
	rc, err := Parse(rcText)
	if err != nil {
		t.Fatal(err)
	}
	r, err := Open(context.Background(), g, rc, Options{})
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if _, err := io.Copy(&out, r); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

func TestPutOpenRoundTrip(t *testing.T) {
	st := blocks.NewMem()
	m := newMixer(t, st, 1)
	for _, n := range []int{0, 1, 1000, 1024, 1025, 16 << 10, 100 << 10, 128 << 10, 3<<20 + 7} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			data := randomBytes(uint64(n), n)
			res := put(t, m, st, data, fmt.Sprintf("f%d.bin", n))
			if got := get(t, st, res.Recipe.String()); !bytes.Equal(got, data) {
				t.Fatalf("rebuilt %d bytes, differ from %d", len(got), len(data))
			}
			if got := get(t, st, res.Recipe.URL("")); !bytes.Equal(got, data) {
				t.Fatal("web spelling: rebuilt bytes differ")
			}
		})
	}
}

// TestDeepDescriptor forces a descriptor of several levels (1 KiB nodes hold
// ten tuples) and reads it at random offsets.
func TestDeepDescriptor(t *testing.T) {
	st := blocks.NewMem()
	m := newMixer(t, st, 2)
	data := randomBytes(5, 1500*1024-3) // Small class: 1500 tuples
	mres, err := m.Mix(context.Background(), bytes.NewReader(data), mixer.Small, nil)
	if err != nil {
		t.Fatal(err)
	}
	root, class, _, err := describe(t, context.Background(), m, mres, mixer.Small, "")
	if err != nil {
		t.Fatal(err)
	}
	rc := Recipe{Root: root, DescClass: class, Size: int64(len(data))}
	r, err := Open(context.Background(), st, rc, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if r.root.level < 2 {
		t.Fatalf("depth %d, want ≥ 2", r.root.level)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for k := 0; k < 200; k++ {
		off := rng.Int64N(int64(len(data)))
		n := rng.IntN(5000)
		buf := make([]byte, n)
		got, err := r.ReadAt(buf, off)
		if err != nil && err != io.EOF {
			t.Fatal(err)
		}
		if !bytes.Equal(buf[:got], data[off:off+int64(got)]) {
			t.Fatalf("ReadAt(%d, %d) differs", off, n)
		}
	}
	var out bytes.Buffer
	if _, err := io.Copy(&out, r); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out.Bytes(), data) {
		t.Fatal("stream differs")
	}
}

func TestParseForgiving(t *testing.T) {
	st := blocks.NewMem()
	m := newMixer(t, st, 1)
	res := put(t, m, st, []byte("hello"), "my file.txt")
	s := res.Recipe.String()
	web := res.Recipe.URL("")
	key := res.Recipe.Key()
	cases := []string{
		s, web, "  " + s + "  ", "look: " + s + ".", "<" + web + ">", strings.ToUpper(s[:20]) + s[20:],
		"blockmix:" + key[:50] + "\n" + key[50:120] + "\r\n> " + key[120:] + "/my%20file.txt",
		s + " and some words after it", "(" + web + ")",
	}
	for _, c := range cases {
		rc, err := Parse(c)
		if err != nil {
			t.Errorf("Parse(%q): %v", c, err)
			continue
		}
		if rc.Key() != key {
			t.Errorf("Parse(%q): other key", c)
		}
	}
	if rc, _ := Parse(s); rc.Name != "my file.txt" {
		t.Errorf("name %q", rc.Name)
	}
}

func TestParseDamaged(t *testing.T) {
	st := blocks.NewMem()
	m := newMixer(t, st, 1)
	res := put(t, m, st, []byte("hello"), "a.txt")
	s := res.Recipe.String()
	key := res.Recipe.Key()
	typo := []byte(key)
	typo[40] = map[bool]byte{true: 'b', false: 'a'}[typo[40] == 'a']
	for _, c := range []string{
		"", "hello", "blockmix:", Scheme + key[:len(key)-1], Scheme + key[:100], Scheme + string(typo) + "/a.txt",
		Scheme + key + "aa/a.txt", s[:len(s)/2],
	} {
		_, err := Parse(c)
		if !errors.Is(err, ErrDamaged) {
			t.Errorf("Parse(%q) = %v, want ErrDamaged", c, err)
		}
	}
}

func TestRecipeLength(t *testing.T) {
	rc := Recipe{Root: make(mixer.Tuple, DescT), DescClass: mixer.Large, Size: 1 << 60, Type: "application/vnd.openxmlformats-officedocument.wordprocessingml.document"}
	for _, s := range []string{rc.String(), rc.URL("")} {
		before := strings.LastIndex(s, "/")
		if before > 256 {
			t.Errorf("%d characters before the name: %s", before, s)
		}
	}
	if _, err := Parse(rc.String()); err != nil {
		t.Fatal(err)
	}
}

// TestOpenErrors: a recipe pointing at the wrong blocks is a bad
// descriptor, blocks this store lacks are "not found", and a descriptor
// that lies about the file's hash fails the stream at the end.
func TestOpenErrors(t *testing.T) {
	ctx := context.Background()
	st := blocks.NewMem()
	m := newMixer(t, st, 1)
	data := randomBytes(3, 3<<20)
	res := put(t, m, st, data, "f")

	// The root tuple of another file's data: decodes to noise.
	mres, err := m.Mix(ctx, bytes.NewReader(randomBytes(4, 1024)), mixer.Small, nil)
	if err != nil {
		t.Fatal(err)
	}
	wrong := res.Recipe
	wrong.Root, wrong.DescClass = mres.Tuples[0], mixer.Small
	if _, err := Open(ctx, st, wrong, Options{}); !errors.Is(err, ErrBadDescriptor) {
		t.Fatalf("wrong root: %v, want ErrBadDescriptor", err)
	}

	// Another size than the descriptor's.
	wrong = res.Recipe
	wrong.Size++
	if _, err := Open(ctx, st, wrong, Options{}); !errors.Is(err, ErrBadDescriptor) {
		t.Fatalf("wrong size: %v, want ErrBadDescriptor", err)
	}

	// An empty store.
	if _, err := Open(ctx, blocks.NewMem(), res.Recipe, Options{}); !errors.Is(err, blocks.ErrNotFound) {
		t.Fatalf("empty store: %v, want ErrNotFound", err)
	}

	// A corrupt block is reported as such while streaming.
	r, err := Open(ctx, st, res.Recipe, Options{})
	if err != nil {
		t.Fatal(err)
	}
	tu, err := r.tuple(ctx, 5)
	if err != nil {
		t.Fatal(err)
	}
	st.Corrupt(tu[0])
	if _, err := io.Copy(io.Discard, r); !errors.Is(err, blocks.ErrCorrupt) {
		t.Fatalf("corrupt block: %v, want ErrCorrupt", err)
	}
}

// TestHashMismatch: a descriptor whose recorded hash differs from the data
// makes WriteTo fail after the last block.
func TestHashMismatch(t *testing.T) {
	ctx := context.Background()
	st := blocks.NewMem()
	m := newMixer(t, st, 1)
	data := randomBytes(8, 200<<10)
	mres, err := m.Mix(ctx, bytes.NewReader(data), mixer.ClassFor(int64(len(data))), nil)
	if err != nil {
		t.Fatal(err)
	}
	mres.SHA256[0] ^= 1
	root, class, _, err := describe(t, ctx, m, mres, 0, "")
	if err != nil {
		t.Fatal(err)
	}
	r, err := Open(ctx, st, Recipe{Root: root, DescClass: class, Size: int64(len(data))}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(io.Discard, r); !errors.Is(err, ErrHashMismatch) {
		t.Fatalf("got %v, want ErrHashMismatch", err)
	}
}

// TestParseSkipsOtherLinks: a recipe after other links in the same text.
func TestParseSkipsOtherLinks(t *testing.T) {
	st := blocks.NewMem()
	m := newMixer(t, st, 1)
	res := put(t, m, st, []byte("hello"), "a.txt")
	text := "see https://example.org/r/about and blockmix:nope, then " + res.Recipe.URL("") + " — enjoy"
	rc, err := Parse(text)
	if err != nil {
		t.Fatal(err)
	}
	if rc.Key() != res.Recipe.Key() || rc.Name != "a.txt" {
		t.Fatalf("parsed %q/%q", rc.Key(), rc.Name)
	}
}

// TestNameRoundTrip: names with quotes, brackets, spaces and trailing
// punctuation come back unchanged from either spelling.
func TestNameRoundTrip(t *testing.T) {
	base := Recipe{Root: make(mixer.Tuple, DescT), DescClass: mixer.Small, Size: 1}
	for _, name := range []string{"it's.txt", "!.", "file (1).txt", "a b", "end.", "x)", "日本語.pdf", "100%.txt", `q"uote`, "a<b>c"} {
		rc := base
		rc.Name = name
		for _, s := range []string{rc.String(), rc.URL(""), "(" + rc.String() + ")."} {
			got, err := Parse(s)
			if err != nil {
				t.Fatalf("%q: %v", s, err)
			}
			if got.Name != name {
				t.Errorf("%q: name %q, want %q", s, got.Name, name)
			}
		}
	}
}

// TestReadSeeker: Seek and Read from every whence, as http.ServeContent
// uses them.
func TestReadSeeker(t *testing.T) {
	st := blocks.NewMem()
	m := newMixer(t, st, 1)
	data := randomBytes(12, 700<<10+5)
	res := put(t, m, st, data, "v.bin")
	r, err := Open(context.Background(), st, res.Recipe, Options{})
	if err != nil {
		t.Fatal(err)
	}
	var _ io.ReadSeeker = r
	check := func(off int64, whence int, wantPos int64, n int) {
		t.Helper()
		pos, err := r.Seek(off, whence)
		if err != nil || pos != wantPos {
			t.Fatalf("Seek(%d, %d) = %d, %v; want %d", off, whence, pos, err, wantPos)
		}
		buf := make([]byte, n)
		got, err := io.ReadFull(r, buf)
		want := data[min(wantPos, int64(len(data))):min(wantPos+int64(n), int64(len(data)))]
		if !bytes.Equal(buf[:got], want) {
			t.Fatalf("read %d at %d: bytes differ (%v)", n, wantPos, err)
		}
	}
	check(0, io.SeekStart, 0, 10)
	check(128<<10-3, io.SeekStart, 128<<10-3, 100) // across a block boundary
	check(50, io.SeekCurrent, 128<<10-3+100+50, 1000)
	check(-20, io.SeekEnd, int64(len(data))-20, 20)
	check(0, io.SeekEnd, int64(len(data)), 1)
	if _, err := r.Seek(-1, io.SeekStart); err == nil {
		t.Fatal("seek to -1 succeeded")
	}
	if n, err := r.Read(make([]byte, 5)); n != 0 || err != io.EOF {
		t.Fatalf("read at the end: %d, %v; want 0, EOF", n, err)
	}
}

// TestCleanNameStrangers: names from strangers lose what could mislead or
// harm where they are shown or saved.
func TestCleanNameStrangers(t *testing.T) {
	for in, want := range map[string]string{
		"invoice\u202egpj.exe":      "invoicegpj.exe", // a right-to-left override
		"\u200b":                    "",               // only a zero-width space
		"a\u200bb\u2066c\u2069.txt": "abc.txt",        // invisible and isolating marks
		".bashrc":                   "bashrc",         // no hidden files
		"...x":                      "x",
		"../../etc/passwd":          "passwd",
		"\u3164\u115f":              "", // Hangul fillers draw nothing
		"a\u00a0b\u2003c":           "a b c",
		"ok name.jpg":               "ok name.jpg",
		"\ufeffbom.txt":             "bom.txt",
		"tab\there":                 "tabhere",
		"résumé\u0301.pdf":          "résumé\u0301.pdf", // combining marks are letters' parts
	} {
		if got := CleanName(in); got != want {
			t.Errorf("CleanName(%q) = %q, want %q", in, got, want)
		}
	}
	// A recipe's name is cleaned when it is read, whatever was in the link.
	st := blocks.NewMem()
	m := newMixer(t, st, 1)
	res := put(t, m, st, []byte("hi"), "x")
	link := "blockmix:" + res.Recipe.Key() + "/" + url.PathEscape("invoice\u202egpj.exe")
	rc, err := Parse(link)
	if err != nil || rc.Name != "invoicegpj.exe" || !rc.Renamed {
		t.Fatalf("Parse(%q): name %q (renamed %v), %v", link, rc.Name, rc.Renamed, err)
	}
	if rc, err := Parse(res.Recipe.String()); err != nil || rc.Renamed {
		t.Fatalf("a clean name reads as renamed: %v", err)
	}
}
