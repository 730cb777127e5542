package node

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/blockmix/blockmix/blocks"
	"github.com/blockmix/blockmix/cmd/blockmix/internal/config"
	"github.com/blockmix/blockmix/cmd/blockmix/internal/repo"
	"github.com/blockmix/blockmix/recipe"
	"github.com/blockmix/blockmix/webui/apiv1"
	"github.com/libp2p/go-libp2p/core/peer"
)

// logBuffer collects a node's log lines.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// running is a node started by startNode, with its log.
type running struct {
	*Node
	log *logBuffer
}

// startNode makes and runs a node on 127.0.0.1 in a fresh repo; the test's
// cleanup stops it and checks that Run returned cleanly.
func startNode(t *testing.T, ctx context.Context, edit func(*config.Settings)) running {
	t.Helper()
	return startNodeTimeouts(t, ctx, edit, Timeouts{})
}

// startNodeTimeouts is startNode with the API's timeouts to.
func startNodeTimeouts(t *testing.T, ctx context.Context, edit func(*config.Settings), to Timeouts) running {
	t.Helper()
	prof, err := config.ProfileNamed("default")
	if err != nil {
		t.Fatal(err)
	}
	s := config.Settings{Listen: []string{"/ip4/127.0.0.1/tcp/0"}, API: "127.0.0.1:0", Replicas: 1, Cache: 1 << 30,
		Profile: prof, RepairInterval: 100 * time.Millisecond}
	if edit != nil {
		edit(&s)
	}
	lb := &logBuffer{}
	n, err := New(ctx, Config{Repo: repo.Repo{Dir: t.TempDir()}, Settings: s, Log: slog.New(slog.NewTextHandler(lb, nil)), Timeouts: to})
	if err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- n.Run(rctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("Run did not return within 30 s of its context's end")
		}
		if err := n.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return running{n, lb}
}

// metric reads one sample of the node's /metrics (0 when absent).
func metric(t *testing.T, n *Node, name string) float64 {
	t.Helper()
	resp, err := http.Get(n.URL() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			var f float64
			if _, err := fmt.Sscan(v, &f); err != nil {
				t.Fatalf("%s: %q", name, line)
			}
			return f
		}
	}
	return 0
}

