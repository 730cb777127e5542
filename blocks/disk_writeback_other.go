//go:build !linux

package blocks

// startWriteback is a no-op where sync_file_range does not exist.
func startWriteback(segFile, int64, int64) {}

// writeAt2 writes a then b at off.
func writeAt2(f segFile, off int64, a, b []byte) error { return writeAtCopy(f, off, a, b) }

// willNeed is a no-op where posix_fadvise does not exist.
func willNeed(segFile, int64, int64) {}
