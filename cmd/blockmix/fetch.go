package main

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/blockmix/blockmix/blocks"
	"github.com/blockmix/blockmix/mixer"
	"github.com/blockmix/blockmix/recipe"
	"github.com/blockmix/blockmix/webui/apiv1"
)

// Fetch rebuilds the whole file into this node: every block it needs is
// fetched and kept (whatever --cache says: the user asked for this file),
// the whole-file hash is checked, and the file joins the node's list, so
// that its blocks count as used and the node announces it.
func (d *daemonNode) Fetch(ctx context.Context, rc recipe.Recipe, progress func(int64)) error {
	f := d.fetcher(ctx, rc)
	kept := func() error {
		if s := f.Stats(); s.KeepFailed > 0 {
			return fmt.Errorf("the file checked out, but %d of its blocks could not be kept here (is the disk full?)", s.KeepFailed)
		}
		return nil
	}
	err := pinLocal(ctx, d.st, f, rc, &recipe.Options{Workers: d.prof.workers, Progress: progressFunc(progress)}, kept)
	d.k.stored.Add(f.Stats().Bytes)
	if err != nil {
		return err
	}
	go func() {
		pctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = d.node.ProvideFile(pctx, rc.Root[0])
	}()
	return nil
}

// Health counts the reachable copies of each block of a file on this
// node's list: this node's own, and the k closest nodes' answers to a
// has-list (k = replicas + 2, so that a copy one place off still counts).
func (d *daemonNode) Health(ctx context.Context, rc recipe.Recipe) (apiv1.HealthInfo, error) {
	f, err := d.st.File(ctx, rc.Key())
	if err != nil {
		return apiv1.HealthInfo{}, fmt.Errorf("%s is not on this node's list (get it first): %w", rc.Name, err)
	}
	counts := d.node.Copies(ctx, f.Blocks, d.replicas+2)
	for i, id := range f.Blocks {
		if ok, err := d.st.Has(ctx, id); err == nil && ok {
			counts[i]++
		}
	}
	h := apiv1.HealthInfo{Blocks: len(counts), Replicas: d.replicas}
	sorted := append([]int(nil), counts...)
	sort.Ints(sorted)
	if len(sorted) > 0 {
		h.MinCopies, h.MedianCopies = sorted[0], sorted[len(sorted)/2]
	}
	for _, c := range counts {
		if c == 0 {
			h.Missing++
		}
		if c < d.replicas {
			h.Short++
		}
	}
	h.Judge()
	return h, nil
}

// Repair gives each block of a file on this node's list at least replicas
// holders among the other nodes closest to it: a block missing here is
// fetched first (a file at risk may have lost its holders, not its other
// copies). It answers the file's health afterwards.
func (d *daemonNode) Repair(ctx context.Context, rc recipe.Recipe) (apiv1.HealthInfo, error) {
	f, err := d.st.File(ctx, rc.Key())
	if err != nil {
		return apiv1.HealthInfo{}, fmt.Errorf("%s is not on this node's list (get it first): %w", rc.Name, err)
	}
	fetch := d.fetcher(ctx, rc)
	counts := d.node.Copies(ctx, f.Blocks, d.replicas+2)
	for i, id := range f.Blocks {
		if counts[i] >= d.replicas {
			continue
		}
		data, err := fetch.Get(ctx, id)
		if err != nil {
			continue // nowhere: health says lost
		}
		b, err := blocks.NewBlock(data)
		if err != nil || b.ID() != id {
			continue
		}
		_ = d.node.HandOff(ctx, b, d.replicas)
	}
	return d.Health(ctx, rc)
}

// recordingGetter notes every block ID a rebuild asks for: the file's
// blocks, descriptor included.
type recordingGetter struct {
	g    *mixer.CachedGetter
	mu   sync.Mutex
	seen map[blocks.ID]bool
	list []blocks.ID
}

func (r *recordingGetter) note(id blocks.ID) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.seen[id] {
		r.seen[id] = true
		r.list = append(r.list, id)
	}
}

func (r *recordingGetter) Get(ctx context.Context, id blocks.ID) ([]byte, error) {
	r.note(id)
	return r.g.Get(ctx, id)
}

// View implements mixer.Viewer.
func (r *recordingGetter) View(ctx context.Context, id blocks.ID) ([]byte, error) {
	r.note(id)
	return r.g.View(ctx, id)
}

func (r *recordingGetter) ids() []blocks.ID {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]blocks.ID(nil), r.list...)
}

// progressFunc adapts a func to mixer.Progress.
type progressFunc func(n int64)

// Add implements mixer.Progress; a nil func does nothing.
func (f progressFunc) Add(n int64) {
	if f != nil {
		f(n)
	}
}
