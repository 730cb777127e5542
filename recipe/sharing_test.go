package recipe

import (
	"context"
	"testing"

	"github.com/blockmix/blockmix/blocks"
	"github.com/blockmix/blockmix/mixer"
)

// TestSharingFigures checks the storage goals of the randomizer policy:
// 20 distinct 2 MiB files into a fresh store cost at most 1.10× their size,
// the last one adds at most 1.05× its size, and at least 90 % of the blocks
// serve two or more files.
func TestSharingFigures(t *testing.T) {
	ctx := context.Background()
	st := blocks.NewMem()
	m := newMixer(t, st, 9)
	const n, size = 20, 2 << 20
	var last PutResult
	for i := 0; i < n; i++ {
		last = put(t, m, st, randomBytes(uint64(i), size), "f")
	}
	s, err := st.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	total := float64(s.Bytes) / float64(n*size)
	lastRatio := float64(last.NewBytes) / float64(size)
	shared := float64(s.SharedBlocks) / float64(s.Blocks)
	t.Logf("stored %.4f× the files, last file added %.4f×, %.1f%% of %d blocks serve ≥2 files", total, lastRatio, 100*shared, s.Blocks)
	if total > 1.10 {
		t.Errorf("stored %.3f× the files, want ≤ 1.10", total)
	}
	if lastRatio > 1.05 {
		t.Errorf("last file added %.3f× its size, want ≤ 1.05", lastRatio)
	}
	if shared < 0.90 {
		t.Errorf("%.1f%% of blocks shared, want ≥ 90%%", 100*shared)
	}
}

// TestSmallFile: a 1 KiB file adds at most 8 KiB to a warm store.
func TestSmallFile(t *testing.T) {
	st := blocks.NewMem()
	m := newMixer(t, st, 10)
	for i := 0; i < 5; i++ { // warm: some small and large files
		put(t, m, st, randomBytes(uint64(i), 1024+i), "warm")
		put(t, m, st, randomBytes(uint64(i+50), 300<<10), "warm")
	}
	res := put(t, m, st, randomBytes(99, 1024), "small")
	t.Logf("1 KiB file added %d bytes in %d blocks; recipe %d characters", res.NewBytes, res.NewBlocks, len(res.Recipe.String()))
	if res.NewBytes > 8<<10 {
		t.Errorf("1 KiB file added %d bytes, want ≤ 8 KiB", res.NewBytes)
	}
}

// TestDownloadCost measures what the randomizer policy buys a recipient,
// against OFF's uniform choice, for ten 2 MiB files put in turn:
//   - cold: blocks a node with nothing must fetch, per source block;
//   - warm: blocks a node that fetched the previous file must still fetch;
//   - shared: blocks that serve two or more files.
//
// OFF's uniform choice costs about t = 3 blocks per source block cold and
// little less warm; blockmix's policy must cost at most 1.5 warm (the
// network issue's aim) and less than uniform both ways. (Its sharing is
// checked by TestSharingFigures.)
func TestDownloadCost(t *testing.T) {
	ctx := context.Background()
	type cost struct{ cold, warm, shared float64 }
	measure := func(uniform bool) cost {
		st := blocks.NewMem()
		m, err := mixer.New(st, mixer.Options{Rand: seeded(11), Uniform: uniform})
		if err != nil {
			t.Fatal(err)
		}
		const n, size = 10, 2 << 20
		var prev map[blocks.ID]bool
		var c cost
		src := float64(size / mixer.Large)
		for i := 0; i < n; i++ {
			res := put(t, m, st, randomBytes(uint64(i+500), size), "f")
			cur := map[blocks.ID]bool{}
			missing := 0
			for _, id := range listed(t, st, res) {
				cur[id] = true
				if !prev[id] {
					missing++
				}
			}
			if i == n-1 {
				c.cold = float64(res.NBlock) / src
				c.warm = float64(missing) / src
			}
			prev = cur
		}
		s, err := st.Stats(ctx)
		if err != nil {
			t.Fatal(err)
		}
		c.shared = float64(s.SharedBlocks) / float64(s.Blocks)
		return c
	}
	ours, off := measure(false), measure(true)
	t.Logf("blocks fetched per source block (descriptor included): blockmix cold %.2f warm %.2f shared %.0f%%; uniform (OFF) cold %.2f warm %.2f shared %.0f%%",
		ours.cold, ours.warm, 100*ours.shared, off.cold, off.warm, 100*off.shared)
	if ours.warm > 1.5 {
		t.Errorf("warm download costs %.2f blocks per source block, want ≤ 1.5", ours.warm)
	}
	if ours.warm >= off.warm || ours.cold >= off.cold {
		t.Errorf("policy is no cheaper than uniform choice")
	}
}
