package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// jsonSealedPut is what put --json prints with a passphrase.
type jsonSealedPut struct {
	jsonPut
	Sealed bool `json:"sealed"`
}

const testPassphrase = "correct horse battery staple"

// sealedWorld is a world with a file put under a passphrase.
type sealedWorld struct {
	*world
	data     []byte
	name     string
	passFile string // holds testPassphrase
	sealed   string // the blockmix:sealed:… line put printed
}

func newSealedWorld(t *testing.T) *sealedWorld {
	t.Helper()
	w := newWorld(t)
	sw := &sealedWorld{world: w, data: randBytes(70, 300<<10+11), name: "Secret Report 2026.pdf"}
	w.file(sw.name, sw.data)
	sw.passFile = w.file("pass.txt", []byte(testPassphrase+"\n"))
	return sw
}

// checkSealedText fails unless s is a sealed spelling that does not hold
// the file's name.
func (sw *sealedWorld) checkSealedText(t *testing.T, s, prefix string) {
	t.Helper()
	if !strings.HasPrefix(s, prefix) || strings.ContainsAny(s, " \n") {
		t.Fatalf("sealed recipe %q: want one word starting %q", s, prefix)
	}
	for _, part := range []string{"secret", "report", "2026", ".pdf", "%20"} {
		if strings.Contains(strings.ToLower(s), part) {
			t.Errorf("sealed recipe %q shows %q of the name", s, part)
		}
	}
}

