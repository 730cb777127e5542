package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

const crashFileSize = 48 << 20

// started is a blockmix process a test runs in the background.
type started struct {
	cmd    *exec.Cmd
	stdout *bytes.Buffer // read only after done
	stderr *bytes.Buffer // read only after done
	done   chan struct{} // closed once the process has exited and been reaped
}

// start runs blockmix --repo REPO args in the background; t.Cleanup kills
// it if it is still running when the test ends.
func (w *world) start(args ...string) *started {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	c := w.command(ctx, runOpts{}, args...)
	p := &started{cmd: c, stdout: new(bytes.Buffer), stderr: new(bytes.Buffer), done: make(chan struct{})}
	c.Stdout, c.Stderr = p.stdout, p.stderr
	if err := c.Start(); err != nil {
		cancel()
		w.t.Fatal(err)
	}
	go func() {
		_ = c.Wait()
		cancel()
		close(p.done)
	}()
	w.t.Cleanup(func() {
		_ = c.Process.Kill()
		<-p.done
	})
	return p
}

// exited reports whether the process has ended.
func (p *started) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// kill sends SIGKILL and waits for the process to end. It reports whether
// the signal ended it (false: it had exited 0 on its own already).
func (p *started) kill(t testing.TB) (killed bool) {
	t.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
	ws, ok := p.cmd.ProcessState.Sys().(syscall.WaitStatus)
	if !ok {
		t.Fatalf("no wait status")
	}
	if ws.Signaled() {
		return true
	}
	if code := ws.ExitStatus(); code != 0 {
		t.Fatalf("blockmix %v exited %d before it was killed:\n%s", p.cmd.Args[1:], code, p.stderr.Bytes())
	}
	return false
}

// kept is a file whose put succeeded: it must come back at every check.
type kept struct {
	name   string
	recipe string
	sum    [32]byte
}

func checkKept(t *testing.T, w *world, files []kept) {
	t.Helper()
	for _, k := range files {
		if got := w.getSum(k.recipe); got != k.sum {
			t.Fatalf("%s no longer gets back byte-identical", k.name)
		}
	}
}

// TestKillPut kills a put of a 48 MiB file at seeded random points. After
// each kill the store must verify clean, take and give back a new file, and
// still give back every file put before.
func TestKillPut(t *testing.T) {
	if testing.Short() {
		t.Skip("puts 48 MiB seven times")
	}
	w := newWorld(t)
	rng := rand.New(rand.NewPCG(48, 6))
	var files []kept

	// A small file and a big one before any crash; the big put's time bounds
	// the kill delays.
	smallSum := writeRandomFile(t, w.path("before-small.bin"), 1, 300<<10)
	files = append(files, kept{"before-small.bin", w.okLine("put", "before-small.bin"), smallSum})
	bigSum := writeRandomFile(t, w.path("before-big.bin"), 2, crashFileSize)
	r := w.want(0, "put", "before-big.bin")
	full := r.dur
	files = append(files, kept{"before-big.bin", strings.TrimSpace(string(r.stdout)), bigSum})
	os.Remove(w.path("before-big.bin"))
	const minDelay = 20 * time.Millisecond
	full = max(full, minDelay+time.Millisecond)
	t.Logf("a full put of %d MiB took %v", crashFileSize>>20, full)

	for round := range 6 {
		name := fmt.Sprintf("crash-%d.bin", round)
		sum := writeRandomFile(t, w.path(name), uint64(100+round), crashFileSize)
		delay := minDelay + time.Duration(rng.Int64N(int64(full-minDelay)))
		p := w.start("put", name)
		time.Sleep(delay)
		if p.kill(t) {
			t.Logf("round %d: killed the put after %v", round, delay)
		} else {
			t.Logf("round %d: the put finished before the kill at %v", round, delay)
			files = append(files, kept{name, strings.TrimSpace(p.stdout.String()), sum})
		}
		os.Remove(w.path(name))

		// The store is sound and usable.
		if r := w.run("verify"); r.code != 0 {
			t.Fatalf("round %d: verify after the kill:\n%v", round, r)
		}
		after := fmt.Sprintf("after-%d.bin", round)
		data := randBytes(uint64(200+round), 1<<20+round)
		w.file(after, data)
		rc := w.okLine("put", after)
		if got := w.getFile(rc); !bytes.Equal(got, data) {
			t.Fatalf("round %d: a file put after the kill does not get back byte-identical", round)
		}
		files = append(files, kept{after, rc, sha256.Sum256(data)})
		checkKept(t, w, files)
	}
	if s := w.stat(); s.Files < len(files) || s.Quarantined != 0 {
		t.Errorf("stat after the kills: %+v; want at least %d files and nothing quarantined", s, len(files))
	}
}

