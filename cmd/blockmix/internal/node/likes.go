package node

import (
	"context"
	"slices"
	"sync"

	"github.com/blockmix/blockmix/blocks"
	"github.com/blockmix/blockmix/recipe"
)

// likeKey is what makes a file on the list a candidate for the same file
// shared before (sharedBefore compares the bytes' hash after).
type likeKey struct {
	name, typ string
	size      int64
}

// likes indexes the files on the store's list by likeKey, so that a put
// finds the same file shared before without reading every record: a
// folder of 10,000 files is 10,000 puts, and reading the list for each
// made them quadratic. It is only a hint. Puts tell it what they record
// and forget; the store's file count tells when files came or went any
// other way (a fetch, a pin, a removal), and then it is built again. Safe
// for concurrent use.
type likes struct {
	mu    sync.Mutex
	built bool
	files int // the store's file count it stands for
	keys  map[likeKey][]string
}

func likeOf(rc recipe.Recipe) likeKey { return likeKey{rc.Name, rc.Type, rc.Size} }

// recorded notes that a put recorded rc.
func (l *likes) recorded(rc recipe.Recipe) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.built {
		return
	}
	k := likeOf(rc)
	if !slices.Contains(l.keys[k], rc.Key()) {
		l.keys[k] = append(l.keys[k], rc.Key())
		l.files++
	}
}

// forgotten notes that a put took rc off the list again.
func (l *likes) forgotten(rc recipe.Recipe) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.built {
		return
	}
	k := likeOf(rc)
	if i := slices.Index(l.keys[k], rc.Key()); i >= 0 {
		l.keys[k] = slices.Delete(l.keys[k], i, i+1)
		l.files--
	}
}

// filesLike returns the records on the list with rc's name, type and
// size (rc's own among them), read one by one.
func (n *Node) filesLike(ctx context.Context, rc recipe.Recipe) ([]blocks.FileRecord, error) {
	l := &n.likes
	stats, err := n.st.Stats(ctx)
	if err != nil {
		return nil, err
	}
	l.mu.Lock()
	if !l.built || stats.Files != l.files {
		fs, err := n.st.Files(ctx)
		if err != nil {
			l.mu.Unlock()
			return nil, err
		}
		l.keys = map[likeKey][]string{}
		for _, f := range fs {
			k := likeKey{f.Name, f.Type, f.Size}
			l.keys[k] = append(l.keys[k], f.Key)
		}
		l.built, l.files = true, len(fs)
	}
	keys := slices.Clone(l.keys[likeOf(rc)])
	l.mu.Unlock()
	var out []blocks.FileRecord
	for _, k := range keys {
		if f, err := n.st.Record(ctx, k); err == nil {
			out = append(out, f)
		}
	}
	return out, nil
}