// waitFor polls cond until it holds, failing the test after a minute.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within a minute", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestNodeMetricsAndLog: three nodes in one process. A put on A places
// blocks on a donor B with a small quota, which refuses the ones past it;
// C rebuilds the file from A; A's repair rounds run. Each event moves its
// metric on GET /metrics, and the refusal and the repair round are one
// log line each at the default level.
func TestNodeMetricsAndLog(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// No repair rounds until the fetch is counted: they would move blocks
	// to C meanwhile. A's rounds start below.
	b := startNode(t, ctx, func(s *config.Settings) { s.Donor, s.Quota, s.RepairInterval = true, 600<<10, 0 })
	boot := func(s *config.Settings) { s.RepairInterval = 0; s.Bootstrap = []peer.AddrInfo{b.Net().AddrInfo()} }
	a := startNode(t, ctx, boot)
	c := startNode(t, ctx, boot)
	waitFor(t, "routing tables", func() bool {
		return a.ID().RoutingTable >= 2 && c.ID().RoutingTable >= 2
	})

	data := make([]byte, 3<<20)
	rand.NewChaCha8([32]byte{1}).Read(data)
	info, err := a.Put(ctx, bytes.NewReader(data), int64(len(data)), "m.bin", "")
	if err != nil {
		t.Fatal(err)
	}
	if got := metric(t, a.Node, "blockmix_put_files_total"); got != 1 {
		t.Errorf("blockmix_put_files_total on A = %v after one put", got)
	}
	if got := metric(t, b.Node, "blockmix_pushes_accepted_total"); got < 1 {
		t.Errorf("blockmix_pushes_accepted_total on B = %v after a put placed blocks there", got)
	}
	if got := metric(t, b.Node, `blockmix_pushes_refused_total{reason="quota"}`); got < 1 {
		t.Errorf("blockmix_pushes_refused_total{reason=\"quota\"} on B = %v: a put of 3 MiB into a 600 KiB quota", got)
	}

	rc, err := recipe.Parse(info.Recipe)
	if err != nil {
		t.Fatal(err)
	}
	r, err := c.Open(ctx, rc)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if _, err := r.WriteTo(&out); err != nil || !bytes.Equal(out.Bytes(), data) {
		t.Fatalf("C's rebuild: %v (same bytes: %v)", err, bytes.Equal(out.Bytes(), data))
	}
	// C holds some of the blocks already (placement gave them to it when
	// B was full); the rest came from peers, each timed once.
	fetched := metric(t, c.Node, "blockmix_blocks_fetched_total")
	if fetched < 1 {
		t.Errorf("blockmix_blocks_fetched_total on C = %v after fetching a file it did not hold whole", fetched)
	}
	if got := metric(t, c.Node, "blockmix_fetch_seconds_count"); got != fetched {
		t.Errorf("blockmix_fetch_seconds_count on C = %v for %v blocks fetched", got, fetched)
	}
	rctx, stopRepair := context.WithCancel(ctx)
	repairDone := make(chan struct{})
	go func() { a.repairer.Run(rctx, 50*time.Millisecond); close(repairDone) }()
	defer func() { stopRepair(); <-repairDone }()
	waitFor(t, "a repair round on A", func() bool { return metric(t, a.Node, "blockmix_repair_rounds_total") >= 1 })
	if got := metric(t, a.Node, "blockmix_peers"); got < 2 {
		t.Errorf("blockmix_peers on A = %v", got)
	}

	waitFor(t, "the log lines", func() bool {
		return strings.Contains(a.log.String(), "repair round") && strings.Contains(b.log.String(), "push refused")
	})
	for _, line := range strings.Split(b.log.String(), "\n") {
		if strings.Contains(line, "push refused") && (!strings.Contains(line, "level=WARN") || !strings.Contains(line, "reason=quota")) {
			t.Errorf("the first refused push is not a warning with its reason: %s", line)
			break
		}
	}
	for _, line := range strings.Split(a.log.String(), "\n") {
		if strings.Contains(line, "repair round") && !strings.Contains(line, "checked=") {
			t.Errorf("a repair round's line does not say what it checked: %s", line)
		}
	}
}

