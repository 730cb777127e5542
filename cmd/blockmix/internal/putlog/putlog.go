// Package putlog makes a put that dies halfway (kill -9, a power cut)
// leave nothing that stays: a put notes in the repo where the store stood
// when it began, and holds that note locked while it runs; the next put or
// daemon start finds the notes no live process holds and deletes the
// blocks their puts left: newer than the note, used by no file, and made
// here (blocks from peers carry blocks.ForeignTag and are left alone).
package putlog

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/blockmix/blockmix/blocks"
	"github.com/blockmix/blockmix/cmd/blockmix/internal/atomicfile"
)

// Store is what the journal needs of the block store.
type Store interface {
	blocks.Enumerator
	blocks.Deleter
	LastSeq() uint64
	Sync() error
}

// Entry is one put's note, held while the put runs.
type Entry struct{ f *os.File }

type note struct {
	FromSeq uint64 `json:"from_seq"` // the store's last Seq when the put began
}

// Begin notes, in dir, that a put begins on st, and returns once the note
// is durable (file and directory fsynced): a put that writes blocks after
// Begin returns has a whole note. End it when the put is over, whether it
// worked or not.
func Begin(dir string, st Store) (*Entry, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("put journal: %w", err)
	}
	f, err := os.CreateTemp(dir, "put-*.json")
	if err != nil {
		return nil, fmt.Errorf("put journal: %w", err)
	}
	atomicfile.TryLock(f)
	b, _ := json.Marshal(note{FromSeq: st.LastSeq()})
	if _, err = f.Write(b); err == nil {
		err = f.Sync()
	}
	if err == nil {
		err = atomicfile.SyncDir(dir)
	}
	if err != nil {
		f.Close()
		os.Remove(f.Name())
		return nil, fmt.Errorf("put journal: %w", err)
	}
	return &Entry{f: f}, nil
}

// End removes the note: the put is over (its blocks are the file's, or a
// failed put deleted them itself).
func (e *Entry) End() error {
	err := os.Remove(e.f.Name())
	if cerr := e.f.Close(); err == nil {
		err = cerr
	}
	return err
}

// Sweep deletes what the puts noted in dir that no live process holds
// left in st, and their notes. It returns how many blocks and bytes it
// deleted. Where there is no flock it does nothing.
//
// A torn note (empty, cut short: a crash inside Begin) belongs to a put
// that wrote no block, since Begin returns only once its note is durable:
// it is set aside as NOTE.damaged-TIME with a warning in log (nil:
// slog.Default()), deletes nothing, and stops neither the sweep nor its
// caller.
func Sweep(ctx context.Context, dir string, st Store, log *slog.Logger) (n int, bytes int64, err error) {
	if log == nil {
		log = slog.Default()
	}
	paths, _ := filepath.Glob(filepath.Join(dir, "put-*.json"))
	var from uint64
	var stale []string
	for _, p := range paths {
		f, err := os.Open(p)
		if err != nil {
			continue
		}
		if !atomicfile.TryLock(f) {
			f.Close()
			continue // a put runs
		}
		var nt note
		derr := json.NewDecoder(f).Decode(&nt)
		f.Close()
		if derr != nil {
			// Set aside while no one holds it: a put never reopens its note.
			attrs := []any{slog.String("file", p), slog.Any("err", derr)}
			if aside, serr := atomicfile.SetAside(p); serr != nil {
				attrs = append(attrs, slog.Any("set_aside_err", serr))
			} else {
				attrs = append(attrs, slog.String("set_aside", aside))
			}
			log.Warn("a note of an unfinished put is torn: set aside; its put wrote no block", attrs...)
			continue
		}
		if len(stale) == 0 || nt.FromSeq < from {
			from = nt.FromSeq
		}
		stale = append(stale, p)
	}
	if len(stale) == 0 {
		return 0, 0, nil
	}
	var left []blocks.ID
	var sizes []int
	err = st.Enumerate(ctx, func(id blocks.ID, m blocks.Meta) error {
		if m.Seq > from && m.Refs == 0 && m.Tag&blocks.ForeignTag == 0 {
			left = append(left, id)
			sizes = append(sizes, m.Size)
		}
		return nil
	})
	if err != nil {
		return 0, 0, fmt.Errorf("sweep unfinished puts: %w", err)
	}
	for i, id := range left {
		if err := st.Delete(ctx, id); err != nil && !errors.Is(err, blocks.ErrNotFound) {
			return n, bytes, fmt.Errorf("sweep unfinished puts: %w", err)
		}
		n++
		bytes += int64(sizes[i])
	}
	if err := st.Sync(); err != nil {
		return n, bytes, fmt.Errorf("sweep unfinished puts: %w", err)
	}
	for _, p := range stale {
		_ = os.Remove(p)
	}
	return n, bytes, nil
}
