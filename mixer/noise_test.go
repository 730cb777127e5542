package mixer

import (
	"bytes"
	"compress/flate"
	"context"
	"crypto/subtle"
	"fmt"
	"testing"

	"github.com/blockmix/blockmix/blocks"
)

// chiSquare returns the χ² statistic of b's byte histogram against uniform.
func chiSquare(b []byte) float64 {
	var h [256]float64
	for _, c := range b {
		h[c]++
	}
	exp := float64(len(b)) / 256
	var x float64
	for _, n := range h {
		x += (n - exp) * (n - exp) / exp
	}
	return x
}

func compressedRatio(b []byte) float64 {
	var buf bytes.Buffer
	w, _ := flate.NewWriter(&buf, flate.BestSpeed)
	w.Write(b)
	w.Close()
	return float64(buf.Len()) / float64(len(b))
}

// looksRandom fails t unless b has a flat byte histogram (χ² with 255
// degrees of freedom below 400: about six standard deviations) and does not
// compress.
func looksRandom(t *testing.T, what string, b []byte) {
	t.Helper()
	if len(b) >= Medium {
		if x := chiSquare(b); x > 400 {
			t.Fatalf("%s: byte histogram χ² = %.0f, not noise", what, x)
		}
	}
	if r := compressedRatio(b); r < 0.98 {
		t.Fatalf("%s: compresses to %.2f of its size, not noise", what, r)
	}
}

// TestNoise puts plaintext that is as regular as it gets (all zeros, one
// block repeated) into an empty store and checks every stored block, and
// the XOR of every pair of stored blocks, for noise.
func TestNoise(t *testing.T) {
	ctx := context.Background()
	rep := bytes.Repeat([]byte("blockmix repeats itself. "), Large/25+1)[:Large]
	inputs := map[string][]byte{
		"zeros":    make([]byte, 12*Large),
		"repeated": bytes.Repeat(rep, 12),
		"small":    make([]byte, 40*Small),
	}
	for _, tsize := range []int{3, 4} {
		for name, src := range inputs {
			t.Run(fmt.Sprintf("%s/t%d", name, tsize), func(t *testing.T) {
				st := blocks.NewMem()
				m := newMixer(t, st, tsize, 2, 77)
				class := ClassFor(int64(len(src)))
				if _, err := m.Mix(ctx, bytes.NewReader(src), class, nil); err != nil {
					t.Fatal(err)
				}
				// A second file of the same kind reuses the first's blocks.
				if _, err := m.Mix(ctx, bytes.NewReader(src), class, nil); err != nil {
					t.Fatal(err)
				}
				var all [][]byte
				seen := map[string]bool{}
				err := st.Enumerate(ctx, func(id blocks.ID, _ blocks.Meta) error {
					b, err := st.Get(ctx, id)
					if err != nil {
						return err
					}
					if seen[string(b)] {
						return fmt.Errorf("two stored blocks are equal")
					}
					seen[string(b)] = true
					all = append(all, b)
					return nil
				})
				if err != nil {
					t.Fatal(err)
				}
				for i, b := range all {
					looksRandom(t, fmt.Sprintf("block %d", i), b)
				}
				x := make([]byte, class)
				for i := range all {
					for j := i + 1; j < len(all); j++ {
						subtle.XORBytes(x, all[i], all[j])
						looksRandom(t, fmt.Sprintf("block %d ⊕ block %d", i, j), x)
					}
				}
				t.Logf("%d blocks and %d pairs look like noise", len(all), len(all)*(len(all)-1)/2)
			})
		}
	}
}

// TestNoiseCheckCatches makes sure the checks above can fail.
func TestNoiseCheckCatches(t *testing.T) {
	if x := chiSquare(make([]byte, Large)); x < 400 {
		t.Fatalf("zeros pass the histogram test (χ² %.0f)", x)
	}
	if r := compressedRatio(bytes.Repeat([]byte("abc"), 1000)); r > 0.98 {
		t.Fatalf("text passes the compression test (%.2f)", r)
	}
}
