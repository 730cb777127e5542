package atomicfile

import (
	"os"

	"golang.org/x/sys/unix"
)

// writebackChunk: how much of an output file gathers before its writeback
// is started, so that the final fsync has little left to do.
const writebackChunk = 8 << 20

// writebackFile writes to f and starts the kernel's writeback every chunk.
type writebackFile struct {
	f          *os.File
	off, start int64
}

func (w *writebackFile) Write(p []byte) (int, error) {
	n, err := w.f.Write(p)
	w.off += int64(n)
	if w.off-w.start >= writebackChunk {
		_ = unix.SyncFileRange(int(w.f.Fd()), w.start, w.off-w.start, unix.SYNC_FILE_RANGE_WRITE)
		w.start = w.off
	}
	return n, err
}
