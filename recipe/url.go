package recipe

import (
	"bytes"
	"crypto/sha256"
	"encoding/base32"
	"encoding/binary"
	"errors"
	"fmt"
	"net/url"
	"path"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/blockmix/blockmix/mixer"
)

// The two spellings of a recipe. Both are accepted everywhere.
const (
	Scheme     = "blockmix:"
	DefaultWeb = "http://127.0.0.1:7788"
	webPath    = "/r/"
)

// MaxPayloadChars bounds the payload so that even the web spelling stays
// within 256 characters before the name.
const MaxPayloadChars = 256 - len(DefaultWeb) - len(webPath) - 1

// Payload layout (before base32, lowercase, no padding):
//
//	version   u8     1
//	descClass u8     log2 of the root node's block size
//	root      3×32   sha2-256 digests of the root node's tuple
//	size      uvarint
//	typeLen   u8, then the media type (dropped when it would not fit)
//	check     4      first bytes of sha256(everything before)
const (
	payloadVersion = 1
	checkLen       = 4
)

var b32 = base32.StdEncoding.WithPadding(base32.NoPadding)

// ErrDamaged: the text is not a whole, intact recipe (a typo, a truncated
// paste, a different program's link). It is never reported as a missing
// block.
var ErrDamaged = errors.New("damaged recipe")

// Recipe is everything needed to rebuild a file.
type Recipe struct {
	Root      mixer.Tuple // the descriptor root's tuple, DescT IDs
	DescClass int         // the root node's block size
	Size      int64       // file size in bytes
	Type      string      // media type, may be empty
	Name      string      // file name, may be empty
	// Renamed says the name in the text Parse read was not clean (see
	// CleanName): Name is the cleaned one, and the user should be told.
	// It is not part of the recipe's spelling.
	Renamed bool
}

func (r Recipe) payloadBytes() ([]byte, error) {
	if len(r.Root) != DescT {
		return nil, fmt.Errorf("recipe root has %d IDs, want %d", len(r.Root), DescT)
	}
	if err := mixer.ValidClass(r.DescClass); err != nil {
		return nil, err
	}
	var b []byte
	b = append(b, payloadVersion, byte(log2(r.DescClass)))
	for _, id := range r.Root {
		b = append(b, id[:]...)
	}
	b = binary.AppendUvarint(b, uint64(r.Size))
	typ := r.Type
	maxBytes := MaxPayloadChars * 5 / 8
	if len(typ) > 255 || len(b)+1+len(typ)+checkLen > maxBytes {
		typ = "" // the name's extension tells the type instead
	}
	b = append(b, byte(len(typ)))
	b = append(b, typ...)
	sum := sha256.Sum256(b)
	return append(b, sum[:checkLen]...), nil
}

// Key returns the payload: the recipe without its name. Two recipes with the
// same key rebuild the same bytes.
func (r Recipe) Key() string {
	b, err := r.payloadBytes()
	if err != nil {
		return ""
	}
	return strings.ToLower(b32.EncodeToString(b))
}

// String returns the "blockmix:<payload>/<name>" spelling.
func (r Recipe) String() string { return Scheme + r.Key() + "/" + escapeName(r.Name) }

// URL returns the clickable spelling under base (DefaultWeb when empty).
func (r Recipe) URL(base string) string {
	if base == "" {
		base = DefaultWeb
	}
	return strings.TrimRight(base, "/") + webPath + r.Key() + "/" + escapeName(r.Name)
}

// nameTrim is the punctuation Parse drops from the end of a pasted name
// (the period that ends a sentence, a closing bracket).
const nameTrim = ".,;:!?)]}"

// escapeName spells a name so that Parse reads it back unchanged: path
// escaping, plus the quote that ends a name in Parse, plus any trailing
// punctuation Parse would drop.
func escapeName(n string) string {
	e := strings.ReplaceAll(url.PathEscape(CleanName(n)), "'", "%27")
	tail := ""
	for len(e) > 0 && strings.IndexByte(nameTrim, e[len(e)-1]) >= 0 {
		tail = fmt.Sprintf("%%%02X", e[len(e)-1]) + tail
		e = e[:len(e)-1]
	}
	return e + tail
}

