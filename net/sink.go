package net

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/blockmix/blockmix/blocks"
)

// Syncer is a store that makes what it holds durable on Sync and takes
// blocks without hashing them again.
type Syncer interface {
	blocks.BlockPutter
	Sync() error
}

// StoreSink takes every verified pushed block into a store, tagged as held
// for the network by its pusher (blocks.PushTag), and makes them durable in
// groups (it is a Flusher). Quotas wrap it.
type StoreSink struct {
	st Syncer
	mu sync.Mutex // one Sync at a time
	// started counts the Syncs begun (each under mu, numbered from 1);
	// synced is the number of the last one that succeeded.
	started atomic.Uint64
	synced  uint64 // under mu
}

// NewStoreSink returns a sink that stores pushed blocks in st.
func NewStoreSink(st Syncer) *StoreSink { return &StoreSink{st: st} }

// Accept implements Sink.
func (s *StoreSink) Accept(ctx context.Context, peer string, b blocks.Block) error {
	if err := s.st.PutBlock(ctx, b, blocks.PushTag(peer, FreshTag())); err != nil {
		return fmt.Errorf("store pushed block: %w", err)
	}
	return nil
}

// Flush implements Flusher. Flushes from several streams at once share
// Syncs (a group commit): a Flush returns without its own Sync once a
// Sync that began after it was called has succeeded, since that Sync
// covered every block accepted before the call. So pushes from several
// streams cost one fsync per group, not one per stream and group.
func (s *StoreSink) Flush(context.Context) error {
	// A Sync numbered above the count now began after this call.
	want := s.started.Load() + 1
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.synced >= want {
		return nil // another stream's Sync covered this one's blocks
	}
	n := s.started.Add(1)
	if err := s.st.Sync(); err != nil {
		return fmt.Errorf("sync pushed blocks: %w", err)
	}
	s.synced = n
	return nil
}
