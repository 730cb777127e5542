package main

import (
	"context"

	"github.com/blockmix/blockmix/blocks"
	"github.com/blockmix/blockmix/cmd/blockmix/internal/client"
	"github.com/blockmix/blockmix/cmd/blockmix/internal/offline"
	"github.com/blockmix/blockmix/mixer"
	"github.com/blockmix/blockmix/recipe"
	"github.com/blockmix/blockmix/webui/apiv1"
)

// backend is where a command's work happens: the daemon that runs on the
// repo, or the repo itself when none does. Both answer the same.
type backend interface {
	ID(ctx context.Context) (apiv1.IDInfo, error)
	Status(ctx context.Context) (apiv1.StatusInfo, error)
	Files(ctx context.Context) ([]blocks.FileRecord, error)
	Blocks(ctx context.Context, fn func(apiv1.BlockInfo) error) error
	Block(ctx context.Context, id blocks.ID) ([]byte, error)
	Verify(ctx context.Context) (apiv1.VerifyInfo, error)
	Pin(ctx context.Context, rc recipe.Recipe) error
	Unpin(ctx context.Context, rc recipe.Recipe) error
}

// daemon returns a client of the daemon that runs on the repo, or nil.
func (e *env) daemon(ctx context.Context) *client.Client { return client.New(ctx, e.apiURL()) }

// backend returns the running daemon, else the repo offline.
func (e *env) backend(ctx context.Context) backend {
	if dc := e.daemon(ctx); dc != nil {
		return dc
	}
	return e.offline()
}

// offline is the repo without a daemon, drawing progress bars on the
// terminal.
func (e *env) offline() offline.Repo {
	return offline.Repo{R: e.repo(), Progress: func(total int64, what string) (mixer.Progress, func()) {
		p := e.newProgress(total, what) // nil draws nothing
		return p, p.Finish
	}}
}
