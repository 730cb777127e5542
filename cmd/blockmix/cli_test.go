package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/blockmix/blockmix/blocks"
)

// TestMain builds the real binary once; the tests and benchmarks run it as a
// subprocess. Under -race the binary is built with -race as well.
func TestMain(m *testing.M) {
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	if mode := os.Getenv("BLOCKMIX_LAB_PIPE"); mode != "" {
		return labPipe(mode) // one end of a raw TCP stream in the lab
	}
	dir, err := os.MkdirTemp("", "blockmix-cli-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	binPath = filepath.Join(dir, "blockmix")
	args := []string{"build", "-o", binPath}
	if raceBuild {
		args = append(args, "-race")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	build := exec.CommandContext(ctx, "go", append(args, ".")...)
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintf(os.Stderr, "go %s: %v\n", strings.Join(args, " "), err)
		return 1
	}
	code := m.Run()
	for _, f := range afterRun {
		f()
	}
	return code
}

// recipeName returns what follows the last "/" of a recipe line.
func recipeName(r string) string { return r[strings.LastIndexByte(r, '/')+1:] }

func TestPutGetRoundTrip(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	sizes := []int{0, 1, 1000, 20 << 10, 300 << 10, 3<<20 + 7}
	recipes := map[int]string{}
	for i, n := range sizes {
		name := fmt.Sprintf("f%d.bin", n)
		w.file(name, randBytes(uint64(i+1), n))
		rc := w.okLine("put", name) // a relative path, from the work dir
		if !strings.HasPrefix(rc, "blockmix:") || recipeName(rc) != name {
			t.Fatalf("put %s printed %q", name, rc)
		}
		if before := strings.LastIndexByte(rc, '/'); before > 256 {
			t.Errorf("recipe of %d bytes has %d characters before the name, want ≤ 256", n, before)
		}
		recipes[n] = rc
	}
	// Get them all back after all the puts, so later puts must not have
	// disturbed earlier files.
	for i, n := range sizes {
		got := w.getFile(recipes[n])
		if want := randBytes(uint64(i+1), n); !bytes.Equal(got, want) {
			t.Errorf("size %d: got %d bytes back, not the same as the %d put", n, len(got), len(want))
		}
	}
	if p := partials(t, w.dir); len(p) > 0 {
		t.Errorf("get left temporary files: %v", p)
	}
}

func TestPutSeveralFiles(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	names := []string{"c.dat", "a.dat", "b b.dat"} // not in sorted order
	sizes := []int{200 << 10, 5000, 1}
	var paths []string
	for i, name := range names {
		paths = append(paths, w.file(name, randBytes(uint64(10+i), sizes[i])))
	}
	lines := strings.Split(strings.TrimSpace(string(w.ok(append([]string{"put"}, paths...)...))), "\n")
	if len(lines) != len(names) {
		t.Fatalf("put of %d files printed %d lines: %q", len(names), len(lines), lines)
	}
	for i, line := range lines {
		r, err := parseRecipeLine(line)
		if err != nil {
			t.Fatalf("line %d: %v", i, err)
		}
		if r != names[i] {
			t.Errorf("line %d names %q, want %q (one line per file, in the order given)", i, r, names[i])
		}
		if got := w.getFile(line); !bytes.Equal(got, randBytes(uint64(10+i), sizes[i])) {
			t.Errorf("%s: the file got back differs", names[i])
		}
	}

	// --json: one object per file, in order.
	outs := jsonLines(t, w.ok(append([]string{"put", "--json"}, paths...)...))
	if len(outs) != len(names) {
		t.Fatalf("put --json of %d files printed %d objects", len(names), len(outs))
	}
	for i, o := range outs {
		if o.Name != names[i] || o.Size != int64(sizes[i]) {
			t.Errorf("object %d: name %q size %d, want %q %d", i, o.Name, o.Size, names[i], sizes[i])
		}
	}
}

// parseRecipeLine returns the (unescaped) name a recipe line ends in.
func parseRecipeLine(line string) (string, error) {
	if !strings.HasPrefix(line, "blockmix:") {
		return "", fmt.Errorf("%q is not a blockmix: recipe", line)
	}
	n := recipeName(line)
	return strings.ReplaceAll(n, "%20", " "), nil
}

func TestPutStdin(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	data := randBytes(20, 1<<20+3)
	r := w.runWith(runOpts{stdin: bytes.NewReader(data)}, "put", "--name", "from-stdin.bin", "-")
	if r.code != 0 {
		t.Fatalf("%v", r)
	}
	rc := strings.TrimSpace(string(r.stdout))
	if recipeName(rc) != "from-stdin.bin" {
		t.Fatalf("put --name from-stdin.bin - printed %q", rc)
	}
	// get without -o writes under the recipe's name, in the current directory.
	w.ok("get", rc)
	if got, err := os.ReadFile(w.path("from-stdin.bin")); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("get wrote %d bytes (err %v), want the %d put", len(got), err, len(data))
	}

	// --json from stdin knows the size only at the end; it must still be right.
	r = w.runWith(runOpts{stdin: bytes.NewReader(data)}, "put", "--json", "--name", "again.bin", "-")
	if r.code != 0 {
		t.Fatalf("%v", r)
	}
	var o jsonPut
	decodeStrict(t, r.stdout, &o)
	if o.Name != "again.bin" || o.Size != int64(len(data)) {
		t.Errorf("put --json - said name %q size %d, want again.bin %d", o.Name, o.Size, len(data))
	}

	// Without --name the recipe has no name and get picks one.
	small := randBytes(21, 100)
	r = w.runWith(runOpts{stdin: bytes.NewReader(small)}, "put", "-")
	if r.code != 0 {
		t.Fatalf("%v", r)
	}
	rc = strings.TrimSpace(string(r.stdout))
	sub := filepath.Join(w.dir, "unnamed")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	if r := w.runWith(runOpts{dir: sub}, "get", rc); r.code != 0 {
		t.Fatalf("%v", r)
	}
	ents, _ := os.ReadDir(sub)
	if len(ents) != 1 || !strings.HasPrefix(ents[0].Name(), "blockmix-") {
		t.Fatalf("get of a nameless recipe wrote %v, want one blockmix-… file", ents)
	}
	if got, _ := os.ReadFile(filepath.Join(sub, ents[0].Name())); !bytes.Equal(got, small) {
		t.Errorf("nameless file differs")
	}
}

