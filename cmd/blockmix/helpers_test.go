package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/blockmix/blockmix/blocks"
	"github.com/blockmix/blockmix/cmd/blockmix/internal/netlab"
	"github.com/blockmix/blockmix/cmd/blockmix/internal/storecmd"
)

// afterRun holds what TestMain does once every test and benchmark is done.
var afterRun []func()

// binPath is the blockmix binary TestMain builds for the tests and the
// benchmarks to run as a subprocess.
var binPath string

// cmdTimeout bounds every command a test runs.
const cmdTimeout = 3 * time.Minute

// world is one isolated place to run blockmix in: a work directory (the
// commands' current directory), a repo, and a HOME and XDG_DATA_HOME of its
// own, so that nothing a test runs can read or write the real home.
type world struct {
	t    testing.TB
	dir  string // current directory of the commands; test files go here
	repo string // passed as --repo unless a command asks otherwise
	home string
	xdg  string
	bin  string // the blockmix binary to run; "" means binPath
	// host, when set, is the lab machine the commands run on (in its
	// network namespace; see netlab).
	host *netlab.Host
}

func newWorld(t testing.TB) *world {
	t.Helper()
	return newWorldIn(t, t.TempDir())
}

// newWorldIn makes a world under root, which must exist.
func newWorldIn(t testing.TB, root string) *world {
	t.Helper()
	w := &world{
		t:    t,
		dir:  filepath.Join(root, "work"),
		repo: filepath.Join(root, "repo"),
		home: filepath.Join(root, "home"),
		xdg:  filepath.Join(root, "xdg-data"),
	}
	for _, d := range []string{w.dir, w.home, w.xdg} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// An empty repo, as a first put would leave it: only put creates one.
	st, err := blocks.OpenDisk(w.repo, blocks.DiskOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	return w
}

// with returns the same world reporting to t (for subtests).
func (w *world) with(t testing.TB) *world {
	c := *w
	c.t = t
	return &c
}

// runOpts are the less common ways to run a command.
type runOpts struct {
	stdin    io.Reader
	noRepo   bool          // do not pass --repo
	env      []string      // extra KEY=VALUE entries
	unsetXDG bool          // leave XDG_DATA_HOME unset (HOME is still the world's)
	dir      string        // current directory instead of the world's
	stdout   io.Writer     // instead of a buffer (result.stdout stays empty)
	life     time.Duration // how long a started process may run; 0: cmdTimeout
}

// result is what a finished command left.
type result struct {
	args   []string
	stdout []byte
	stderr []byte
	code   int
	state  *os.ProcessState
	dur    time.Duration
}

func (r result) String() string {
	return fmt.Sprintf("blockmix %s: exit %d\nstdout: %.2000s\nstderr: %.4000s",
		strings.Join(r.args, " "), r.code, r.stdout, r.stderr)
}

// environ returns the process environment with every variable that could
// point blockmix at a real directory replaced by the world's.
func (w *world) environ(o runOpts) []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch k {
		case "HOME", "XDG_DATA_HOME", "XDG_CONFIG_HOME", "XDG_CACHE_HOME", "BLOCKMIX_REPO", "GORACE":
			continue
		}
		env = append(env, kv)
	}
	if raceBuild {
		// A -race binary sleeps 1 s at exit by default, waiting for late
		// reports; a short wait keeps the tests quick. GORACE set by the
		// caller still wins.
		env = append(env, strings.TrimSpace("GORACE=atexit_sleep_ms=50 "+os.Getenv("GORACE")))
	}
	env = append(env, "HOME="+w.home)
	if !o.unsetXDG {
		env = append(env, "XDG_DATA_HOME="+w.xdg)
	}
	return append(env, o.env...)
}

