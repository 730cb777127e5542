package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/blockmix/blockmix/cmd/blockmix/internal/base"
	"github.com/blockmix/blockmix/cmd/blockmix/internal/config"
	"github.com/blockmix/blockmix/cmd/blockmix/internal/size"
)

// releaseTargets are the platforms `make release` builds, with the
// environment that selects each.
var releaseTargets = []struct {
	name string
	env  []string
}{
	{"linux-amd64", []string{"GOOS=linux", "GOARCH=amd64"}},
	{"linux-arm64", []string{"GOOS=linux", "GOARCH=arm64"}},
	{"linux-armv7", []string{"GOOS=linux", "GOARCH=arm", "GOARM=7"}},
}

// TestReleaseNoCgo checks that the binary builds for every release target
// without cgo: with CGO_ENABLED=0 every package it needs resolves, none has
// cgo files, and runtime/cgo is not among them. A dependency that only
// builds with cgo (its Go files all import "C") makes the list fail.
func TestReleaseNoCgo(t *testing.T) {
	t.Parallel()
	for _, tg := range releaseTargets {
		t.Run(tg.name, func(t *testing.T) {
			t.Parallel()
			env := append([]string{"CGO_ENABLED=0"}, tg.env...)
			pkgs, problems, err := cgoDeps(t.Context(), ".", ".", env)
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range problems {
				t.Errorf("%s: %s", tg.name, p)
			}
			// The list is the real one, not empty or cut short.
			for _, want := range []string{"github.com/blockmix/blockmix/cmd/blockmix", "github.com/blockmix/blockmix/net", "github.com/libp2p/go-libp2p"} {
				if !slices.Contains(pkgs, want) {
					t.Errorf("%s: go list -deps does not list %s (%d packages)", tg.name, want, len(pkgs))
				}
			}
		})
	}
}

// TestCgoCheckCatchesCgo shows that cgoDeps can fail: a module whose
// dependency needs cgo is reported, one with a pure-Go fallback is not.
func TestCgoCheckCatchesCgo(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	files := map[string]string{
		"go.mod":             "module example.com/cgofixture\n\ngo 1.21\n",
		"cmd/needsc/main.go": "package main\n\nimport _ \"example.com/cgofixture/onlyc\"\n\nfunc main() {}\n",
		"cmd/pure/main.go":   "package main\n\nimport _ \"example.com/cgofixture/fallback\"\n\nfunc main() {}\n",
		"onlyc/c.go":         "package onlyc\n\n// int one(void) { return 1; }\nimport \"C\"\n\nfunc One() int { return int(C.one()) }\n",
		"fallback/c.go":      "package fallback\n\n// int one(void) { return 1; }\nimport \"C\"\n\nfunc One() int { return int(C.one()) }\n",
		"fallback/pure.go":   "//go:build !cgo\n\npackage fallback\n\nfunc One() int { return 1 }\n",
	}
	for name, text := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// The fixture is a module of its own, outside any workspace.
	env := []string{"GOWORK=off", "GOFLAGS=", "GOOS=linux", "GOARCH=arm64"}
	cases := []struct {
		pkg, cgo string
		want     string // in a problem; "" for none
	}{
		{"./cmd/needsc", "0", "example.com/cgofixture/onlyc"},
		{"./cmd/pure", "0", ""},
		// With cgo on, the fallback is not chosen and its cgo file shows.
		{"./cmd/pure", "1", "example.com/cgofixture/fallback has cgo files"},
	}
	for _, c := range cases {
		_, problems, err := cgoDeps(t.Context(), dir, c.pkg, append([]string{"CGO_ENABLED=" + c.cgo}, env...))
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s, CGO_ENABLED=%s: %q", c.pkg, c.cgo, problems)
		switch {
		case c.want == "" && len(problems) > 0:
			t.Errorf("%s (CGO_ENABLED=%s): want no problem, got %q", c.pkg, c.cgo, problems)
		case c.want != "" && !slices.ContainsFunc(problems, func(p string) bool { return strings.Contains(p, c.want) }):
			t.Errorf("%s (CGO_ENABLED=%s): want a problem naming %q, got %q", c.pkg, c.cgo, c.want, problems)
		}
	}
}

