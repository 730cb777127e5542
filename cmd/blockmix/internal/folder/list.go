package folder

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/blockmix/blockmix/recipe"
	"github.com/blockmix/blockmix/webui/apiv1"
)

// List returns the entries of the folder rc as the API shows them: its
// own entries, or with deep the whole tree's (folders before what they
// hold), each with its path below rc. Only listings are read.
func List(ctx context.Context, list recipe.Lister, rc recipe.Recipe, deep bool) ([]apiv1.FolderEntry, error) {
	out := []apiv1.FolderEntry{}
	err := recipe.WalkFolder(ctx, list, rc, func(p string, e recipe.Entry) error {
		out = append(out, apiv1.NewFolderEntry(p, e))
		if e.Dir && !deep {
			return fs.SkipDir
		}
		return nil
	})
	return out, err
}

// ListAt is List of what path p below rc names ("" for rc itself): a
// folder's entries with their paths below rc, or a file's one entry.
func ListAt(ctx context.Context, list recipe.Lister, rc recipe.Recipe, p string, deep bool) ([]apiv1.FolderEntry, error) {
	if p == "" {
		return List(ctx, list, rc, deep)
	}
	ent, err := recipe.FindInFolder(ctx, list, rc, p)
	if err != nil {
		return nil, err
	}
	if !ent.Dir {
		return []apiv1.FolderEntry{apiv1.NewFolderEntry(p, ent)}, nil
	}
	es, err := List(ctx, list, ent.Recipe, deep)
	for i := range es {
		es[i].Path = p + "/" + es[i].Path
	}
	return es, err
}

// HasFolders tells whether put's arguments are folders ("-" is standard
// input, a file). Folders and files do not mix in one put: that, and an
// argument that cannot be read, are errors.
func HasFolders(args []string) (bool, error) {
	dirs, files := false, false
	for _, a := range args {
		if a == "-" {
			files = true
			continue
		}
		fi, err := os.Stat(a)
		if err != nil {
			return false, fmt.Errorf("cannot read %s: %w", a, err)
		}
		if fi.IsDir() {
			dirs = true
		} else {
			files = true
		}
	}
	if dirs && files {
		return false, errors.New("put folders and files in separate commands")
	}
	return dirs, nil
}

// Entries turns a FolderList's own entries (not deep) back into the
// recipe package's, checking them as a listing is checked: a daemon's
// answer is held to the same rules as a listing read from blocks.
func Entries(l apiv1.FolderList) ([]recipe.Entry, error) {
	es := make([]recipe.Entry, 0, len(l.Entries))
	for _, x := range l.Entries {
		rc, err := recipe.Parse(x.Recipe)
		if err != nil {
			return nil, err
		}
		rc.Name = x.Name
		es = append(es, recipe.Entry{Name: x.Name, Dir: x.Dir, Mode: fs.FileMode(x.Mode), ModTime: x.ModTime, Recipe: rc})
	}
	// Encode and decode: the same checks (names, order, modes) as a listing.
	b, err := recipe.EncodeFolder(es)
	if err != nil {
		return nil, err
	}
	return recipe.DecodeFolder(b)
}