// TestKillGet kills a get halfway through writing and checks that nothing
// is left under the output name, and that the next get works.
func TestKillGet(t *testing.T) {
	if testing.Short() {
		t.Skip("puts and gets 48 MiB")
	}
	w := newWorld(t)
	sum := writeRandomFile(t, w.path("big.bin"), 3, crashFileSize)
	rc := w.okLine("put", "big.bin")
	os.Remove(w.path("big.bin"))

	killed := false
	for attempt := 0; attempt < 5 && !killed; attempt++ {
		out := fmt.Sprintf("out-%d.bin", attempt)
		p := w.start("get", "-o", out, rc)
		// Wait until the temporary file is at least half written, then kill.
		pattern := filepath.Join(w.dir, "."+out+".blockmix-partial-*")
		partial := ""
		for !p.exited() && partial == "" {
			if ps, _ := filepath.Glob(pattern); len(ps) == 1 {
				if fi, err := os.Stat(ps[0]); err == nil && fi.Size() >= crashFileSize/2 && fi.Size() < crashFileSize {
					partial = ps[0]
					break
				}
			}
			time.Sleep(time.Millisecond)
		}
		if partial == "" || !p.kill(t) {
			p.kill(t)
			t.Logf("attempt %d: the get finished before it was half written", attempt)
			os.Remove(w.path(out))
			continue
		}
		killed = true
		mustNotExist(t, w.path(out))
		t.Logf("killed get -o %s halfway; it left %s behind (nothing removes a killed get's temporary file)",
			out, filepath.Base(partial))
		// The name is free: a second get writes it.
		w.ok("get", "-o", out, rc)
		if got := fileSum(t, w.path(out)); got != sum {
			t.Fatalf("the get after the killed one is not byte-identical")
		}
	}
	if !killed {
		t.Skip("every get finished before it could be killed halfway")
	}
	w.ok("verify")
}

// TestDiskFull runs a put that cannot write its blocks (a file-size limit
// stands in for a full disk: writes fail with EFBIG, as with ENOSPC): it
// must fail with a clear error, and leave a store that verifies, still
// serves the files put before, and takes new puts.
func TestDiskFull(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	small := randBytes(60, 20<<10)
	w.file("small.bin", small)
	rcSmall := w.okLine("put", "small.bin")
	big := randBytes(61, 4<<20)
	w.file("big.bin", big)

	// 2048 blocks of 512 bytes (or of 1 KiB, as some shells count): 1 or
	// 2 MiB, either way well short of the 4 MiB file.
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	script := `trap '' XFSZ; ulimit -f 2048 || exit 99; exec "$0" "$@"`
	c := exec.CommandContext(ctx, "sh", "-c", script, binPath, "--repo", w.repo, "put", "big.bin")
	c.Env, c.Dir = w.environ(runOpts{}), w.dir
	var stderr bytes.Buffer
	c.Stderr = &stderr
	err := c.Run()
	code := c.ProcessState.ExitCode()
	if err == nil || code != exitFailure {
		t.Fatalf("put with a full disk: exit %d (%v), want %d\n%s", code, err, exitFailure, stderr.Bytes())
	}
	if !strings.Contains(stderr.String(), "file too large") || !strings.Contains(stderr.String(), "disk that holds the repo is full") {
		t.Errorf("put with a full disk does not say why: %s", stderr.Bytes())
	}

	w.ok("verify")
	if got := w.getFile(rcSmall); !bytes.Equal(got, small) {
		t.Fatal("the file put before the failed put no longer rebuilds")
	}
	rcBig := w.okLine("put", "big.bin")
	if got := w.getFile(rcBig); !bytes.Equal(got, big) {
		t.Fatal("a put after the failed put does not rebuild")
	}
	if s := w.stat(); s.Files != 2 {
		t.Errorf("stat: %d files, want 2 (the failed put must record nothing)", s.Files)
	}
}
