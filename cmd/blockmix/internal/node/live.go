package node

import (
	"context"
	"errors"
	"io"
	"sync"

	record "github.com/libp2p/go-libp2p-record"

	"github.com/blockmix/blockmix/cmd/blockmix/internal/folder"
	"github.com/blockmix/blockmix/cmd/blockmix/internal/live"
	"github.com/blockmix/blockmix/recipe"
)

// LiveFile is the live folders' state file in the repo (mode 0600: it
// holds the watched folders' private keys).
const LiveFile = "live.json"

// liveRecords registers live folders' records with the DHT.
var liveRecords = map[string]record.Validator{live.Namespace: live.Validator{}}

// newLive makes the node's live folders (run by Run, served by the API).
func (n *Node) newLive() (*live.Manager, error) {
	return live.New(n.repo.Path(LiveFile), &liveFolders{n: n}, n.net.DHT, n.log, live.Options{Poll: n.cfg.LivePoll, Repo: n.repo.Dir})
}

// Live returns the node's live folders.
func (n *Node) Live() *live.Manager { return n.live }

// liveFolders gives the live folders the node's folder recipes: a watch
// puts its folder with the repo's folder cache (unchanged files are not
// mixed again); a sync lists a version's files and rebuilds the changed
// ones from the store and the network.
type liveFolders struct {
	n     *Node
	once  sync.Once
	cache *folder.Cache
}

// PutFolder implements live.Folders.
func (f *liveFolders) PutFolder(ctx context.Context, dir string) (live.Put, error) {
	f.once.Do(func() { f.cache = folder.OpenCache(f.n.repo.Path(folder.CacheFile)) })
	info, err := folder.Put(ctx, dir, f.n.FolderTarget(), folder.PutOptions{Cache: f.cache})
	if err != nil {
		return live.Put{}, err
	}
	return live.Put{Recipe: info.Recipe, Files: info.Files, Mixed: info.PutFiles}, nil
}

// Entries implements live.Folders: every file under the folder recipe.
func (f *liveFolders) Entries(ctx context.Context, text string) ([]live.Entry, error) {
	rc, err := recipe.Parse(text)
	if err != nil {
		return nil, err
	}
	if !rc.IsFolder() {
		return nil, errors.New("the live link's version is not a folder recipe")
	}
	var out []live.Entry
	err = recipe.WalkFolder(ctx, f.n.ListFolder, rc, func(path string, e recipe.Entry) error {
		if !e.Dir {
			out = append(out, live.Entry{Path: path, Key: e.Recipe.Key(), Size: e.Size(), Mode: e.Mode, ModTime: e.ModTime, Recipe: e.Recipe.String()})
		}
		return nil
	})
	return out, err
}

// WriteFile implements live.Folders: the file is rebuilt with blocks from
// the store and the network, and its whole-file hash checked.
func (f *liveFolders) WriteFile(ctx context.Context, e live.Entry, w io.Writer) error {
	rc, err := recipe.Parse(e.Recipe)
	if err != nil {
		return err
	}
	return f.n.FolderSource().Fetch(ctx, rc, w)
}
