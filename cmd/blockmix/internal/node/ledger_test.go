package node

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/blockmix/blockmix/cmd/blockmix/internal/config"
	"github.com/blockmix/blockmix/cmd/blockmix/internal/repo"
)

// TestDamagedLedgerSetAside: a node whose ledger file is damaged starts
// anyway, with empty accounts; the damaged file is set aside and the log
// says so. A node that is not a donor logs the share it gives others.
func TestDamagedLedgerSetAside(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	r := repo.Repo{Dir: t.TempDir()}
	path := r.Path(repo.LedgerFile)
	if err := os.WriteFile(path, []byte(`{"peer":{"stored_here":`), 0o600); err != nil {
		t.Fatal(err)
	}
	prof, err := config.ProfileNamed("default")
	if err != nil {
		t.Fatal(err)
	}
	s := config.Settings{Listen: []string{"/ip4/127.0.0.1/tcp/0"}, API: "127.0.0.1:0", Replicas: 1, Cache: 1 << 30, Profile: prof}
	lb := &logBuffer{}
	n, err := New(ctx, Config{Repo: r, Settings: s, Log: slog.New(slog.NewTextHandler(lb, nil))})
	if err != nil {
		t.Fatalf("a damaged ledger kept the node from starting: %v", err)
	}
	defer n.Close()
	aside, _ := filepath.Glob(path + ".damaged-*")
	if len(aside) != 1 {
		t.Fatalf("set aside: %q, want one %s.damaged-TIME", aside, path)
	}
	if e := n.ledger.Entry("peer"); e.StoredHere != 0 {
		t.Errorf("account %+v, want empty", e)
	}
	if !strings.Contains(lb.String(), "level=WARN") || !strings.Contains(lb.String(), "ledger is damaged") {
		t.Errorf("no warning about the damaged ledger; log:\n%s", lb.String())
	}
	if n.keeper.Share <= 0 || n.keeper.Share > 1<<30 || !strings.Contains(lb.String(), "not a donor") {
		t.Errorf("share %d, want the default (0 < share <= 1 GiB) in the log; log:\n%s", n.keeper.Share, lb.String())
	}
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); err != nil {
		t.Errorf("Close saved no fresh ledger: %v", err)
	}
}
