// Package netcmd holds the commands of the node on the network: daemon,
// id, peers, status and group.
package netcmd

import (
	"context"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/blockmix/blockmix/cmd/blockmix/internal/base"
	"github.com/blockmix/blockmix/cmd/blockmix/internal/config"
	"github.com/blockmix/blockmix/cmd/blockmix/internal/logs"
	"github.com/blockmix/blockmix/cmd/blockmix/internal/node"
	"github.com/blockmix/blockmix/cmd/blockmix/internal/repo"
	"github.com/blockmix/blockmix/cmd/blockmix/internal/testhook"
)

// daemonFlags are the daemon's own flags beyond config.Options.
type daemonFlags struct {
	config.Options
	logLevel, logFormat, pprof string
}

func NewDaemonCommand(e *base.Env) *cobra.Command {
	o := daemonFlags{Options: config.Defaults()}
	c := &cobra.Command{
		Use:   "daemon",
		Short: "Run a node: serve blocks to peers, place and fetch them, and the local API",
		Long: `daemon runs a blockmix node on the repo: a libp2p host (TCP and QUIC) with
blockmix's own DHT (never the public IPFS network), the block protocol, and
the local HTTP API (default http://127.0.0.1:7788). While it runs, the
other commands on the same repo (put, get, stat, status, files, verify,
block, id, peers) go through it. It prints its peer ID and addresses; give
one of the addresses to friends as their --bootstrap.

It logs one line per event an operator cares about (repair rounds, refused
pushes, evictions, scrub findings, a full disk, an empty routing table) to
standard error, and serves Prometheus metrics on the API address at
GET /metrics.

Settings can also live in REPO/config.json, read at start (optional; every
key optional; a flag given on the command line wins over its key):

  {"listen":    ["/ip4/0.0.0.0/tcp/4001", "/ip4/0.0.0.0/udp/4001/quic-v1"],
   "bootstrap": ["/ip4/192.0.2.7/tcp/4001/p2p/12D3Koo…"],
   "api":       "127.0.0.1:7788",
   "replicas":  3,
   "cache":     "10GiB"}

A mistake in config.json (a syntax error inside it, an unknown key, a bad
value) stops the daemon with an error that says where. A config.json that
is torn, as a power cut leaves a file (empty, holding NUL bytes, or JSON
that stops before its end, such as a missing last }), is set aside as
config.json.damaged-TIME with a warning, and the daemon runs with its
defaults and flags.

The node's other small files never keep it from starting either: a torn
identity.key is set aside and a new key made (a new peer ID); a torn
group.json is set aside and the node starts outside its group (join again
with 'blockmix group join INVITE'); a torn ledger.json is set aside and the
accounts start empty; a torn note of an unfinished put is set aside; a torn
api file is ignored. Each says so in a warning.
QUIC is on when any listen or bootstrap address has /quic-v1.

Behind a home router nothing needs forwarding: the node learns whether it
is reachable (AutoNAT), maps a port where the router offers UPnP or
NAT-PMP, reserves a slot on a relay (its bootstrap nodes first) and punches
holes to other nodes behind NAT; blocks only ever flow over direct
connections. A node reachable directly relays for others
(--relay-service=false says no; off with --profile lowpower). Nodes on the
same LAN find each other by mDNS (--mdns; off in a private group).
'status' says how the node is reached, and what to do.`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			return runDaemon(c.Context(), e, o, c.Flags().Changed)
		},
	}
	f := c.Flags()
	o.Options.AddFlags(f)
	f.StringVar(&o.logLevel, "log-level", "info", "the least important log lines shown: debug, info, warn or error")
	f.StringVar(&o.logFormat, "log-format", "text", "text (for people and journalctl) or json (for log collectors)")
	f.StringVar(&o.pprof, "pprof", "", "serve Go's profiler on this loopback address (for example 127.0.0.1:6060); off by default")
	return c
}

// runDaemon runs the node until ctx ends. given reports the flags given on
// the command line: those win over REPO/config.json.
func runDaemon(ctx context.Context, e *base.Env, o daemonFlags, given func(flag string) bool) error {
	log, err := logs.New(e.Stderr, o.logLevel, o.logFormat)
	if err != nil {
		return err
	}
	if err := testhook.LabInternet(); err != nil {
		return err
	}
	r := e.Repo()
	r.Log = log
	cfgPath := r.Path(repo.ConfigFile)
	file, haveCfg, err := config.Read(cfgPath, log)
	if err != nil {
		return err
	}
	s, err := file.Apply(o.Options, given).Check(file, cfgPath, given)
	if err != nil {
		return err
	}
	pool, err := node.PoolDirs(s.Pool, r.Dir)
	if err != nil {
		return err
	}
	n, err := node.New(ctx, node.Config{Repo: r, Settings: s, Log: log, Pprof: o.pprof})
	if err != nil {
		return err
	}
	defer n.Close()
	pooled, err := node.StartPooled(ctx, pool, s.Profile.Name, n.GroupName(), log)
	if err != nil {
		return err
	}
	defer pooled.Close()
	for _, p := range pooled.Nodes {
		fmt.Fprintf(e.Stdout, "pooled group %s: peer ID %s, API on %s\n", p.GroupName(), p.ID().ID, p.URL())
	}
	pctx, stopPool := context.WithCancel(ctx)
	poolDone := make(chan struct{})
	go func() { defer close(poolDone); pooled.Run(pctx) }()
	defer func() { stopPool(); <-poolDone }()
	if haveCfg {
		fmt.Fprintf(e.Stdout, "config %s\n", cfgPath)
	}
	if g, ok, _ := r.Group(); ok {
		fmt.Fprintf(e.Stdout, "group %s: a private network; TCP only (QUIC cannot carry the group key)\n", g.Name)
	}
	id := n.ID()
	fmt.Fprintf(e.Stdout, "peer ID %s\n", id.ID)
	for _, a := range id.Addrs {
		fmt.Fprintf(e.Stdout, "listening on %s\n", a)
	}
	fmt.Fprintf(e.Stdout, "API on %s\n", n.URL())
	fmt.Fprintf(e.Stdout, "web page on %s/\n", n.URL())
	fmt.Fprintf(e.Stdout, "metrics on %s/metrics\n", n.URL())
	if u := n.PprofURL(); u != "" {
		fmt.Fprintf(e.Stdout, "profiler on %s\n", u)
	}
	if f, ok := e.Stdout.(*os.File); ok {
		_ = f.Sync()
	}
	err = n.Run(ctx)
	cerr := n.Close()
	if err != nil {
		return err
	}
	return cerr
}
