package mixer

import (
	"container/list"
	"sync"

	"github.com/blockmix/blockmix/blocks"
)

// cache keeps verified block bytes, least recently used out first, within a
// byte budget. Callers must not modify returned slices. Safe for concurrent
// use.
type cache struct {
	mu    sync.Mutex
	max   int
	size  int
	ll    *list.List
	items map[blocks.ID]*list.Element
}

type cacheEntry struct {
	id   blocks.ID
	data []byte
}

func newCache(max int) *cache {
	return &cache{max: max, ll: list.New(), items: map[blocks.ID]*list.Element{}}
}

func (c *cache) get(id blocks.ID) ([]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.items[id]
	if !ok {
		return nil, false
	}
	c.ll.MoveToFront(e)
	return e.Value.(*cacheEntry).data, true
}

func (c *cache) add(id blocks.ID, data []byte) {
	if len(data) > c.max {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.items[id]; ok {
		c.ll.MoveToFront(e)
		return
	}
	c.items[id] = c.ll.PushFront(&cacheEntry{id, data})
	c.size += len(data)
	for c.size > c.max {
		e := c.ll.Back()
		ent := e.Value.(*cacheEntry)
		c.ll.Remove(e)
		delete(c.items, ent.id)
		c.size -= len(ent.data)
	}
}
