package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/spf13/cobra"

	"github.com/blockmix/blockmix/blocks"
	"github.com/blockmix/blockmix/webui/apiv1"
)

// verifyOutput is `verify --json`.
type verifyOutput = apiv1.VerifyInfo

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
	var out verifyOutput
	if dc := e.daemon(ctx); dc != nil {
		if err := dc.callJSON(ctx, http.MethodPost, "/api/v1/verify", &out); err != nil {
			return err
		}
	} else {
		st, err := e.openStore(false)
		if err != nil {
			return err
		}
		defer st.Close()
		if out, err = verifyStore(ctx, st, e.newProgress); err != nil {
			return err
		}
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

// verifiable is what verify needs of a store.
type verifiable interface {
	blocks.Getter
	blocks.Enumerator
	Quarantine(ctx context.Context, id blocks.ID, reason string) error
	Sync() error
}

// verifyStore re-hashes every block of st, quarantines the ones whose
// bytes do not match their ID, and syncs st. newBar (nil: none) makes a
// progress bar for the total bytes. Corrupt blocks are listed in the
// answer, not returned as an error. Quarantined is never nil.
func verifyStore(ctx context.Context, st verifiable, newBar func(total int64, what string) *progress) (apiv1.VerifyInfo, error) {
	var ids []blocks.ID
	var total int64
	if err := st.Enumerate(ctx, func(id blocks.ID, m blocks.Meta) error {
		ids = append(ids, id)
		total += int64(m.Size)
		return nil
	}); err != nil {
		return apiv1.VerifyInfo{}, fmt.Errorf("list blocks: %w", err)
	}
	var bar *progress
	if newBar != nil {
		bar = newBar(total, "verifying")
	}
	defer bar.finish()
	out := apiv1.VerifyInfo{Quarantined: []blocks.ID{}}
	for _, id := range ids {
		b, err := st.Get(ctx, id)
		switch {
		case errors.Is(err, blocks.ErrCorrupt), errors.Is(err, blocks.ErrTooLarge):
			if qerr := st.Quarantine(ctx, id, err.Error()); qerr != nil {
				return out, fmt.Errorf("quarantine %s: %w", id, qerr)
			}
			out.Quarantined = append(out.Quarantined, id)
		case errors.Is(err, blocks.ErrNotFound) && ctx.Err() == nil:
			// Deleted or quarantined since the listing (a daemon serves
			// and verifies at the same time): nothing to check.
			continue
		case err != nil:
			return out, fmt.Errorf("read %s: %w", id, err)
		}
		out.Checked++
		out.Bytes += int64(len(b))
		bar.Add(int64(len(b)))
	}
	if err := st.Sync(); err != nil {
		return out, fmt.Errorf("sync store: %w", err)
	}
	return out, nil
}
