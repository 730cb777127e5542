package blocks

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// startWriteback asks the kernel to start writing a range of f to disk now,
// without waiting, so that the disk works while the CPU mixes and the final
// fsync has little left to do. Errors are ignored: fsync reports them.
func startWriteback(sf segFile, off, n int64) {
	if f, ok := sf.(osFile); ok {
		_ = unix.SyncFileRange(int(f.Fd()), off, n, unix.SYNC_FILE_RANGE_WRITE)
	}
}

// writeAt2 writes a then b at off with one pwritev, so that a record's
// header and bytes need no copy into one buffer.
func writeAt2(sf segFile, off int64, a, b []byte) error {
	of, ok := sf.(osFile)
	if !ok {
		return writeAtCopy(sf, off, a, b)
	}
	f := of.File
	iov := [][]byte{a, b}
	total := len(a) + len(b)
	done := 0
	for done < total {
		n, err := unix.Pwritev(int(f.Fd()), iov, off+int64(done))
		if err != nil {
			return &os.PathError{Op: "write", Path: f.Name(), Err: err}
		}
		if n == 0 {
			return fmt.Errorf("write %s: no progress", f.Name())
		}
		done += n
		// Drop what was written from the front of the vector.
		for n > 0 && len(iov) > 0 {
			if n >= len(iov[0]) {
				n -= len(iov[0])
				iov = iov[1:]
			} else {
				iov[0] = iov[0][n:]
				n = 0
			}
		}
	}
	return nil
}

// willNeed asks the kernel to start reading a range of f into the page
// cache now (posix_fadvise WILLNEED), without waiting for it. A hint:
// errors are ignored.
func willNeed(sf segFile, off, n int64) {
	if f, ok := sf.(osFile); ok {
		_ = unix.Fadvise(int(f.Fd()), off, n, unix.FADV_WILLNEED)
	}
}
