package node

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"

	"github.com/blockmix/blockmix/cmd/blockmix/internal/config"
	"github.com/blockmix/blockmix/cmd/blockmix/internal/repo"
	"github.com/blockmix/blockmix/cmd/blockmix/internal/usage"
)

// Pooled are the nodes a donor runs for its pooled groups (--pool): one
// per pooled repo, each a member of the private group that repo joined,
// with its own libp2p host (the group key), store, quota and API, in the
// daemon's process. One group's nodes never see another's blocks: the
// keys keep the networks apart, the repos keep the stores apart.
type Pooled struct {
	Nodes []*Node
	log   *slog.Logger
}

// StartPooled starts a node on each repo of dirs with the settings of its
// config.json (listen and api default to any free TCP port: the main
// node holds the usual ones; profile to the main node's, profile, as the
// profile's memory settings are the process's). A repo that joined no group is a usage
// error: pooling is for groups. Each node tells home, the group of the
// donor's main repo ("" for none), as its home: to the group it serves,
// unless that is home itself, it is a partner donor (see
// --partner-copies). On an error the nodes started so far are closed.
func StartPooled(ctx context.Context, dirs []string, profile, home string, log *slog.Logger) (_ *Pooled, err error) {
	p := &Pooled{log: log}
	defer func() {
		if err != nil {
			p.Close()
		}
	}()
	for _, dir := range dirs {
		r := repo.Repo{Dir: dir, Log: log}
		g, ok, err := r.Group()
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, usage.Errorf("--pool %s: this repo is in no group (join one first: blockmix --repo %s group join INVITE)", dir, dir)
		}
		path := r.Path(repo.ConfigFile)
		file, _, err := config.Read(path, log)
		if err != nil {
			return nil, err
		}
		o := config.Defaults()
		o.Listen, o.API, o.Profile = []string{"/ip4/0.0.0.0/tcp/0"}, "127.0.0.1:0", profile
		none := func(string) bool { return false }
		s, err := file.Apply(o, none).Check(file, path, none)
		if err != nil {
			return nil, fmt.Errorf("--pool %s: %w", dir, err)
		}
		glog := log.With(slog.String("pool_group", g.Name))
		n, err := New(ctx, Config{Repo: r, Settings: s, Log: glog, Home: home})
		if err != nil {
			return nil, fmt.Errorf("--pool %s (group %s): %w", dir, g.Name, err)
		}
		glog.Info("serving a pooled group", slog.String("repo", dir), slog.String("api", n.URL()))
		p.Nodes = append(p.Nodes, n)
	}
	return p, nil
}

// Run runs every pooled node until ctx ends; a node that fails is logged
// and the others go on.
func (p *Pooled) Run(ctx context.Context) {
	var wg sync.WaitGroup
	for _, n := range p.Nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := n.Run(ctx); err != nil {
				p.log.Error("a pooled group's node stopped", slog.String("repo", n.repo.Dir), slog.Any("err", err))
			}
		}()
	}
	wg.Wait()
}

// Close closes every pooled node.
func (p *Pooled) Close() {
	for _, n := range p.Nodes {
		if err := n.Close(); err != nil {
			p.log.Error("close a pooled group's node", slog.String("repo", n.repo.Dir), slog.Any("err", err))
		}
	}
}

// PoolDirs cleans the --pool directories: absolute, each once, never the
// main repo main.
func PoolDirs(dirs []string, main string) ([]string, error) {
	seen := map[string]bool{}
	var out []string
	m, _ := filepath.Abs(main)
	for _, d := range dirs {
		a, err := filepath.Abs(d)
		if err != nil {
			return nil, usage.Errorf("--pool %q: %v", d, err)
		}
		if a == m {
			return nil, usage.Errorf("--pool %s is the daemon's own repo: give each pooled group a repo of its own", d)
		}
		if !seen[a] {
			seen[a] = true
			out = append(out, a)
		}
	}
	return out, nil
}

// GroupName is the private group the node works in ("" for none).
func (n *Node) GroupName() string { return n.group }
