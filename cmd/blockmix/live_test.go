package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/blockmix/blockmix/webui/apiv1"
)

// liveWait bounds every wait of the live tests: generous, for a loaded
// machine; the latencies themselves are BenchmarkLive's.
const liveWait = 90 * time.Second

// waitUntil polls cond until it holds, failing the test after liveWait
// with what it last saw.
func waitUntil(t testing.TB, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(liveWait)
	for {
		ok, last := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v; last: %s", what, liveWait, last)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// liveFolders runs `watch --list --json` or `sync --list --json`.
func liveFolders(t testing.TB, w *world, cmd string) []apiv1.LiveFolder {
	t.Helper()
	var fs []apiv1.LiveFolder
	if err := json.Unmarshal(w.ok(cmd, "--list", "--json"), &fs); err != nil {
		t.Fatal(err)
	}
	return fs
}

// liveAt is a condition: w's only watch or sync (cmd) has reached
// version seq and is in state.
func liveAt(t testing.TB, w *world, cmd string, seq uint64, state string) func() (bool, string) {
	return func() (bool, string) {
		fs := liveFolders(t, w, cmd)
		if len(fs) != 1 {
			return false, fmt.Sprintf("%d folders listed", len(fs))
		}
		return fs[0].Seq >= seq && fs[0].State == state, fmt.Sprintf("version %d, %s %s", fs[0].Seq, fs[0].State, fs[0].Message)
	}
}

// liveNet starts two daemons on 127.0.0.1 that know each other, with
// --live-poll poll, and waits until their routing tables do.
func liveNet(t testing.TB, poll string) (a, b *world, pa, pb *started, bArgs []string) {
	a, b = newWorld(t), newWorld(t)
	common := []string{"--listen", "/ip4/127.0.0.1/tcp/0", "--api", "127.0.0.1:0", "--replicas", "1", "--live-poll", poll}
	pa, ia := startDaemonWith(t, a, common...)
	bArgs = append(append([]string(nil), common...), "--bootstrap", ia.Addrs[0])
	pb, _ = startDaemonWith(t, b, bArgs...)
	deadline := time.Now().Add(liveWait)
	for _, w := range []*world{a, b} {
		for {
			if info, ok := daemonID(w); ok && info.RoutingTable >= 1 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("the routing tables stayed empty")
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return a, b, pa, pb, bArgs
}

func writeFile(t testing.TB, path, data string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

// withLive is cond, whose last words also say where A's watch and B's
// sync stand.
func withLive(t testing.TB, a, b *world, cond func() (bool, string)) func() (bool, string) {
	return func() (bool, string) {
		ok, last := cond()
		if ok {
			return true, last
		}
		state := func(w *world, cmd string) string {
			var out []string
			for _, f := range liveFolders(t, w, cmd) {
				out = append(out, fmt.Sprintf("version %d %s %s", f.Seq, f.State, f.Message))
			}
			return strings.Join(out, "; ")
		}
		return false, fmt.Sprintf("%s (A's watch: %s; B's sync: %s)", last, state(a, "watch"), state(b, "sync"))
	}
}

// hasContent is a condition: path holds want.
func hasContent(path, want string) func() (bool, string) {
	return func() (bool, string) {
		b, err := os.ReadFile(path)
		if err != nil {
			return false, err.Error()
		}
		return string(b) == want, string(b)
	}
}

// TestLiveWatchSync is issue 17's live folders end to end with two real
// daemons: node A watches a folder and a change appears under the same
// live link; node B syncs the link and gets each version; a file changed
// on B and then on A is kept on B beside the new version; after B
// restarts its sync continues, and after A restarts its watch does.
func TestLiveWatchSync(t *testing.T) {
	if testing.Short() {
		t.Skip("starts daemons")
	}
	t.Parallel()
	a, b, pa, pb, bArgs := liveNet(t, "200ms")
	src, dst := a.path("src"), b.path("dst")
	writeFile(t, filepath.Join(src, "a.txt"), "version one of a")
	writeFile(t, filepath.Join(src, "sub", "b.txt"), "version one of b")
	if err := os.Chmod(filepath.Join(src, "sub", "b.txt"), 0o640); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(filepath.Join(src, "sub", "b.txt"), time.Time{}, time.Now().Add(-48*time.Hour)); err != nil {
		t.Fatal(err)
	}

	var watched apiv1.LiveFolder
	if err := json.Unmarshal(a.ok("watch", "--json", src), &watched); err != nil {
		t.Fatal(err)
	}
	link := watched.Link
	if !strings.HasPrefix(link, "blockmix:live:") || !strings.Contains(watched.URL, "/l/") || watched.Kind != "watch" {
		t.Fatalf("watch answered %+v", watched)
	}
	// The same folder watched again keeps its link.
	if again := a.okLine("watch", src); again != link {
		t.Fatalf("watching the folder again gave %s, want %s", again, link)
	}
	waitUntil(t, "version 1 published", liveAt(t, a, "watch", 1, "ok"))
	resolved := func(seq uint64) func() (bool, string) {
		return func() (bool, string) {
			r := b.run("resolve", "--json", link)
			var v apiv1.LiveVersion
			if r.code != 0 || json.Unmarshal(r.stdout, &v) != nil {
				return false, string(r.stderr)
			}
			return v.Seq >= seq && strings.HasPrefix(v.Recipe, "blockmix:"), string(r.stdout)
		}
	}
	waitUntil(t, "B resolves version 1", resolved(1))

	b.ok("sync", link, dst)
	waitUntil(t, "B has a.txt", hasContent(filepath.Join(dst, "a.txt"), "version one of a"))
	waitUntil(t, "B has sub/b.txt", hasContent(filepath.Join(dst, "sub", "b.txt"), "version one of b"))
	// The file keeps its mode and modification time.
	fa, errA := os.Stat(filepath.Join(src, "sub", "b.txt"))
	fb, errB := os.Stat(filepath.Join(dst, "sub", "b.txt"))
	if errA != nil || errB != nil || fb.Mode() != fa.Mode() || fb.ModTime().Unix() != fa.ModTime().Unix() {
		t.Fatalf("b.txt on A %v, on B %v (%v %v)", fa, fb, errA, errB)
	}

	// A change on A: a new version under the same link, and on B.
	writeFile(t, filepath.Join(src, "a.txt"), "version two of a, longer")
	waitUntil(t, "version 2 published", liveAt(t, a, "watch", 2, "ok"))
	if fs := liveFolders(t, a, "watch"); fs[0].Files != 2 || fs[0].Changed != 1 {
		t.Fatalf("version 2 has %d files, %d mixed anew; want 2 and only the changed one", fs[0].Files, fs[0].Changed)
	}
	waitUntil(t, "B resolves version 2 under the same link", resolved(2))
	waitUntil(t, "B has the new a.txt", hasContent(filepath.Join(dst, "a.txt"), "version two of a, longer"))
	waitUntil(t, "B synced version 2", liveAt(t, b, "sync", 2, "ok"))

	// A local change on B, then a change of the same file on A: both are
	// on B afterwards.
	writeFile(t, filepath.Join(dst, "sub", "b.txt"), "B's own edit")
	writeFile(t, filepath.Join(src, "sub", "b.txt"), "version three of b")
	waitUntil(t, "B has A's new b.txt", hasContent(filepath.Join(dst, "sub", "b.txt"), "version three of b"))
	waitUntil(t, "B says conflict", liveAt(t, b, "sync", 3, "conflict"))
	fs := liveFolders(t, b, "sync")
	if len(fs[0].Conflicts) != 1 || !strings.HasPrefix(fs[0].Conflicts[0], "sub/b (conflict ") || !strings.HasSuffix(fs[0].Conflicts[0], ").txt") {
		t.Fatalf("conflicts %q", fs[0].Conflicts)
	}
	if got, err := os.ReadFile(filepath.Join(dst, filepath.FromSlash(fs[0].Conflicts[0]))); err != nil || string(got) != "B's own edit" {
		t.Fatalf("the local change: %q, %v", got, err)
	}

	// B restarts; its sync goes on.
	stopDaemon(t, pb)
	startDaemonWith(t, b, bArgs...)
	writeFile(t, filepath.Join(src, "c.txt"), "a new file after B's restart")
	waitUntil(t, "B has c.txt after its restart", withLive(t, a, b, hasContent(filepath.Join(dst, "c.txt"), "a new file after B's restart")))
	if fs := liveFolders(t, b, "sync"); len(fs) != 1 || fs[0].Dir != dst {
		t.Fatalf("after the restart: %+v", fs)
	}

	// A restarts (on a new port, joining B); its watch goes on under the
	// same link.
	stopDaemon(t, pa)
	ib, ok := daemonID(b)
	if !ok {
		t.Fatal("B does not answer")
	}
	startDaemonWith(t, a, "--listen", "/ip4/127.0.0.1/tcp/0", "--api", "127.0.0.1:0", "--replicas", "1", "--live-poll", "200ms", "--bootstrap", ib.Addrs[0])
	writeFile(t, filepath.Join(src, "d.txt"), "a new file after A's restart")
	waitUntil(t, "B has d.txt after A's restart", withLive(t, a, b, hasContent(filepath.Join(dst, "d.txt"), "a new file after A's restart")))
	if fs := liveFolders(t, a, "watch"); len(fs) != 1 || fs[0].Link != link {
		t.Fatalf("A's watch after its restart: %+v", fs)
	}

	// unsync stops it: a later version does not arrive, and the files stay.
	b.ok("unsync", dst)
	if fs := liveFolders(t, b, "sync"); len(fs) != 0 {
		t.Fatalf("after unsync: %+v", fs)
	}
	next := liveFolders(t, a, "watch")[0].Seq + 1
	writeFile(t, filepath.Join(src, "a.txt"), "version after unsync")
	waitUntil(t, "A published it", liveAt(t, a, "watch", next, "ok"))
	waitUntil(t, "B resolves it", resolved(next))
	if got, _ := os.ReadFile(filepath.Join(dst, "a.txt")); string(got) != "version two of a, longer" {
		t.Fatalf("an unsynced folder changed: %q", got)
	}
}

// TestLiveSealedAndBadInput: a watch with a passphrase prints a sealed
// live link, which syncs only with its passphrase; damaged links, missing
// folders and relative paths get clear errors.
func TestLiveSealedAndBadInput(t *testing.T) {
	if testing.Short() {
		t.Skip("starts daemons")
	}
	t.Parallel()
	a, b, _, _, _ := liveNet(t, "200ms")
	src, dst := a.path("src"), b.path("dst")
	writeFile(t, filepath.Join(src, "secret.txt"), "for friends only")
	pf := a.file("pass", []byte("correct horse battery staple\n"))
	sealed := a.okLine("watch", "--passphrase-file", pf, src)
	if !strings.HasPrefix(sealed, "blockmix:live:sealed:") {
		t.Fatalf("watch with a passphrase printed %q", sealed)
	}
	plain := liveFolders(t, a, "watch")[0].Link
	if strings.Contains(sealed, strings.TrimPrefix(plain, "blockmix:live:")) {
		t.Fatal("the sealed link shows the plain one")
	}
	if r := b.run("sync", sealed, dst); r.code != 2 || !strings.Contains(string(r.stderr), "passphrase") {
		t.Fatalf("sync of a sealed link without its passphrase: %s", r)
	}
	wrong := b.file("wrong", []byte("not it\n"))
	if r := b.run("sync", "--passphrase-file", wrong, sealed, dst); r.code != 2 || !strings.Contains(string(r.stderr), "wrong passphrase") {
		t.Fatalf("sync with a wrong passphrase: %s", r)
	}
	right := b.file("right", []byte("correct horse battery staple\n"))
	// A folder that holds files needs --force; its files stay.
	writeFile(t, filepath.Join(dst, "mine.txt"), "B's own file")
	if r := b.run("sync", "--passphrase-file", right, sealed, dst); r.code != 2 || !strings.Contains(string(r.stderr), "not empty") {
		t.Fatalf("sync into a folder with files, without --force: %s", r)
	}
	b.ok("sync", "--force", "--passphrase-file", right, sealed, dst)
	waitUntil(t, "B has the sealed folder's file", hasContent(filepath.Join(dst, "secret.txt"), "for friends only"))
	if got, err := os.ReadFile(filepath.Join(dst, "mine.txt")); err != nil || string(got) != "B's own file" {
		t.Fatalf("B's own file: %q %v", got, err)
	}
	if fs := liveFolders(t, b, "sync"); len(fs) != 1 || fs[0].Link != plain {
		t.Fatalf("B follows %+v, want the plain link %s", fs, plain)
	}

	damaged := []byte(plain)
	damaged[len(damaged)-3] ^= 1
	if r := b.run("sync", string(damaged), b.path("x")); r.code != 2 || !strings.Contains(string(r.stderr), "damaged live link") {
		t.Fatalf("sync of a damaged link: %s", r)
	}
	if r := a.run("watch", a.path("no-such-folder")); r.code != 2 || !strings.Contains(string(r.stderr), "cannot read the folder") {
		t.Fatalf("watch of a missing folder: %s", r)
	}
	if r := a.run("unwatch", a.path("no-such-folder")); r.code != 2 || !strings.Contains(string(r.stderr), "no watch of") {
		t.Fatalf("unwatch of an unknown folder: %s", r)
	}
	api, err := os.ReadFile(filepath.Join(b.repo, "api"))
	if err != nil {
		t.Fatal(err)
	}
	for _, body := range []string{`{"link":"` + plain + `","dir":"relative/dir"}`, `not json`, `{"link":"blockmix:live:x","dir":"/tmp"}`} {
		resp, err := http.Post(strings.TrimSpace(string(api))+"/api/v1/live/sync", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		var e apiv1.ErrorBody
		_ = json.NewDecoder(resp.Body).Decode(&e)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || e.Error == "" {
			t.Fatalf("POST %s: %d %q, want 400 with words", body, resp.StatusCode, e.Error)
		}
	}
}
