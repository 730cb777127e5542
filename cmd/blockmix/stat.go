package main

import (
	"context"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/blockmix/blockmix/blocks"
	"github.com/blockmix/blockmix/cmd/blockmix/internal/size"
)

// statOutput is `stat --json`.
type statOutput struct {
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

func newStatCommand(e *env) *cobra.Command {
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

func runStat(ctx context.Context, e *env, asJSON bool) error {
	s, quota, err := e.storeStats(ctx)
	if err != nil {
		return err
	}
	dir := e.repo().Dir
	out := statOutput{dir, s.Blocks, s.Bytes, s.Files, s.FileBytes, s.SharedBlocks, s.Overhead(), s.Quarantined, s.DiskBytes, quota}
	if asJSON {
		printJSON(e, out)
		return nil
	}
	printStats(e.stdout, dir, s)
	if quota > 0 {
		fmt.Fprintf(e.stdout, "quota          %s (%.0f%% used)\n", human(quota), 100*float64(s.Bytes)/float64(quota))
	}
	return nil
}

// storeStats sums up the repo's store, and the running daemon's quota (0
// offline or without one): through the daemon's status when one runs.
func (e *env) storeStats(ctx context.Context) (blocks.Stats, int64, error) {
	st, err := e.backend(ctx).Status(ctx)
	return st.Store.Stats, st.Quota, err
}

// printStats writes the store summary of stat (and status).
func printStats(w io.Writer, dir string, s blocks.Stats) {
	shared := 0.0
	if s.Blocks > 0 {
		shared = 100 * float64(s.SharedBlocks) / float64(s.Blocks)
	}
	fmt.Fprintf(w, "repo           %s\n", dir)
	fmt.Fprintf(w, "blocks         %d (%s)\n", s.Blocks, human(s.Bytes))
	fmt.Fprintf(w, "files          %d (%s)\n", s.Files, human(s.FileBytes))
	fmt.Fprintf(w, "shared blocks  %d (%.1f%% serve two or more files)\n", s.SharedBlocks, shared)
	fmt.Fprintf(w, "overhead       %.3f× (stored bytes per file byte)\n", s.Overhead())
	fmt.Fprintf(w, "on disk        %s\n", human(s.DiskBytes))
	if s.Quarantined > 0 {
		fmt.Fprintf(w, "quarantined    %d corrupt blocks (see the repo's quarantine directory)\n", s.Quarantined)
	}
}

// human spells a byte count with a binary unit.
func human(n int64) string { return size.Human(n) }
