package node

import (
	"context"
	"errors"
	"fmt"
	"io"

	record "github.com/libp2p/go-libp2p-record"

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
	return live.New(n.repo.Path(LiveFile), liveFolders{n}, n.net.DHT, n.log, live.Options{Poll: n.cfg.LivePoll})
}

// Live returns the node's live folders.
func (n *Node) Live() *live.Manager { return n.live }

// liveFolders gives the live folders the node's folder recipes.
type liveFolders struct{ n *Node }

// errNoFolders: this build has no folder recipes yet.
var errNoFolders = errors.New("folder recipes are not available in this build")

// PutFolder implements live.Folders.
func (f liveFolders) PutFolder(ctx context.Context, dir, prev string) (string, error) {
	return "", errNoFolders
}

// Entries implements live.Folders.
func (f liveFolders) Entries(ctx context.Context, folder string) ([]live.Entry, error) {
	return nil, errNoFolders
}

// WriteFile implements live.Folders: the file is rebuilt with blocks from
// the store and the network, and its whole-file hash checked.
func (f liveFolders) WriteFile(ctx context.Context, e live.Entry, w io.Writer) error {
	rc, err := recipe.Parse(e.Recipe)
	if err != nil {
		return err
	}
	r, err := f.n.Open(ctx, rc)
	if err != nil {
		return err
	}
	nw, err := io.Copy(w, r)
	if err == nil && nw != e.Size {
		err = fmt.Errorf("%s: rebuilt %d bytes, the folder says %d", e.Path, nw, e.Size)
	}
	return err
}
