package node

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/blockmix/blockmix/cmd/blockmix/internal/atomicfile"
	"github.com/blockmix/blockmix/cmd/blockmix/internal/config"
	"github.com/blockmix/blockmix/cmd/blockmix/internal/repo"
	"github.com/blockmix/blockmix/cmd/blockmix/internal/size"
	"github.com/blockmix/blockmix/cmd/blockmix/internal/usage"
	"github.com/blockmix/blockmix/webui/apiv1"
)

// maxReplicas bounds the replicas the page may ask for: each block is
// pushed to that many nodes.
const maxReplicas = 16

// Settings are the page's settings: config.json's keys where it sets
// them, else what the node runs with.
func (n *Node) Settings(ctx context.Context) (apiv1.SettingsInfo, error) {
	n.settingsMu.Lock()
	defer n.settingsMu.Unlock()
	f, _, err := config.Read(n.repo.Path(repo.ConfigFile), n.log)
	if err != nil {
		return apiv1.SettingsInfo{}, err
	}
	return n.settingsFrom(f), nil
}

// settingsFrom is f's settings, with the running node's where f is
// silent.
func (n *Node) settingsFrom(f config.File) apiv1.SettingsInfo {
	s := apiv1.SettingsInfo{
		Replicas: n.cfg.Replicas, Cache: size.Human(n.cache.Load()), Donor: n.cfg.Donor, Profile: n.cfg.Profile.Name,
		RepairInterval: n.cfg.RepairInterval.String(),
	}
	if n.cfg.Quota > 0 {
		s.Quota = size.Human(n.cfg.Quota)
	}
	setFrom(&s.Replicas, f.Replicas)
	setFrom(&s.Cache, f.Cache)
	setFrom(&s.Donor, f.Donor)
	setFrom(&s.Quota, f.Quota)
	setFrom(&s.Profile, f.Profile)
	setFrom(&s.RepairInterval, f.RepairInterval)
	return s
}

// setFrom sets *dst to *src when src is set.
func setFrom[T any](dst, src *T) {
	if src != nil {
		*dst = *src
	}
}

// SetSettings checks s, writes it to config.json (keeping the file's
// other keys) and applies the cache size now; the rest applies when the
// daemon next starts (the answer's Restart lists what changed). A bad
// value is a usage error (400) and nothing is written.
func (n *Node) SetSettings(ctx context.Context, s apiv1.SettingsInfo) (apiv1.SettingsInfo, error) {
	n.settingsMu.Lock()
	defer n.settingsMu.Unlock()
	path := n.repo.Path(repo.ConfigFile)
	f, _, err := config.Read(path, n.log)
	if err != nil {
		return apiv1.SettingsInfo{}, err
	}
	before := n.settingsFrom(f)
	if s.Replicas > maxReplicas {
		return apiv1.SettingsInfo{}, usage.Errorf("replicas %d: at most %d", s.Replicas, maxReplicas)
	}
	f.Replicas, f.Cache, f.Donor, f.Profile, f.RepairInterval = &s.Replicas, &s.Cache, &s.Donor, &s.Profile, &s.RepairInterval
	f.Quota = nil
	if s.Quota != "" {
		f.Quota = &s.Quota
	}
	if err := f.Check(); err != nil {
		return apiv1.SettingsInfo{}, err
	}
	if s.Donor && s.Quota == "" {
		return apiv1.SettingsInfo{}, usage.Errorf("a donor needs a quota: the space this node gives (for example 50GiB)")
	}
	if d, _ := time.ParseDuration(s.RepairInterval); d > 0 && d < time.Minute {
		return apiv1.SettingsInfo{}, usage.Errorf("repair interval %s: at least a minute (or 0: never)", s.RepairInterval)
	}
	cache, _ := size.Parse(s.Cache) // checked by f.Check
	b, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return apiv1.SettingsInfo{}, fmt.Errorf("settings: %w", err)
	}
	if err := atomicfile.WriteFile(path, append(b, '\n'), 0o600); err != nil {
		return apiv1.SettingsInfo{}, fmt.Errorf("save settings: %w", err)
	}
	out := n.settingsFrom(f)
	if cache != n.cache.Load() {
		n.cache.Store(cache)
		out.Applied = append(out.Applied, "cache")
	}
	for _, c := range []struct {
		key     string
		changed bool
	}{
		{"replicas", before.Replicas != out.Replicas},
		{"donor", before.Donor != out.Donor},
		{"quota", before.Quota != out.Quota},
		{"profile", before.Profile != out.Profile},
		{"repair_interval", before.RepairInterval != out.RepairInterval},
	} {
		if c.changed {
			out.Restart = append(out.Restart, c.key)
		}
	}
	n.log.Info("settings saved from the web page", slog.String("file", path), slog.Any("applied", out.Applied), slog.Any("at_restart", out.Restart))
	return out, nil
}

// Connect reaches the node at addr (a multiaddr ending in /p2p/PEER-ID)
// and, when remember is set, adds addr to config.json's bootstrap list
// (once), so that the daemon joins through it at every start.
func (n *Node) Connect(ctx context.Context, addr string, remember bool) (apiv1.ConnectInfo, error) {
	ai, err := peer.AddrInfoFromString(addr)
	if err != nil {
		return apiv1.ConnectInfo{}, usage.Errorf("%q is not a node's full address (a multiaddr ending in /p2p/PEER-ID, as 'blockmix id' prints it): %v", addr, err)
	}
	if ai.ID == n.net.Host.ID() {
		return apiv1.ConnectInfo{}, usage.Errorf("that is this node's own address")
	}
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := n.connectRetry(cctx, *ai, n.group != ""); err != nil {
		return apiv1.ConnectInfo{}, fmt.Errorf("connect to %s: %w", ai.ID.ShortString(), err)
	}
	info := apiv1.ConnectInfo{ID: ai.ID.String()}
	if !remember {
		return info, nil
	}
	n.settingsMu.Lock()
	defer n.settingsMu.Unlock()
	path := n.repo.Path(repo.ConfigFile)
	f, _, err := config.Read(path, n.log)
	if err != nil {
		return info, err
	}
	if !slices.Contains(f.Bootstrap, addr) {
		f.Bootstrap = append(f.Bootstrap, addr)
		b, err := json.MarshalIndent(f, "", "  ")
		if err == nil {
			err = atomicfile.WriteFile(path, append(b, '\n'), 0o600)
		}
		if err != nil {
			return info, fmt.Errorf("connected, but the address was not saved: %w", err)
		}
	}
	info.Remembered = true
	return info, nil
}
