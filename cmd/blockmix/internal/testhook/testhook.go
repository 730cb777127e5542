// Package testhook holds the hooks the command line's tests and
// benchmarks use: stopping a process at a chosen point, however fast the
// machine, and reporting its peak memory. Each is off unless its
// environment variable is set.
package testhook

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"

	manet "github.com/multiformats/go-multiaddr/net"
)

// PauseWriter wraps w so that a get stops once it wrote the bytes
// BLOCKMIX_TEST_PAUSE_AFTER says (unset: never), says "paused" on stderr,
// and waits until it is killed or ctx ends (Ctrl-C).
func PauseWriter(ctx context.Context, w io.Writer, stderr io.Writer) io.Writer {
	n := pauseAfter()
	if n <= 0 {
		return w
	}
	return &pauser{ctx: ctx, w: w, left: n, stderr: stderr}
}

// PauseReader is PauseWriter for what a put reads: it stops the put once
// it read the bytes BLOCKMIX_TEST_PAUSE_AFTER says.
func PauseReader(ctx context.Context, r io.Reader, stderr io.Writer) io.Reader {
	n := pauseAfter()
	if n <= 0 {
		return r
	}
	return &pauseReader{ctx: ctx, r: r, left: n, stderr: stderr}
}

// pauseAfter reads BLOCKMIX_TEST_PAUSE_AFTER (0: no pause).
func pauseAfter() int64 {
	n, _ := strconv.ParseInt(os.Getenv("BLOCKMIX_TEST_PAUSE_AFTER"), 10, 64)
	return n
}

type pauseReader struct {
	ctx    context.Context
	r      io.Reader
	left   int64
	stderr io.Writer
}

func (p *pauseReader) Read(b []byte) (int, error) {
	if p.left <= 0 {
		fmt.Fprintln(p.stderr, "paused")
		<-p.ctx.Done()
		return 0, p.ctx.Err()
	}
	n, err := p.r.Read(b[:min(int64(len(b)), p.left)])
	p.left -= int64(n)
	return n, err
}

type pauser struct {
	ctx    context.Context
	w      io.Writer
	left   int64
	stderr io.Writer
}

func (p *pauser) Write(b []byte) (int, error) {
	n, err := p.w.Write(b)
	if p.left > 0 && err == nil {
		if p.left -= int64(n); p.left <= 0 {
			fmt.Fprintln(p.stderr, "paused")
			<-p.ctx.Done()
		}
	}
	return n, err
}

// ReportPeakRSS writes the process's peak resident set (VmHWM, in KiB) to
// the file named by BLOCKMIX_PEAK_RSS_FILE, for the benchmarks. getrusage
// cannot tell it: on Linux a child's ru_maxrss starts from its parent's
// peak when the parent (Go's os/exec) spawns it with a shared memory map.
func ReportPeakRSS() {
	path := os.Getenv("BLOCKMIX_PEAK_RSS_FILE")
	if path == "" {
		return
	}
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmHWM:" {
			_ = os.WriteFile(path, []byte(f[1]+"\n"), 0o644)
		}
	}
}

// HoldPlacement waits, when BLOCKMIX_TEST_HOLD_PLACE names the file
// (name), until ctx ends: that put stays "placing" until its client goes,
// so that a test can cancel it there however fast the network is.
func HoldPlacement(ctx context.Context, name string) { hold(ctx, "BLOCKMIX_TEST_HOLD_PLACE", name) }

// HoldFetch waits, when BLOCKMIX_TEST_HOLD_FETCH names the file, until
// ctx ends: that get stays running until it is cancelled.
func HoldFetch(ctx context.Context, name string) { hold(ctx, "BLOCKMIX_TEST_HOLD_FETCH", name) }

func hold(ctx context.Context, env, name string) {
	if v := os.Getenv(env); v != "" && v == name {
		<-ctx.Done()
	}
}

// LabInternet makes the address range BLOCKMIX_LAB_INTERNET names (unset:
// nothing) count as the public internet. The network lab's "internet"
// (cmd/blockmix/internal/netlab) uses 198.18.0.0/15, the range RFC 2544
// sets aside for network test labs; libp2p counts that range as
// unroutable, and a node would then never learn that it is reachable
// there. Only a range libp2p calls unroutable can be named.
func LabInternet() error {
	v := os.Getenv("BLOCKMIX_LAB_INTERNET")
	if v == "" {
		return nil
	}
	_, lab, err := net.ParseCIDR(v)
	if err != nil {
		return fmt.Errorf("BLOCKMIX_LAB_INTERNET: %w", err)
	}
	kept := manet.Unroutable4[:0:0]
	found := false
	for _, r := range manet.Unroutable4 {
		if r.Contains(lab.IP) {
			found = true
			continue
		}
		kept = append(kept, r)
	}
	if !found {
		return fmt.Errorf("BLOCKMIX_LAB_INTERNET %s: not a range libp2p counts as unroutable", v)
	}
	manet.Unroutable4 = kept
	return nil
}
