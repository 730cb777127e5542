package recipe

import (
	"bytes"
	"context"
	"io"
	"os"
	"strings"
	"testing"

	"github.com/blockmix/blockmix/blocks"
	"github.com/blockmix/blockmix/mixer"
)

// putAttached puts data through an Upload whose Attach hangs blob on it.
func putAttached(t *testing.T, st *blocks.Mem, seed uint64, data, blob []byte) (PutResult, []blocks.ID) {
	t.Helper()
	ctx := context.Background()
	m := newMixer(t, st, seed)
	up := NewUpload(int64(len(data)), "f.bin", "")
	defer up.Close()
	var seen []blocks.ID
	up.Attach = func(ctx context.Context, m *mixer.Mixer, ids []blocks.ID) (Recipe, []blocks.ID, error) {
		seen = ids
		return PutBlob(ctx, m, blob)
	}
	for off := 0; ; off += up.PartSize() {
		end := min(off+up.PartSize(), len(data))
		last := end == len(data)
		if err := up.Add(ctx, m, data[off:end], last, nil); err != nil {
			t.Fatal(err)
		}
		if last {
			break
		}
	}
	res, err := up.Finish(ctx, m, st)
	if err != nil {
		t.Fatal(err)
	}
	return res, seen
}

// TestAttachment: a file of any size (roots full and nearly full in each
// class included) carries its attachment in the descriptor's root; the
// recipe stays the same length; the file and the attachment both open.
func TestAttachment(t *testing.T) {
	ctx := context.Background()
	// 1 KiB blocks: 9, 10 and 11 tuples fill a 1 KiB leaf root or spill
	// over; 16 KiB blocks: 170 tuples fill a 16 KiB root.
	for _, size := range []int{0, 1, 9 << 10, 10<<10 - 1, 11 << 10, 16 << 10, 170 << 14, 3<<20 + 5} {
		st := blocks.NewMem()
		data := randomBytes(uint64(size), size)
		blob := randomBytes(7, 5000+size%3)
		res, seen := putAttached(t, st, uint64(size)+1, data, blob)
		if got := get(t, st, res.Recipe.String()); !bytes.Equal(got, data) {
			t.Fatalf("size %d: the file does not come back", size)
		}
		r, err := Open(ctx, st, res.Recipe, Options{})
		if err != nil {
			t.Fatal(err)
		}
		a, ok := r.Attachment()
		if !ok {
			t.Fatalf("size %d: no attachment found", size)
		}
		ar, err := Open(ctx, st, a, Options{})
		if err != nil {
			t.Fatal(err)
		}
		var got bytes.Buffer
		if _, err := io.Copy(&got, ar); err != nil || !bytes.Equal(got.Bytes(), blob) {
			t.Fatalf("size %d: the attachment does not come back: %v", size, err)
		}
		if len(res.Recipe.Key()) > MaxPayloadChars {
			t.Fatalf("size %d: recipe of %d characters", size, len(res.Recipe.Key()))
		}
		// The file lists every block Attach saw, and the attachment's.
		all := map[blocks.ID]bool{}
		for _, id := range listed(t, st, res) {
			all[id] = true
		}
		for _, id := range seen {
			if !all[id] {
				t.Fatalf("size %d: Attach saw a block the file does not list", size)
			}
		}
	}
}

// TestGoldenHaveNoAttachment: the golden recipes (made before
// attachments) open as before and have none.
func TestGoldenHaveNoAttachment(t *testing.T) {
	want, err := os.ReadFile(goldenPath)
	if err != nil {
		t.Fatal(err)
	}
	st := blocks.NewMem()
	inputs := [][]byte{[]byte("hello, blockmix\n"), make([]byte, 300<<10), randomBytes(42, 1<<20+123), randomBytes(43, 200<<10), nil}
	ts := []int{3, 3, 3, 5, 3}
	lines := strings.Split(strings.TrimSpace(string(want)), "\n")
	names := []string{"hello.txt", "zeros.bin", "random.bin", "t5.bin", "empty"}
	for i, data := range inputs {
		m, err := mixer.New(st, mixer.Options{T: ts[i], Rand: seeded(uint64(i + 1)), Workers: 1})
		if err != nil {
			t.Fatal(err)
		}
		res, err := Put(context.Background(), m, st, bytes.NewReader(data), int64(len(data)), names[i], "application/octet-stream", nil)
		if err != nil {
			t.Fatal(err)
		}
		if res.Recipe.String() != lines[i] {
			t.Fatalf("%s: recipe differs from the golden one", names[i])
		}
		r, err := Open(context.Background(), st, res.Recipe, Options{})
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := r.Attachment(); ok {
			t.Fatalf("%s: an old recipe has an attachment", names[i])
		}
	}
}
