package storecmd

import (
	"context"
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/blockmix/blockmix/blocks"
	"github.com/blockmix/blockmix/cmd/blockmix/internal/base"
	"github.com/blockmix/blockmix/cmd/blockmix/internal/size"
)

func NewFilesCommand(e *base.Env) *cobra.Command {
	var asJSON bool
	c := &cobra.Command{
		Use:     "files",
		Aliases: []string{"pins"},
		Short:   "List the files put, fetched or pinned here (also: pins), with their recipes",
		Long: `files lists every file recorded in the repo, oldest first: its name, size,
when it was put, and its recipe. The recipe is the only key to a file: this
list is where to find one again. The blocks of these files are pinned:
never evicted to make room (see pin, unpin, gc).`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error { return runFiles(c.Context(), e, asJSON) },
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print a JSON array: key, name, size, type, recipe, added, blocks")
	return c
}

func runFiles(ctx context.Context, e *base.Env, asJSON bool) error {
	fs, err := e.Backend(ctx).Files(ctx)
	if err != nil {
		return err
	}
	if asJSON {
		if fs == nil {
			fs = []blocks.FileRecord{}
		}
		e.PrintJSON(fs)
		return nil
	}
	tw := tabwriter.NewWriter(e.Stdout, 0, 4, 2, ' ', 0)
	for _, f := range fs {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", f.Name, size.Human(f.Size), f.Added.Local().Format("2006-01-02 15:04"), f.Recipe)
	}
	return tw.Flush()
}
