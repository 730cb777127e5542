package recipe

import (
	"bufio"
	"fmt"
	"io"
	"os"

	"github.com/blockmix/blockmix/blocks"
	"github.com/blockmix/blockmix/mixer"
)

// spillBytes is how many bytes of tuples a tupleLog holds in memory before
// it writes them to its file (when it has a directory). A variable for
// the tests.
var spillBytes = 256 << 10

// tupleLog is a list of tuples of t IDs each, appended in order and read
// back in order, held flat (32·t bytes a tuple). With a directory, all but
// the last spillBytes of it live in a temporary file there (unlinked at
// once where the system allows: nothing stays after a crash), so that the
// memory a put needs for its tuples does not grow with the file. A
// tupleLog is used by one goroutine at a time; close removes its file.
type tupleLog struct {
	t        int
	dir      string // "" keeps everything in memory
	mem      []byte // the tuples after those in f
	f        *os.File
	onDisk   int64 // bytes in f
	unlinked bool  // f has no name any more
	n        int64 // tuples in all
}

func newTupleLog(t int, dir string) *tupleLog { return &tupleLog{t: t, dir: dir} }

// add appends tu, which must have t IDs.
func (l *tupleLog) add(tu mixer.Tuple) error {
	if len(tu) != l.t {
		return fmt.Errorf("tuple of %d IDs in a list of %d", len(tu), l.t)
	}
	for _, id := range tu {
		l.mem = append(l.mem, id[:]...)
	}
	l.n++
	if l.dir != "" && len(l.mem) >= spillBytes {
		return l.spill()
	}
	return nil
}

func (l *tupleLog) spill() error {
	if l.f == nil {
		f, err := os.CreateTemp(l.dir, "tuples-*.tmp")
		if err != nil {
			return fmt.Errorf("spill tuples: %w", err)
		}
		l.f = f
		// Unlinked at once where the system allows it (not Windows): the
		// file goes with its last descriptor, even after a crash.
		if os.Remove(f.Name()) == nil {
			l.unlinked = true
		}
	}
	if _, err := l.f.WriteAt(l.mem, l.onDisk); err != nil {
		return fmt.Errorf("spill tuples: %w", err)
	}
	l.onDisk += int64(len(l.mem))
	l.mem = l.mem[:0]
	return nil
}

// each calls fn with every tuple in order; fn must not keep the tuple (its
// IDs are reused) and must not add to l. An error from fn stops the walk
// and is returned.
func (l *tupleLog) each(fn func(mixer.Tuple) error) error {
	tu := make(mixer.Tuple, l.t)
	rec := make([]byte, 32*l.t)
	take := func(b []byte) error {
		for i := range tu {
			copy(tu[i][:], b[32*i:])
		}
		return fn(tu)
	}
	if l.f != nil {
		r := bufio.NewReaderSize(io.NewSectionReader(l.f, 0, l.onDisk), 64<<10)
		for off := int64(0); off < l.onDisk; off += int64(len(rec)) {
			if _, err := io.ReadFull(r, rec); err != nil {
				return fmt.Errorf("read spilled tuples: %w", err)
			}
			if err := take(rec); err != nil {
				return err
			}
		}
	}
	for off := 0; off < len(l.mem); off += len(rec) {
		if err := take(l.mem[off : off+len(rec)]); err != nil {
			return err
		}
	}
	return nil
}

// ids calls fn with every ID of every tuple, in order.
func (l *tupleLog) ids(fn func(blocks.ID)) error {
	return l.each(func(tu mixer.Tuple) error {
		for _, id := range tu {
			fn(id)
		}
		return nil
	})
}

// close removes the file, if any; l is empty afterwards.
func (l *tupleLog) close() {
	if l.f != nil {
		l.f.Close()
		if !l.unlinked {
			os.Remove(l.f.Name())
		}
		l.f = nil
	}
	l.mem, l.onDisk, l.n = nil, 0, 0
}
