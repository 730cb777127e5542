package storecmd

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/blockmix/blockmix/cmd/blockmix/internal/base"
	"github.com/blockmix/blockmix/cmd/blockmix/internal/size"
)

func NewVerifyCommand(e *base.Env) *cobra.Command {
	var asJSON, rebuild bool
	c := &cobra.Command{
		Use:   "verify",
		Short: "Re-hash every block; quarantine the bad ones",
		Long: `verify reads every block of the store and checks it against its ID. A block
whose bytes do not match is moved to quarantine (kept for audit in the
repo's quarantine directory, never served again) and listed. verify exits
with code 1 when it found any.

With --rebuild-index it first builds the store's index anew from the
segment files (every block record carries its ID, tag and length) and the
files journal (REPO/files.log: every file and pin), keeping the old index
as REPO/index.old-<time>: for an index that was lost or damaged. Stop the
daemon first. A store that was not closed cleanly (a crash, a power cut)
needs no flag: opening it checks the segments written since the last
checkpoint against the index and fixes what it finds.`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if rebuild {
				info, err := e.Repo().RebuildIndex()
				if err != nil {
					return err
				}
				if !asJSON {
					fmt.Fprintf(e.Stdout, "index rebuilt: %d blocks from %d segments, %d files\n", info.Added, info.Scanned, info.Files)
				}
			}
			return runVerify(c.Context(), e, asJSON)
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON: checked, bytes, quarantined")
	c.Flags().BoolVar(&rebuild, "rebuild-index", false, "rebuild the index from the segments and the files journal first (the daemon must be stopped)")
	return c
}

func runVerify(ctx context.Context, e *base.Env, asJSON bool) error {
	out, err := e.Backend(ctx).Verify(ctx)
	if err != nil {
		return err
	}
	if asJSON {
		e.PrintJSON(out)
	} else {
		for _, id := range out.Quarantined {
			fmt.Fprintf(e.Stdout, "corrupt  %s  (quarantined)\n", id)
		}
		if out.ResumedAt > 0 {
			fmt.Fprintf(e.Stdout, "continued an interrupted verify, which had checked about %.0f%% of the store\n", 100*out.ResumedAt)
		}
		fmt.Fprintf(e.Stdout, "checked %d blocks (%s): %d corrupt\n", out.Checked, size.Human(out.Bytes), len(out.Quarantined))
	}
	if len(out.Quarantined) > 0 {
		return fmt.Errorf("%d corrupt blocks quarantined; files that use them need those blocks from another node", len(out.Quarantined))
	}
	return nil
}