// cgoDeps runs `go list -e -deps` on pkg in dir with the process
// environment plus env (later entries win). It returns the import paths
// and what stands in the way of a build without cgo: packages with cgo
// files, runtime/cgo, and packages that do not load (their errors).
func cgoDeps(ctx context.Context, dir, pkg string, env []string) (pkgs, problems []string, err error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "list", "-e", "-deps", "-json=ImportPath,CgoFiles,Error,DepsErrors", pkg)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, nil, fmt.Errorf("go list -deps %s with %v: %v\n%s", pkg, env, err, stderr.Bytes())
	}
	type pkgError struct{ Err string }
	dec := json.NewDecoder(&stdout)
	for {
		var p struct {
			ImportPath string
			CgoFiles   []string
			Error      *pkgError
			DepsErrors []*pkgError
		}
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return nil, nil, fmt.Errorf("go list -deps %s: %v", pkg, err)
		}
		pkgs = append(pkgs, p.ImportPath)
		if len(p.CgoFiles) > 0 {
			problems = append(problems, fmt.Sprintf("%s has cgo files %v", p.ImportPath, p.CgoFiles))
		}
		if p.ImportPath == "runtime/cgo" {
			problems = append(problems, "runtime/cgo is a dependency")
		}
		if p.Error != nil {
			problems = append(problems, fmt.Sprintf("%s: %s", p.ImportPath, p.Error.Err))
		}
	}
	if len(pkgs) == 0 {
		problems = append(problems, "go list -deps listed no package")
	}
	return pkgs, problems, nil
}

// unitFile is a systemd unit: its sections, each with its keys' values
// in order (a key may repeat).
type unitFile map[string]map[string][]string

