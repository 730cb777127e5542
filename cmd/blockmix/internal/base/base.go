// Package base is what every blockmix command shares: its streams and
// global flags (Env), where its work happens (a running daemon or the repo
// offline), and how its errors become exit codes. Each command lives in a
// package of its own under cmd/blockmix/internal (filecmd, storecmd,
// netcmd, livecmd); package main only wires them into the root command.
package base

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/pprof"
	"strings"
	"syscall"

	"github.com/blockmix/blockmix/blocks"
	"github.com/blockmix/blockmix/cmd/blockmix/internal/logs"
	"github.com/blockmix/blockmix/cmd/blockmix/internal/passphrase"
	"github.com/blockmix/blockmix/cmd/blockmix/internal/progress"
	"github.com/blockmix/blockmix/cmd/blockmix/internal/repo"
	"github.com/blockmix/blockmix/cmd/blockmix/internal/usage"
	"github.com/blockmix/blockmix/recipe"
)

// Exit codes.
const (
	ExitOK      = 0
	ExitFailure = 1
	ExitBadUse  = 2
)

// Env is what every command gets: its streams and the global flags. The
// root command fills the flags; Begin resolves the repo before a command
// runs.
type Env struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	RepoFlag       string // --repo
	NoProgress     bool   // --no-progress
	CPUProfile     string // --cpuprofile (for developers)

	rp          repo.Repo
	stopProfile func()
}

// Begin resolves the repo (--repo, $BLOCKMIX_REPO, the user data
// directory) and starts the CPU profile when one is asked for.
func (e *Env) Begin() error {
	dir, err := repo.Resolve(e.RepoFlag)
	if err != nil {
		return err
	}
	// The commands' own warnings (a damaged small file set aside) go to
	// standard error; the daemon logs through its logger.
	warn, _ := logs.New(e.Stderr, "warn", "text")
	e.rp = repo.Repo{Dir: dir, Log: warn}
	if e.CPUProfile == "" {
		return nil
	}
	f, err := os.Create(e.CPUProfile)
	if err != nil {
		return fmt.Errorf("cpu profile: %w", err)
	}
	e.stopProfile = func() { pprof.StopCPUProfile(); f.Close() }
	return pprof.StartCPUProfile(f)
}

// End stops what Begin started.
func (e *Env) End() {
	if e.stopProfile != nil {
		e.stopProfile()
		e.stopProfile = nil
	}
}

// Repo is the repo the command works on.
func (e *Env) Repo() repo.Repo { return e.rp }

// APIURL returns the URL of the daemon running on the repo, or "".
func (e *Env) APIURL() string { return e.rp.APIURL() }

// Prompter asks for passphrases on the command's standard streams.
func (e *Env) Prompter() passphrase.Prompter {
	return passphrase.Prompter{In: e.Stdin, Err: e.Stderr}
}

// PrintJSON writes v to standard output as indented JSON, for --json.
func (e *Env) PrintJSON(v any) {
	b, _ := json.MarshalIndent(v, "", "  ")
	fmt.Fprintln(e.Stdout, string(b))
}

// NewProgress returns a bar on standard error when it is a terminal and
// bars are wanted (no --no-progress), else nil, which draws nothing.
func (e *Env) NewProgress(total int64, what string) *progress.Bar {
	if e.NoProgress {
		return nil
	}
	return progress.New(e.Stderr, total, what)
}

// BadUse is bad input from the user: exit code 2.
func BadUse(format string, a ...any) error { return usage.Errorf(format, a...) }

// NotForFolders refuses a folder recipe for cmd, which covers single
// files only.
func NotForFolders(cmd string, rc recipe.Recipe) error {
	if !rc.IsFolder() {
		return nil
	}
	return BadUse("%s is a folder recipe: '%s' does not cover folders yet (it would cover the listing, not the files); 'blockmix ls -r --json' gives each file's recipe", rc.Name, cmd)
}

// ExitCode maps a command's error to its exit code: 2 for bad input
// (usage, a damaged recipe, a bad block ID, cobra's own usage errors),
// else 1.
func ExitCode(err error) int {
	switch {
	case usage.Is(err), errors.Is(err, recipe.ErrDamaged), errors.Is(err, blocks.ErrBadID):
		return ExitBadUse
	case isCobraUsage(err):
		return ExitBadUse
	}
	return ExitFailure
}

// DiskFull reports whether err says the disk is full.
func DiskFull(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EFBIG) || errors.Is(err, syscall.EDQUOT)
}

// isCobraUsage reports cobra's own errors for unknown commands and wrong
// argument counts.
func isCobraUsage(err error) bool {
	s := err.Error()
	return strings.HasPrefix(s, "unknown command") || strings.HasPrefix(s, "accepts ") ||
		strings.HasPrefix(s, "requires at least") || strings.HasPrefix(s, "unknown flag") ||
		strings.HasPrefix(s, "unknown shorthand flag")
}
