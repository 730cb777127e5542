package base

import (
	"context"
	"errors"

	"github.com/blockmix/blockmix/blocks"
	"github.com/blockmix/blockmix/cmd/blockmix/internal/client"
	"github.com/blockmix/blockmix/cmd/blockmix/internal/offline"
	"github.com/blockmix/blockmix/mixer"
	"github.com/blockmix/blockmix/recipe"
	"github.com/blockmix/blockmix/webui/apiv1"
)

// ErrNoDaemon is the error of a command that needs a running daemon.
var ErrNoDaemon = errors.New("no daemon runs on this repo (start one with 'blockmix daemon')")

// Backend is where a command's work happens: the daemon that runs on the
// repo, or the repo itself when none does. Both answer the same.
type Backend interface {
	ID(ctx context.Context) (apiv1.IDInfo, error)
	Status(ctx context.Context) (apiv1.StatusInfo, error)
	Files(ctx context.Context) ([]blocks.FileRecord, error)
	Blocks(ctx context.Context, fn func(apiv1.BlockInfo) error) error
	Block(ctx context.Context, id blocks.ID) ([]byte, error)
	Verify(ctx context.Context) (apiv1.VerifyInfo, error)
	Pin(ctx context.Context, rc recipe.Recipe) error
	Unpin(ctx context.Context, rc recipe.Recipe) error
}

// Daemon returns a client of the daemon that runs on the repo, or nil.
func (e *Env) Daemon(ctx context.Context) *client.Client { return client.New(ctx, e.APIURL()) }

// NeedDaemon returns the daemon running on the repo, or ErrNoDaemon.
func (e *Env) NeedDaemon(ctx context.Context) (*client.Client, error) {
	if dc := e.Daemon(ctx); dc != nil {
		return dc, nil
	}
	return nil, ErrNoDaemon
}

// Backend returns the running daemon, else the repo offline.
func (e *Env) Backend(ctx context.Context) Backend {
	if dc := e.Daemon(ctx); dc != nil {
		return dc
	}
	return e.Offline()
}

// Offline is the repo without a daemon, drawing progress bars on the
// terminal.
func (e *Env) Offline() offline.Repo {
	return offline.Repo{R: e.Repo(), Progress: func(total int64, what string) (mixer.Progress, func()) {
		p := e.NewProgress(total, what) // nil draws nothing
		return p, p.Finish
	}}
}
