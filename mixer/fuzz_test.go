package mixer

import (
	"bytes"
	"context"
	"testing"

	"github.com/blockmix/blockmix/blocks"
)

// FuzzMixRoundTrip: split → mix → rebuild gives the input back, for any
// input, tuple size and class, into a store that already holds blocks.
func FuzzMixRoundTrip(f *testing.F) {
	f.Add([]byte("hello"), uint8(1), uint8(0))
	f.Add(make([]byte, 5000), uint8(0), uint8(1))
	f.Fuzz(func(t *testing.T, data []byte, tsize, class uint8) {
		st := blocks.NewMem()
		m, err := New(st, Options{T: MinT + int(tsize)%(MaxT-MinT+1), Rand: seeded(5), Workers: 2})
		if err != nil {
			t.Fatal(err)
		}
		c := Classes[int(class)%2] // Small or Medium keeps it quick
		if _, err := m.Mix(context.Background(), bytes.NewReader(data), c, nil); err != nil {
			t.Fatal(err)
		}
		res, err := m.Mix(context.Background(), bytes.NewReader(data), c, nil)
		if err != nil {
			t.Fatal(err)
		}
		if got := rebuild(t, st, res); !bytes.Equal(got, data) {
			t.Fatal("rebuilt bytes differ")
		}
	})
}
