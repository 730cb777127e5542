package main

import (
	"fmt"
	"os"
	"runtime/debug"
)

// profile is a set of resource settings for the daemon.
type profile struct {
	name       string
	lowPower   bool  // fewer connections (see net.Config.LowPower)
	workers    int   // tuples rebuilt at once by a get
	cacheBytes int   // randomizers kept in memory by a get
	streams    int   // want-lists in flight per peer
	memLimit   int64 // the Go runtime's soft memory limit; 0: none
	gcPercent  int   // GOGC; 0: the default
}

var profiles = map[string]profile{
	"default": {name: "default", workers: 64, cacheBytes: 32 << 20, streams: 4},
	// lowpower is for a Raspberry Pi in a cupboard: it still serves blocks
	// and is a DHT server, but keeps few connections, few requests in
	// flight, small buffers, and collects garbage early.
	"lowpower": {name: "lowpower", lowPower: true, workers: 8, cacheBytes: 4 << 20, streams: 2, memLimit: 48 << 20, gcPercent: 50},
}

func profileNamed(name string) (profile, error) {
	p, ok := profiles[name]
	if !ok {
		return profile{}, fmt.Errorf("unknown profile %q (there are default and lowpower)", name)
	}
	return p, nil
}

// apply sets the runtime's limits, unless GOMEMLIMIT or GOGC say otherwise.
func (p profile) apply() {
	if p.memLimit > 0 && os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(p.memLimit)
	}
	if p.gcPercent > 0 && os.Getenv("GOGC") == "" {
		debug.SetGCPercent(p.gcPercent)
	}
}
