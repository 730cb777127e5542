package node

import (
	"context"
	"fmt"
	"testing"

	"github.com/blockmix/blockmix/blocks"
	"github.com/blockmix/blockmix/mixer"
)

// cancelAfter is a Progress that cancels a context after n bytes.
type cancelAfter struct {
	n      int64
	cancel context.CancelFunc
}

func (c *cancelAfter) Add(n int64) {
	if c.n -= n; c.n <= 0 {
		c.cancel()
	}
}

// TestVerifyResumes: a verify stopped part way leaves its place in the
// store (across a reopen); the next one checks the rest only and says how
// much the first had done; the one after that checks everything again.
func TestVerifyResumes(t *testing.T) {
	dir := t.TempDir()
	st, err := blocks.OpenDisk(dir, blocks.DiskOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	const n, size = 3000, 1024
	for i := range n {
		b, _ := blocks.NewBlock(fmt.Appendf(make([]byte, 0, size), "%0*d", size, i))
		if err := st.PutBlock(ctx, b, uint64(i+1)); err != nil {
			t.Fatal(err)
		}
	}
	stop, cancel := context.WithCancel(ctx)
	first, err := VerifyStore(stop, st, func(total int64) mixer.Progress {
		if total != n*size {
			t.Errorf("first verify: total %d bytes, want %d", total, n*size)
		}
		return &cancelAfter{n: 1500 * size, cancel: cancel}
	})
	if err == nil {
		t.Fatal("a cancelled verify returned no error")
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	if st, err = blocks.OpenDisk(dir, blocks.DiskOptions{}); err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	second, err := VerifyStore(ctx, st, nil)
	if err != nil {
		t.Fatal(err)
	}
	// The first stopped inside a page of 1024: it counts the blocks it
	// read, the second starts after the last whole page.
	if first.Checked < 1500 || second.Checked+1024 < n-first.Checked || second.Checked >= n {
		t.Fatalf("checked %d, then %d of %d blocks", first.Checked, second.Checked, n)
	}
	if got, want := second.ResumedAt, float64(n-second.Checked)/n; got < want-0.1 || got > want+0.1 {
		t.Errorf("ResumedAt %.2f, want about %.2f", got, want)
	}
	third, err := VerifyStore(ctx, st, nil)
	if err != nil || third.Checked != n || third.ResumedAt != 0 {
		t.Fatalf("third verify: %+v, %v; want all %d blocks from the start", third, err, n)
	}
}
