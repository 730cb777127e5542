package main

import (
	"fmt"
	"strconv"
	"strings"
)

// sizeUnits are the units parseSize takes: decimal (KB, MB, GB, TB) and
// binary (KiB, MiB, GiB, TiB), case-insensitive; B or none means bytes.
var sizeUnits = []struct {
	name string
	mult int64
}{
	{"kib", 1 << 10}, {"mib", 1 << 20}, {"gib", 1 << 30}, {"tib", 1 << 40},
	{"kb", 1e3}, {"mb", 1e6}, {"gb", 1e9}, {"tb", 1e12},
	{"k", 1 << 10}, {"m", 1 << 20}, {"g", 1 << 30}, {"t", 1 << 40},
	{"b", 1},
}

// parseSize reads a size such as "50GiB", "1.5 TB" or "4096".
func parseSize(s string) (int64, error) {
	t := strings.ToLower(strings.TrimSpace(s))
	mult := int64(1)
	for _, u := range sizeUnits {
		if strings.HasSuffix(t, u.name) {
			t, mult = strings.TrimSpace(strings.TrimSuffix(t, u.name)), u.mult
			break
		}
	}
	v, err := strconv.ParseFloat(t, 64)
	if err != nil || v < 0 || v*float64(mult) > 1<<62 {
		return 0, fmt.Errorf("%q is not a size (want a number with an optional unit: 500MB, 50GiB, 2TB)", s)
	}
	return int64(v * float64(mult)), nil
}