// command prepares blockmix with args (after --repo, unless o.noRepo).
func (w *world) command(ctx context.Context, o runOpts, args ...string) *exec.Cmd {
	if !o.noRepo {
		args = append([]string{"--repo", w.repo}, args...)
	}
	bin := binPath
	if w.bin != "" {
		bin = w.bin
	}
	c := exec.CommandContext(ctx, bin, args...)
	c.Env = w.environ(o)
	c.Dir = w.dir
	if o.dir != "" {
		c.Dir = o.dir
	}
	c.Stdin = o.stdin
	c.WaitDelay = 10 * time.Second
	if w.host != nil {
		c.Env = append(c.Env, "BLOCKMIX_LAB_INTERNET="+netlab.Internet)
		w.host.Wrap(c)
	}
	return c
}

// runWith runs blockmix to the end and returns what it left. It fails the
// test when the command could not be run at all, timed out, or (under
// -race) reported a data race.
func (w *world) runWith(o runOpts, args ...string) result {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	c := w.command(ctx, o, args...)
	var stdout, stderr bytes.Buffer
	c.Stdout, c.Stderr = &stdout, &stderr
	if o.stdout != nil {
		c.Stdout = o.stdout
	}
	start := time.Now()
	err := c.Run()
	r := result{args: args, stdout: stdout.Bytes(), stderr: stderr.Bytes(), state: c.ProcessState, dur: time.Since(start)}
	var ee *exec.ExitError
	switch {
	case ctx.Err() != nil:
		w.t.Fatalf("blockmix %s: timed out after %v\n%v", strings.Join(args, " "), cmdTimeout, r)
	case err == nil:
	case errors.As(err, &ee) && ee.Exited():
	default:
		w.t.Fatalf("blockmix %s: %v\n%v", strings.Join(args, " "), err, r)
	}
	r.code = c.ProcessState.ExitCode()
	if bytes.Contains(r.stderr, []byte("WARNING: DATA RACE")) {
		w.t.Errorf("the binary reported a data race:\n%v", r)
	}
	return r
}

// run runs blockmix --repo REPO args.
func (w *world) run(args ...string) result {
	w.t.Helper()
	return w.runWith(runOpts{}, args...)
}

// ok runs blockmix --repo REPO args, fails the test unless it exits 0, and
// returns its standard output.
func (w *world) ok(args ...string) []byte {
	w.t.Helper()
	r := w.run(args...)
	if r.code != 0 {
		w.t.Fatalf("want exit 0:\n%v", r)
	}
	return r.stdout
}

// okLine is ok for commands that print one line.
func (w *world) okLine(args ...string) string {
	w.t.Helper()
	return strings.TrimSpace(string(w.ok(args...)))
}

// want runs blockmix --repo REPO args and fails the test unless it exits
// with code.
func (w *world) want(code int, args ...string) result {
	w.t.Helper()
	r := w.run(args...)
	if r.code != code {
		w.t.Fatalf("want exit %d:\n%v", code, r)
	}
	return r
}

// file writes data to name in the work directory and returns its path.
func (w *world) file(name string, data []byte) string {
	w.t.Helper()
	p := filepath.Join(w.dir, name)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		w.t.Fatal(err)
	}
	return p
}

// path returns name in the work directory.
func (w *world) path(name string) string { return filepath.Join(w.dir, name) }

// stat runs stat --json.
func (w *world) stat() jsonStat {
	w.t.Helper()
	var s jsonStat
	decodeStrict(w.t, w.ok("stat", "--json"), &s)
	return s
}

// blockIDs runs block ls and parses every line.
func (w *world) blockIDs() []blocks.ID {
	w.t.Helper()
	var ids []blocks.ID
	for _, line := range strings.Split(strings.TrimSpace(string(w.ok("block", "ls"))), "\n") {
		if line == "" {
			continue
		}
		id, err := blocks.ParseID(line)
		if err != nil {
			w.t.Fatalf("block ls printed %q: %v", line, err)
		}
		ids = append(ids, id)
	}
	return ids
}

