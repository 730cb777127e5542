package memtrim

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// DropCode asks the kernel to take the pages of this program's own file
// (its code and read-only data) out of the process's memory now
// (MADV_PAGEOUT): they are clean, so nothing is written, and the ones
// still in use come back at their next use. A Go binary is tens of MiB
// and the kernel maps a fault's neighbours too, so after start-up most of
// it stays resident although little of it runs again: on a small board
// that is most of an idle daemon's memory. It returns the bytes of the
// mappings it asked about; a kernel without MADV_PAGEOUT (before Linux
// 5.4) makes it an error and changes nothing.
func DropCode() (int64, error) {
	exe, err := os.Executable()
	if err != nil {
		return 0, fmt.Errorf("drop code pages: %w", err)
	}
	f, err := os.Open("/proc/self/maps")
	if err != nil {
		return 0, fmt.Errorf("drop code pages: %w", err)
	}
	defer f.Close()
	var total int64
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		start, end, ok := readOnlyMappingOf(sc.Text(), exe)
		if !ok {
			continue
		}
		if _, _, e := unix.Syscall(unix.SYS_MADVISE, start, end-start, unix.MADV_PAGEOUT); e != 0 {
			return total, fmt.Errorf("drop code pages: madvise: %w", e)
		}
		total += int64(end - start)
	}
	if err := sc.Err(); err != nil {
		return total, fmt.Errorf("drop code pages: %w", err)
	}
	return total, nil
}

// readOnlyMappingOf parses one line of /proc/self/maps ("start-end perms
// offset dev inode path") and reports the range when it maps path without
// write permission.
func readOnlyMappingOf(line, path string) (start, end uintptr, ok bool) {
	f := strings.Fields(line)
	if len(f) < 6 || strings.Join(f[5:], " ") != path || strings.Contains(f[1], "w") {
		return 0, 0, false
	}
	lo, hi, found := strings.Cut(f[0], "-")
	if !found {
		return 0, 0, false
	}
	a, err1 := strconv.ParseUint(lo, 16, 64)
	b, err2 := strconv.ParseUint(hi, 16, 64)
	if err1 != nil || err2 != nil || b <= a {
		return 0, 0, false
	}
	return uintptr(a), uintptr(b), true
}