func TestJSONOutputs(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	sizes := []int{3 << 20, 2<<20 + 5} // same block class: the second shares
	var want jsonStat
	for i, n := range sizes {
		name := fmt.Sprintf("j%d.bin", i)
		w.file(name, randBytes(uint64(30+i), n))
		before := w.stat()
		outs := jsonLines(t, w.ok("put", "--json", name))
		if len(outs) != 1 {
			t.Fatalf("put --json of one file printed %d objects", len(outs))
		}
		o := outs[0]
		after := w.stat()
		if o.Name != name || o.Size != int64(n) {
			t.Errorf("put --json: name %q size %d, want %q %d", o.Name, o.Size, name, n)
		}
		if !strings.HasPrefix(o.Recipe, "blockmix:") || recipeName(o.Recipe) != name {
			t.Errorf("put --json: recipe %q", o.Recipe)
		}
		if !strings.HasPrefix(o.URL, "http://127.0.0.1:7788/r/") ||
			strings.TrimPrefix(o.URL, "http://127.0.0.1:7788/r/") != strings.TrimPrefix(o.Recipe, "blockmix:") {
			t.Errorf("put --json: url %q does not spell recipe %q", o.URL, o.Recipe)
		}
		if o.NewBytes <= 0 || o.NewBytes != after.Bytes-before.Bytes {
			t.Errorf("put --json: new_bytes %d, but the store grew by %d bytes", o.NewBytes, after.Bytes-before.Bytes)
		}
		if o.NewBlocks != after.Blocks-before.Blocks {
			t.Errorf("put --json: new_blocks %d, but the store grew by %d blocks", o.NewBlocks, after.Blocks-before.Blocks)
		}
		// blocks counts the distinct blocks the file needs; every new
		// block is one of them (no fresh randomizer is made and not used).
		if o.Blocks < n/(128<<10) || o.NewBlocks > o.Blocks {
			t.Errorf("put --json: blocks %d for %d bytes and %d new blocks", o.Blocks, n, o.NewBlocks)
		}
		if got := w.getFile(o.Recipe); !bytes.Equal(got, randBytes(uint64(30+i), n)) {
			t.Errorf("%s: the file got back differs", name)
		}
		want.Blocks += o.NewBlocks
		want.Bytes += o.NewBytes
		want.Files++
		want.FileBytes += int64(n)
	}

	s := w.stat()
	if s.Repo != w.repo {
		t.Errorf("stat: repo %q, want %q", s.Repo, w.repo)
	}
	if s.Blocks != want.Blocks || s.Bytes != want.Bytes || s.Files != want.Files || s.FileBytes != want.FileBytes {
		t.Errorf("stat: blocks %d bytes %d files %d file_bytes %d; the puts say %d %d %d %d",
			s.Blocks, s.Bytes, s.Files, s.FileBytes, want.Blocks, want.Bytes, want.Files, want.FileBytes)
	}
	if s.SharedBlocks <= 0 || s.SharedBlocks > s.Blocks {
		t.Errorf("stat: shared_blocks %d of %d; a second file of the same class should share", s.SharedBlocks, s.Blocks)
	}
	if o := float64(s.Bytes) / float64(s.FileBytes); abs(s.Overhead-o) > 1e-9 {
		t.Errorf("stat: overhead %v, want bytes/file_bytes = %v", s.Overhead, o)
	}
	if s.Quarantined != 0 {
		t.Errorf("stat: quarantined %d in a sound store", s.Quarantined)
	}
	if s.DiskBytes < s.Bytes {
		t.Errorf("stat: disk_bytes %d < bytes %d", s.DiskBytes, s.Bytes)
	}
	if ids := w.blockIDs(); len(ids) != s.Blocks {
		t.Errorf("block ls lists %d blocks, stat says %d", len(ids), s.Blocks)
	}
	// The plain stat agrees with the JSON one.
	plain := string(w.ok("stat"))
	for _, sub := range []string{w.repo, fmt.Sprintf("blocks         %d ", s.Blocks), fmt.Sprintf("files          %d ", s.Files),
		fmt.Sprintf("shared blocks  %d ", s.SharedBlocks)} {
		if !strings.Contains(plain, sub) {
			t.Errorf("stat does not say %q:\n%s", sub, plain)
		}
	}

	var v jsonVerify
	decodeStrict(t, w.ok("verify", "--json"), &v)
	if v.Checked != s.Blocks || v.Bytes != s.Bytes || v.Quarantined == nil || len(v.Quarantined) != 0 {
		t.Errorf("verify --json: %+v; stat says %d blocks of %d bytes", v, s.Blocks, s.Bytes)
	}
	if !bytes.Contains(w.ok("verify", "--json"), []byte(`"quarantined": []`)) {
		t.Errorf(`verify --json: want "quarantined": [] (a list, not null)`)
	}
	if plain := string(w.ok("verify")); !strings.Contains(plain, fmt.Sprintf("checked %d blocks", s.Blocks)) ||
		!strings.Contains(plain, ": 0 corrupt") {
		t.Errorf("verify says %q", plain)
	}
}

