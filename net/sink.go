package net

import (
	"context"
	"fmt"
	"sync"

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

// Flush implements Flusher.
func (s *StoreSink) Flush(context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.st.Sync(); err != nil {
		return fmt.Errorf("sync pushed blocks: %w", err)
	}
	return nil
}