// TestSealedPutGet: put --passphrase-file prints a sealed recipe in every
// output form; get opens it with the passphrase from a file or standard
// input into the very bytes and name; a wrong, missing or mistyped
// passphrase or recipe exits 2 and leaves no file.
func TestSealedPutGet(t *testing.T) {
	t.Parallel()
	sw := newSealedWorld(t)
	w := sw.world

	sw.sealed = w.okLine("put", "--passphrase-file", sw.passFile, sw.name)
	sw.checkSealedText(t, sw.sealed, "blockmix:sealed:")
	t.Logf("sealed recipe for %q: %d characters", sw.name, len(sw.sealed))
	web := w.okLine("put", "--web", "--passphrase-file", sw.passFile, sw.name)
	sw.checkSealedText(t, web, "http://127.0.0.1:7788/r/sealed:")
	var js jsonSealedPut
	decodeStrict(t, w.ok("put", "--json", "--passphrase-file", sw.passFile, sw.name), &js)
	if !js.Sealed || js.Name != sw.name || js.Size != int64(len(sw.data)) {
		t.Errorf("put --json: %+v", js)
	}
	sw.checkSealedText(t, js.Recipe, "blockmix:sealed:")
	sw.checkSealedText(t, js.URL, "http://127.0.0.1:7788/r/sealed:")
	if js.Recipe == sw.sealed {
		t.Error("two seals of one file gave the same text")
	}

	// Into a directory, under the sealed name.
	out := filepath.Join(w.dir, "out")
	if err := os.Mkdir(out, 0o755); err != nil {
		t.Fatal(err)
	}
	w.ok("get", "--passphrase-file", sw.passFile, "-o", out, sw.sealed)
	if got, err := os.ReadFile(filepath.Join(out, sw.name)); err != nil || !bytes.Equal(got, sw.data) {
		t.Fatalf("get of the sealed recipe: %v (%d bytes, want %d)", err, len(got), len(sw.data))
	}
	// Each spelling, pasted with a line break, passphrase on standard input.
	for i, text := range []string{web, js.Recipe, js.URL[:60] + "\n> " + js.URL[60:] + "."} {
		dest := w.path("copy-" + string(rune('a'+i)))
		r := w.runWith(runOpts{stdin: strings.NewReader(testPassphrase + "\r\n")}, "get", "--passphrase-file", "-", "-o", dest, text)
		if r.code != 0 {
			t.Fatalf("get %q with the passphrase on standard input:\n%v", text, r)
		}
		if got, _ := os.ReadFile(dest); !bytes.Equal(got, sw.data) {
			t.Fatalf("get %q: other bytes", text)
		}
	}
	// To standard output.
	if got := w.ok("get", "--passphrase-file", sw.passFile, "-o", "-", sw.sealed); !bytes.Equal(got, sw.data) {
		t.Fatal("get -o - of the sealed recipe: other bytes")
	}
	var gj struct {
		Path   string `json:"path"`
		Name   string `json:"name"`
		Size   int64  `json:"size"`
		Type   string `json:"type"`
		SHA256 string `json:"sha256"`
	}
	decodeStrict(t, w.ok("get", "--json", "--passphrase-file", sw.passFile, "-o", w.path("j.pdf"), sw.sealed), &gj)
	if gj.Name != sw.name || gj.Size != int64(len(sw.data)) {
		t.Errorf("get --json: %+v", gj)
	}

	// A wrong passphrase: exit 2, a clear message, nothing written (run in
	// an empty directory, where get would save under the recipe's name).
	wrong := w.file("wrong.txt", []byte("correct horse battery stapler\n"))
	clean := w.path("clean")
	if err := os.Mkdir(clean, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"get", "--passphrase-file", wrong, sw.sealed},
		{"get", "--passphrase-file", wrong, "-o", filepath.Join(clean, "w.pdf"), web},
		{"get", "--passphrase-file", wrong, "-o", clean, sw.sealed},
		{"get", "--passphrase-file", wrong, "-o", "-", sw.sealed},
	} {
		r := w.runWith(runOpts{dir: clean}, args...)
		if r.code != 2 || !strings.Contains(string(r.stderr), "wrong passphrase") || len(r.stdout) != 0 {
			t.Errorf("wrong passphrase: want exit 2 saying so, no output:\n%v", r)
		}
	}
	if ents, _ := os.ReadDir(clean); len(ents) != 0 {
		t.Errorf("a get with a wrong passphrase left %v", ents)
	}

	// No passphrase and no terminal to ask on.
	r := w.want(2, "get", "-o", w.path("n.pdf"), sw.sealed)
	if !strings.Contains(string(r.stderr), "--passphrase-file") {
		t.Errorf("get without a passphrase:\n%v", r)
	}
	mustNotExist(t, w.path("n.pdf"))

	// A typo in the sealed text is a damaged recipe, not a wrong passphrase.
	k := len("blockmix:sealed:") + 40
	typo := sw.sealed[:k] + map[bool]string{true: "b", false: "a"}[sw.sealed[k] == 'a'] + sw.sealed[k+1:]
	r = w.want(2, "get", "--passphrase-file", sw.passFile, "-o", w.path("t.pdf"), typo)
	if !strings.Contains(string(r.stderr), "damaged") || strings.Contains(string(r.stderr), "wrong passphrase") {
		t.Errorf("get of a mistyped sealed recipe:\n%v", r)
	}
	mustNotExist(t, w.path("t.pdf"))
	if p := partials(t, w.dir); len(p) != 0 {
		t.Errorf("partial files left: %v", p)
	}

	// put refuses before any work: no terminal, both flags, an empty
	// first line, standard input wanted twice.
	before := w.ok("files")
	empty := w.file("empty.txt", []byte("\nsecond line\n"))
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"put", "--passphrase", sw.name}, "--passphrase-file"},
		{[]string{"put", "--passphrase", "--passphrase-file", sw.passFile, sw.name}, "only one"},
		{[]string{"put", "--passphrase-file", empty, sw.name}, "empty"},
		{[]string{"put", "--passphrase-file", w.path("nope.txt"), sw.name}, "nope.txt"},
		{[]string{"put", "--passphrase-file", "-", "-"}, "standard input"},
	} {
		r := w.runWith(runOpts{stdin: strings.NewReader("data")}, c.args...)
		if r.code != 2 || !strings.Contains(string(r.stderr), c.want) || len(r.stdout) != 0 {
			t.Errorf("want exit 2 mentioning %q:\n%v", c.want, r)
		}
	}
	if after := w.ok("files"); !bytes.Equal(after, before) {
		t.Errorf("a refused put recorded a file:\n%s", after)
	}

	// A short passphrase works, with a warning.
	short := w.file("short.txt", []byte("pw"))
	r = w.want(0, "put", "--passphrase-file", short, sw.name)
	if !strings.Contains(string(r.stderr), "warning") {
		t.Errorf("no warning for a two-letter passphrase:\n%v", r)
	}
	if got := w.ok("get", "--passphrase-file", short, "-o", "-", strings.TrimSpace(string(r.stdout))); !bytes.Equal(got, sw.data) {
		t.Error("the recipe sealed with a short passphrase gives other bytes")
	}
}