func abs(x float64) float64 {
	if x < 0 {
		return -x
	}
	return x
}

func TestGetToStdout(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	data := randBytes(40, 700<<10+1)
	w.file("s.bin", data)
	rc := w.okLine("put", "s.bin")
	if err := os.Remove(w.path("s.bin")); err != nil {
		t.Fatal(err)
	}
	r := w.want(0, "get", "-o", "-", rc)
	if !bytes.Equal(r.stdout, data) {
		t.Errorf("get -o - wrote %d bytes, not the %d put", len(r.stdout), len(data))
	}
	mustNotExist(t, w.path("s.bin"))
	mustNotExist(t, w.path("-"))
	if len(r.stderr) != 0 {
		t.Errorf("get -o - wrote to stderr: %s", r.stderr)
	}
}

func TestGetRefusesToOverwrite(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	data := randBytes(50, 50<<10)
	w.file("o.bin", data)
	rc := w.okLine("put", "o.bin")
	keep := []byte("keep me\n")
	for _, args := range [][]string{
		{"get", "-o", w.path("o.bin"), rc}, // -o names an existing file
		{"get", rc},                        // the recipe's name exists here
		{"get", "--output", "o.bin", rc},
	} {
		w.file("o.bin", keep)
		r := w.want(2, args...)
		if !strings.Contains(string(r.stderr), "--force") {
			t.Errorf("%v: stderr does not say how to overwrite:\n%s", args, r.stderr)
		}
		if got, _ := os.ReadFile(w.path("o.bin")); !bytes.Equal(got, keep) {
			t.Fatalf("%v: the existing file was changed", args)
		}
	}
	// A symlink, even a dangling one, is an existing name too.
	if err := os.Symlink("nowhere", w.path("link.bin")); err != nil {
		t.Fatal(err)
	}
	w.want(2, "get", "-o", w.path("link.bin"), rc)
	if dst, err := os.Readlink(w.path("link.bin")); err != nil || dst != "nowhere" {
		t.Errorf("the symlink was changed: %q %v", dst, err)
	}
	mustNotExist(t, w.path("nowhere"))

	w.ok("get", "--force", "-o", w.path("o.bin"), rc)
	if got, _ := os.ReadFile(w.path("o.bin")); !bytes.Equal(got, data) {
		t.Errorf("get --force did not overwrite the file with the recipe's bytes")
	}
	w.file("o.bin", keep)
	w.ok("get", "--force", rc)
	if got, _ := os.ReadFile(w.path("o.bin")); !bytes.Equal(got, data) {
		t.Errorf("get --force (no -o) did not overwrite the file")
	}
	if p := partials(t, w.dir); len(p) > 0 {
		t.Errorf("get left temporary files: %v", p)
	}
}

