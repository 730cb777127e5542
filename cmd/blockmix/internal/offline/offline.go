// Package offline does the command line's work on a repo no daemon runs
// on: it opens the store for the one operation and closes it again.
package offline

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/blockmix/blockmix/blocks"
	"github.com/blockmix/blockmix/cmd/blockmix/internal/node"
	"github.com/blockmix/blockmix/cmd/blockmix/internal/putlog"
	"github.com/blockmix/blockmix/cmd/blockmix/internal/repo"
	"github.com/blockmix/blockmix/mixer"
	"github.com/blockmix/blockmix/recipe"
	"github.com/blockmix/blockmix/webui/apiv1"
)

// Repo is a repo no daemon runs on.
type Repo struct {
	R repo.Repo
	// Progress, if set, makes what counts the bytes of long work (verify)
	// and the func that ends it.
	Progress func(total int64, what string) (mixer.Progress, func())
}

// with opens the store (only an existing repo), runs fn and closes it.
func (o Repo) with(fn func(st *blocks.Disk) error) error {
	st, err := o.R.OpenStore(false)
	if err != nil {
		return err
	}
	return run(st, fn)
}

// read is with on the store opened read-only: what only reads works on a
// full or read-only disk.
func (o Repo) read(fn func(st *blocks.Disk) error) error {
	st, err := o.R.OpenReader()
	if err != nil {
		return err
	}
	return run(st, fn)
}

// run runs fn on st and closes st.
func run(st *blocks.Disk, fn func(st *blocks.Disk) error) error {
	err := fn(st)
	if cerr := st.Close(); err == nil {
		err = cerr
	}
	return err
}

// ID is the node's peer ID, read from the repo (no addresses: no daemon
// listens). A repo whose daemon never ran has none yet.
func (o Repo) ID(context.Context) (apiv1.IDInfo, error) {
	if !o.R.HasIdentity() {
		return apiv1.IDInfo{}, fmt.Errorf("no identity yet in %s: a node gets one when its daemon first starts", o.R.Dir)
	}
	key, err := o.R.ReadIdentity()
	if errors.Is(err, repo.ErrDamaged) {
		return apiv1.IDInfo{}, fmt.Errorf("%w: the daemon sets it aside and makes a new key (a new peer ID) when it next starts", err)
	}
	if err != nil {
		return apiv1.IDInfo{}, err
	}
	id, err := peer.IDFromPrivateKey(key)
	if err != nil {
		return apiv1.IDInfo{}, fmt.Errorf("identity: %w", err)
	}
	return apiv1.IDInfo{ID: id.String()}, nil
}

// Status sums up the repo: its store, its ID when a daemon made one
// before (status does not make one), and the verdict.
func (o Repo) Status(ctx context.Context) (apiv1.StatusInfo, error) {
	s := apiv1.StatusInfo{Repo: o.R.Dir}
	err := o.read(func(st *blocks.Disk) error {
		stats, err := st.Stats(ctx)
		s.Store = apiv1.NewStoreInfo(stats)
		return err
	})
	if err != nil {
		return apiv1.StatusInfo{}, err
	}
	if o.R.HasIdentity() {
		if key, err := o.R.ReadIdentity(); err == nil {
			if id, err := peer.IDFromPrivateKey(key); err == nil {
				s.ID = id.String()
			}
		}
	}
	s.Judge()
	return s, nil
}

// Files lists the files recorded in the repo, oldest first.
func (o Repo) Files(ctx context.Context) (fs []blocks.FileRecord, err error) {
	err = o.read(func(st *blocks.Disk) error {
		if fs, err = st.Files(ctx); err != nil {
			return fmt.Errorf("list files: %w", err)
		}
		return nil
	})
	return fs, err
}

// Blocks calls fn with each block, in ID order.
func (o Repo) Blocks(ctx context.Context, fn func(apiv1.BlockInfo) error) error {
	return o.read(func(st *blocks.Disk) error {
		return st.Enumerate(ctx, func(id blocks.ID, m blocks.Meta) error {
			return fn(apiv1.BlockInfo{ID: id, Size: m.Size, Refs: m.Refs})
		})
	})
}

// Block returns one block's bytes, checked against its ID.
func (o Repo) Block(ctx context.Context, id blocks.ID) (b []byte, err error) {
	err = o.read(func(st *blocks.Disk) error {
		b, err = st.GetVerified(ctx, id)
		return err
	})
	return b, err
}