// getFile runs get -o into a fresh name in the work directory and returns
// the bytes written.
func (w *world) getFile(recipe string) []byte {
	w.t.Helper()
	f, err := os.CreateTemp(w.dir, "got-*")
	if err != nil {
		w.t.Fatal(err)
	}
	f.Close()
	os.Remove(f.Name())
	w.ok("get", "-o", f.Name(), recipe)
	b, err := os.ReadFile(f.Name())
	if err != nil {
		w.t.Fatal(err)
	}
	os.Remove(f.Name())
	return b
}

// getSum runs get -o into a fresh name and returns the output's sha256
// (for big files).
func (w *world) getSum(recipe string) [32]byte {
	w.t.Helper()
	p := filepath.Join(w.dir, fmt.Sprintf("got-%d", time.Now().UnixNano()))
	w.ok("get", "-o", p, recipe)
	defer os.Remove(p)
	return fileSum(w.t, p)
}

func fileSum(t testing.TB, path string) [32]byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return [32]byte(h.Sum(nil))
}

// partials lists the temporary files get leaves in dir while it writes.
func partials(t testing.TB, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		if strings.Contains(e.Name(), ".blockmix-partial-") {
			out = append(out, e.Name())
		}
	}
	return out
}

func mustNotExist(t testing.TB, path string) {
	t.Helper()
	if _, err := os.Lstat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s: want no such file, got err=%v", path, err)
	}
}

// randBytes returns n pseudo-random bytes, the same for the same seed.
func randBytes(seed uint64, n int) []byte {
	var s [32]byte
	binary.LittleEndian.PutUint64(s[:], seed)
	b := make([]byte, n)
	_, _ = rand.NewChaCha8(s).Read(b)
	return b
}

// writeRandomFile writes n seeded pseudo-random bytes to path in chunks and
// returns their sha256.
func writeRandomFile(t testing.TB, path string, seed uint64, n int64) [32]byte {
	t.Helper()
	var s [32]byte
	binary.LittleEndian.PutUint64(s[:], seed)
	src := rand.NewChaCha8(s)
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	buf := make([]byte, 4<<20)
	for left := n; left > 0; {
		k := min(left, int64(len(buf)))
		_, _ = src.Read(buf[:k])
		h.Write(buf[:k])
		if _, err := f.Write(buf[:k]); err != nil {
			f.Close()
			t.Fatal(err)
		}
		left -= k
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return [32]byte(h.Sum(nil))
}

// The JSON the commands print, spelled out here rather than borrowed from
// the command code so that a renamed field breaks a test.
type jsonPut struct {
	Recipe    string `json:"recipe"`
	URL       string `json:"url"`
	Name      string `json:"name"`
	Size      int64  `json:"size"`
	Type      string `json:"type"`
	NewBytes  int64  `json:"new_bytes"`
	NewBlocks int    `json:"new_blocks"`
	Blocks    int    `json:"blocks"`
}

// jsonStat is what stat --json prints.
type jsonStat = storecmd.StatOutput

type jsonVerify struct {
	Checked     int         `json:"checked"`
	Bytes       int64       `json:"bytes"`
	Quarantined []blocks.ID `json:"quarantined"`
}

// decodeStrict decodes one JSON value into v and fails the test when the
// text has fields v does not know or misses fields v has.
func decodeStrict(t testing.TB, b []byte, v any) {
	t.Helper()
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	if err := d.Decode(v); err != nil {
		t.Fatalf("decode %T from %s: %v", v, b, err)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
	want, _ := json.Marshal(v)
	var all map[string]json.RawMessage
	_ = json.Unmarshal(want, &all)
	for k := range all {
		if _, ok := m[k]; !ok {
			t.Errorf("%T: field %q missing from %s", v, k, b)
		}
	}
}

// jsonLines decodes one jsonPut per line.
func jsonLines(t testing.TB, b []byte) []jsonPut {
	t.Helper()
	var out []jsonPut
	for _, line := range bytes.Split(bytes.TrimSpace(b), []byte("\n")) {
		var p jsonPut
		decodeStrict(t, line, &p)
		out = append(out, p)
	}
	return out
}