func TestDamagedRecipe(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.file("d.bin", randBytes(60, 10<<10))
	rc := w.okLine("put", "d.bin")
	payload := strings.TrimPrefix(rc[:strings.LastIndexByte(rc, '/')], "blockmix:")
	typo := func(i int) string {
		b := []byte(payload)
		if b[i] == 'a' {
			b[i] = 'b'
		} else {
			b[i] = 'a'
		}
		return "blockmix:" + string(b) + "/d.bin"
	}
	cases := map[string]string{
		"typo at the start":    typo(0),
		"typo in the middle":   typo(len(payload) / 2),
		"typo near the end":    typo(len(payload) - 2),
		"cut in half":          rc[:len("blockmix:")+len(payload)/2],
		"last character lost":  "blockmix:" + payload[:len(payload)-1] + "/d.bin",
		"first character lost": "blockmix:" + payload[1:] + "/d.bin",
		"one character more":   "blockmix:" + payload + "a/d.bin",
		"web link cut":         "http://127.0.0.1:7788/r/" + payload[:100],
		"scheme only":          "blockmix:",
		"no recipe at all":     "hello world",
	}
	for what, text := range cases {
		r := w.want(2, "get", "-o", w.path("out.bin"), text)
		if !strings.Contains(string(r.stderr), "damaged recipe") {
			t.Errorf("%s: stderr does not say damaged recipe:\n%s", what, r.stderr)
		}
		if strings.Contains(string(r.stderr), "not found") {
			t.Errorf("%s: a damaged recipe reported as a missing block:\n%s", what, r.stderr)
		}
		mustNotExist(t, w.path("out.bin"))
	}
	t.Run("typo in the last character", func(t *testing.T) {
		// The last base32 character carries padding bits when the payload's
		// bit count is not a multiple of 5; a typo that changes only those
		// decodes to the same bytes.
		pad := map[int]uint{2: 2, 4: 4, 5: 1, 7: 3}[len(payload)%8]
		if pad == 0 {
			t.Skipf("a %d-character payload has no padding bits", len(payload))
		}
		const alphabet = "abcdefghijklmnopqrstuvwxyz234567"
		last := strings.IndexByte(alphabet, payload[len(payload)-1])
		text := "blockmix:" + payload[:len(payload)-1] + string(alphabet[last^1]) + "/d.bin"
		r := w.with(t).want(2, "get", "-o", w.path("pad.bin"), text)
		if !strings.Contains(string(r.stderr), "damaged recipe") {
			t.Errorf("stderr does not say damaged recipe:\n%s", r.stderr)
		}
	})
	// The same recipe, pasted with line breaks and spaces, still works.
	pasted := "see:\n  " + rc[:80] + "\n" + rc[80:160] + " \n" + rc[160:] + ".\n"
	w.ok("get", "-o", w.path("pasted.bin"), pasted)
	if got, _ := os.ReadFile(w.path("pasted.bin")); !bytes.Equal(got, randBytes(60, 10<<10)) {
		t.Errorf("a pasted recipe with line breaks gave other bytes")
	}
}

func TestBadUsage(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.file("u.bin", []byte("x"))
	w.file("v.bin", []byte("y"))
	if err := os.Mkdir(w.path("adir"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"frobnicate"},
		{"--frobnicate", "stat"},
		{"stat", "--frobnicate"},
		{"put", "--frob", "u.bin"},
		{"put", "-Z", "u.bin"},
		{"put"},
		{"put", "-t", "9", "u.bin"},
		{"put", "-t", "1", "u.bin"},
		{"put", "-t", "three", "u.bin"},
		{"put", "--name", "x", "u.bin", "v.bin"},
		{"put", "no-such-file"},
		{"put", "adir", "u.bin"}, // a folder and a file in one command
		{"put", "--redundancy", "rs:4+2", "adir"},
		{"put", "--redundancy", "rs:1+1", "u.bin"},
		{"get"},
		{"get", "a", "b"},
		{"get", "--frob", "blockmix:x"},
		{"stat", "extra"},
		{"verify", "extra"},
		{"block", "ls", "extra"},
		{"block", "get"},
		{"block", "get", "not-an-id"},
		{"block", "get", "bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi"}, // a dag-pb CID
	} {
		r := w.run(args...)
		if r.code != 2 {
			t.Errorf("want exit 2:\n%v", r)
			continue
		}
		if !strings.HasPrefix(string(r.stderr), "blockmix: ") {
			t.Errorf("%v: stderr should start with the program name:\n%s", args, r.stderr)
		}
	}
	// Nothing above may have stored anything.
	if s := w.stat(); s.Blocks != 0 || s.Files != 0 {
		t.Errorf("bad commands stored something: %+v", s)
	}

	t.Run("unknown block subcommand", func(t *testing.T) {
		w.with(t).want(2, "block", "frobnicate")
	})
}

func TestRecipeFromAnotherRepo(t *testing.T) {
	t.Parallel()
	a, b := newWorld(t), newWorld(t)
	a.file("x.bin", randBytes(70, 400<<10))
	rc := a.okLine("put", "x.bin")
	b.file("y.bin", randBytes(71, 400<<10)) // b holds blocks, just not these
	b.ok("put", "y.bin")
	for _, args := range [][]string{
		{"get", "-o", b.path("out.bin"), rc},
		{"get", rc},
	} {
		r := b.want(1, args...)
		msg := string(r.stderr)
		if !strings.Contains(msg, "not found") || !strings.Contains(msg, "this repo") {
			t.Errorf("%v: the error does not say the blocks are missing here:\n%s", args, msg)
		}
	}
	mustNotExist(t, b.path("out.bin"))
	mustNotExist(t, b.path("x.bin"))
	if p := partials(t, b.dir); len(p) > 0 {
		t.Errorf("get left temporary files: %v", p)
	}
	r := b.want(1, "get", "-o", "-", rc)
	if len(r.stdout) != 0 {
		t.Errorf("get -o - wrote %d bytes of a file it cannot rebuild", len(r.stdout))
	}
}

