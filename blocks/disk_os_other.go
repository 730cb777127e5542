//go:build !windows

package blocks

import "os"

func isOSLockErr(error) bool { return false }

// syncDir makes the entries of dir (a new segment file) durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}
