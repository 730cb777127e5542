package node

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/blockmix/blockmix/cmd/blockmix/internal/atomicfile"
	"github.com/blockmix/blockmix/cmd/blockmix/internal/config"
	"github.com/blockmix/blockmix/cmd/blockmix/internal/repo"
)

// TestTornSmallFiles: a node whose identity key, group file, ledger or
// put note a power cut tore (empty, cut short) starts all the same; the
// torn file is set aside with its bytes intact and the log warns about
// it, saying what it means for the node.
func TestTornSmallFiles(t *testing.T) {
	k, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	key, err := crypto.MarshalPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	group := []byte(`{"name": "friends", "key": "` + hex.EncodeToString(make([]byte, 32)) + `"}`)
	files := []struct {
		name  string // in the repo
		whole []byte
		warn  string // in the warning
	}{
		{repo.IdentityFile, key, "NEW PEER ID"},
		{repo.GroupFile, group, "OUTSIDE its private group"},
		{repo.LedgerFile, []byte(`{"12D3KooWpeer": {"stored_here": 1000, "holds_for_us": 0}}`), "ledger is damaged"},
		{filepath.Join(repo.PutsDir, "put-1.json"), []byte(`{"from_seq": 0}`), "note of an unfinished put is torn"},
	}
	prof, err := config.ProfileNamed("default")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		for how, b := range map[string][]byte{"empty": {}, "truncated": f.whole[:len(f.whole)/2]} {
			t.Run(filepath.Base(f.name)+" "+how, func(t *testing.T) {
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				defer cancel()
				r := repo.Repo{Dir: t.TempDir()}
				path := r.Path(f.name)
				if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, b, 0o600); err != nil {
					t.Fatal(err)
				}
				s := config.Settings{Listen: []string{"/ip4/127.0.0.1/tcp/0"}, API: "127.0.0.1:0", Replicas: 1, Cache: 1 << 30, Profile: prof}
				lb := &logBuffer{}
				n, err := New(ctx, Config{Repo: r, Settings: s, Log: slog.New(slog.NewTextHandler(lb, nil))})
				if err != nil {
					t.Fatalf("a torn %s kept the node from starting: %v", f.name, err)
				}
				defer n.Close()
				aside, _ := filepath.Glob(path + atomicfile.DamagedMarker + "*")
				if len(aside) != 1 {
					t.Fatalf("%s set aside as %q, want one", f.name, aside)
				}
				if got, err := os.ReadFile(aside[0]); err != nil || string(got) != string(b) {
					t.Errorf("the copy set aside holds %q (%v), want %q", got, err, b)
				}
				if log := lb.String(); !strings.Contains(log, "level=WARN") || !strings.Contains(log, f.warn) || !strings.Contains(log, aside[0]) {
					t.Errorf("no warning %q naming %s; log:\n%s", f.warn, aside[0], log)
				}
				switch f.name {
				case repo.IdentityFile:
					nk, err := r.ReadIdentity()
					if err != nil {
						t.Fatalf("no new key saved: %v", err)
					}
					if id, _ := peer.IDFromPrivateKey(nk); id.String() != n.ID().ID {
						t.Errorf("the node runs as %s, its saved key is %s", n.ID().ID, id)
					}
				case repo.GroupFile:
					if n.group != "" {
						t.Errorf("the node is in group %q with its group file torn", n.group)
					}
				}
			})
		}
	}
}