func TestRepoFromEnvironment(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	envRepo := filepath.Join(t.TempDir(), "env-repo")
	env := runOpts{noRepo: true, env: []string{"BLOCKMIX_REPO=" + envRepo}}
	w.file("e.bin", randBytes(80, 30<<10))
	r := w.runWith(env, "put", "e.bin")
	if r.code != 0 {
		t.Fatalf("%v", r)
	}
	rc := strings.TrimSpace(string(r.stdout))
	if _, err := os.Stat(filepath.Join(envRepo, "segments")); err != nil {
		t.Fatalf("put with BLOCKMIX_REPO did not create the repo there: %v", err)
	}
	var s jsonStat
	r = w.runWith(env, "stat", "--json")
	decodeStrict(t, r.stdout, &s)
	if s.Repo != envRepo || s.Files != 1 {
		t.Errorf("stat with BLOCKMIX_REPO: repo %q files %d, want %q 1", s.Repo, s.Files, envRepo)
	}
	if r := w.runWith(env, "get", "-o", w.path("e.out"), rc); r.code != 0 {
		t.Fatalf("%v", r)
	}
	// --repo wins over the environment.
	r = w.runWith(runOpts{env: env.env}, "stat", "--json")
	decodeStrict(t, r.stdout, &s)
	if s.Repo != w.repo || s.Files != 0 {
		t.Errorf("--repo with BLOCKMIX_REPO set: repo %q files %d, want %q 0", s.Repo, s.Files, w.repo)
	}
	// Neither the data home nor the home were touched.
	for _, d := range []string{w.xdg, w.home} {
		if ents, _ := os.ReadDir(d); len(ents) != 0 {
			t.Errorf("%s was written to: %v", d, ents)
		}
	}

	// Without flag and variable: $XDG_DATA_HOME/blockmix, else ~/.local/share.
	// Only put creates a repo: stat names the one it looked for.
	r = w.runWith(runOpts{noRepo: true}, "stat", "--json")
	if want := filepath.Join(w.xdg, "blockmix"); r.code != 1 || !strings.Contains(string(r.stderr), want) {
		t.Errorf("default repo with XDG_DATA_HOME: %v, want exit 1 naming %q", r, want)
	}
	r = w.runWith(runOpts{noRepo: true, unsetXDG: true}, "stat", "--json")
	if want := filepath.Join(w.home, ".local", "share", "blockmix"); r.code != 1 || !strings.Contains(string(r.stderr), want) {
		t.Errorf("default repo without XDG_DATA_HOME: %v, want exit 1 naming %q", r, want)
	}
	mustNotExist(t, filepath.Join(w.xdg, "blockmix"))
	w.file("d.txt", []byte("default repo"))
	if r := w.runWith(runOpts{noRepo: true}, "put", "d.txt"); r.code != 0 {
		t.Fatalf("put into the default repo: %v", r)
	}
	r = w.runWith(runOpts{noRepo: true}, "stat", "--json")
	decodeStrict(t, r.stdout, &s)
	if want := filepath.Join(w.xdg, "blockmix"); s.Repo != want || s.Files != 1 {
		t.Errorf("default repo with XDG_DATA_HOME: %q with %d files, want %q with 1", s.Repo, s.Files, want)
	}
}

func TestBlockLsAndGet(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.file("b.bin", randBytes(90, 500<<10))
	w.file("c.bin", randBytes(91, 3000))
	w.ok("put", "b.bin", "c.bin")
	ids := w.blockIDs()
	s := w.stat()
	if len(ids) != s.Blocks || len(ids) == 0 {
		t.Fatalf("block ls lists %d IDs, stat says %d blocks", len(ids), s.Blocks)
	}
	if !slices.IsSortedFunc(ids, func(a, b blocks.ID) int { return bytes.Compare(a[:], b[:]) }) {
		t.Errorf("block ls is not in ID order")
	}
	var total int64
	for _, id := range ids {
		b := w.ok("block", "get", id.String())
		if got := blocks.Sum(b); got != id {
			t.Fatalf("block get %s wrote %d bytes hashing to %s", id, len(b), got)
		}
		if len(b) != 1<<10 && len(b) != 16<<10 && len(b) != 128<<10 {
			t.Errorf("block %s is %d bytes, not a block class", id, len(b))
		}
		total += int64(len(b))
	}
	if total != s.Bytes {
		t.Errorf("the blocks sum to %d bytes, stat says %d", total, s.Bytes)
	}

	// block ls --json agrees.
	lines := bytes.Split(bytes.TrimSpace(w.ok("block", "ls", "--json")), []byte("\n"))
	if len(lines) != len(ids) {
		t.Fatalf("block ls --json: %d lines for %d blocks", len(lines), len(ids))
	}
	for i, line := range lines {
		var e struct {
			ID   blocks.ID `json:"id"`
			Size int       `json:"size"`
			Refs int       `json:"refs"`
		}
		decodeStrict(t, line, &e)
		// Refs counts files: two here at most. A fresh randomizer the mixer
		// made but did not end up using has none.
		if e.ID != ids[i] || e.Size <= 0 || e.Refs < 0 || e.Refs > 2 {
			t.Errorf("block ls --json line %d: %s", i, line)
		}
	}

	// A well-formed ID the store does not hold.
	missing := blocks.Sum([]byte("not stored"))
	r := w.want(1, "block", "get", missing.String())
	if !strings.Contains(string(r.stderr), "not found") || len(r.stdout) != 0 {
		t.Errorf("block get of a missing block:\n%v", r)
	}
}