// parseUnit reads the subset of systemd's unit syntax the sample uses:
// [Section] headers, Key=Value lines, # and ; comments, and lines
// continued by a trailing backslash.
func parseUnit(r io.Reader) (unitFile, error) {
	u := unitFile{}
	var section, pending string
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if pending != "" {
			line, pending = pending+" "+line, ""
		}
		if strings.HasSuffix(line, `\`) {
			pending = strings.TrimSuffix(line, `\`)
			continue
		}
		switch {
		case line == "", line[0] == '#', line[0] == ';':
		case line[0] == '[':
			if !strings.HasSuffix(line, "]") {
				return nil, fmt.Errorf("line %d: bad section header %q", n, line)
			}
			section = line[1 : len(line)-1]
			if u[section] != nil {
				return nil, fmt.Errorf("line %d: section [%s] twice", n, section)
			}
			u[section] = map[string][]string{}
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok || section == "" {
				return nil, fmt.Errorf("line %d: want Key=Value in a section, got %q", n, line)
			}
			k = strings.TrimSpace(k)
			u[section][k] = append(u[section][k], strings.TrimSpace(v))
		}
	}
	if pending != "" {
		return nil, errors.New("the last line ends in a backslash")
	}
	return u, sc.Err()
}

// one returns the single value of key in section, and whether there is
// exactly one.
func (u unitFile) one(section, key string) (string, bool) {
	v := u[section][key]
	if len(v) != 1 {
		return "", false
	}
	return v[0], true
}

// TestUnitFile checks the sample systemd unit: its sections, that it runs
// as a user of its own and restarts on failure, that ExecStart is a
// command line `blockmix daemon` accepts, with a repo it may write to under
// ProtectSystem=strict, and memory limits above the profile's own.
func TestUnitFile(t *testing.T) {
	t.Parallel()
	f, err := os.Open("blockmix.service")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	u, err := parseUnit(f)
	if err != nil {
		t.Fatalf("blockmix.service: %v", err)
	}
	for _, s := range []string{"Unit", "Service", "Install"} {
		if u[s] == nil {
			t.Errorf("blockmix.service has no [%s] section", s)
		}
	}
	if len(u) != 3 {
		t.Errorf("blockmix.service: want the sections Unit, Service and Install, got %d", len(u))
	}
	if t.Failed() {
		return
	}

	if v, _ := u.one("Service", "Restart"); v != "on-failure" {
		t.Errorf("Restart=%q, want on-failure", u["Service"]["Restart"])
	}
	if v, ok := u.one("Service", "User"); !ok || v == "" || v == "root" || v == "0" {
		t.Errorf("User=%q: want one User= line naming a user other than root", u["Service"]["User"])
	}
	if v, _ := u.one("Service", "DynamicUser"); v == "yes" || v == "true" || v == "1" {
		t.Errorf("DynamicUser=%s: the repo must keep its owner", v)
	}
	if !slices.Contains(strings.Fields(strings.Join(u["Install"]["WantedBy"], " ")), "multi-user.target") {
		t.Errorf("WantedBy=%q, want multi-user.target", u["Install"]["WantedBy"])
	}

	// ExecStart: /usr/local/bin/blockmix ... daemon ..., split on spaces as
	// systemd would (so no quotes, escapes or %-specifiers).
	execStart, ok := u.one("Service", "ExecStart")
	if !ok {
		t.Fatalf("want exactly one ExecStart=, got %q", u["Service"]["ExecStart"])
	}
	if strings.ContainsAny(execStart, `"'\%$`) {
		t.Fatalf("ExecStart=%s: quotes, escapes, specifiers or variables (this test splits on spaces)", execStart)
	}
	argv := strings.Fields(execStart)
	if len(argv) < 2 || argv[0] != "/usr/local/bin/blockmix" || !slices.Contains(argv, "daemon") {
		t.Fatalf("ExecStart=%s: want /usr/local/bin/blockmix ... daemon ...", execStart)
	}
	// The arguments, parsed by the same commands main runs: an unknown
	// flag, a missing value or a stray argument is an error here.
	e := &base.Env{Stdin: strings.NewReader(""), Stdout: io.Discard, Stderr: io.Discard}
	root := newRootCommand(e)
	dc, rest, err := root.Find(argv[1:])
	if err != nil || dc.Name() != "daemon" {
		t.Fatalf("ExecStart=%s: does not name the daemon command (%v)", execStart, err)
	}
	if err := dc.ParseFlags(rest); err != nil {
		t.Fatalf("ExecStart=%s: blockmix daemon does not accept it: %v", execStart, err)
	}
	if args := dc.Flags().Args(); len(args) > 0 {
		t.Errorf("ExecStart=%s: stray arguments %q", execStart, args)
	}
	if e.RepoFlag == "" || !filepath.IsAbs(e.RepoFlag) {
		t.Errorf("ExecStart=%s: want --repo with an absolute path, got %q", execStart, e.RepoFlag)
	}
	quota, _ := dc.Flags().GetString("quota")
	if donor, _ := dc.Flags().GetBool("donor"); donor && quota == "" {
		t.Errorf("ExecStart=%s: --donor without --quota", execStart)
	}
	if quota != "" {
		if n, err := size.Parse(quota); err != nil || n <= 0 {
			t.Errorf("ExecStart=%s: --quota %q: %v", execStart, quota, err)
		}
	}
	profName, _ := dc.Flags().GetString("profile")
	prof, err := config.ProfileNamed(profName)
	if err != nil {
		t.Errorf("ExecStart=%s: %v", execStart, err)
	}

	// ProtectSystem=strict makes everything read-only but ReadWritePaths=
	// and StateDirectory= (under /var/lib): the repo must be among them.
	if v, _ := u.one("Service", "ProtectSystem"); v == "strict" || v == "full" || v == "yes" {
		var writable []string
		for _, p := range strings.Fields(strings.Join(u["Service"]["ReadWritePaths"], " ")) {
			writable = append(writable, strings.TrimLeft(p, "-+"))
		}
		for _, d := range strings.Fields(strings.Join(u["Service"]["StateDirectory"], " ")) {
			writable = append(writable, "/var/lib/"+d)
		}
		if !slices.ContainsFunc(writable, func(w string) bool {
			w = filepath.Clean(w)
			return e.RepoFlag == w || strings.HasPrefix(e.RepoFlag, w+"/")
		}) {
			t.Errorf("the repo %s is read-only under ProtectSystem=%s (writable: %q)", e.RepoFlag, v, writable)
		}
	}

	// MemoryHigh and MemoryMax leave room above the Go runtime's own soft
	// limit (the profile's), and MemoryMax is above MemoryHigh.
	var memHigh, memMax int64
	for key, dst := range map[string]*int64{"MemoryHigh": &memHigh, "MemoryMax": &memMax} {
		v, ok := u.one("Service", key)
		if !ok {
			continue
		}
		// systemd's K, M, G are powers of 1024, as they are for parseSize.
		n, err := size.Parse(v)
		if err != nil {
			t.Errorf("%s=%s: %v", key, v, err)
			continue
		}
		*dst = n
		if prof.MemLimit > 0 && n <= prof.MemLimit {
			t.Errorf("%s=%s is not above the %s profile's memory limit (%d MiB)", key, v, prof.Name, prof.MemLimit>>20)
		}
	}
	if memHigh > 0 && memMax > 0 && memMax <= memHigh {
		t.Errorf("MemoryMax (%d) is not above MemoryHigh (%d)", memMax, memHigh)
	}
}
