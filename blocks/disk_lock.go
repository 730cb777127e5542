package blocks

import (
	"errors"
	"syscall"

	"github.com/syndtr/goleveldb/leveldb/storage"
)

// isLockErr reports whether err is goleveldb failing to take the LOCK file of
// its directory because someone else holds it. On Unix goleveldb uses
// flock(LOCK_EX|LOCK_NB), which fails with EWOULDBLOCK even for a second open
// within one process.
func isLockErr(err error) bool {
	return errors.Is(err, storage.ErrLocked) ||
		errors.Is(err, syscall.EWOULDBLOCK) ||
		errors.Is(err, syscall.EAGAIN) ||
		isOSLockErr(err)
}
