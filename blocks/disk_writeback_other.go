//go:build !linux

package blocks

import "os"

// startWriteback is a no-op where sync_file_range does not exist.
func startWriteback(*os.File, int64, int64) {}

// writeAt2 writes a then b at off.
func writeAt2(f *os.File, off int64, a, b []byte) error {
	buf := make([]byte, 0, len(a)+len(b))
	buf = append(append(buf, a...), b...)
	_, err := f.WriteAt(buf, off)
	return err
}
