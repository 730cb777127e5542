//go:build linux

package main

// The adversary suite: a hostile node (internal/hostile) runs each attack
// on real daemons, and each test asserts the bound the daemon must hold.
// Every test logs its measured figure as one line
//
//	attack <name>: <figure>
//
// so that figures before and after a fix are collected the same way:
//
//	go test -count=1 -run TestHostile -v ./cmd/blockmix | grep 'attack '
//
// The scale is the one of the attacks as reported (4 peers × 64 streams ×
// 1024 IDs, 400 pushes of 128 KiB, 100,000 tiny pushes, 16 unseals) in make
// test; the suite takes about a minute and a half on two cores, most of it
// waiting out the flood and the slow upload, with the tests in parallel.
//
// Memory is read from the daemon's own /proc/PID/status (VmHWM, the peak
// resident set). A -race binary takes several times the memory of a plain
// one, so the tests that bound memory run a plain build of the daemon even
// under go test -race (built once, see plainBinary).

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/blockmix/blockmix/blocks"
	"github.com/blockmix/blockmix/cmd/blockmix/internal/hostile"
	"github.com/blockmix/blockmix/mixer"
	bmnet "github.com/blockmix/blockmix/net"
	"github.com/blockmix/blockmix/webui/apiv1"
)

const (
	kib = 1 << 10
	mib = 1 << 20
)

// attackf logs an attack's measured figure in the suite's fixed format.
func attackf(t *testing.T, name, format string, a ...any) {
	t.Helper()
	t.Logf("attack %s: %s", name, fmt.Sprintf(format, a...))
}

var (
	plainOnce sync.Once
	plainPath string
	plainErr  error
)

// plainBinary returns a blockmix binary built without -race: binPath when
// the tests themselves run without it, else one built here once (and
// removed when the tests end).
func plainBinary(t *testing.T) string {
	t.Helper()
	if !raceBuild {
		return binPath
	}
	plainOnce.Do(func() {
		dir, err := os.MkdirTemp("", "blockmix-plain-")
		if err != nil {
			plainErr = err
			return
		}
		afterRun = append(afterRun, func() { os.RemoveAll(dir) })
		plainPath = filepath.Join(dir, "blockmix")
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		out, err := exec.CommandContext(ctx, "go", "build", "-o", plainPath, ".").CombinedOutput()
		if err != nil {
			plainErr = fmt.Errorf("go build -o %s .: %v\n%s", plainPath, err, out)
		}
	})
	if plainErr != nil {
		t.Fatal(plainErr)
	}
	return plainPath
}

// targetOf is the daemon's libp2p address as a hostile node dials it.
func targetOf(t *testing.T, info apiv1.IDInfo) peer.AddrInfo {
	t.Helper()
	for _, a := range info.Addrs {
		if strings.Contains(a, "/127.0.0.1/tcp/") {
			ai, err := peer.AddrInfoFromString(a)
			if err != nil {
				t.Fatal(err)
			}
			return *ai
		}
	}
	t.Fatalf("no 127.0.0.1 TCP address in %v", info.Addrs)
	return peer.AddrInfo{}
}

