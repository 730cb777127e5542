package main

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"
)

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
	out, err := e.backend(ctx).Verify(ctx)
	if err != nil {
		return err
	}
	if asJSON {
		printJSON(e, out)
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
