package config

import (
	"fmt"
	"os"
	"runtime/debug"
)

// Profile is a set of resource settings for the daemon.
type Profile struct {
	Name       string
	LowPower   bool  // fewer connections (see net.Config.LowPower)
	Workers    int   // tuples rebuilt at once by a get
	CacheBytes int   // randomizers kept in memory by a get
	Streams    int   // want-lists in flight per peer
	MemLimit   int64 // the Go runtime's soft memory limit; 0: none
	GCPercent  int   // GOGC; 0: the default
	Unseals    int   // passphrases checked at once (64 MiB of Argon2id each)
}

var profiles = map[string]Profile{
	"default": {Name: "default", Workers: 64, CacheBytes: 32 << 20, Streams: 4, MemLimit: 192 << 20, Unseals: 2},
	// lowpower is for a Raspberry Pi in a cupboard: it still serves blocks
	// and is a DHT server, but keeps few connections, few requests in
	// flight, small buffers, and collects garbage early.
	"lowpower": {Name: "lowpower", LowPower: true, Workers: 8, CacheBytes: 4 << 20, Streams: 2, MemLimit: 48 << 20, GCPercent: 50, Unseals: 1},
}

// ProfileNamed returns the profile called name ("default" or "lowpower").
func ProfileNamed(name string) (Profile, error) {
	p, ok := profiles[name]
	if !ok {
		return Profile{}, fmt.Errorf("unknown profile %q (there are default and lowpower)", name)
	}
	return p, nil
}

// Apply sets the runtime's limits, unless GOMEMLIMIT or GOGC say otherwise.
func (p Profile) Apply() {
	if p.MemLimit > 0 && os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(p.MemLimit)
	}
	if p.GCPercent > 0 && os.Getenv("GOGC") == "" {
		debug.SetGCPercent(p.GCPercent)
	}
}
