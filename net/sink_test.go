package net

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/blockmix/blockmix/blocks"
)

// slowSyncer is a store whose Sync takes a while (an fsync) and records
// when each began and ended on a shared event clock.
type slowSyncer struct {
	*blocks.Mem
	clock *atomic.Int64
	mu    sync.Mutex
	syncs [][2]int64
}

func (s *slowSyncer) Sync() error {
	begin := s.clock.Add(1)
	time.Sleep(5 * time.Millisecond)
	end := s.clock.Add(1)
	s.mu.Lock()
	s.syncs = append(s.syncs, [2]int64{begin, end})
	s.mu.Unlock()
	return nil
}

// TestFlushesShareSyncs: Flushes from many streams at once share Syncs,
// and each returns only after a Sync that began after it was called has
// ended (that Sync covered every block accepted before the call).
func TestFlushesShareSyncs(t *testing.T) {
	var clock atomic.Int64
	st := &slowSyncer{Mem: blocks.NewMem(), clock: &clock}
	sink := NewStoreSink(st)
	const callers, rounds = 8, 5
	var wg sync.WaitGroup
	var mu sync.Mutex
	var calls [][2]int64
	for range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range rounds {
				called := clock.Add(1)
				if err := sink.Flush(context.Background()); err != nil {
					t.Error(err)
					return
				}
				returned := clock.Add(1)
				mu.Lock()
				calls = append(calls, [2]int64{called, returned})
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	for _, c := range calls {
		covered := false
		for _, s := range st.syncs {
			if s[0] > c[0] && s[1] < c[1] {
				covered = true
				break
			}
		}
		if !covered {
			t.Fatalf("a Flush (called at %d, returned at %d) returned without a Sync begun after its call", c[0], c[1])
		}
	}
	if len(st.syncs) >= callers*rounds {
		t.Fatalf("%d Flushes at once made %d Syncs: none shared", callers*rounds, len(st.syncs))
	}
	t.Logf("%d Flushes, %d Syncs", callers*rounds, len(st.syncs))
}
