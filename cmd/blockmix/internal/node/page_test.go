package node

import (
	"bytes"
	"context"
	"encoding/json"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/blockmix/blockmix/cmd/blockmix/internal/repo"
	"github.com/blockmix/blockmix/cmd/blockmix/internal/usage"
	"github.com/blockmix/blockmix/webui/apiv1"
)

// TestPutSharedBefore: the same file put again (even by two puts at once)
// leaves one file on the list, and every answer names it.
func TestPutSharedBefore(t *testing.T) {
	ctx := context.Background()
	n := startNode(t, ctx, nil)
	data := make([]byte, 300<<10)
	rand.NewChaCha8([32]byte{7}).Read(data)
	first, err := n.Put(ctx, bytes.NewReader(data), int64(len(data)), "same.bin", "")
	if err != nil {
		t.Fatal(err)
	}
	again, err := n.Put(ctx, bytes.NewReader(data), int64(len(data)), "same.bin", "")
	if err != nil {
		t.Fatal(err)
	}
	if again.Recipe != first.Recipe || again.SharedBefore.IsZero() || again.NewBlocks != 0 {
		t.Fatalf("the same file again: %+v (first %s)", again, first.Recipe)
	}
	var wg sync.WaitGroup
	recipes := make([]string, 4)
	for i := range recipes {
		wg.Go(func() {
			p, err := n.Put(ctx, bytes.NewReader(data), int64(len(data)), "same.bin", "")
			if err != nil {
				t.Error(err)
			}
			recipes[i] = p.Recipe
		})
	}
	wg.Wait()
	fs, err := n.Store().Files(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(fs) != 1 || fs[0].Recipe != first.Recipe {
		t.Fatalf("files after six puts of one file: %+v", fs)
	}
	for _, r := range recipes {
		if r != first.Recipe {
			t.Errorf("a put at once with others answered %s, not the listed %s", r, first.Recipe)
		}
	}
	// Another name is another file.
	if other, err := n.Put(ctx, bytes.NewReader(data), int64(len(data)), "other.bin", ""); err != nil || other.Recipe == first.Recipe {
		t.Fatalf("the same bytes under another name: %+v %v", other, err)
	}
}

// TestPutCancelledWhilePlacing: a put whose client goes while its blocks
// are placed leaves no file and (almost) no bytes.
func TestPutCancelledWhilePlacing(t *testing.T) {
	t.Setenv("BLOCKMIX_TEST_HOLD_PLACE", "held.bin")
	ctx := context.Background()
	n := startNode(t, ctx, nil)
	data := make([]byte, 400<<10)
	rand.NewChaCha8([32]byte{8}).Read(data)
	pctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		_, err := n.Put(pctx, bytes.NewReader(data), int64(len(data)), "held.bin", "")
		done <- err
	}()
	waitFor(t, "the put recorded", func() bool {
		fs, err := n.Store().Files(ctx)
		return err == nil && len(fs) == 1
	})
	cancel()
	if err := <-done; err == nil || !strings.Contains(err.Error(), "cancelled") {
		t.Fatalf("a cancelled put: %v", err)
	}
	st, err := n.Store().Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Files != 0 || st.Bytes > int64(len(data))/10 {
		t.Fatalf("after a cancelled put: %+v", st)
	}
	if got := n.keeper.Stored(); got > int64(len(data))/5 {
		t.Errorf("the keeper still counts %d bytes", got)
	}
}

// TestSettingsFile: settings are checked before anything is written, saved
// with config.json's other keys, and the cache applies at once.
func TestSettingsFile(t *testing.T) {
	ctx := context.Background()
	n := startNode(t, ctx, nil)
	path := n.repo.Path(repo.ConfigFile)
	if err := os.WriteFile(path, []byte(`{"api": "127.0.0.1:0"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := n.Settings(ctx)
	if err != nil || s.Replicas != 1 || s.Profile != "default" {
		t.Fatalf("settings: %+v %v", s, err)
	}
	for _, bad := range []apiv1.SettingsInfo{
		{Replicas: 0, Cache: "1GiB", Profile: "default", RepairInterval: "1h"},
		{Replicas: 99, Cache: "1GiB", Profile: "default", RepairInterval: "1h"},
		{Replicas: 2, Cache: "lots", Profile: "default", RepairInterval: "1h"},
		{Replicas: 2, Cache: "1GiB", Profile: "fast", RepairInterval: "1h"},
		{Replicas: 2, Cache: "1GiB", Profile: "default", RepairInterval: "soon"},
		{Replicas: 2, Cache: "1GiB", Profile: "default", RepairInterval: "1s"},
		{Replicas: 2, Cache: "1GiB", Profile: "default", RepairInterval: "1h", Donor: true},
	} {
		if _, err := n.SetSettings(ctx, bad); err == nil || !usage.Is(err) {
			t.Errorf("%+v: %v", bad, err)
		}
	}
	if b, _ := os.ReadFile(path); string(b) != `{"api": "127.0.0.1:0"}` {
		t.Fatalf("a refused setting touched config.json: %s", b)
	}
	out, err := n.SetSettings(ctx, apiv1.SettingsInfo{Replicas: 2, Cache: "5MiB", Profile: "default", RepairInterval: "30m", Quota: "1GiB", Donor: true})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(out.Applied, ",") != "cache" || strings.Join(out.Restart, ",") != "replicas,donor,quota,repair_interval" || n.cache.Load() != 5<<20 {
		t.Errorf("answer %+v, cache %d", out, n.cache.Load())
	}
	var f map[string]any
	b, _ := os.ReadFile(path)
	if err := json.Unmarshal(b, &f); err != nil || f["api"] != "127.0.0.1:0" || f["replicas"] != 2.0 || f["quota"] != "1GiB" || f["repair_interval"] != "30m" {
		t.Errorf("config.json: %s %v", b, err)
	}
	if _, err := n.Connect(ctx, "not an address", false); err == nil || !usage.Is(err) {
		t.Errorf("connect to a bad address: %v", err)
	}
	if _, err := n.Connect(ctx, n.ID().Addrs[0], false); err == nil || !usage.Is(err) {
		t.Errorf("connect to itself: %v", err)
	}
}

// TestPeersOnePerPeer: two nodes that dial each other at once hold two
// connections; the peer list names the other node once.
func TestPeersOnePerPeer(t *testing.T) {
	ctx := context.Background()
	a, b := startNode(t, ctx, nil), startNode(t, ctx, nil)
	ha, hb := a.net.Host, b.net.Host
	ai, bi := peer.AddrInfo{ID: ha.ID(), Addrs: ha.Addrs()}, peer.AddrInfo{ID: hb.ID(), Addrs: hb.Addrs()}
	for try := 0; len(ha.Network().ConnsToPeer(hb.ID())) < 2; try++ {
		if try == 50 {
			t.Skip("two hosts dialling each other at once kept one connection 50 times: nothing to count twice")
		}
		_ = ha.Network().ClosePeer(hb.ID())
		waitFor(t, "the connection closed", func() bool { return len(ha.Network().ConnsToPeer(hb.ID())) == 0 })
		var wg sync.WaitGroup
		wg.Go(func() { _ = ha.Connect(ctx, bi) })
		wg.Go(func() { _ = hb.Connect(ctx, ai) })
		wg.Wait()
	}
	ps := a.Peers()
	if len(ps) != 1 || ps[0].ID != hb.ID().String() {
		t.Fatalf("%d connections to one peer gave the rows %+v", len(ha.Network().ConnsToPeer(hb.ID())), ps)
	}
}
