package recipe

import (
	"bytes"
	"context"
	"testing"

	"github.com/blockmix/blockmix/blocks"
	"github.com/blockmix/blockmix/mixer"
)

// FuzzParse: any text either parses into a recipe whose spellings parse back
// to the same key, or fails with ErrDamaged; it never panics.
func FuzzParse(f *testing.F) {
	rc := Recipe{Root: make(mixer.Tuple, DescT), DescClass: mixer.Small, Size: 5, Type: "text/plain", Name: "a b.txt"}
	f.Add(rc.String())
	f.Add(rc.URL(""))
	f.Add("blockmix:" + rc.Key()[:60] + "\n" + rc.Key()[60:] + ".")
	f.Add("blockmix:aaaa/x")
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		r, err := Parse(s)
		if err != nil {
			return
		}
		for _, spelling := range []string{r.String(), r.URL("")} {
			r2, err := Parse(spelling)
			if err != nil {
				t.Fatalf("re-parse %q: %v", spelling, err)
			}
			if r2.Key() != r.Key() || r2.Name != r.Name {
				t.Fatalf("re-parse %q: key or name changed", spelling)
			}
		}
	})
}

// FuzzDecodeNode: any block either decodes into a node that re-encodes to
// the same prefix, or fails with ErrBadDescriptor; it never panics.
func FuzzDecodeNode(f *testing.F) {
	n := node{header: header{entryT: 3, entryClass: mixer.Small, dataClass: mixer.Small, dataT: 3, size: 10, total: 1},
		entries: []mixer.Tuple{make(mixer.Tuple, 3)}}
	good, _ := encodeNode(n, mixer.Small, nil)
	f.Add(good)
	f.Add(make([]byte, mixer.Small))
	f.Fuzz(func(t *testing.T, b []byte) {
		// Blocks always have a class size: fit the input to one.
		blk := make([]byte, mixer.ClassFor(int64(len(b))))
		copy(blk, b)
		got, err := decodeNode(blk)
		if err != nil {
			return
		}
		again, err := encodeNode(got, len(blk), nil)
		if err != nil {
			t.Fatal(err)
		}
		used := headerSize + got.count*got.entryT*32
		if !bytes.Equal(again[:used], blk[:used]) {
			t.Fatal("decode/encode changed the node")
		}
	})
}

// FuzzPutOpen: any bytes put into a store come back unchanged.
func FuzzPutOpen(f *testing.F) {
	f.Add([]byte("hello"), uint8(3))
	f.Add(make([]byte, 3000), uint8(2))
	f.Fuzz(func(t *testing.T, data []byte, tsize uint8) {
		st := blocks.NewMem()
		m, err := mixer.New(st, mixer.Options{T: 2 + int(tsize)%7, Rand: seeded(1), Workers: 2})
		if err != nil {
			t.Fatal(err)
		}
		res, err := Put(context.Background(), m, st, bytes.NewReader(data), int64(len(data)), "f", "", nil)
		if err != nil {
			t.Fatal(err)
		}
		if got := get(t, st, res.Recipe.String()); !bytes.Equal(got, data) {
			t.Fatal("rebuilt bytes differ")
		}
	})
}