// CleanName makes a name safe to show and to save under, whoever made
// the recipe: the last path element; without control characters, without
// invisible and direction-changing ones (U+202E turns "invoice\u202egpj.exe"
// into what reads as "invoiceexe.jpg"; U+200B hides a name), with other
// spaces made plain; without leading dots (no hidden file such as
// ".bashrc" lands in a folder); at most 200 bytes.
func CleanName(n string) string {
	n = strings.ReplaceAll(n, "\\", "/")
	n = path.Base("/" + n)
	n = strings.Map(func(r rune) rune {
		switch {
		case unicode.IsControl(r) || r == utf8.RuneError || unicode.Is(unicode.Cf, r) || invisible(r):
			return -1
		case unicode.IsSpace(r):
			return ' '
		}
		return r
	}, n)
	n = strings.TrimSpace(strings.TrimLeft(strings.TrimSpace(n), "."))
	if n == "/" {
		n = ""
	}
	for len(n) > 200 {
		_, size := utf8.DecodeLastRuneInString(n)
		n = n[:len(n)-size]
	}
	return n
}

// invisible reports letters that draw nothing (Hangul fillers, the
// braille blank) and so make a name look empty or like another one.
func invisible(r rune) bool {
	switch r {
	case 0x115F, 0x1160, 0x3164, 0xFFA0, 0x2800, 0x034F:
		return true
	}
	return false
}

func isB32(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '2' && c <= '7' }

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '>' }

// Parse finds a recipe in text: either spelling, with text around it,
// spaces or line breaks inside it (as mail programs break long lines) and
// punctuation after it. Anything else returns an error wrapping ErrDamaged
// that says what is wrong.
func Parse(text string) (Recipe, error) {
	starts := findStarts(text)
	if len(starts) == 0 {
		return Recipe{}, fmt.Errorf("%w: no %q or %q link found in the text", ErrDamaged, Scheme, webPath)
	}
	return firstIntact(text, starts, parseAt)
}

// firstIntact parses text at each start in turn: the first place that
// holds an intact value wins (text may mention other links); else the
// first place's error says what is wrong.
func firstIntact[T any](text string, starts []int, parse func(string) (T, error)) (T, error) {
	var zero T
	var firstErr error
	for _, start := range starts {
		v, err := parse(text[start:])
		if err == nil {
			return v, nil
		}
		if firstErr == nil {
			firstErr = err
		}
	}
	return zero, firstErr
}

// scanPayload collects the base32 characters at the start of s, lower
// cased, up to max of them (0: no limit), skipping white space; breaks are
// the payload lengths at which white space broke the run, and end is where
// in s the run stopped.
func scanPayload(s string, max int) (pay []byte, breaks []int, end int) {
	for ; end < len(s) && (max == 0 || len(pay) <= max); end++ {
		c := s[end]
		if isB32(c) {
			pay = append(pay, c|0x20) // lower case; digits have the bit already
			continue
		}
		if isSpace(c) {
			if len(pay) > 0 && (len(breaks) == 0 || breaks[len(breaks)-1] != len(pay)) {
				breaks = append(breaks, len(pay))
			}
			continue
		}
		break
	}
	return pay, breaks, end
}

// cuts lists the payload lengths to try: the whole run first, then shorter
// ones cut where white space was, in case words after the recipe looked
// like base32.
func cuts(pay []byte, breaks []int) []int {
	out := []int{len(pay)}
	for k := len(breaks) - 1; k >= 0; k-- {
		out = append(out, breaks[k])
	}
	return out
}

// parseAt parses the payload at the start of s, and the name after it.
func parseAt(s string) (Recipe, error) {
	// Collect payload characters, noting where white space broke the run.
	pay, breaks, i := scanPayload(s, 0)
	name, renamed := "", false
	if i < len(s) && s[i] == '/' && (len(breaks) == 0 || breaks[len(breaks)-1] != len(pay)) {
		name, renamed = takeName(s[i+1:])
	}
	var firstErr error
	for _, n := range cuts(pay, breaks) {
		r, err := decodePayload(string(pay[:n]))
		if err == nil {
			if n != len(pay) {
				name, renamed = "", false // the name followed the cut-off text, not this
			}
			r.Name, r.Renamed = name, renamed
			return r, nil
		}
		if firstErr == nil {
			firstErr = err
		}
	}
	return Recipe{}, firstErr
}