// flipByteOf changes one byte in the middle of the block with the given
// bytes, in whichever segment file holds it, and returns the segment's path.
func flipByteOf(t *testing.T, repo string, data []byte) string {
	t.Helper()
	segs, err := filepath.Glob(filepath.Join(repo, "segments", "*.seg"))
	if err != nil || len(segs) == 0 {
		t.Fatalf("no segment files in %s (%v)", repo, err)
	}
	where := ""
	for _, p := range segs {
		content, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		i := bytes.Index(content, data)
		if i < 0 {
			continue
		}
		if where != "" || bytes.Contains(content[i+1:], data) {
			t.Fatalf("the block's bytes are in the segments more than once")
		}
		off := int64(i + len(data)/2)
		f, err := os.OpenFile(p, os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.WriteAt([]byte{content[off] ^ 0x40}, off); err != nil {
			t.Fatal(err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		where = p
	}
	if where == "" {
		t.Fatalf("the block's bytes are in no segment file")
	}
	return where
}

func TestVerifyQuarantinesADamagedBlock(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	data := randBytes(100, 300<<10)
	w.file("v.bin", data)
	rc := w.okLine("put", "v.bin")
	before := w.stat()

	var victim blocks.ID
	var vb []byte
	for _, id := range w.blockIDs() {
		if b := w.ok("block", "get", id.String()); len(b) == 128<<10 {
			victim, vb = id, b
			break
		}
	}
	if vb == nil {
		t.Fatal("no 128 KiB block in the store")
	}
	flipByteOf(t, w.repo, vb)

	// The damage is seen on every read: block get and get fail, and get
	// leaves nothing under the output name.
	if r := w.want(1, "block", "get", victim.String()); !strings.Contains(string(r.stderr), "corrupt") {
		t.Errorf("block get of a damaged block:\n%v", r)
	}
	if r := w.want(1, "get", "-o", w.path("v.out"), rc); !strings.Contains(string(r.stderr), "corrupt") {
		t.Errorf("get of a file with a damaged block:\n%v", r)
	}
	mustNotExist(t, w.path("v.out"))
	if p := partials(t, w.dir); len(p) > 0 {
		t.Errorf("a failed get left temporary files: %v", p)
	}

	r := w.want(1, "verify")
	if out := string(r.stdout); !strings.Contains(out, victim.String()) || !strings.Contains(out, "quarantined") ||
		!strings.Contains(out, ": 1 corrupt") {
		t.Errorf("verify does not report the quarantined block:\n%v", r)
	}
	if !strings.Contains(string(r.stderr), "1 corrupt blocks quarantined") {
		t.Errorf("verify's error does not say what it did:\n%s", r.stderr)
	}

	// Quarantined blocks are out of service; a second verify is clean.
	var v jsonVerify
	decodeStrict(t, w.ok("verify", "--json"), &v)
	if v.Checked != before.Blocks-1 || len(v.Quarantined) != 0 {
		t.Errorf("second verify: %+v, want %d blocks checked and none quarantined", v, before.Blocks-1)
	}
	w.ok("verify")
	s := w.stat()
	if s.Quarantined != 1 || s.Blocks != before.Blocks-1 || s.Bytes != before.Bytes-int64(len(vb)) {
		t.Errorf("stat after verify: quarantined %d blocks %d bytes %d; want 1 %d %d",
			s.Quarantined, s.Blocks, s.Bytes, before.Blocks-1, before.Bytes-int64(len(vb)))
	}
	if slices.Contains(w.blockIDs(), victim) {
		t.Errorf("block ls still lists the quarantined block")
	}
	if r := w.want(1, "block", "get", victim.String()); !strings.Contains(string(r.stderr), "not found") {
		t.Errorf("block get of a quarantined block:\n%v", r)
	}
	// The audit copy is the damaged bytes.
	q, err := os.ReadFile(filepath.Join(w.repo, "quarantine", victim.String()))
	if err != nil {
		t.Fatalf("no audit copy: %v", err)
	}
	diff := 0
	for i := range min(len(q), len(vb)) {
		if q[i] != vb[i] {
			diff++
		}
	}
	if len(q) != len(vb) || diff != 1 {
		t.Errorf("audit copy: %d bytes, %d differ from the block; want %d and 1", len(q), diff, len(vb))
	}
	// The file is gone for this node (a network would fetch the block); get
	// says the block is missing, still writing nothing.
	w.want(1, "get", "-o", w.path("v.out"), rc)
	mustNotExist(t, w.path("v.out"))
}

func TestRepoInUse(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("watches /proc/PID/fd")
	}
	t.Parallel()
	w := newWorld(t)
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pw.Close()
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	c := w.command(ctx, runOpts{stdin: pr}, "put", "--name", "slow.bin", "-")
	var stdout, stderr bytes.Buffer
	c.Stdout, c.Stderr = &stdout, &stderr
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	pr.Close()
	waited := false
	t.Cleanup(func() {
		if !waited {
			_ = c.Process.Kill()
			_ = c.Wait()
		}
	})
	// The put holds the store open while it waits for its standard input:
	// wait until it has a segment file open.
	segs := filepath.Join(w.repo, "segments") + string(filepath.Separator)
	fdDir := fmt.Sprintf("/proc/%d/fd", c.Process.Pid)
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("put did not open the store within a minute")
		}
		ents, _ := os.ReadDir(fdDir)
		open := false
		for _, e := range ents {
			if l, err := os.Readlink(filepath.Join(fdDir, e.Name())); err == nil && strings.HasPrefix(l, segs) {
				open = true
			}
		}
		if open {
			break
		}
	}
	for _, args := range [][]string{{"stat"}, {"put", "-"}, {"verify"}, {"block", "ls"}} {
		r := w.want(1, args...)
		if !strings.Contains(string(r.stderr), "in use by another blockmix process") {
			t.Errorf("%v while another put runs:\n%s", args, r.stderr)
		}
	}
	data := randBytes(110, 100<<10)
	if _, err := pw.Write(data); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	err = c.Wait()
	waited = true
	if err != nil {
		t.Fatalf("the waiting put: %v\n%s", err, stderr.Bytes())
	}
	if got := w.getFile(strings.TrimSpace(stdout.String())); !bytes.Equal(got, data) {
		t.Errorf("the file put while others were refused differs")
	}
}

