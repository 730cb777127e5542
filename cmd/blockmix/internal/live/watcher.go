package live

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/blockmix/blockmix/cmd/blockmix/internal/atomicfile"
)

// WatchOptions tune a folder watch. Zero fields take the defaults.
type WatchOptions struct {
	// Quiet is how long the folder must stay still before a change is
	// reported; 700 ms.
	Quiet time.Duration
	// MaxDelay bounds how long a change waits to be reported while the
	// folder keeps changing; 5 s.
	MaxDelay time.Duration
	// MaxPaths bounds the changed paths remembered between reports; past
	// it the report says "everything" (nil paths); 4096.
	MaxPaths int
}

func (o WatchOptions) withDefaults() WatchOptions {
	if o.Quiet <= 0 {
		o.Quiet = 700 * time.Millisecond
	}
	if o.MaxDelay <= 0 {
		o.MaxDelay = 5 * time.Second
	}
	if o.MaxPaths <= 0 {
		o.MaxPaths = 4096
	}
	return o
}

// TreeWatch watches a folder tree with inotify through fsnotify. Every
// change made after NewTreeWatch returns is reported by Run: a caller that
// reads the folder after NewTreeWatch misses nothing.
type TreeWatch struct {
	dir string
	o   WatchOptions
	w   *fsnotify.Watcher
}

// NewTreeWatch watches dir and every folder below it; it fails when dir
// itself cannot be watched. Run (or Close) must follow.
func NewTreeWatch(dir string, o WatchOptions) (*TreeWatch, error) {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, err
	}
	if err := addTree(w, dir); err != nil {
		w.Close()
		return nil, err
	}
	return &TreeWatch{dir: dir, o: o.withDefaults(), w: w}, nil
}

// Close stops the watch; Run closes it too.
func (t *TreeWatch) Close() error { return t.w.Close() }

// Run calls changed from its own goroutine with the paths that changed
// (folders made later are watched too) once the tree has been quiet for
// o.Quiet, or o.MaxDelay after the first change at the latest. paths is
// nil when too many changed or events were lost (the kernel's queue
// overflowed): then anything may have changed. Temporary files that
// atomicfile writes are ignored. It returns when ctx ends (nil) or when
// the watch breaks (an error), and closes the watch. changed is never
// called concurrently.
func (t *TreeWatch) Run(ctx context.Context, changed func(paths []string)) error {
	o, w := t.o, t.w
	defer w.Close()
	pending := map[string]bool{}
	all := false
	var quiet, deadline <-chan time.Time
	var quietT *time.Timer
	note := func(p string) {
		if all {
			return
		}
		if len(pending) >= o.MaxPaths {
			all, pending = true, map[string]bool{}
			return
		}
		pending[p] = true
	}
	arm := func() {
		if quietT == nil {
			quietT = time.NewTimer(o.Quiet)
		} else {
			quietT.Reset(o.Quiet)
		}
		quiet = quietT.C
		if deadline == nil {
			deadline = time.After(o.MaxDelay)
		}
	}
	fire := func() {
		var paths []string
		if !all {
			for p := range pending {
				paths = append(paths, p)
			}
		}
		pending, all, quiet, deadline = map[string]bool{}, false, nil, nil
		if quietT != nil {
			quietT.Stop()
		}
		changed(paths)
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-w.Events:
			if !ok {
				return errors.New("the folder watch ended")
			}
			if strings.Contains(filepath.Base(ev.Name), atomicfile.PartialMarker) {
				continue
			}
			if ev.Has(fsnotify.Create) {
				if fi, err := os.Lstat(ev.Name); err == nil && fi.IsDir() {
					// A new folder: watch it, and count what it already
					// holds (files may land before the watch does).
					if err := addTree(w, ev.Name); err != nil {
						all = true
					}
				}
			}
			if ev.Op == fsnotify.Chmod {
				continue
			}
			note(ev.Name)
			arm()
		case err, ok := <-w.Errors:
			if !ok {
				return errors.New("the folder watch ended")
			}
			if errors.Is(err, fsnotify.ErrEventOverflow) {
				all = true
				arm()
			}
		case <-quiet:
			fire()
		case <-deadline:
			fire()
		}
	}
}

// addTree watches dir and the folders below it (not following symbolic
// links).
func addTree(w *fsnotify.Watcher, dir string) error {
	return filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if p == dir {
				return err
			}
			return nil // a folder that went meanwhile
		}
		if d.IsDir() {
			if err := w.Add(p); err != nil && p == dir {
				return err
			}
		}
		return nil
	})
}
