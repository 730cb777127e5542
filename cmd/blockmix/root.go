package main

import (
	"github.com/spf13/cobra"

	"github.com/blockmix/blockmix/cmd/blockmix/internal/base"
	"github.com/blockmix/blockmix/cmd/blockmix/internal/filecmd"
	"github.com/blockmix/blockmix/cmd/blockmix/internal/livecmd"
	"github.com/blockmix/blockmix/cmd/blockmix/internal/netcmd"
	"github.com/blockmix/blockmix/cmd/blockmix/internal/storecmd"
)

// newRootCommand is the blockmix command line: the global flags on e, and
// every command.
func newRootCommand(e *base.Env) *cobra.Command {
	root := &cobra.Command{
		Use:   "blockmix",
		Short: "An owner-free block store: files become noise blocks, a recipe brings them back",
		Long: `blockmix cuts a file into blocks and mixes each with existing random-looking
blocks (XOR), so that every stored block looks like noise and serves many
files. A short recipe is the only key to the file.

  blockmix put photo.jpg          prints the recipe
  blockmix get RECIPE             rebuilds the file

The store lives in the repo directory: --repo, else $BLOCKMIX_REPO, else
$XDG_DATA_HOME/blockmix (~/.local/share/blockmix).

Exit codes: 0 ok, 1 failure, 2 bad input (usage, damaged recipe).`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.PersistentFlags().StringVar(&e.RepoFlag, "repo", "", "repo directory (default $BLOCKMIX_REPO, else the user data directory)")
	root.PersistentFlags().BoolVar(&e.NoProgress, "no-progress", false, "never draw a progress bar")
	root.PersistentFlags().StringVar(&e.CPUProfile, "cpuprofile", "", "write a CPU profile to this file (for developers)")
	_ = root.PersistentFlags().MarkHidden("cpuprofile")
	root.PersistentPreRunE = func(*cobra.Command, []string) error { return e.Begin() }
	root.PersistentPostRun = func(*cobra.Command, []string) { e.End() }
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return base.BadUse("%w (see '%s --help')", err, c.CommandPath())
	})
	root.AddCommand(
		filecmd.NewPutCommand(e),
		filecmd.NewGetCommand(e),
		storecmd.NewStatCommand(e),
		storecmd.NewVerifyCommand(e),
		storecmd.NewFilesCommand(e),
		netcmd.NewDaemonCommand(e),
		netcmd.NewIDCommand(e),
		netcmd.NewPeersCommand(e),
		netcmd.NewStatusCommand(e),
		storecmd.NewBlockCommand(e),
		storecmd.NewPinCommand(e),
		storecmd.NewUnpinCommand(e),
		storecmd.NewGCCommand(e),
		storecmd.NewCheckCommand(e),
		netcmd.NewGroupCommand(e),
		filecmd.NewLsCommand(e),
		livecmd.NewWatchCommand(e),
		livecmd.NewUnliveCommand(e, "watch", "unwatch", "Stop publishing a watched folder (its link keeps the last version)"),
		livecmd.NewSyncCommand(e),
		livecmd.NewUnliveCommand(e, "sync", "unsync", "Stop keeping a folder equal to a live link (its files stay)"),
		livecmd.NewResolveCommand(e),
	)
	return root
}