func TestHelp(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	global := []string{"--repo", "--no-progress"}
	cases := []struct {
		args []string
		want []string
	}{
		{nil, []string{"put", "get", "stat", "status", "files", "verify", "block", "daemon", "BLOCKMIX_REPO", "Exit codes"}},
		{[]string{"status"}, []string{"--json", "offline", "alone", "quarantined"}},
		{[]string{"daemon"}, []string{"config.json", "--listen", "/ip4/0.0.0.0/tcp/4001", "/ip4/0.0.0.0/udp/4001/quic-v1", "--bootstrap", "--api", "--replicas"}},
		{[]string{"files"}, []string{"--json", "recipe"}},
		{[]string{"put"}, []string{"--json", "--tuple", "-t,", "--name", "--type", "--web"}},
		{[]string{"get"}, []string{"--output", "-o,", "--force", "--json", "RECIPE"}},
		{[]string{"stat"}, []string{"--json"}},
		{[]string{"verify"}, []string{"--json"}},
		{[]string{"block"}, []string{"ls", "get"}},
		{[]string{"block", "ls"}, []string{"--json"}},
		{[]string{"block", "get"}, []string{"ID"}},
	}
	for _, c := range cases {
		for _, form := range [][]string{
			append(slices.Clone(c.args), "--help"),
			append(slices.Clone(c.args), "-h"),
			append([]string{"help"}, c.args...),
		} {
			r := w.runWith(runOpts{noRepo: true}, form...)
			if r.code != 0 {
				t.Errorf("want exit 0:\n%v", r)
				continue
			}
			for _, s := range append(slices.Clone(c.want), global...) {
				if !strings.Contains(string(r.stdout), s) {
					t.Errorf("blockmix %s does not mention %q:\n%s", strings.Join(form, " "), s, r.stdout)
				}
			}
		}
	}
	// Help opens no repo, anywhere.
	for _, d := range []string{w.xdg, w.home} {
		if ents, _ := os.ReadDir(d); len(ents) != 0 {
			t.Errorf("--help wrote to %s: %v", d, ents)
		}
	}
}

// TestSameFileTwice puts the same bytes twice: both recipes work, and they
// differ (the randomizers differ), as an owner-free store wants.
func TestSameFileTwice(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	data := randBytes(120, 260<<10)
	w.file("same.bin", data)
	r1 := w.okLine("put", "same.bin")
	r2 := w.okLine("put", "same.bin")
	for _, rc := range []string{r1, r2} {
		if got := w.getFile(rc); sha256.Sum256(got) != sha256.Sum256(data) {
			t.Errorf("%s gives other bytes", rc)
		}
	}
	if r1 == r2 {
		t.Logf("the same file put twice gave the same recipe")
	}
	if s := w.stat(); s.Files < 1 || s.FileBytes < int64(len(data)) {
		t.Errorf("stat after two puts of one file: %+v", s)
	}
}

