//go:build linux

package folder

import (
	"fmt"
	"io/fs"
	"syscall"
)

// fileID is the file's device and inode: a file replaced by another of
// the same size and time is not taken for the old one.
func fileID(fi fs.FileInfo) string {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return fmt.Sprintf("%d.%d.%d", st.Dev, st.Ino, st.Ctim.Nano())
	}
	return ""
}