// newHostile starts a hostile node, closed when the test ends.
func newHostile(t *testing.T, o hostile.Options) *hostile.Node {
	t.Helper()
	n, err := hostile.New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

// vmKB reads a kB field of the process's /proc/PID/status (VmHWM, VmRSS).
func vmKB(t *testing.T, p *started, field string) int64 {
	t.Helper()
	return procStatus(t, p.cmd.Process.Pid, field)
}

// storeDiskBytes is what the repo's block store occupies: the sizes of the
// files of its segments, index and quarantine directories.
func storeDiskBytes(t *testing.T, w *world) int64 {
	t.Helper()
	var n int64
	for _, d := range []string{"segments", "index", "quarantine"} {
		err := filepath.WalkDir(filepath.Join(w.repo, d), func(_ string, e fs.DirEntry, err error) error {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			if err != nil {
				return err
			}
			if e.Type().IsRegular() {
				info, err := e.Info()
				if errors.Is(err, fs.ErrNotExist) {
					return nil // compacted away meanwhile
				}
				if err != nil {
					return err
				}
				n += info.Size()
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return n
}

// largeBlockOf puts a random file of 384 KiB on w (offline: before its
// daemon starts) and returns one of its 128 KiB blocks.
func largeBlockOf(t *testing.T, w *world, seed uint64) blocks.ID {
	t.Helper()
	w.file("held.bin", randBytes(seed, 384*kib))
	w.ok("put", "held.bin")
	for _, line := range strings.Split(strings.TrimSpace(string(w.ok("block", "ls", "--json"))), "\n") {
		var b apiv1.BlockInfo
		if err := json.Unmarshal([]byte(line), &b); err != nil {
			t.Fatalf("block ls --json: %q: %v", line, err)
		}
		if b.Size == mixer.Large {
			return b.ID
		}
	}
	t.Fatal("the put left no 128 KiB block")
	return blocks.ID{}
}

// runBounded runs blockmix args on w and gives up after timeout: it
// returns what the command left, and whether it timed out.
func runBounded(w *world, timeout time.Duration, args ...string) (result, bool) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	c := w.command(ctx, runOpts{}, args...)
	var out, errb strings.Builder
	c.Stdout, c.Stderr = &out, &errb
	start := time.Now()
	err := c.Run()
	r := result{args: args, stdout: []byte(out.String()), stderr: []byte(errb.String()), dur: time.Since(start), code: -1}
	if c.ProcessState != nil {
		r.code = c.ProcessState.ExitCode()
	}
	return r, ctx.Err() != nil || (err != nil && r.code == -1)
}

func humanKB(kb int64) string { return apiv1.HumanBytes(kb << 10) }

// hostileSoak is how long the want-list flood runs: def in make test, and
// BLOCKMIX_HOSTILE_SOAK (a duration, make soak: 90s) for the long form, in
// which the flood also opens a fresh stream in place of every one the
// daemon cuts (an attacker that comes back), so that the pressure lasts.
// A test's daemon lives at most cmdTimeout (3 min), which holds the flood,
// the wait for its streams to be cut (60 s) and the start: so 100 s at
// most.
func hostileSoak(t *testing.T, def time.Duration) (time.Duration, bool) {
	t.Helper()
	s := os.Getenv("BLOCKMIX_HOSTILE_SOAK")
	if s == "" {
		return def, false
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 || d > 100*time.Second {
		t.Fatalf("BLOCKMIX_HOSTILE_SOAK=%q: want a duration up to 100s (a test's daemon lives 3 min)", s)
	}
	return d, true
}

// TestHostileWantFlood: four peer IDs each open 64 streams to a daemon and
// send on each one want-list naming one block the daemon holds 1024 times,
// and never read. The flood runs 12 s (BLOCKMIX_HOSTILE_SOAK: longer, and
// cut streams come back); then the daemon's peak RSS (VmHWM) must be under
// 256 MiB for a default node and 96 MiB for a low-power donor; an honest
// peer's fetch of the block during the flood must work; and every stream
// of the flood must be cut (reset, or its connection closed), none standing
// more than 60 s from its opening: the daemon's idle deadline on a stream
// (30 s), and as long again for a loaded machine, where the last of the 256
// streams gets its first answer late.
func TestHostileWantFlood(t *testing.T) {
	if testing.Short() {
		t.Skip("floods two daemons")
	}
	t.Parallel()
	for _, tc := range []struct {
		name  string
		args  []string
		bound int64 // VmHWM, kB
	}{
		{"default", nil, 256 << 10},
		{"lowpower-donor", []string{"--profile", "lowpower", "--donor", "--quota", "1GiB"}, 96 << 10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			const (
				peers, streams, repeat = 4, 64, 1024
				cutWithin              = 60 * time.Second
			)
			floodFor, renew := hostileSoak(t, 12*time.Second)
			w := newWorld(t)
			w.bin = plainBinary(t)
			id := largeBlockOf(t, w, 900)
			p, info := startDaemonWith(t, w, daemonArgs(tc.args...)...)
			target := targetOf(t, info)
			before := vmKB(t, p, "VmHWM")

			ctx, cancel := context.WithTimeout(context.Background(), floodFor+cutWithin+time.Minute)
			defer cancel()
			start := time.Now()
			flood, err := hostile.StartFlood(ctx, target, hostile.FloodConfig{Peers: peers, Streams: streams, Repeat: repeat, ID: id})
			if err != nil {
				t.Fatal(err)
			}
			defer flood.Close()

			// An honest peer asks for the block while the flood stands.
			honest := newHostile(t, hostile.Options{})
			fetched := make(chan error, 1)
			var fetchTook time.Duration
			go func() {
				fctx, fcancel := context.WithTimeout(ctx, 30*time.Second)
				defer fcancel()
				var missing []blocks.ID
				var err error
				fetchTook, missing, err = hostile.Fetch(fctx, honest, target, []blocks.ID{id})
				if err == nil && len(missing) > 0 {
					err = fmt.Errorf("the daemon says it does not have %s", id)
				}
				fetched <- err
			}()

			// The flood runs floodFor; the peak is read all along (it only
			// grows) and once more at the end.
			var st hostile.FloodStats
			var rss int64
			for time.Since(start) < floodFor && !p.exited() {
				st = flood.Poll()
				if renew {
					flood.Renew(ctx)
				}
				rss = max(rss, vmKB(t, p, "VmRSS"))
				time.Sleep(250 * time.Millisecond)
			}
			if p.exited() {
				t.Fatalf("the daemon died under the flood:\n%s", p.stderrNow())
			}
			hwm := vmKB(t, p, "VmHWM")
			fetchErr := <-fetched

			// Then the streams, still unread, must be cut.
			stopped := time.Now()
			for st.Cut < st.Streams && time.Since(stopped) < cutWithin && !p.exited() {
				time.Sleep(250 * time.Millisecond)
				st = flood.Poll()
			}
			fetchSays := fmt.Sprintf("took %v", fetchTook.Round(time.Millisecond))
			if fetchErr != nil {
				fetchSays = fmt.Sprintf("failed after %v (%v)", fetchTook.Round(time.Millisecond), fetchErr)
			}
			cutSays := fmt.Sprintf("%d of %d streams cut", st.Cut, st.Streams)
			if st.Cut > 0 {
				cutSays += fmt.Sprintf(" (the longest stood %v)", st.Slowest.Round(time.Second))
			}
			if renew {
				cutSays += fmt.Sprintf(", %d of them opened again after a cut", st.Renewed)
			}
			if st.Refused > 0 {
				cutSays += fmt.Sprintf("; %d refused at their opening (%v)", st.Refused, st.RefusedErr)
			}
			attackf(t, "want-flood/"+tc.name, "flood of %v: VmHWM %s (%s before the flood), VmRSS up to %s; an honest fetch %s; %s",
				floodFor, humanKB(hwm), humanKB(before), humanKB(rss), fetchSays, cutSays)

			if hwm >= tc.bound {
				t.Errorf("peak RSS %s under a want-list flood of %d×%d streams; the bound is %s", humanKB(hwm), peers, streams, humanKB(tc.bound))
			}
			if fetchErr != nil {
				t.Errorf("an honest peer's fetch during the flood: %v", fetchErr)
			}
			if st.Cut < st.Streams || st.Slowest > cutWithin {
				t.Errorf("%d of the %d streams that never read were not cut; the longest stood %v (the bound is %v)", st.Streams-st.Cut, st.Streams, st.Slowest.Round(time.Second), cutWithin)
			}
		})
	}
}

// TestHostileRepeatedWant: one want-list of 32 KiB names one block 1024
// times. The daemon must answer the ID once per want-list: at most one
// block comes back (and a few frames, under 64 KiB, for the rest).
func TestHostileRepeatedWant(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a daemon")
	}
	t.Parallel()
	w := newWorld(t)
	id := largeBlockOf(t, w, 901)
	_, info := startDaemonWith(t, w, daemonArgs()...)
	n := newHostile(t, hostile.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	r, err := hostile.RepeatedWant(ctx, n, targetOf(t, info), id, bmnet.MaxWant)
	if err != nil {
		t.Fatal(err)
	}
	end := "ended"
	if !r.Ended {
		end = fmt.Sprintf("cut: %v", r.Cut)
	}
	attackf(t, "repeated-want", "%d bytes back (%s) for one want-list of %d × the same ID: %d blocks, %d don't-haves, %s",
		r.Bytes, apiv1.HumanBytes(r.Bytes), bmnet.MaxWant, r.Blocks, r.DontHave, end)
	const bound = mixer.Large + 64*kib
	if r.Blocks > 1 || r.Bytes > bound {
		t.Errorf("the block came back %d times (%d bytes) for one want-list; want at most once (%d bytes)", r.Blocks, r.Bytes, bound)
	}
	if r.Blocks == 0 && r.Ended {
		t.Errorf("the answer ended without the block it holds")
	}
}

// TestHostilePushShare: a stranger pushes 400 valid random 128 KiB blocks
// to a node that is not a donor. Beyond its share (--share 8MiB) the
// pushes must be refused with a reason, and the store must stay within the
// share on disk, before and after gc (slack: 512 KiB for the index and the
// segments' record headers over the empty store).
func TestHostilePushShare(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a daemon")
	}
	t.Parallel()
	const share = 8 * mib
	const slack = 512 * kib
	w := newWorld(t)
	_, info := startDaemonWith(t, w, daemonArgs("--share", "8MiB")...)
	empty := storeDiskBytes(t, w)
	n := newHostile(t, hostile.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const count = 400
	r, err := hostile.Push(ctx, n, targetOf(t, info), count, func(i int) []byte { return randBytes(uint64(7000+i), mixer.Large) })
	if err != nil {
		t.Fatal(err)
	}
	afterPush, statPush := storeDiskBytes(t, w), w.stat()
	var gc apiv1.GCInfo
	if err := json.Unmarshal(w.ok("gc", "--json"), &gc); err != nil {
		t.Fatalf("gc --json: %v", err)
	}
	afterGC, statGC := storeDiskBytes(t, w), w.stat()
	attackf(t, "push-share", "%d of %d pushes of 128 KiB accepted (%s), %d refused (%q); store %s on disk after the pushes (%d blocks, %s), %s after gc (evicted %d blocks); empty store %s",
		r.Accepted, count, apiv1.HumanBytes(r.AcceptedBytes), r.Refused, r.FirstReason(),
		apiv1.HumanBytes(afterPush), statPush.Blocks, apiv1.HumanBytes(statPush.Bytes), apiv1.HumanBytes(afterGC), gc.EvictedBlocks, apiv1.HumanBytes(empty))

	if r.Refused == 0 {
		t.Errorf("all %d pushes past the share of %s were taken: none refused", r.Accepted, apiv1.HumanBytes(share))
	}
	for reason := range r.Reasons {
		if strings.TrimSpace(reason[strings.Index(reason, ":")+1:]) == "" {
			t.Errorf("a refusal without a reason: %q", reason)
		}
	}
	if r.AcceptedBytes > share {
		t.Errorf("accepted %s of pushes, over the share of %s", apiv1.HumanBytes(r.AcceptedBytes), apiv1.HumanBytes(share))
	}
	for _, m := range []struct {
		when string
		disk int64
	}{{"after the pushes", afterPush}, {"after gc", afterGC}} {
		if m.disk-empty > share+slack {
			t.Errorf("%s the store takes %s on disk (%s over the empty store); the share is %s (+%s slack)",
				m.when, apiv1.HumanBytes(m.disk), apiv1.HumanBytes(m.disk-empty), apiv1.HumanBytes(share), apiv1.HumanBytes(slack))
		}
	}
	if statGC.Bytes > share {
		t.Errorf("after gc the store holds %s of blocks, over the share of %s", apiv1.HumanBytes(statGC.Bytes), apiv1.HumanBytes(share))
	}
}

// TestHostileTinyBlocks: a donor with --quota 1MiB gets 100,000 pushes of
// 8-byte blocks. Only blocks of a class size (mixer.Classes) may be
// accepted, and the store's bytes on disk must stay within the quota plus
// 256 KiB over the empty store: at most 1024 blocks of the smallest class
// fit in the quota, and each costs well under 256 bytes of index entry and
// record header beyond its bytes. A stranger's block of a class size is
// still taken afterwards (the door is not simply shut).
func TestHostileTinyBlocks(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a daemon")
	}
	t.Parallel()
	const quota = 1 * mib
	const slack = 256 * kib
	const count = 100_000
	w := newWorld(t)
	_, info := startDaemonWith(t, w, daemonArgs("--donor", "--quota", "1MiB")...)
	target := targetOf(t, info)
	empty := storeDiskBytes(t, w)
	n := newHostile(t, hostile.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	start := time.Now()
	r, err := hostile.Push(ctx, n, target, count, func(i int) []byte {
		b := make([]byte, 8)
		for k := range b {
			b[k] = byte(uint64(i) >> (8 * k))
		}
		b[7] = 0xA5 // not an all-zero block
		return b
	})
	if err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	disk, st := storeDiskBytes(t, w), w.stat()

	// A proper block from someone else.
	ok, err := hostile.Push(ctx, newHostile(t, hostile.Options{}), target, 1, func(int) []byte { return randBytes(902, mixer.Small) })
	if err != nil {
		t.Fatal(err)
	}
	cut := ""
	if r.Cut != nil {
		cut = fmt.Sprintf(", the stream cut after %d answers (%v)", r.Accepted+r.Refused, r.Cut)
	}
	attackf(t, "tiny-blocks", "%d of %d pushes of 8 bytes accepted, %d refused (%q)%s in %v; store %s on disk (stat: %d blocks, %s of blocks, disk_bytes %s; quota %s, empty store %s); a 1 KiB block afterwards: %d accepted",
		r.Accepted, count, r.Refused, r.FirstReason(), cut, took.Round(time.Millisecond),
		apiv1.HumanBytes(disk), st.Blocks, apiv1.HumanBytes(st.Bytes), apiv1.HumanBytes(st.DiskBytes), apiv1.HumanBytes(quota), apiv1.HumanBytes(empty), ok.Accepted)

	if r.Accepted > 0 {
		t.Errorf("%d blocks of 8 bytes accepted; only the class sizes %v may be", r.Accepted, mixer.Classes)
	}
	if disk-empty > quota+slack {
		t.Errorf("the store takes %s on disk (%s over the empty store); the quota is %s (+%s slack)",
			apiv1.HumanBytes(disk), apiv1.HumanBytes(disk-empty), apiv1.HumanBytes(quota), apiv1.HumanBytes(slack))
	}
	if ok.Accepted != 1 {
		t.Errorf("a 1 KiB block pushed after the attack: %+v", ok)
	}
}

// TestHostileLiars: three peers join the DHT (so they are among the nodes
// closest to every block), accept every push and throw it away, and answer
// Have to every has-list. Copies must be proven, not claimed: the put
// must report its blocks as short, check must not say healthy, and the
// liars' claims must count for nothing (the fewest copies is the
// uploader's own).
func TestHostileLiars(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a daemon and three liars")
	}
	t.Parallel()
	up := newWorld(t)
	_, info := startDaemonWith(t, up, daemonArgs("--replicas", "3")...)
	var liars []*hostile.Node
	for range 3 {
		liars = append(liars, newHostile(t, hostile.Options{Liar: true, Bootstrap: []peer.AddrInfo{targetOf(t, info)}}))
	}
	waitRoutingTable(t, up, 3)
	writeRandomFile(t, up.path("f.bin"), 903, 1*mib+123)
	// put may well exit non-zero when blocks are short: what it says is
	// read from its JSON either way.
	pr := up.run("--no-progress", "put", "--json", up.path("f.bin"))
	var put apiv1.PutInfo
	if err := json.Unmarshal(pr.stdout, &put); err != nil || put.Recipe == "" {
		t.Fatalf("put --json: %v\n%v", err, pr)
	}
	rc := put.Recipe
	h := checkOf(t, up, rc)
	var discarded, claimed, challenged int64
	for _, l := range liars {
		discarded += l.PushesDiscarded.Load()
		claimed += l.HavesClaimed.Load()
		challenged += l.Challenges.Load()
	}
	short := "not placed"
	if put.Short != nil {
		short = fmt.Sprintf("%d of %d blocks short", *put.Short, put.Blocks)
	}
	attackf(t, "liars", "put exits %d and says %s (nodes %d, %q); check says %s, min %d copies, median %d (%q); the liars discarded %d pushes, claimed %d haves, failed %d challenges; the uploader holds %d blocks",
		pr.code, short, put.Nodes, put.Placement, h.State, h.MinCopies, h.MedianCopies, h.Verdict, discarded, claimed, challenged, up.stat().Blocks)

	if put.Short == nil || *put.Short == 0 {
		t.Errorf("put reports every block placed (%s) with only liars to hold them", short)
	}
	if h.State == apiv1.HealthHealthy {
		t.Errorf("check says %s: %s", h.State, h.Verdict)
	}
	if h.MinCopies > 1 {
		t.Errorf("check counts %d copies of the least-copied block; only the uploader holds any (the liars' claims must count for nothing)", h.MinCopies)
	}
}

// TestHostileFairShareSybil: a node with --fair-share 1MiB, and three fresh
// peer IDs that hold nothing for it each push 2 MiB. Together the strangers
// may store at most the allowance and one block.
func TestHostileFairShareSybil(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a daemon")
	}
	t.Parallel()
	const allowance = 1 * mib
	const bound = allowance + mixer.Large
	w := newWorld(t)
	_, info := startDaemonWith(t, w, daemonArgs("--fair-share", "1MiB")...)
	target := targetOf(t, info)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var total int64
	var each []string
	for k := range 3 {
		r, err := hostile.Push(ctx, newHostile(t, hostile.Options{}), target, 16, func(i int) []byte {
			return randBytes(uint64(9000+100*k+i), mixer.Large)
		})
		if err != nil {
			t.Fatal(err)
		}
		total += r.AcceptedBytes
		each = append(each, apiv1.HumanBytes(r.AcceptedBytes))
	}
	st := w.stat()
	attackf(t, "fair-share-sybil", "3 strangers stored %s (%s each accepted of 2.0 MiB pushed); the store holds %s in %d blocks",
		apiv1.HumanBytes(total), strings.Join(each, " + "), apiv1.HumanBytes(st.Bytes), st.Blocks)
	if total > bound || st.Bytes > bound {
		t.Errorf("three fresh peer IDs stored %s (the store holds %s); the allowance is %s, so at most %s",
			apiv1.HumanBytes(total), apiv1.HumanBytes(st.Bytes), apiv1.HumanBytes(allowance), apiv1.HumanBytes(bound))
	}
}

// TestHostileUnsealFlood: 16 POST /api/v1/unseal at once, each an Argon2id
// derivation of 64 MiB. The daemon's peak RSS must stay under 256 MiB (no
// more than two derivations at once); every request gets an answer (200,
// or a refusal to come back later: 429 or 503).
func TestHostileUnsealFlood(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a daemon")
	}
	t.Parallel()
	const n = 16
	const bound = 256 << 10 // kB
	w := newWorld(t)
	w.bin = plainBinary(t)
	w.file("secret.bin", randBytes(904, 5000))
	pass := w.file("pass.txt", []byte(testPassphrase+"\n"))
	sealed := w.okLine("put", "--passphrase-file", pass, "secret.bin") // offline: the derivation is not the daemon's
	p, _ := startDaemonWith(t, w, daemonArgs()...)
	before := vmKB(t, p, "VmHWM")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	r := hostile.UnsealFlood(ctx, w.apiBase(t), sealed, testPassphrase, n)
	hwm := vmKB(t, p, "VmHWM")
	var codes []string
	for c, k := range r.Status {
		codes = append(codes, fmt.Sprintf("%d×%d", c, k))
	}
	sort.Strings(codes)
	attackf(t, "unseal-flood", "VmHWM %s (%s before); %d answers (%s), %d without one; the slowest took %v",
		humanKB(hwm), humanKB(before), n-r.Errors, strings.Join(codes, " "), r.Errors, r.Slowest.Round(time.Millisecond))
	if hwm >= bound {
		t.Errorf("peak RSS %s under %d unseals at once; the bound is %s", humanKB(hwm), n, humanKB(bound))
	}
	if r.Errors > 0 {
		t.Errorf("%d of %d unseals got no answer", r.Errors, n)
	}
	for c := range r.Status {
		if !slices.Contains([]int{200, 429, 503}, c) {
			t.Errorf("%d unseals answered %d", r.Status[c], c)
		}
	}
}

// TestHostileSlowUpload: while one upload to POST /api/v1/put trickles in
// at a byte a second, another put and a gc on the same daemon must each
// finish within 60 s.
func TestHostileSlowUpload(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a daemon")
	}
	t.Parallel()
	const bound = 60 * time.Second
	w := newWorld(t)
	startDaemonWith(t, w, daemonArgs()...)
	w.file("other.bin", randBytes(905, 200*kib))
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	slow := hostile.StartSlowUpload(ctx, w.apiBase(t), "slow.bin", time.Second)
	defer slow.Stop()
	waitFor(t, "the slow upload under way", 30*time.Second, func() bool { return slow.Sent() >= 2 })

	type outcome struct {
		what     string
		r        result
		timedOut bool
	}
	outs := make(chan outcome, 2)
	for _, c := range []struct {
		what string
		args []string
	}{{"put", []string{"--no-progress", "put", "--json", "other.bin"}}, {"gc", []string{"gc", "--json"}}} {
		go func() {
			r, to := runBounded(w, bound, c.args...)
			outs <- outcome{c.what, r, to}
		}()
	}
	var says []string
	var failed []outcome
	for range 2 {
		o := <-outs
		switch {
		case o.timedOut:
			says = append(says, fmt.Sprintf("%s did not finish in %v", o.what, bound))
			failed = append(failed, o)
		case o.r.code != 0:
			says = append(says, fmt.Sprintf("%s exited %d after %v", o.what, o.r.code, o.r.dur.Round(time.Millisecond)))
			failed = append(failed, o)
		default:
			says = append(says, fmt.Sprintf("%s took %v", o.what, o.r.dur.Round(time.Millisecond)))
		}
	}
	sort.Strings(says)
	ended, err := slow.Ended()
	slowSays := fmt.Sprintf("still under way with %d bytes sent", slow.Sent())
	if ended {
		slowSays = fmt.Sprintf("ended with %d bytes sent (%v)", slow.Sent(), err)
	}
	attackf(t, "slow-upload", "with an upload of 1 byte/s under way: %s; the slow upload %s", strings.Join(says, ", "), slowSays)
	for _, o := range failed {
		t.Errorf("%s beside a slow upload: %v", o.what, o.r)
	}
}
