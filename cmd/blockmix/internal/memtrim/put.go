package memtrim

import (
	"os"
	"runtime/debug"
)

// PutGCPercent and PutMemLimit are the collector's target (GOGC) and the
// runtime's soft memory limit while puts run, offline or in a daemon. A
// put makes garbage as fast as the disk and the network move blocks
// (randomizers read, blocks pushed), little of it holding pointers, so
// collecting at half the live heap instead of all of it costs little
// CPU, and the limit keeps a long put's peak flat; the binary's own pages
// (~28 MiB) come on top of it. The limit must stay well above a put's
// live heap (about 30 MiB for 1 GiB, up to 50 MiB for 4 GiB): one at
// 44 MiB made a 4 GiB put collect 2,206 times (10 % of its CPU), where
// this pair collects 66 times.
const (
	PutGCPercent = 50
	PutMemLimit  = 64 << 20
)

// TightenForPut lowers the collector's target to PutGCPercent and the
// soft memory limit to PutMemLimit, each only where that is lower than
// what is set and the environment (GOGC, GOMEMLIMIT) does not say
// otherwise, and returns what sets them back.
func TightenForPut() (restore func()) {
	const percent, limit = PutGCPercent, PutMemLimit
	var undo []func()
	if os.Getenv("GOGC") == "" {
		if old := debug.SetGCPercent(percent); old <= percent {
			debug.SetGCPercent(old)
		} else {
			undo = append(undo, func() { debug.SetGCPercent(old) })
		}
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		if old := debug.SetMemoryLimit(-1); old > limit {
			debug.SetMemoryLimit(limit)
			undo = append(undo, func() { debug.SetMemoryLimit(old) })
		}
	}
	return func() {
		for _, f := range undo {
			f()
		}
	}
}