// TestCloseJoinsGoroutines: after Run returns and Close, every goroutine
// the node started (its rounds, its servers, libp2p's) has ended.
func TestCloseJoinsGoroutines(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	before := runtime.NumGoroutine()
	t.Run("node", func(t *testing.T) {
		n := startNode(t, ctx, func(s *config.Settings) { s.ScrubInterval = 50 * time.Millisecond; s.Donor, s.Quota = true, 1<<30 })
		data := make([]byte, 300<<10)
		if _, err := n.Put(ctx, bytes.NewReader(data), int64(len(data)), "z.bin", ""); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "a repair round", func() bool { return metric(t, n.Node, "blockmix_repair_rounds_total") >= 1 })
	}) // its cleanup ends Run and closes the node
	deadline := time.Now().Add(30 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines before the node, %d after it closed:\n%s", before, runtime.NumGoroutine(), buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestHealthOfAnyRecipe: a node that never fetched a file can say whether
// it is safe: it reads the descriptor to learn the file's blocks and
// counts their copies, without fetching the data. A file whose blocks are
// nowhere reachable is lost.
func TestHealthOfAnyRecipe(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// No repair rounds: they would move blocks while the check counts.
	quiet := func(s *config.Settings) { s.RepairInterval = 0 }
	b := startNode(t, ctx, quiet)
	boot := func(s *config.Settings) { quiet(s); s.Bootstrap = []peer.AddrInfo{b.Net().AddrInfo()} }
	a := startNode(t, ctx, boot)
	c := startNode(t, ctx, boot)
	alone := startNode(t, ctx, quiet)
	waitFor(t, "routing tables", func() bool { return a.ID().RoutingTable >= 2 && c.ID().RoutingTable >= 2 })

	data := make([]byte, 5<<20)
	rand.NewChaCha8([32]byte{5}).Read(data)
	info, err := a.Put(ctx, bytes.NewReader(data), int64(len(data)), "h.bin", "")
	if err != nil {
		t.Fatal(err)
	}
	rc, err := recipe.Parse(info.Recipe)
	if err != nil {
		t.Fatal(err)
	}
	before, _ := c.Store().Stats(ctx)
	h, err := c.Health(ctx, rc)
	if err != nil {
		t.Fatal(err)
	}
	if h.Blocks != info.Blocks || h.State != apiv1.HealthHealthy || h.MinCopies < 1 {
		t.Fatalf("health on a node that never fetched the file: %+v; want %d blocks, healthy", h, info.Blocks)
	}
	// The descriptor's nodes are small blocks (1 KiB here: 40 tuples fit
	// 1 KiB nodes); the file's data blocks are 128 KiB. Not one came.
	after, _ := c.Store().Stats(ctx)
	if grew := after.Bytes - before.Bytes; grew >= 128<<10 {
		t.Errorf("the health check fetched %d bytes in %d blocks: it should read the descriptor only", grew, after.Blocks-before.Blocks)
	}

	lost, err := alone.Health(ctx, rc)
	if err != nil {
		t.Fatal(err)
	}
	if lost.State != apiv1.HealthLost || lost.Missing == 0 {
		t.Fatalf("health on a node that reaches no copy: %+v; want lost", lost)
	}
}

// TestAPIBadInput: bad input to the API is a 4xx with the reason, never a
// 500.
func TestAPIBadInput(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	n := startNode(t, ctx, nil)
	for _, c := range []struct {
		path, body, want string
	}{
		{"/api/v1/put?name=a&size=10", "12345", "read 5 bytes, expected 10"},
		{"/api/v1/group/join?invite=garbage", "", "not an invite"},
		{"/api/v1/group/create?name=%1b%07", "", "group name"},
	} {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, n.URL()+c.path, strings.NewReader(c.body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Sec-Fetch-Site", "same-origin")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(b), c.want) {
			t.Errorf("POST %s: %d %s; want 400 saying %q", c.path, resp.StatusCode, b, c.want)
		}
	}
}

// TestNewFailsCleanly: a second node on a repo that one already holds gets
// an error wrapping blocks.ErrLocked (New used to panic closing a nil
// node on any error), and one with an API address it cannot listen on
// gives the repo back.
func TestNewFailsCleanly(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	a := startNode(t, ctx, nil)
	prof, err := config.ProfileNamed("default")
	if err != nil {
		t.Fatal(err)
	}
	s := config.Settings{Listen: []string{"/ip4/127.0.0.1/tcp/0"}, API: "127.0.0.1:0", Replicas: 1, Profile: prof}
	if _, err := New(ctx, Config{Repo: a.repo, Settings: s}); !errors.Is(err, blocks.ErrLocked) {
		t.Fatalf("a second node on a held repo: %v, want ErrLocked", err)
	}
	dir := t.TempDir()
	bad := s
	bad.API = "127.0.0.1:99999"
	if _, err := New(ctx, Config{Repo: repo.Repo{Dir: dir}, Settings: bad}); err == nil {
		t.Fatal("a node with API address 127.0.0.1:99999 started")
	}
	n, err := New(ctx, Config{Repo: repo.Repo{Dir: dir}, Settings: s})
	if err != nil {
		t.Fatalf("the repo a failed New opened is still held: %v", err)
	}
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
}
