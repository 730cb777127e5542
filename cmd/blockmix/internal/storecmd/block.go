package storecmd

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/blockmix/blockmix/blocks"
	"github.com/blockmix/blockmix/cmd/blockmix/internal/base"
	"github.com/blockmix/blockmix/webui/apiv1"
)

func NewBlockCommand(e *base.Env) *cobra.Command {
	c := &cobra.Command{
		Use:   "block",
		Short: "Plumbing: list blocks, write one block's raw bytes",
		Args:  cobra.NoArgs,
		RunE:  func(c *cobra.Command, _ []string) error { return c.Help() },
	}
	var asJSON bool
	ls := &cobra.Command{
		Use:   "ls",
		Short: "List the IDs of every block in the store",
		Long:  "ls prints one block ID (a CIDv1, raw, sha2-256) per line, in ID order.",
		Args:  cobra.NoArgs,
		RunE:  func(c *cobra.Command, _ []string) error { return runBlockLs(c.Context(), e, asJSON) },
	}
	ls.Flags().BoolVar(&asJSON, "json", false, "print one JSON object per block: id, size, refs")
	get := &cobra.Command{
		Use:   "get ID",
		Short: "Write one block's raw bytes to standard output (for audits)",
		Long:  "get checks the block against its ID and writes its bytes, exactly as stored, to standard output.",
		Args:  cobra.ExactArgs(1),
		RunE:  func(c *cobra.Command, args []string) error { return runBlockGet(c.Context(), e, args[0]) },
	}
	c.AddCommand(ls, get)
	return c
}

func runBlockLs(ctx context.Context, e *base.Env, asJSON bool) error {
	show := func(b apiv1.BlockInfo) error {
		if asJSON {
			j, _ := json.Marshal(b)
			_, err := fmt.Fprintln(e.Stdout, string(j))
			return err
		}
		_, err := fmt.Fprintln(e.Stdout, b.ID)
		return err
	}
	return e.Backend(ctx).Blocks(ctx, show)
}

func runBlockGet(ctx context.Context, e *base.Env, arg string) error {
	id, err := blocks.ParseID(arg)
	if err != nil {
		return err
	}
	b, err := e.Backend(ctx).Block(ctx, id)
	if err != nil {
		return err
	}
	_, err = e.Stdout.Write(b)
	return err
}
