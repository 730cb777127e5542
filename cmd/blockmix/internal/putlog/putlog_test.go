package putlog

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/blockmix/blockmix/blocks"
	"github.com/blockmix/blockmix/cmd/blockmix/internal/atomicfile"
)

// putBlock stores data in st as a block of this node, used by no file.
func putBlock(t *testing.T, st *blocks.Disk, data string) blocks.ID {
	t.Helper()
	id := blocks.Sum([]byte(data))
	if err := st.Put(context.Background(), id, []byte(data), 0); err != nil {
		t.Fatal(err)
	}
	return id
}

func has(t *testing.T, st *blocks.Disk, id blocks.ID) bool {
	t.Helper()
	ok, err := st.Has(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return ok
}

// TestSweepTornNote: a torn note (empty, cut short) stops neither the
// sweep nor its caller, deletes nothing on its own account, and is set
// aside with its bytes and a warning; a whole note beside it is swept as
// always.
func TestSweepTornNote(t *testing.T) {
	for name, text := range map[string]string{"empty": "", "truncated": `{"from_se`, "zeros": "\x00\x00\x00\x00"} {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			dir := t.TempDir()
			st, err := blocks.OpenDisk(filepath.Join(dir, "store"), blocks.DiskOptions{})
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			puts := filepath.Join(dir, "puts")
			if err := os.MkdirAll(puts, 0o700); err != nil {
				t.Fatal(err)
			}
			// A block from before any put: no note covers it.
			before := putBlock(t, st, "from before")
			tornNote := filepath.Join(puts, "put-1.json")
			if err := os.WriteFile(tornNote, []byte(text), 0o600); err != nil {
				t.Fatal(err)
			}
			var lb bytes.Buffer
			log := slog.New(slog.NewTextHandler(&lb, nil))
			n, _, err := Sweep(ctx, puts, st, log)
			if err != nil || n != 0 {
				t.Fatalf("Sweep with only a torn note: %d blocks, %v; want none deleted", n, err)
			}
			if !has(t, st, before) {
				t.Fatal("a torn note made the sweep delete a block no put noted")
			}
			ps, _ := filepath.Glob(tornNote + atomicfile.DamagedMarker + "*")
			if len(ps) != 1 {
				t.Fatalf("the torn note set aside as %v", ps)
			}
			if b, err := os.ReadFile(ps[0]); err != nil || string(b) != text {
				t.Errorf("the note set aside holds %q (%v)", b, err)
			}
			if log := lb.String(); !strings.Contains(log, "level=WARN") || !strings.Contains(log, ps[0]) {
				t.Errorf("no warning naming the note set aside:\n%s", log)
			}

			// A torn note beside a whole one: the whole one's put is swept.
			if err := os.WriteFile(tornNote, []byte(text), 0o600); err != nil {
				t.Fatal(err)
			}
			e, err := Begin(puts, st)
			if err != nil {
				t.Fatal(err)
			}
			left := putBlock(t, st, "left by a killed put")
			// The put dies: its note stays, no longer held.
			if err := e.f.Close(); err != nil {
				t.Fatal(err)
			}
			n, _, err = Sweep(ctx, puts, st, log)
			if err != nil || n != 1 {
				t.Fatalf("Sweep: %d blocks, %v; want the killed put's one", n, err)
			}
			if has(t, st, left) || !has(t, st, before) {
				t.Errorf("after the sweep: the killed put's block there %v, the earlier one %v", has(t, st, left), has(t, st, before))
			}
			if rest, _ := filepath.Glob(filepath.Join(puts, "put-*.json")); len(rest) != 0 {
				t.Errorf("notes left: %v", rest)
			}
		})
	}
}
