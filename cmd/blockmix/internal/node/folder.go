package node

import (
	"context"
	"io"

	"github.com/blockmix/blockmix/cmd/blockmix/internal/folder"
	"github.com/blockmix/blockmix/recipe"
	"github.com/blockmix/blockmix/webui"
	"github.com/blockmix/blockmix/webui/apiv1"
)

// PutFolder makes one folder recipe of m (see folder.Build): every file
// must be recorded here already (put through Put); each folder listing
// that is not the same as one recorded before is put like a file (mixed,
// synced, placed on the replicas closest nodes).
func (n *Node) PutFolder(ctx context.Context, m apiv1.FolderManifest) (apiv1.FolderInfo, error) {
	info, err := folder.Build(ctx, n.st, m, n.Put)
	if err == nil {
		n.log.Info("put folder", "name", info.Name, "files", info.Files, "folders", info.Folders,
			"reused_folders", info.ReusedFolders, "new_blocks", info.NewBlocks)
	}
	return info, err
}

// ListFolder reads the listing of the folder rc, from this node's store
// and then the network (see recipe.ReadFolder).
func (n *Node) ListFolder(ctx context.Context, rc recipe.Recipe) ([]recipe.Entry, error) {
	f := n.fetcher(ctx, rc)
	f.Keep = n.keepFetched
	return recipe.ReadFolder(ctx, f, rc)
}

// FolderTarget is a folder.Target on this node, for work inside the
// daemon (a folder kept in sync): files go through Put, the listings
// through PutFolder.
func (n *Node) FolderTarget() folder.Target {
	return folder.Funcs{
		HasFunc:   func(ctx context.Context, rc recipe.Recipe) (bool, error) { return folder.Recorded(ctx, n.st, rc) },
		Put:       n.Put,
		BuildFunc: n.PutFolder,
	}
}

// FolderSource is a folder.Source on this node: listings and files from
// its store, then the network.
func (n *Node) FolderSource() folder.Source {
	return folder.SourceFuncs{ListFunc: n.ListFolder, FetchFunc: func(ctx context.Context, rc recipe.Recipe, w io.Writer) error {
		r, err := n.Open(ctx, rc)
		if err != nil {
			return err
		}
		_, err = r.WriteTo(w)
		return err
	}}
}

var _ webui.FolderNode = (*Node)(nil)
