package offline

import (
	"context"
	"fmt"
	"io"

	"github.com/blockmix/blockmix/blocks"
	"github.com/blockmix/blockmix/cmd/blockmix/internal/folder"
	"github.com/blockmix/blockmix/cmd/blockmix/internal/putlog"
	"github.com/blockmix/blockmix/cmd/blockmix/internal/repo"
	"github.com/blockmix/blockmix/mixer"
	"github.com/blockmix/blockmix/recipe"
	"github.com/blockmix/blockmix/webui/apiv1"
)

// PutFolder puts the tree at dir into the repo's store (see folder.Put)
// with tuples of t blocks, creating the repo if need be, and syncs the
// store once the folder recipe is made.
func (o Repo) PutFolder(ctx context.Context, t int, dir string, opt folder.PutOptions) (apiv1.FolderInfo, error) {
	st, err := o.R.OpenStore(true)
	if err != nil {
		return apiv1.FolderInfo{}, err
	}
	defer st.Close()
	if _, _, err := putlog.Sweep(ctx, o.R.Path(repo.PutsDir), st, o.R.Logger()); err != nil {
		return apiv1.FolderInfo{}, err
	}
	note, err := putlog.Begin(o.R.Path(repo.PutsDir), st)
	if err != nil {
		return apiv1.FolderInfo{}, err
	}
	defer note.End()
	info, err := folder.Put(ctx, dir, &StoreTarget{St: st, T: t, TempDir: o.R.Path(repo.PutsDir)}, opt)
	if err != nil {
		return apiv1.FolderInfo{}, err
	}
	if err := st.Sync(); err != nil {
		return apiv1.FolderInfo{}, fmt.Errorf("sync store: %w", err)
	}
	return info, nil
}

// StoreTarget is a folder.Target on a store opened here. The caller
// syncs the store afterwards. Not safe for concurrent use.
type StoreTarget struct {
	St      *blocks.Disk
	T       int    // tuple size; 0: mixer.DefaultT
	TempDir string // see recipe.PutOptions

	m    *mixer.Mixer
	puts int // with m
}

// mixerPuts is how many files one Mixer mixes: a Mixer's session
// remembers every choice it made, and picking slows as that grows (a
// tree of 10,000 small files took twice as long per file at its end). A
// new Mixer reads the store as it is then.
const mixerPuts = 128

// Has implements folder.Target: the file is recorded in the store.
func (s *StoreTarget) Has(ctx context.Context, rc recipe.Recipe) (bool, error) {
	return folder.Recorded(ctx, s.St, rc)
}

// PutFile implements folder.Target.
func (s *StoreTarget) PutFile(ctx context.Context, f folder.LocalFile) (apiv1.PutInfo, error) {
	return folder.PutLocal(ctx, f, s.put)
}

func (s *StoreTarget) put(ctx context.Context, r io.Reader, size int64, name, typ string) (apiv1.PutInfo, error) {
	if s.m == nil || s.puts >= mixerPuts {
		m, err := mixer.New(s.St, mixer.Options{T: s.T})
		if err != nil {
			return apiv1.PutInfo{}, err
		}
		s.m, s.puts = m, 0
	}
	s.puts++
	res, err := recipe.PutWith(ctx, s.m, s.St, r, size, name, typ, recipe.PutOptions{TempDir: s.TempDir})
	if err != nil {
		s.m = nil // a failed put leaves its Mixer unusable
		return apiv1.PutInfo{}, err
	}
	return apiv1.PutInfo{
		Recipe: res.Recipe.String(), URL: res.Recipe.URL(""), Name: res.Recipe.Name, Size: res.Recipe.Size,
		Type: res.Recipe.Type, NewBytes: res.NewBytes, NewBlocks: res.NewBlocks, Blocks: res.NBlock,
	}, nil
}

// Build implements folder.Target.
func (s *StoreTarget) Build(ctx context.Context, m apiv1.FolderManifest) (apiv1.FolderInfo, error) {
	return folder.Build(ctx, s.St, m, s.put)
}

// StoreSource is a folder.Source on a store opened here.
type StoreSource struct{ G blocks.Getter }

// List implements folder.Source.
func (s StoreSource) List(ctx context.Context, rc recipe.Recipe) ([]recipe.Entry, error) {
	es, err := recipe.ReadFolder(ctx, s.G, rc)
	return es, explain(err)
}

// Fetch implements folder.Source.
func (s StoreSource) Fetch(ctx context.Context, rc recipe.Recipe, w io.Writer) error {
	r, err := recipe.Open(ctx, s.G, rc, recipe.Options{})
	if err == nil {
		_, err = r.WriteTo(w)
	}
	return explain(err)
}

// ListFolder returns the entries of what path p below the folder rc names
// ("" for rc; deep: the whole tree, with their paths; see folder.ListAt),
// reading the listings only, from one opening of the store.
func (o Repo) ListFolder(ctx context.Context, rc recipe.Recipe, p string, deep bool) (out []apiv1.FolderEntry, err error) {
	err = o.read(func(st *blocks.Disk) error {
		out, err = folder.ListAt(ctx, StoreSource{G: mixer.NewCachedGetter(st, 32<<20)}.List, rc, p, deep)
		return err
	})
	return out, err
}

// GetFolder rebuilds the folder rc into dest (see folder.Get).
func (o Repo) GetFolder(ctx context.Context, rc recipe.Recipe, dest string, opt folder.GetOptions) (res folder.GetResult, err error) {
	err = o.read(func(st *blocks.Disk) error {
		res, err = folder.Get(ctx, StoreSource{G: mixer.NewCachedGetter(st, 32<<20)}, rc, dest, opt)
		return err
	})
	return res, err
}

// Lister returns the folder listings of the repo's store, opened for
// each call.
func (o Repo) Lister() recipe.Lister {
	return func(ctx context.Context, rc recipe.Recipe) (es []recipe.Entry, err error) {
		err = o.read(func(st *blocks.Disk) error {
			es, err = StoreSource{G: st}.List(ctx, rc)
			return err
		})
		return es, err
	}
}
