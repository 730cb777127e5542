package blocks

import (
	"errors"
	"syscall"
)

// errSharingViolation is ERROR_SHARING_VIOLATION: goleveldb opens its LOCK
// file without sharing, so a second opener gets this.
const errSharingViolation = syscall.Errno(32)

func isOSLockErr(err error) bool { return errors.Is(err, errSharingViolation) }

// syncDir does nothing: os.File cannot fsync a directory on Windows.
func syncDir(string) error { return nil }
