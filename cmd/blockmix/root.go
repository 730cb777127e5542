package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strings"

	"github.com/spf13/cobra"

	"github.com/blockmix/blockmix/blocks"
)

// env is what every command gets: its streams and the global flags.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	repo           string
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
	root.PersistentFlags().StringVar(&e.repo, "repo", "", "repo directory (default $BLOCKMIX_REPO, else the user data directory)")
	root.PersistentFlags().BoolVar(&e.noProgress, "no-progress", false, "never draw a progress bar")
	root.PersistentFlags().StringVar(&e.cpuProfile, "cpuprofile", "", "write a CPU profile to this file (for developers)")
	_ = root.PersistentFlags().MarkHidden("cpuprofile")
	root.PersistentPreRunE = func(*cobra.Command, []string) error {
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
		return usageError{fmt.Errorf("%w (see '%s --help')", err, c.CommandPath())}
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

// repoDir resolves the repo: flag, then environment, then the OS default.
func (e *env) repoDir() (string, error) {
	if e.repo != "" {
		return e.repo, nil
	}
	if d := os.Getenv("BLOCKMIX_REPO"); d != "" {
		return d, nil
	}
	if d := os.Getenv("XDG_DATA_HOME"); d != "" {
		return filepath.Join(d, "blockmix"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("no repo: set --repo or BLOCKMIX_REPO (%w)", err)
	}
	return filepath.Join(home, ".local", "share", "blockmix"), nil
}

// openStore opens the repo's block store. Only create makes a new repo, so
// that a mistyped --repo on a get does not leave an empty repo behind.
func (e *env) openStore(create bool) (*blocks.Disk, error) {
	dir, err := e.repoDir()
	if err != nil {
		return nil, err
	}
	if !create {
		if _, err := os.Stat(filepath.Join(dir, "index")); err != nil {
			return nil, fmt.Errorf("no blockmix repo at %s (put a file first, or check --repo and BLOCKMIX_REPO): %w", dir, blocks.ErrNotFound)
		}
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create repo %s: %w", dir, err)
	}
	st, err := blocks.OpenDisk(dir, blocks.DiskOptions{})
	if errors.Is(err, blocks.ErrLocked) {
		return nil, fmt.Errorf("repo %s is in use by another blockmix process (a daemon or another command); wait for it or stop it: %w", dir, err)
	}
	if err != nil {
		return nil, fmt.Errorf("open repo %s: %w", dir, err)
	}
	return st, nil
}
