package keeper

// SetEvictBatch makes each walk of Evict keep n candidates of a kind, and
// SetUsedGeneration makes Touch remember n uses per generation; each
// returns the function that puts the default back.
func SetEvictBatch(n int) (restore func()) {
	old := evictBatch
	evictBatch = n
	return func() { evictBatch = old }
}

func SetUsedGeneration(n int) (restore func()) {
	old := usedGeneration
	usedGeneration = n
	return func() { usedGeneration = old }
}