// findStarts returns where a payload may start: after each "blockmix:" and
// each "/r/", in order.
func findStarts(text string) []int {
	lower := asciiLower(text) // same length as text, unlike strings.ToLower
	var out []int
	for i := 0; i < len(lower); i++ {
		switch {
		case strings.HasPrefix(lower[i:], Scheme):
			out = append(out, i+len(Scheme))
		case strings.HasPrefix(lower[i:], webPath):
			out = append(out, i+len(webPath))
		}
	}
	return out
}

func asciiLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

// takeName reads the name after a payload, cleaned, and whether cleaning
// changed it.
func takeName(s string) (string, bool) {
	end := strings.IndexFunc(s, func(r rune) bool { return unicode.IsSpace(r) || r == '"' || r == '\'' || r == '<' || r == '>' })
	if end >= 0 {
		s = s[:end]
	}
	s = strings.TrimRight(s, nameTrim)
	if u, err := url.PathUnescape(s); err == nil {
		s = u
	}
	c := CleanName(s)
	return c, c != s
}

func decodePayload(p string) (Recipe, error) {
	if len(p) == 0 {
		return Recipe{}, fmt.Errorf("%w: the recipe is empty", ErrDamaged)
	}
	if len(p) > MaxPayloadChars {
		return Recipe{}, fmt.Errorf("%w: %d characters, a recipe has at most %d", ErrDamaged, len(p), MaxPayloadChars)
	}
	b, err := b32.DecodeString(strings.ToUpper(p))
	// The decoder ignores the spare bits of the last character: re-encode,
	// so that a typo there is caught too and a recipe has one spelling.
	if err != nil || strings.ToLower(b32.EncodeToString(b)) != p {
		return Recipe{}, fmt.Errorf("%w: it is cut short or has a typo (%d characters)", ErrDamaged, len(p))
	}
	minLen := 2 + DescT*32 + 1 + 1 + checkLen
	if len(b) < minLen {
		return Recipe{}, fmt.Errorf("%w: it is cut short (%d characters)", ErrDamaged, len(p))
	}
	body, check := b[:len(b)-checkLen], b[len(b)-checkLen:]
	sum := sha256.Sum256(body)
	if !bytes.Equal(sum[:checkLen], check) {
		return Recipe{}, fmt.Errorf("%w: its checksum does not match: a typo, or part of it is missing", ErrDamaged)
	}
	if body[0] != payloadVersion {
		return Recipe{}, fmt.Errorf("%w: version %d, this program reads %d (a newer blockmix made it?)", ErrDamaged, body[0], payloadVersion)
	}
	var r Recipe
	var ok bool
	if r.DescClass, ok = classOK(body[1]); !ok {
		return Recipe{}, fmt.Errorf("%w: unknown block class", ErrDamaged)
	}
	off := 2
	r.Root = make(mixer.Tuple, DescT)
	for i := range r.Root {
		copy(r.Root[i][:], body[off:off+32])
		off += 32
	}
	size, n := binary.Uvarint(body[off:])
	if n <= 0 || size > 1<<62 {
		return Recipe{}, fmt.Errorf("%w: bad size field", ErrDamaged)
	}
	r.Size = int64(size)
	off += n
	if off >= len(body) {
		return Recipe{}, fmt.Errorf("%w: no type field", ErrDamaged)
	}
	tl := int(body[off])
	off++
	if off+tl != len(body) {
		return Recipe{}, fmt.Errorf("%w: bad type field", ErrDamaged)
	}
	r.Type = string(body[off:])
	if !utf8.ValidString(r.Type) {
		return Recipe{}, fmt.Errorf("%w: bad type field", ErrDamaged)
	}
	return r, nil
}