// TestSealedThroughDaemon: with a daemon on the repo, put seals the
// daemon's recipe and get opens a sealed recipe locally, then fetches
// through the daemon; the daemon never gets the passphrase.
func TestSealedThroughDaemon(t *testing.T) {
	t.Parallel()
	sw := newSealedWorld(t)
	w := sw.world
	offline := w.okLine("put", "--passphrase-file", sw.passFile, sw.name)

	p, _ := startDaemon(t, w, nil)
	// The daemon holds the repo: a command that opened the store itself
	// would fail with "in use", so each success went through the daemon.
	online := w.okLine("put", "--passphrase-file", sw.passFile, sw.name)
	sw.checkSealedText(t, online, "blockmix:sealed:")
	for _, text := range []string{offline, online} {
		if got := w.ok("get", "--passphrase-file", sw.passFile, "-o", "-", text); !bytes.Equal(got, sw.data) {
			t.Fatalf("get %q through the daemon: other bytes", text)
		}
		dest := w.path("through-daemon.pdf")
		w.ok("get", "--passphrase-file", sw.passFile, "-o", dest, text)
		if got, _ := os.ReadFile(dest); !bytes.Equal(got, sw.data) {
			t.Fatalf("get %q through the daemon into a file: other bytes", text)
		}
		os.Remove(dest)
	}
	wrong := w.file("wrong.txt", []byte("not it\n"))
	r := w.want(2, "get", "--passphrase-file", wrong, "-o", w.path("w.pdf"), online)
	if !strings.Contains(string(r.stderr), "wrong passphrase") {
		t.Errorf("wrong passphrase through the daemon:\n%v", r)
	}
	mustNotExist(t, w.path("w.pdf"))
	if p := partials(t, w.dir); len(p) != 0 {
		t.Errorf("partial files left: %v", p)
	}
	stopDaemon(t, p)
	if strings.Contains(p.stderr.String(), testPassphrase) || strings.Contains(p.stdout.String(), testPassphrase) {
		t.Error("the daemon's output holds the passphrase")
	}
}

// TestSealedHelp: put and get say how to seal and open.
func TestSealedHelp(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	for _, c := range []struct {
		cmd  string
		want []string
	}{
		{"put", []string{"--passphrase ", "--passphrase-file", "blockmix:sealed:", "sealed"}},
		{"get", []string{"--passphrase-file", "sealed", "wrong passphrase", "code 2"}},
	} {
		r := w.runWith(runOpts{noRepo: true}, c.cmd, "--help")
		if r.code != 0 {
			t.Fatalf("want exit 0:\n%v", r)
		}
		for _, s := range c.want {
			if !strings.Contains(string(r.stdout), s) {
				t.Errorf("%s --help does not mention %q:\n%s", c.cmd, s, r.stdout)
			}
		}
	}
}

// terminal is a blockmix command run under script(1), which gives it a
// pseudo-terminal as standard input, output and error.
type terminal struct {
	t      *testing.T
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	mu     sync.Mutex
	shown  bytes.Buffer  // everything the terminal showed
	closed chan struct{} // closed once the output has ended
	tty    string        // the terminal device, once waitEchoOff found it
}