// Verify re-hashes every block and quarantines the bad ones.
func (o Repo) Verify(ctx context.Context) (v apiv1.VerifyInfo, err error) {
	err = o.with(func(st *blocks.Disk) error {
		var onTotal func(int64) mixer.Progress
		done := func() {}
		if o.Progress != nil {
			onTotal = func(total int64) mixer.Progress {
				var p mixer.Progress
				p, done = o.Progress(total, "verifying")
				return p
			}
		}
		v, err = node.VerifyStore(ctx, st, onTotal)
		done()
		return err
	})
	return v, err
}

// Pin puts rc on the repo's list; every block must be here.
func (o Repo) Pin(ctx context.Context, rc recipe.Recipe) error {
	return o.with(func(st *blocks.Disk) error {
		err := node.Pin(ctx, st, st, rc, nil, nil)
		if errors.Is(err, blocks.ErrNotFound) {
			return fmt.Errorf("%w: without a daemon only a file whose blocks are all here can be pinned", err)
		}
		return err
	})
}

// Unpin takes rc off the repo's list.
func (o Repo) Unpin(ctx context.Context, rc recipe.Recipe) error {
	return o.with(func(st *blocks.Disk) error {
		if err := st.RemoveFile(ctx, rc.Key()); err != nil {
			return fmt.Errorf("%s is not pinned here: %w", rc.Name, err)
		}
		return nil
	})
}

// Put mixes each of paths (opened with open) into the repo's store with
// tuples of t blocks, creating the repo if need be, and syncs the store
// once all are in.
func (o Repo) Put(ctx context.Context, t int, paths []string, open func(path string) (Input, error)) ([]apiv1.PutInfo, error) {
	st, err := o.R.OpenStore(true)
	if err != nil {
		return nil, err
	}
	defer st.Close()
	// What puts killed halfway left goes first; this put is noted so that
	// the next one can do the same for it.
	if _, _, err := putlog.Sweep(ctx, o.R.Path(repo.PutsDir), st, o.R.Logger()); err != nil {
		return nil, err
	}
	note, err := putlog.Begin(o.R.Path(repo.PutsDir), st)
	if err != nil {
		return nil, err
	}
	defer note.End()
	m, err := mixer.New(st, mixer.Options{T: t})
	if err != nil {
		return nil, err
	}
	var outs []apiv1.PutInfo
	for _, path := range paths {
		in, err := open(path)
		if err != nil {
			return nil, err
		}
		bar, done := o.progress(in.Size, "mixing "+recipe.CleanName(in.Name))
		res, err := recipe.PutWith(ctx, m, st, in.R, in.Size, in.Name, in.Type, recipe.PutOptions{Progress: bar, TempDir: o.R.Path(repo.PutsDir)})
		done()
		in.Close()
		if err != nil {
			return nil, err
		}
		outs = append(outs, apiv1.PutInfo{
			Recipe: res.Recipe.String(), URL: res.Recipe.URL(""), Name: res.Recipe.Name, Size: res.Recipe.Size,
			Type: res.Recipe.Type, NewBytes: res.NewBytes, NewBlocks: res.NewBlocks, Blocks: res.NBlock,
		})
	}
	if err := st.Sync(); err != nil {
		return nil, fmt.Errorf("sync store: %w", err)
	}
	return outs, nil
}

// Get rebuilds rc into w, checking the whole-file hash when it is written
// from the start, and returns that hash. Its errors say what to do.
func (o Repo) Get(ctx context.Context, rc recipe.Recipe, w io.Writer, what string) (sum [32]byte, err error) {
	err = o.read(func(st *blocks.Disk) error {
		bar, done := o.progress(rc.Size, what)
		defer done()
		r, err := recipe.Open(ctx, mixer.NewCachedGetter(st, 32<<20), rc, recipe.Options{Progress: bar})
		if err != nil {
			return err
		}
		sum = r.SHA256()
		_, err = r.WriteTo(w)
		return err
	})
	return sum, explain(err)
}

// progress returns o.Progress's counter, or one that counts nothing.
func (o Repo) progress(total int64, what string) (mixer.Progress, func()) {
	if o.Progress == nil {
		return nobar{}, func() {}
	}
	return o.Progress(total, what)
}

type nobar struct{}

func (nobar) Add(int64) {}

// explain adds what to do to the errors a get can meet.
func explain(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, blocks.ErrNotFound):
		return fmt.Errorf("%w (this store does not hold every block of the file: was it put into this repo?)", err)
	case errors.Is(err, recipe.ErrBadDescriptor):
		return fmt.Errorf("%w (the recipe is damaged or was made by another program)", err)
	case errors.Is(err, recipe.ErrHashMismatch):
		return fmt.Errorf("%w (nothing was saved; run 'blockmix verify')", err)
	}
	return err
}
