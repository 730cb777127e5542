package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime/pprof"
	"strings"

	"github.com/spf13/cobra"

	"github.com/blockmix/blockmix/cmd/blockmix/internal/logs"
	"github.com/blockmix/blockmix/cmd/blockmix/internal/passphrase"
	"github.com/blockmix/blockmix/cmd/blockmix/internal/progress"
	"github.com/blockmix/blockmix/cmd/blockmix/internal/repo"
)

// env is what every command gets: its streams and the global flags.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	repoFlag       string
	rp             repo.Repo // resolved before a command runs
	noProgress     bool
	cpuProfile     string
	stopProfile    func()
}

func newRootCommand(e *env) *cobra.Command {
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
	root.PersistentFlags().StringVar(&e.repoFlag, "repo", "", "repo directory (default $BLOCKMIX_REPO, else the user data directory)")
	root.PersistentFlags().BoolVar(&e.noProgress, "no-progress", false, "never draw a progress bar")
	root.PersistentFlags().StringVar(&e.cpuProfile, "cpuprofile", "", "write a CPU profile to this file (for developers)")
	_ = root.PersistentFlags().MarkHidden("cpuprofile")
	root.PersistentPreRunE = func(*cobra.Command, []string) error {
		dir, err := repo.Resolve(e.repoFlag)
		if err != nil {
			return err
		}
		// The commands' own warnings (a damaged small file set aside)
		// go to standard error; the daemon logs through its logger.
		warn, _ := logs.New(e.stderr, "warn", "text")
		e.rp = repo.Repo{Dir: dir, Log: warn}
		if e.cpuProfile == "" {
			return nil
		}
		f, err := os.Create(e.cpuProfile)
		if err != nil {
			return fmt.Errorf("cpu profile: %w", err)
		}
		e.stopProfile = func() { pprof.StopCPUProfile(); f.Close() }
		return pprof.StartCPUProfile(f)
	}
	root.PersistentPostRun = func(*cobra.Command, []string) {
		if e.stopProfile != nil {
			e.stopProfile()
		}
	}
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return badUse("%w (see '%s --help')", err, c.CommandPath())
	})
	root.AddCommand(
		newPutCommand(e),
		newGetCommand(e),
		newStatCommand(e),
		newVerifyCommand(e),
		newFilesCommand(e),
		newDaemonCommand(e),
		newIDCommand(e),
		newPeersCommand(e),
		newStatusCommand(e),
		newBlockCommand(e),
		newPinCommand(e),
		newUnpinCommand(e),
		newGCCommand(e),
		newCheckCommand(e),
		newGroupCommand(e),
		newLsCommand(e),
		newWatchCommand(e),
		newUnliveCommand(e, "watch", "unwatch", "Stop publishing a watched folder (its link keeps the last version)"),
		newSyncCommand(e),
		newUnliveCommand(e, "sync", "unsync", "Stop keeping a folder equal to a live link (its files stay)"),
		newResolveCommand(e),
	)
	return root
}

// isCobraUsage reports cobra's own errors for unknown commands and wrong
// argument counts.
func isCobraUsage(err error) bool {
	s := err.Error()
	return strings.HasPrefix(s, "unknown command") || strings.HasPrefix(s, "accepts ") ||
		strings.HasPrefix(s, "requires at least") || strings.HasPrefix(s, "unknown flag") ||
		strings.HasPrefix(s, "unknown shorthand flag")
}

// repo is the repo the command works on.
func (e *env) repo() repo.Repo { return e.rp }

// apiURL returns the URL of the daemon running on the repo, or "".
func (e *env) apiURL() string { return e.rp.APIURL() }

// prompter asks for passphrases on the command's standard streams.
func (e *env) prompter() passphrase.Prompter {
	return passphrase.Prompter{In: e.stdin, Err: e.stderr}
}

// printJSON writes v to standard output as indented JSON, for --json.
func printJSON(e *env, v any) {
	b, _ := json.MarshalIndent(v, "", "  ")
	fmt.Fprintln(e.stdout, string(b))
}

// newProgress returns a bar on standard error when it is a terminal and
// bars are wanted (no --no-progress), else nil, which draws nothing.
func (e *env) newProgress(total int64, what string) *progress.Bar {
	if e.noProgress {
		return nil
	}
	return progress.New(e.stderr, total, what)
}
