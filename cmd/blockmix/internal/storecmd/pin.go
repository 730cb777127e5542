package storecmd

import (
	"context"
	"fmt"
	"net/http"

	"github.com/spf13/cobra"

	"github.com/blockmix/blockmix/cmd/blockmix/internal/base"
	"github.com/blockmix/blockmix/cmd/blockmix/internal/passphrase"
	"github.com/blockmix/blockmix/cmd/blockmix/internal/size"
	"github.com/blockmix/blockmix/webui/apiv1"
)

func NewPinCommand(e *base.Env) *cobra.Command {
	var po passphrase.Options
	c := &cobra.Command{
		Use:   "pin RECIPE",
		Short: "Keep a file on this node: its blocks are never evicted",
		Long: `pin puts a file on this node's list (see 'files', also called 'pins'), so
that none of its blocks is ever evicted to make room. Through the daemon it
fetches whatever blocks are missing first; without one, every block must
be here already. Files put here are pinned from the start.`,
		Args: cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error { return runPin(c.Context(), e, po, args[0]) },
	}
	po.AddGetFlags(c.Flags())
	return c
}

func runPin(ctx context.Context, e *base.Env, po passphrase.Options, text string) error {
	rc, err := e.Prompter().RecipeArg(po, text)
	if err != nil {
		return err
	}
	if err := base.NotForFolders("pin", rc); err != nil { // folders.go
		return err
	}
	if err := e.Backend(ctx).Pin(ctx, rc); err != nil {
		return err
	}
	fmt.Fprintf(e.Stdout, "pinned %s (%s): its blocks stay on this node\n", rc.Name, size.Human(rc.Size))
	return nil
}

func NewUnpinCommand(e *base.Env) *cobra.Command {
	var po passphrase.Options
	c := &cobra.Command{
		Use:   "unpin RECIPE",
		Short: "Take a file off this node's list: its blocks may then be evicted",
		Args:  cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			ctx := c.Context()
			rc, err := e.Prompter().RecipeArg(po, args[0])
			if err != nil {
				return err
			}
			if err := e.Backend(ctx).Unpin(ctx, rc); err != nil {
				return err
			}
			fmt.Fprintf(e.Stdout, "unpinned %s: its blocks may be evicted when space is needed\n", rc.Name)
			return nil
		},
	}
	po.AddGetFlags(c.Flags())
	return c
}

func NewGCCommand(e *base.Env) *cobra.Command {
	var asJSON bool
	c := &cobra.Command{
		Use:   "gc",
		Short: "Evict cached blocks now and say what was freed",
		Long: `gc evicts every cached block (blocks fetched for a read, that no pinned file
uses and that this node does not hold for the network), least recently
used first, and reclaims their space. Blocks of pinned files are never
evicted. Blocks this node holds as one of the closest to them go only when
the store is over its --quota, and only after they were handed to the next
closest node. It needs the daemon, which knows the network.`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			ctx := c.Context()
			dc := e.Daemon(ctx)
			if dc == nil {
				return fmt.Errorf("%w: gc must know which blocks the network counts on this node for", base.ErrNoDaemon)
			}
			var info apiv1.GCInfo
			if err := dc.Work(ctx, http.MethodPost, "/api/v1/gc", &info); err != nil {
				return err
			}
			if asJSON {
				e.PrintJSON(info)
				return nil
			}
			fmt.Fprintf(e.Stdout, "evicted %d blocks (%s)", info.EvictedBlocks, size.Human(info.EvictedBytes))
			if info.HandedOff > 0 {
				fmt.Fprintf(e.Stdout, ", %d of them handed to the next closest node first", info.HandedOff)
			}
			fmt.Fprintf(e.Stdout, "; kept %d pinned and %d held for the network; %s of disk reclaimed\n", info.PinnedBlocks, info.KeptBlocks, size.Human(info.ReclaimedBytes))
			return nil
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON: evicted_blocks, evicted_bytes, handed_off, kept_blocks, pinned_blocks, reclaimed_bytes")
	return c
}
