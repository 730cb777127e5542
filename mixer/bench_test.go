package mixer

import (
	"bytes"
	"context"
	"crypto/sha256"
	"testing"

	"github.com/blockmix/blockmix/blocks"
)

// BenchmarkMix256MiB mixes 256 MiB into an empty in-memory store: the
// CPU-bound speed of the mixer (two sha256 passes per byte: the file's and
// the blocks'), next to BenchmarkSHA256Twice, its floor on one core. Only
// Mix is timed: the input, and each round's empty store and mixer, are
// made with the timer stopped.
func BenchmarkMix256MiB(b *testing.B) {
	src := randomBytes(1, 256<<20)
	b.SetBytes(int64(len(src)))
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		st := blocks.NewMem()
		m, err := New(st, Options{Rand: seeded(2)})
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		if _, err := m.Mix(context.Background(), bytes.NewReader(src), Large, nil); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSHA256Twice hashes 256 MiB twice on one core: the hashing a put
// cannot avoid. The input is made before the timer starts.
func BenchmarkSHA256Twice(b *testing.B) {
	src := randomBytes(1, 256<<20)
	b.SetBytes(int64(len(src)))
	b.ResetTimer()
	for range b.N {
		sha256.Sum256(src)
		for i := 0; i < len(src); i += Large {
			sha256.Sum256(src[i : i+Large])
		}
	}
}
