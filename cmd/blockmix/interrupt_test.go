package main

import (
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestInterruptGet: Ctrl-C (SIGINT) halfway through an offline get stops
// it at once: it says "interrupted", leaves no file and no temporary file,
// and releases the repo (a verify runs right after).
func TestInterruptGet(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	const size = 8 << 20
	w.file("f.bin", randBytes(91, size))
	rc := w.okLine("put", "f.bin")
	p := w.startPaused(size/2, "get", "-o", "out.bin", rc)
	if err := p.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		p.kill(t)
		t.Fatal("the get did not stop within 30 s of Ctrl-C")
	}
	if code := p.cmd.ProcessState.ExitCode(); code != 1 || !strings.Contains(p.stderr.String(), "blockmix: interrupted") {
		t.Errorf("exit %d, stderr:\n%s", code, p.stderr.String())
	}
	mustNotExist(t, w.path("out.bin"))
	if ps := partials(t, w.dir); len(ps) != 0 {
		t.Errorf("an interrupted get left %v", ps)
	}
	if _, err := os.Stat(w.path("f.bin")); err != nil {
		t.Fatal(err)
	}
	w.ok("verify") // the repo's lock is free
}
