// Command blockmix is the one blockmix binary: it puts files into a local
// block store as noise blocks and gets them back by recipe.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/blockmix/blockmix/blocks"
	"github.com/blockmix/blockmix/cmd/blockmix/internal/testhook"
	"github.com/blockmix/blockmix/cmd/blockmix/internal/usage"
	"github.com/blockmix/blockmix/recipe"
)

// Exit codes.
const (
	exitOK      = 0
	exitFailure = 1
	exitBadUse  = 2
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	testhook.ReportPeakRSS()
	os.Exit(code)
}

// run executes one command line and maps its error to an exit code. It is
// the one place that does so.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	cmd := newRootCommand(&env{stdin: stdin, stdout: stdout, stderr: stderr})
	cmd.SetArgs(args)
	cmd.SetOut(stdout)
	cmd.SetErr(stderr)
	err := cmd.ExecuteContext(ctx)
	if err == nil {
		return exitOK
	}
	if ctx.Err() != nil && errors.Is(err, context.Canceled) {
		// Ctrl-C or SIGTERM: the command stopped; a get left no file.
		fmt.Fprintln(stderr, "blockmix: interrupted")
		return exitFailure
	}
	fmt.Fprintln(stderr, "blockmix:", err)
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EFBIG) || errors.Is(err, syscall.EDQUOT) {
		fmt.Fprintln(stderr, "blockmix: the disk that holds the repo is full: free some space or use another --repo; what was stored before is intact (run 'blockmix verify' to check)")
	}
	return exitCode(err)
}

// badUse is bad input from the user: exit code 2.
func badUse(format string, a ...any) error { return usage.Errorf(format, a...) }

func exitCode(err error) int {
	switch {
	case usage.Is(err), errors.Is(err, recipe.ErrDamaged), errors.Is(err, blocks.ErrBadID):
		return exitBadUse
	case isCobraUsage(err):
		return exitBadUse
	}
	return exitFailure
}