// onTerminal starts blockmix --repo REPO args on a terminal; it skips the
// test where util-linux's script is missing.
func (w *world) onTerminal(t *testing.T, args ...string) *terminal {
	t.Helper()
	if runtime.GOOS != "linux" {
		t.Skip("script(1) of util-linux is needed")
	}
	script, err := exec.LookPath("script")
	if err != nil {
		t.Skip("script(1) of util-linux is needed")
	}
	if _, err := exec.LookPath("stty"); err != nil {
		t.Skip("stty(1) is needed to see the terminal's echo")
	}
	line := shellQuote(binPath) + " --repo " + shellQuote(w.repo)
	for _, a := range args {
		line += " " + shellQuote(a)
	}
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	t.Cleanup(cancel)
	// -q: no banners, -e: its exit code is the command's, -f: no buffering.
	c := exec.CommandContext(ctx, script, "-qef", "-c", line, "/dev/null")
	c.Env = append(w.environ(runOpts{}), "SHELL=/bin/sh")
	c.Dir = w.dir
	c.WaitDelay = 10 * time.Second
	tm := &terminal{t: t, cmd: c, closed: make(chan struct{})}
	if tm.stdin, err = c.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	out, err := c.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(tm.closed)
		buf := make([]byte, 4096)
		for {
			n, err := out.Read(buf)
			tm.mu.Lock()
			tm.shown.Write(buf[:n])
			tm.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	return tm
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

func (tm *terminal) text() string {
	tm.mu.Lock()
	defer tm.mu.Unlock()
	return tm.shown.String()
}

// answer waits until the terminal shows prompt for the nth time, then
// types line and Enter.
func (tm *terminal) answer(prompt string, nth int, line string) {
	tm.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for strings.Count(tm.text(), prompt) < nth {
		if time.Now().After(deadline) {
			tm.t.Fatalf("no prompt %q within 30 s; the terminal shows:\n%s", prompt, tm.text())
		}
		time.Sleep(10 * time.Millisecond)
	}
	// The prompt shows just before the terminal's echo is turned off; a
	// line typed in between would be echoed.
	tm.waitEchoOff(prompt)
	if _, err := io.WriteString(tm.stdin, line+"\r"); err != nil {
		tm.t.Fatal(err)
	}
}

// waitEchoOff waits until the command's terminal no longer echoes what
// is typed: the command reads a passphrase.
func (tm *terminal) waitEchoOff(prompt string) {
	tm.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if tm.tty == "" {
			tm.tty = ttyOf(tm.cmd.Process.Pid)
		}
		if tm.tty != "" {
			out, err := exec.Command("stty", "-F", tm.tty, "-a").Output()
			if err == nil && slices.Contains(strings.Fields(string(out)), "-echo") {
				return
			}
		}
		select {
		case <-tm.closed:
			tm.t.Fatalf("the command ended while it should ask %q; the terminal shows:\n%s", prompt, tm.text())
		default:
		}
		if time.Now().After(deadline) {
			tm.t.Fatalf("the terminal (%q) still echoes 30 s after the prompt %q; it shows:\n%s", tm.tty, prompt, tm.text())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// ttyOf returns the terminal script(1) (process pid) gave the command:
// the standard input of one of its descendants; "" while there is none.
func ttyOf(pid int) string {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return ""
	}
	parent := make(map[int]int)
	for _, e := range ents {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// After the command name in parentheses: state, then the parent.
		f := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
		if len(f) < 2 {
			continue
		}
		if pp, err := strconv.Atoi(f[1]); err == nil {
			parent[p] = pp
		}
	}
	for p := range parent {
		a := parent[p]
		for range len(parent) { // bounded: a stale read may leave a cycle
			if a == pid || a <= 1 {
				break
			}
			a = parent[a]
		}
		if a != pid {
			continue
		}
		if l, err := os.Readlink(filepath.Join("/proc", strconv.Itoa(p), "fd", "0")); err == nil && strings.HasPrefix(l, "/dev/pts/") {
			return l
		}
	}
	return ""
}

// wait returns the exit code and what the terminal showed.
func (tm *terminal) wait() (int, string) {
	tm.t.Helper()
	<-tm.closed
	err := tm.cmd.Wait()
	tm.stdin.Close()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		tm.t.Fatalf("script: %v\n%s", err, tm.text())
	}
	return tm.cmd.ProcessState.ExitCode(), tm.text()
}

// TestSealedOnTerminal: put --passphrase asks twice on the terminal without
// echo, get asks once; two different passphrases and a wrong one exit 2.
func TestSealedOnTerminal(t *testing.T) {
	t.Parallel()
	sw := newSealedWorld(t)
	w := sw.world
	const put1, put2, get1 = "passphrase to seal the recipe: ", "the same passphrase again: ", "passphrase of the sealed recipe: "

	tm := w.onTerminal(t, "put", "--passphrase", sw.name)
	tm.answer(put1, 1, testPassphrase)
	tm.answer(put2, 1, testPassphrase)
	code, shown := tm.wait()
	if code != 0 || strings.Contains(shown, testPassphrase) {
		t.Fatalf("put --passphrase on a terminal: exit %d (want 0, no echo):\n%s", code, shown)
	}
	sealed := ""
	for _, f := range strings.Fields(shown) {
		if strings.HasPrefix(f, "blockmix:sealed:") {
			sealed = f
		}
	}
	sw.checkSealedText(t, sealed, "blockmix:sealed:")

	dest := w.path("from-terminal.pdf")
	tm = w.onTerminal(t, "get", "-o", dest, sealed)
	tm.answer(get1, 1, testPassphrase)
	if code, shown := tm.wait(); code != 0 || strings.Contains(shown, testPassphrase) {
		t.Fatalf("get on a terminal: exit %d (want 0, no echo):\n%s", code, shown)
	}
	if got, _ := os.ReadFile(dest); !bytes.Equal(got, sw.data) {
		t.Fatal("get on a terminal: other bytes")
	}

	tm = w.onTerminal(t, "put", "--passphrase", sw.name)
	tm.answer(put1, 1, testPassphrase)
	tm.answer(put2, 1, testPassphrase+"!")
	if code, shown := tm.wait(); code != 2 || !strings.Contains(shown, "differ") || strings.Contains(shown, "blockmix:sealed:") {
		t.Errorf("put with two different passphrases: exit %d, want 2:\n%s", code, shown)
	}

	dest = w.path("wrong-terminal.pdf")
	tm = w.onTerminal(t, "get", "-o", dest, sealed)
	tm.answer(get1, 1, "not the passphrase")
	if code, shown := tm.wait(); code != 2 || !strings.Contains(shown, "wrong passphrase") {
		t.Errorf("get with a wrong passphrase on a terminal: exit %d, want 2:\n%s", code, shown)
	}
	mustNotExist(t, dest)
}

// TestSealedPinUnpin: pin and unpin take a sealed recipe with its
// passphrase, and refuse a wrong one.
func TestSealedPinUnpin(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	pass := w.file("pass.txt", []byte("a long enough passphrase\n"))
	wrong := w.file("wrong.txt", []byte("not the passphrase at all\n"))
	sealed := w.okLine("--no-progress", "put", "--passphrase-file", pass, w.file("s.bin", randBytes(5, 50<<10)))
	if out := w.okLine("unpin", "--passphrase-file", pass, sealed); !strings.HasPrefix(out, "unpinned s.bin") {
		t.Fatalf("unpin: %q", out)
	}
	if r := w.run("pin", "--passphrase-file", wrong, sealed); r.code != 2 || !strings.Contains(string(r.stderr), "wrong passphrase") {
		t.Fatalf("pin with a wrong passphrase:\n%v", r)
	}
	if out := w.okLine("pin", "--passphrase-file", pass, sealed); !strings.HasPrefix(out, "pinned s.bin") {
		t.Fatalf("pin: %q", out)
	}
}
