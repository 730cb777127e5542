// Package size reads and spells byte sizes: "50GiB", "1.5 TB", "3.0 MiB".
package size

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/blockmix/blockmix/webui/apiv1"
)

// sizeUnits are the units Parse takes: decimal (KB, MB, GB, TB) and
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

// Parse reads a size such as "50GiB", "1.5 TB" or "4096".
func Parse(s string) (int64, error) {
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

// Human spells a byte count with a binary unit ("3.0 MiB").
func Human(n int64) string { return apiv1.HumanBytes(n) }
