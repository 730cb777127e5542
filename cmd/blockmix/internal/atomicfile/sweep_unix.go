//go:build unix

package atomicfile

import (
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// lock takes f's advisory lock for as long as f is open: a partial file
// that is locked is being written.
func lock(f *os.File) { _ = TryLock(f) }

// TryLock takes f's exclusive advisory lock (flock) without waiting and
// reports whether it got it. The lock lasts while f is open, and goes
// with the process however it ends: a file still locked belongs to a live
// process.
func TryLock(f *os.File) bool { return unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB) == nil }

// sweep removes the partial files a killed write left in dir: those no
// running write holds the lock of. It returns how many it removed.
func sweep(dir string) int {
	ps, _ := filepath.Glob(filepath.Join(dir, ".*"+PartialMarker+"*"))
	n := 0
	for _, p := range ps {
		f, err := os.Open(p)
		if err != nil {
			continue
		}
		if TryLock(f) && os.Remove(p) == nil {
			n++
		}
		f.Close()
	}
	return n
}
