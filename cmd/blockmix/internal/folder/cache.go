package folder

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/blockmix/blockmix/cmd/blockmix/internal/atomicfile"
	"github.com/blockmix/blockmix/recipe"
)

// Cache remembers the recipe of each file a folder put mixed, by its
// absolute path, size, modification time and inode (with its change
// time), so that the next put of the tree reuses the recipes of the files
// that did not change instead of reading them again. A recipe found here
// is only a hint: Put uses it only when the Target still holds the file.
// Safe for concurrent use.
//
// The cache lives in one file (see CacheFile), written atomically; a torn
// or foreign file is an empty cache. Entries not used for MaxAge go at
// the next Save, and at most MaxCacheEntries stay.
type Cache struct {
	path string
	mu   sync.Mutex
	m    map[string]cacheEntry
	used map[string]bool
}

type cacheEntry struct {
	Recipe string `json:"r"`
	Used   int64  `json:"u"` // Unix seconds
}

// CacheFile is the cache's file name in the repo.
const CacheFile = "folder-cache.json"

// Bounds of the cache.
const (
	MaxAge          = 90 * 24 * time.Hour
	MaxCacheEntries = 2_000_000
)

type cacheFile struct {
	Version int                   `json:"version"`
	Files   map[string]cacheEntry `json:"files"`
}

// OpenCache reads the cache at path ("" gives a cache that remembers
// nothing past the process).
func OpenCache(path string) *Cache {
	c := &Cache{path: path, m: map[string]cacheEntry{}, used: map[string]bool{}}
	if path == "" {
		return c
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return c
	}
	var f cacheFile
	if json.Unmarshal(b, &f) == nil && f.Version == 1 && f.Files != nil {
		c.m = f.Files
	}
	return c
}

// key is what says a file did not change.
func key(f LocalFile) string {
	return f.Abs + "\x00" + strconv.FormatInt(f.Size, 10) + "\x00" + strconv.FormatInt(f.ModTime.UnixNano(), 10) + "\x00" + f.ID
}

// Get returns the recipe remembered for f, if any.
func (c *Cache) Get(f LocalFile) (recipe.Recipe, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[key(f)]
	if !ok {
		return recipe.Recipe{}, false
	}
	rc, err := recipe.Parse(e.Recipe)
	if err != nil || rc.IsFolder() {
		return recipe.Recipe{}, false
	}
	return rc, true
}

// Set remembers rc for f.
func (c *Cache) Set(f LocalFile, rc recipe.Recipe) {
	c.mu.Lock()
	defer c.mu.Unlock()
	k := key(f)
	c.m[k] = cacheEntry{Recipe: rc.String(), Used: time.Now().Unix()}
	c.used[k] = true
}

// Touch marks f's entry as used now.
func (c *Cache) Touch(f LocalFile) {
	c.mu.Lock()
	defer c.mu.Unlock()
	k := key(f)
	if e, ok := c.m[k]; ok {
		e.Used = time.Now().Unix()
		c.m[k] = e
		c.used[k] = true
	}
}

// Save writes the cache, atomically, dropping what is old.
func (c *Cache) Save() error {
	if c.path == "" {
		return nil
	}
	c.mu.Lock()
	old := time.Now().Add(-MaxAge).Unix()
	for k, e := range c.m {
		if e.Used < old || (len(c.m) > MaxCacheEntries && !c.used[k]) {
			delete(c.m, k)
		}
	}
	b, err := json.Marshal(cacheFile{Version: 1, Files: c.m})
	c.mu.Unlock()
	if err != nil {
		return err
	}
	if err := atomicfile.WriteFile(c.path, b, 0o600); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("save the folder cache: %w", err)
	}
	return nil
}
