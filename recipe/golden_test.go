package recipe

import (
	"bytes"
	"context"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/blockmix/blockmix/blocks"
	"github.com/blockmix/blockmix/mixer"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

var goldenPath = filepath.Join("..", "testdata", "golden", "recipes.golden")

// TestGoldenRecipes is a known-answer test: with a fixed random source, the
// same files put in the same order give the same recipes, byte for byte,
// whatever the number of workers. A change here changes the format or the
// randomizer policy: bump a version or update with -update on purpose.
func TestGoldenRecipes(t *testing.T) {
	inputs := []struct {
		name string
		data []byte
		t    int
	}{
		{"hello.txt", []byte("hello, blockmix\n"), 3},
		{"zeros.bin", make([]byte, 300<<10), 3},
		{"random.bin", randomBytes(42, 1<<20+123), 3},
		{"t5.bin", randomBytes(43, 200<<10), 5},
		{"empty", nil, 3},
	}
	var got string
	for _, workers := range []int{1, 4} {
		st := blocks.NewMem()
		var lines []string
		for _, in := range inputs {
			m, err := mixer.New(st, mixer.Options{T: in.t, Rand: seeded(uint64(len(lines) + 1)), Workers: workers})
			if err != nil {
				t.Fatal(err)
			}
			res, err := Put(context.Background(), m, st, bytes.NewReader(in.data), int64(len(in.data)), in.name, "application/octet-stream", nil)
			if err != nil {
				t.Fatal(err)
			}
			if got := get(t, st, res.Recipe.String()); !bytes.Equal(got, in.data) {
				t.Fatalf("%s: rebuilt bytes differ", in.name)
			}
			lines = append(lines, res.Recipe.String())
		}
		out := strings.Join(lines, "\n") + "\n"
		if got != "" && out != got {
			t.Fatalf("workers=%d gives other recipes than workers=1", workers)
		}
		got = out
	}
	if *update {
		if err := os.WriteFile(goldenPath, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(goldenPath)
	if err != nil {
		t.Fatalf("%v (run go test ./recipe -run Golden -update to create it)", err)
	}
	if got != string(want) {
		t.Fatalf("recipes differ from %s:\ngot:\n%swant:\n%s", goldenPath, got, want)
	}
}
