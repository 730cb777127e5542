package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/blockmix/blockmix/cmd/blockmix/internal/atomicfile"
	"github.com/blockmix/blockmix/cmd/blockmix/internal/base"
)

const crashFileSize = 48 << 20

// started is a blockmix process a test runs in the background.
type started struct {
	cmd    *exec.Cmd
	stdout *bytes.Buffer // read only after done
	stderr *bytes.Buffer // read only after done, or through stderrNow
	done   chan struct{} // closed once the process has exited and been reaped
	errMu  sync.Mutex    // held while stderr is written
}

// lockedWriter writes to w under mu.
type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}

// stderrNow returns what the process wrote to its standard error so far;
// unlike stderr, it may be read while the process runs.
func (p *started) stderrNow() string {
	p.errMu.Lock()
	defer p.errMu.Unlock()
	return p.stderr.String()
}

// start runs blockmix --repo REPO args in the background; t.Cleanup kills
// it if it is still running when the test ends.
func (w *world) start(args ...string) *started {
	w.t.Helper()
	return w.startWith(runOpts{}, args...)
}

// startPaused starts blockmix args with BLOCKMIX_TEST_PAUSE_AFTER=after
// (see testhook) and waits, at most a minute, until it says it paused.
func (w *world) startPaused(after int, args ...string) *started {
	w.t.Helper()
	p := w.startWith(runOpts{env: []string{fmt.Sprintf("BLOCKMIX_TEST_PAUSE_AFTER=%d", after)}}, args...)
	deadline := time.Now().Add(60 * time.Second)
	for !strings.Contains(p.stderrNow(), "paused") {
		if p.exited() || time.Now().After(deadline) {
			p.kill(w.t)
			w.t.Fatalf("blockmix %s did not pause after %d bytes (exited: %v):\n%s", strings.Join(args, " "), after, p.exited(), p.stderrNow())
		}
		time.Sleep(5 * time.Millisecond)
	}
	return p
}

// startWith is start with the less common options (o.stdout is ignored:
// the output goes to the started's buffers).
func (w *world) startWith(o runOpts, args ...string) *started {
	w.t.Helper()
	life := cmdTimeout
	if o.life > 0 {
		life = o.life
	}
	ctx, cancel := context.WithTimeout(context.Background(), life)
	c := w.command(ctx, o, args...)
	p := &started{cmd: c, stdout: new(bytes.Buffer), stderr: new(bytes.Buffer), done: make(chan struct{})}
	c.Stdout, c.Stderr = p.stdout, lockedWriter{&p.errMu, p.stderr}
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
// is under the output name, that the temporary file is left behind, and
// that the next get works. BLOCKMIX_TEST_PAUSE_AFTER makes the get stop
// for good once half the file is written, so the kill lands halfway
// however fast the machine is.
func TestKillGet(t *testing.T) {
	if testing.Short() {
		t.Skip("puts and gets 48 MiB")
	}
	w := newWorld(t)
	sum := writeRandomFile(t, w.path("big.bin"), 3, crashFileSize)
	rc := w.okLine("put", "big.bin")
	os.Remove(w.path("big.bin"))

	const half = crashFileSize / 2
	const out = "out.bin"
	p := w.startWith(runOpts{env: []string{fmt.Sprintf("BLOCKMIX_TEST_PAUSE_AFTER=%d", half)}}, "get", "-o", out, rc)
	// Wait until the get says it paused and its temporary file holds half
	// the file, then kill it.
	pattern := filepath.Join(w.dir, "."+out+".blockmix-partial-*")
	partial := ""
	deadline := time.Now().Add(60 * time.Second)
	for partial == "" {
		if strings.Contains(p.stderrNow(), "paused") {
			if ps, _ := filepath.Glob(pattern); len(ps) == 1 {
				if fi, err := os.Stat(ps[0]); err == nil && fi.Size() >= half {
					partial = ps[0]
					break
				}
			}
		}
		if p.exited() {
			t.Fatalf("get -o %s ended (%v) before it wrote half the file and paused:\n%s", out, p.cmd.ProcessState, p.stderr.Bytes())
		}
		if time.Now().After(deadline) {
			p.kill(t)
			t.Fatalf("get -o %s did not pause with half the file written within 60 s:\n%s", out, p.stderr.Bytes())
		}
		time.Sleep(5 * time.Millisecond)
	}
	if !p.kill(t) {
		t.Fatalf("get -o %s finished instead of pausing halfway:\n%s", out, p.stderr.Bytes())
	}

	mustNotExist(t, w.path(out))
	fi, err := os.Stat(partial)
	if err != nil {
		t.Fatalf("the killed get's temporary file is gone: %v", err)
	}
	if fi.Size() < half || fi.Size() >= crashFileSize {
		t.Errorf("the killed get left %d bytes, want at least %d and fewer than %d", fi.Size(), half, crashFileSize)
	}
	t.Logf("killed get -o %s at %d of %d bytes; it left %s behind",
		out, fi.Size(), crashFileSize, filepath.Base(partial))

	// The name is free: a second get writes it, and sweeps the killed
	// get's temporary file away (nothing holds its lock any more).
	r := w.want(0, "get", "-o", out, rc)
	if got := fileSum(t, w.path(out)); got != sum {
		t.Fatalf("the get after the killed one is not byte-identical")
	}
	mustNotExist(t, partial)
	if ps := partials(t, w.dir); len(ps) != 0 || !strings.Contains(string(r.stderr), "removed 1 partial files") {
		t.Fatalf("after the second get: partial files %v; it said:\n%s", ps, r.stderr)
	}
	w.ok("verify")
}

// TestSweepSparesRunningGets: a get that is writing holds its temporary
// file's lock, so the sweep of a later get into the same folder leaves it
// alone, and removes it once the get was killed.
func TestSweepSparesRunningGets(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	const size = 4 << 20
	w.file("a.bin", randBytes(92, size))
	rc := w.okLine("put", "a.bin")
	p := w.startPaused(size/2, "get", "-o", "one.bin", rc)
	// The paused get (another process) holds its partial file's lock: a
	// sweep of the folder leaves it; once the get is killed, it goes.
	before := partials(t, w.dir)
	if len(before) != 1 {
		t.Fatalf("partial files while the first get runs: %v", before)
	}
	n := atomicfile.Sweep(w.dir)
	if n != 0 || len(partials(t, w.dir)) != 1 {
		t.Fatalf("a sweep while the get runs removed %d files", n)
	}
	p.kill(t)
	if n := atomicfile.Sweep(w.dir); n != 1 {
		t.Fatalf("a sweep after the get was killed removed %d files, want 1", n)
	}
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
	if err == nil || code != base.ExitFailure {
		t.Fatalf("put with a full disk: exit %d (%v), want %d\n%s", code, err, base.ExitFailure, stderr.Bytes())
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
