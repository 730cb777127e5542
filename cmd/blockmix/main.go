// Command blockmix is the one blockmix binary: it puts files into a local
// block store as noise blocks and gets them back by recipe. The commands
// live in packages of their own under internal (base, filecmd, storecmd,
// netcmd, livecmd); this package wires them into one command line.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/blockmix/blockmix/cmd/blockmix/internal/base"
	"github.com/blockmix/blockmix/cmd/blockmix/internal/testhook"
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
	cmd := newRootCommand(&base.Env{Stdin: stdin, Stdout: stdout, Stderr: stderr})
	cmd.SetArgs(args)
	cmd.SetOut(stdout)
	cmd.SetErr(stderr)
	err := cmd.ExecuteContext(ctx)
	if err == nil {
		return base.ExitOK
	}
	if ctx.Err() != nil && errors.Is(err, context.Canceled) {
		// Ctrl-C or SIGTERM: the command stopped; a get left no file.
		fmt.Fprintln(stderr, "blockmix: interrupted")
		return base.ExitFailure
	}
	fmt.Fprintln(stderr, "blockmix:", err)
	if base.DiskFull(err) {
		fmt.Fprintln(stderr, "blockmix: the disk that holds the repo is full: free some space or use another --repo; what was stored before is intact (run 'blockmix verify' to check)")
	}
	return base.ExitCode(err)
}
