// Package storecmd holds the commands about the repo's store and the
// health of its files: stat, verify, files, block, pin, unpin, gc and
// check.
package storecmd

import (
	"context"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/blockmix/blockmix/blocks"
	"github.com/blockmix/blockmix/cmd/blockmix/internal/base"
	"github.com/blockmix/blockmix/cmd/blockmix/internal/size"
)

// StatOutput is `stat --json`.
type StatOutput struct {
	Repo         string  `json:"repo"`
	Blocks       int     `json:"blocks"`
	Bytes        int64   `json:"bytes"`
	Files        int     `json:"files"`
	FileBytes    int64   `json:"file_bytes"`
	SharedBlocks int     `json:"shared_blocks"`
	Overhead     float64 `json:"overhead"`
	Quarantined  int     `json:"quarantined"`
	DiskBytes    int64   `json:"disk_bytes"`
	Quota        int64   `json:"quota,omitempty"` // the running daemon's --quota
}

func NewStatCommand(e *base.Env) *cobra.Command {
	var asJSON bool
	c := &cobra.Command{
		Use:   "stat",
		Short: "Show what the store holds",
		Long: `stat sums up the store: its blocks and bytes, the files recorded in it and
their bytes, how many blocks serve two or more files, and the storage
overhead (stored bytes per file byte).`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error { return runStat(c.Context(), e, asJSON) },
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON: blocks, bytes, files, file_bytes, shared_blocks, overhead, quarantined, disk_bytes")
	return c
}

func runStat(ctx context.Context, e *base.Env, asJSON bool) error {
	s, quota, err := storeStats(ctx, e)
	if err != nil {
		return err
	}
	dir := e.Repo().Dir
	out := StatOutput{dir, s.Blocks, s.Bytes, s.Files, s.FileBytes, s.SharedBlocks, s.Overhead(), s.Quarantined, s.DiskBytes, quota}
	if asJSON {
		e.PrintJSON(out)
		return nil
	}
	PrintStats(e.Stdout, dir, s)
	if quota > 0 {
		fmt.Fprintf(e.Stdout, "quota          %s (%.0f%% used)\n", size.Human(quota), 100*float64(s.Bytes)/float64(quota))
	}
	return nil
}

// storeStats sums up the repo's store, and the running daemon's quota (0
// offline or without one): through the daemon's status when one runs.
func storeStats(ctx context.Context, e *base.Env) (blocks.Stats, int64, error) {
	st, err := e.Backend(ctx).Status(ctx)
	return st.Store.Stats, st.Quota, err
}

// PrintStats writes the store summary of stat (and status).
func PrintStats(w io.Writer, dir string, s blocks.Stats) {
	shared := 0.0
	if s.Blocks > 0 {
		shared = 100 * float64(s.SharedBlocks) / float64(s.Blocks)
	}
	fmt.Fprintf(w, "repo           %s\n", dir)
	fmt.Fprintf(w, "blocks         %d (%s)\n", s.Blocks, size.Human(s.Bytes))
	fmt.Fprintf(w, "files          %d (%s)\n", s.Files, size.Human(s.FileBytes))
	fmt.Fprintf(w, "shared blocks  %d (%.1f%% serve two or more files)\n", s.SharedBlocks, shared)
	fmt.Fprintf(w, "overhead       %.3f× (stored bytes per file byte)\n", s.Overhead())
	fmt.Fprintf(w, "on disk        %s\n", size.Human(s.DiskBytes))
	if s.Quarantined > 0 {
		fmt.Fprintf(w, "quarantined    %d corrupt blocks (see the repo's quarantine directory)\n", s.Quarantined)
	}
}
