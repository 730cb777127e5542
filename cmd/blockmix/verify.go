package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/blockmix/blockmix/blocks"
)

// verifyOutput is `verify --json`.
type verifyOutput struct {
	Checked     int         `json:"checked"`
	Bytes       int64       `json:"bytes"`
	Quarantined []blocks.ID `json:"quarantined"`
}

func newVerifyCommand(e *env) *cobra.Command {
	var asJSON bool
	c := &cobra.Command{
		Use:   "verify",
		Short: "Re-hash every block; quarantine the bad ones",
		Long: `verify reads every block of the store and checks it against its ID. A block
whose bytes do not match is moved to quarantine (kept for audit in the
repo's quarantine directory, never served again) and listed. verify exits
with code 1 when it found any.`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error { return runVerify(c.Context(), e, asJSON) },
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON: checked, bytes, quarantined")
	return c
}

func runVerify(ctx context.Context, e *env, asJSON bool) error {
	st, err := e.openStore(false)
	if err != nil {
		return err
	}
	defer st.Close()
	var ids []blocks.ID
	var total int64
	if err := st.Enumerate(ctx, func(id blocks.ID, m blocks.Meta) error {
		ids = append(ids, id)
		total += int64(m.Size)
		return nil
	}); err != nil {
		return fmt.Errorf("list blocks: %w", err)
	}
	bar := e.newProgress(total, "verifying")
	out := verifyOutput{Quarantined: []blocks.ID{}}
	for _, id := range ids {
		b, err := st.Get(ctx, id)
		switch {
		case errors.Is(err, blocks.ErrCorrupt), errors.Is(err, blocks.ErrTooLarge):
			if qerr := st.Quarantine(ctx, id, err.Error()); qerr != nil {
				bar.finish()
				return fmt.Errorf("quarantine %s: %w", id, qerr)
			}
			out.Quarantined = append(out.Quarantined, id)
		case err != nil:
			bar.finish()
			return fmt.Errorf("read %s: %w", id, err)
		}
		out.Checked++
		out.Bytes += int64(len(b))
		bar.Add(int64(len(b)))
	}
	bar.finish()
	if err := st.Sync(); err != nil {
		return fmt.Errorf("sync store: %w", err)
	}
	if asJSON {
		b, _ := json.MarshalIndent(out, "", "  ")
		fmt.Fprintln(e.stdout, string(b))
	} else {
		for _, id := range out.Quarantined {
			fmt.Fprintf(e.stdout, "corrupt  %s  (quarantined)\n", id)
		}
		fmt.Fprintf(e.stdout, "checked %d blocks (%s): %d corrupt\n", out.Checked, human(out.Bytes), len(out.Quarantined))
	}
	if len(out.Quarantined) > 0 {
		return fmt.Errorf("%d corrupt blocks quarantined; files that use them need those blocks from another node", len(out.Quarantined))
	}
	return nil
}