// TestGetJSON: get --json reports the saved file, with its sha256.
func TestGetJSON(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	data := randBytes(77, 40<<10)
	w.file("g.bin", data)
	rc := strings.TrimSpace(string(w.ok("put", "g.bin")))
	var out struct {
		Path   string `json:"path"`
		Name   string `json:"name"`
		Size   int64  `json:"size"`
		Type   string `json:"type"`
		SHA256 string `json:"sha256"`
	}
	decodeStrict(t, w.ok("get", "--json", "-o", w.path("g.out"), rc), &out)
	sum := sha256.Sum256(data)
	if out.Path != w.path("g.out") || out.Name != "g.bin" || out.Size != int64(len(data)) || out.SHA256 != hex.EncodeToString(sum[:]) {
		t.Errorf("get --json: %+v", out)
	}
	if r := w.run("get", "--json", "-o", "-", rc); r.code != 2 {
		t.Errorf("get --json -o -: exit %d, want 2", r.code)
	}
}

// TestGetIntoDirectory: -o DIR saves under the recipe's name inside DIR.
func TestGetIntoDirectory(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	data := randBytes(78, 3000)
	w.file("named.bin", data)
	rc := w.okLine("put", "named.bin")
	dir := w.path("out")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	w.ok("get", "-o", dir, rc)
	got, err := os.ReadFile(filepath.Join(dir, "named.bin"))
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("get -o DIR: %v", err)
	}
}

// TestFiles: files lists what was put, oldest first, with recipes that work.
func TestFiles(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	var list []blocks.FileRecord
	decodeList := func() {
		t.Helper()
		d := json.NewDecoder(bytes.NewReader(w.ok("files", "--json")))
		d.DisallowUnknownFields()
		list = nil
		if err := d.Decode(&list); err != nil {
			t.Fatalf("files --json: %v", err)
		}
	}
	decodeList()
	if list == nil || len(list) != 0 {
		t.Fatalf("files in an empty repo: %v", list)
	}
	a, b := randBytes(80, 5000), randBytes(81, 200<<10)
	w.file("a.txt", a)
	w.file("b.bin", b)
	w.ok("put", "a.txt")
	w.ok("put", "b.bin")
	decodeList()
	if len(list) != 2 || list[0].Name != "a.txt" || list[1].Name != "b.bin" || list[1].Size != int64(len(b)) || list[1].NBlock == 0 {
		t.Fatalf("files --json: %+v", list)
	}
	if got := w.getFile(list[1].Recipe); !bytes.Equal(got, b) {
		t.Fatal("the recipe files lists does not give the file back")
	}
	text := string(w.ok("files"))
	if !strings.Contains(text, "a.txt") || !strings.Contains(text, list[0].Recipe) {
		t.Fatalf("files:\n%s", text)
	}
}

// TestRebuildIndexCLI: with the index directory removed, 'verify
// --rebuild-index' brings back every block, the files list and every file
// byte for byte.
func TestRebuildIndexCLI(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	a, b := randBytes(101, 700<<10), randBytes(102, 3<<10)
	w.file("a.bin", a)
	w.file("b.txt", b)
	ra := w.okLine("put", "a.bin")
	rb := w.okLine("put", "b.txt")
	before := w.stat()
	files := string(w.ok("files"))
	ids := w.blockIDs()
	if err := os.RemoveAll(filepath.Join(w.repo, "index")); err != nil {
		t.Fatal(err)
	}
	if r := w.want(1, "files"); !strings.Contains(string(r.stderr), "no blockmix repo") {
		t.Fatalf("files without an index:\n%v", r)
	}
	out := string(w.ok("verify", "--rebuild-index"))
	if !strings.Contains(out, fmt.Sprintf("index rebuilt: %d blocks", before.Blocks)) || !strings.Contains(out, ": 0 corrupt") {
		t.Fatalf("verify --rebuild-index said:\n%s", out)
	}
	if got := string(w.ok("files")); got != files {
		t.Fatalf("files after the rebuild:\n%s\nwant:\n%s", got, files)
	}
	if got := w.blockIDs(); !slices.Equal(got, ids) {
		t.Fatalf("%d blocks after the rebuild, want %d", len(got), len(ids))
	}
	if s := w.stat(); s.Blocks != before.Blocks || s.Bytes != before.Bytes || s.Files != before.Files || s.SharedBlocks != before.SharedBlocks {
		t.Fatalf("stat after the rebuild %+v, before %+v", s, before)
	}
	for name, rc := range map[string]string{"a": ra, "b": rb} {
		w.ok("get", "-o", w.path(name+".out"), rc)
	}
	if got, _ := os.ReadFile(w.path("a.out")); !bytes.Equal(got, a) {
		t.Fatal("a.bin differs after the rebuild")
	}
	if got, _ := os.ReadFile(w.path("b.out")); !bytes.Equal(got, b) {
		t.Fatal("b.txt differs after the rebuild")
	}
}
