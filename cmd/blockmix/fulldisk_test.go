package main

import (
	"bytes"
	"context"
	"os/exec"
	"strings"
	"testing"

	"github.com/blockmix/blockmix/cmd/blockmix/internal/base"
)

// TestReadOnlyCommandsOnFullDisk: with a disk that takes no more bytes (a
// file-size limit of 0 stands in for a full disk), the commands that only
// read still work: stat, files, status, block ls and get to standard
// output; a put fails with the disk-full message.
func TestReadOnlyCommandsOnFullDisk(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	data := randBytes(93, 300<<10)
	w.file("f.bin", data)
	rc := w.okLine("put", "f.bin")
	full := func(args ...string) (string, string, int) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
		defer cancel()
		script := `trap '' XFSZ; ulimit -f 0 || exit 99; exec "$0" "$@"`
		c := exec.CommandContext(ctx, "sh", append([]string{"-c", script, binPath, "--repo", w.repo, "--no-progress"}, args...)...)
		c.Env, c.Dir = w.environ(runOpts{}), w.dir
		var out, errb bytes.Buffer
		c.Stdout, c.Stderr = &out, &errb
		_ = c.Run()
		return out.String(), errb.String(), c.ProcessState.ExitCode()
	}
	for _, args := range [][]string{{"stat"}, {"files"}, {"status"}, {"block", "ls"}} {
		if out, errs, code := full(args...); code != 0 || out == "" {
			t.Errorf("%v on a full disk: exit %d\n%s%s", args, code, out, errs)
		}
	}
	if out, errs, code := full("get", "-o", "-", rc); code != 0 || out != string(data) {
		t.Errorf("get -o - on a full disk: exit %d, %d bytes\n%s", code, len(out), errs)
	}
	w.file("g.bin", randBytes(94, 300<<10))
	if _, errs, code := full("put", "g.bin"); code != base.ExitFailure || !strings.Contains(errs, "disk that holds the repo is full") {
		t.Errorf("put on a full disk: exit %d\n%s", code, errs)
	}
	w.ok("verify") // and the store is sound afterwards
}

// TestDaemonGetLostBlock: a get through the daemon whose block rotted on
// disk, with no peer to give it back, says which block is lost and that it
// is corruption, not a cut connection; no file is left.
func TestDaemonGetLostBlock(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	startDaemonWith(t, w, daemonArgs("--scrub-interval", "0", "--repair-interval", "0")...)
	w.file("f.bin", randBytes(95, 600<<10))
	rc := w.okLine("--no-progress", "put", "f.bin")
	flipFirstBlockByte(t, w)
	r := w.run("--no-progress", "get", "-o", "out.bin", rc)
	if r.code != 1 || !strings.Contains(string(r.stderr), "is lost") || !strings.Contains(string(r.stderr), "corrupt") {
		t.Fatalf("%v", r)
	}
	mustNotExist(t, w.path("out.bin"))
}
