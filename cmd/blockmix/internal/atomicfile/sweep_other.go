//go:build !unix

package atomicfile

import "os"

func lock(*os.File) {}

// TryLock reports false where there is no flock: no file can be told to
// belong to no live process.
func TryLock(*os.File) bool { return false }

// sweep does nothing where there is no flock: a partial file in use
// cannot be told from a stale one.
func sweep(string) int { return 0 }
