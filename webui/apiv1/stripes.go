package apiv1

import (
	"fmt"
	"sort"
)

// judgeStripes sets State and Verdict of an erasure-coded file's health:
// lost when a stripe has fewer than K blocks left or a block outside the
// stripes has no copy; at risk when a stripe misses blocks, can lose
// fewer than M more nodes, or a block outside them has fewer copies than
// wanted; healthy otherwise.
func (h *HealthInfo) judgeStripes() {
	var k, m int
	_, _ = fmt.Sscanf(h.Parity, "rs:%d+%d", &k, &m)
	switch {
	case h.StripesCanLose < 0 || h.Missing > 0:
		h.State = HealthLost
		h.Verdict = fmt.Sprintf("lost: some of the %s (%s) has fewer than %d blocks on other nodes, or the descriptor's root or manifest has no copy; the file cannot be rebuilt now",
			plural(h.Stripes, "stripe"), h.Parity, k)
	case h.StripesShort > 0 || h.StripesCanLose < m || h.MinCopies < h.Replicas:
		h.State = HealthAtRisk
		h.Verdict = fmt.Sprintf("at risk: %d of %s (%s) miss blocks; every stripe can lose %s more (%d wanted); the root and manifest blocks have at least %s (%d wanted); repair rebuilds what is missing",
			h.StripesShort, plural(h.Stripes, "stripe"), h.Parity, plural(h.StripesCanLose, "node"), m, copies(h.MinCopies), h.Replicas)
	default:
		h.State = HealthHealthy
		h.Verdict = fmt.Sprintf("healthy: every stripe can lose %s more (%s, %s), and the root and manifest blocks have at least %s; the file is safe",
			plural(h.StripesCanLose, "node"), h.Parity, plural(h.Stripes, "stripe"), copies(h.MinCopies))
	}
}

// Count sets MinCopies, MedianCopies, Missing and Short from the copies
// of each block, against Replicas.
func (h *HealthInfo) Count(counts []int) {
	sorted := append([]int(nil), counts...)
	sort.Ints(sorted)
	if len(sorted) > 0 {
		h.MinCopies, h.MedianCopies = sorted[0], sorted[len(sorted)/2]
	}
	for _, c := range counts {
		if c == 0 {
			h.Missing++
		}
		if c < h.Replicas {
			h.Short++
		}
	}
}
