package blocks

// RecordHeaderSize is the size of the header of the records written now.
const RecordHeaderSize = recordHeaderSize

// SetTestHook sets the hook Get, segment reads and Compact call at named
// points ("get-looked-up", "read-locked", "compact-copied",
// "compact-repointed", "compact-removed") and returns a function that
// removes it. Call it only while no Disk is open.
func SetTestHook(f func(point string)) (restore func()) {
	old := testHook
	testHook = f
	return func() { testHook = old }
}

// SetCompactLimits makes Compact flush after flushBytes or flushRecords
// copies and collect at most groupRecords records per walk of the index; it
// returns a function that puts the defaults back.
func SetCompactLimits(flushBytes int64, flushRecords, groupRecords int) (restore func()) {
	ob, or, og := compactFlushBytes, compactFlushRecords, compactGroupRecords
	compactFlushBytes, compactFlushRecords, compactGroupRecords = flushBytes, flushRecords, groupRecords
	return func() { compactFlushBytes, compactFlushRecords, compactGroupRecords = ob, or, og }
}
