package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	stdnet "net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/net/swarm"
	"github.com/spf13/cobra"

	"github.com/blockmix/blockmix/blocks"
	"github.com/blockmix/blockmix/mixer"
	bmnet "github.com/blockmix/blockmix/net"
	"github.com/blockmix/blockmix/recipe"
	"github.com/blockmix/blockmix/webui"
	"github.com/blockmix/blockmix/webui/apiv1"
)

// Files in the repo that belong to the daemon.
const (
	identityFile = "identity.key" // the node's libp2p private key
	apiFile      = "api"          // the API's URL while a daemon runs
)

type daemonOptions struct {
	listen    []string
	bootstrap []string
	api       string
	replicas  int
	cache     string
	donor     bool
	quota     string
	profile   string
	fair      string
	repairInt time.Duration
	repairBW  string
	scrubInt  time.Duration
	scrubBW   string
}

func newDaemonCommand(e *env) *cobra.Command {
	var o daemonOptions
	c := &cobra.Command{
		Use:   "daemon",
		Short: "Run a node: serve blocks to peers, place and fetch them, and the local API",
		Long: `daemon runs a blockmix node on the repo: a libp2p host (TCP and QUIC) with
blockmix's own DHT (never the public IPFS network), the block protocol, and
the local HTTP API (default http://127.0.0.1:7788). While it runs, the
other commands on the same repo (put, get, stat, status, files, verify,
block, id, peers) go through it. It prints its peer ID and addresses; give
one of the addresses to friends as their --bootstrap.

Settings can also live in REPO/config.json, read at start (optional; every
key optional; a flag given on the command line wins over its key):

  {"listen":    ["/ip4/0.0.0.0/tcp/4001", "/ip4/0.0.0.0/udp/4001/quic-v1"],
   "bootstrap": ["/ip4/192.0.2.7/tcp/4001/p2p/12D3Koo…"],
   "api":       "127.0.0.1:7788",
   "replicas":  3,
   "cache":     "10GiB"}

A malformed config.json stops the daemon with an error that says where.
QUIC is on when any listen or bootstrap address has /quic-v1.`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			return runDaemon(c.Context(), e, o, c.Flags().Changed)
		},
	}
	c.Flags().StringArrayVar(&o.listen, "listen", []string{"/ip4/0.0.0.0/tcp/4001", "/ip4/0.0.0.0/udp/4001/quic-v1"}, "multiaddr to listen on (repeatable; config.json key listen)")
	c.Flags().StringArrayVar(&o.bootstrap, "bootstrap", nil, "multiaddr with /p2p/ID of a node to join through (repeatable; config.json key bootstrap)")
	c.Flags().StringVar(&o.api, "api", "127.0.0.1:7788", "address of the local HTTP API (port 0: any; config.json key api)")
	c.Flags().IntVar(&o.replicas, "replicas", 3, "how many other nodes should hold each block (config.json key replicas)")
	c.Flags().BoolVar(&o.donor, "donor", false, "run as a donor: give --quota of space to other people's blocks, evicting cached blocks in the background to stay under it")
	c.Flags().StringVar(&o.quota, "quota", "", "the most block bytes this node stores (50GiB, 2TB…); pushes past it are refused; default none (config.json key quota)")
	c.Flags().StringVar(&o.profile, "profile", "default", "default, or lowpower for small boards: fewer connections and streams, small caches, a memory limit (config.json key profile)")
	c.Flags().StringVar(&o.fair, "fair-share", "", "accept from each peer at most what it holds for this node plus this allowance (for example 1GiB); the ledger shows in 'peers'; default off")
	c.Flags().DurationVar(&o.repairInt, "repair-interval", time.Hour, "how often to check that the blocks this node holds for the network have their copies elsewhere, and push the missing ones (0: never)")
	c.Flags().StringVar(&o.repairBW, "repair-rate", "8MiB", "the most bytes per second repair pushes")
	c.Flags().DurationVar(&o.scrubInt, "scrub-interval", 24*time.Hour, "how often to re-read every local block; a corrupt one is quarantined and fetched again from a peer (0: never)")
	c.Flags().StringVar(&o.scrubBW, "scrub-rate", "4MiB", "the most bytes per second the scrub reads")
	c.Flags().StringVar(&o.cache, "cache", "10GiB", "keep blocks fetched from peers (they then serve other files and peers) while the store holds less than this; 0: keep none (config.json key cache)")
	return c
}

// runDaemon runs the node until ctx ends. given reports the flags given on
// the command line: those win over REPO/config.json.
func runDaemon(ctx context.Context, e *env, o daemonOptions, given func(flag string) bool) error {
	dir, err := e.repoDir()
	if err != nil {
		return err
	}
	cfgPath := filepath.Join(dir, configFile)
	cfg, haveCfg, err := readConfig(cfgPath)
	if err != nil {
		return err
	}
	o = cfg.apply(o, given)
	// fromCfg names the config file in an error about a setting from it.
	fromCfg := func(set bool, flag string) string {
		if set && !given(flag) {
			return " (set in " + cfgPath + ")"
		}
		return ""
	}
	if o.replicas < 1 {
		return badUse("--replicas must be at least 1")
	}
	cache, err := parseSize(o.cache)
	if err != nil {
		return badUse("--cache: %v%s", err, fromCfg(cfg.Cache != nil, "cache"))
	}
	var quota int64
	if o.quota != "" {
		if quota, err = parseSize(o.quota); err != nil || quota <= 0 {
			return badUse("--quota %q: want a size such as 50GiB%s", o.quota, fromCfg(cfg.Quota != nil, "quota"))
		}
	}
	if o.donor && quota == 0 {
		return badUse("--donor needs --quota: the space this node gives (for example --quota 50GiB)")
	}
	repairRate, err := parseSize(o.repairBW)
	if err != nil {
		return badUse("--repair-rate: %v", err)
	}
	scrubRate, err := parseSize(o.scrubBW)
	if err != nil {
		return badUse("--scrub-rate: %v", err)
	}
	if o.repairInt < 0 {
		return badUse("--repair-interval must not be negative")
	}
	var fair int64
	if o.fair != "" {
		if fair, err = parseSize(o.fair); err != nil {
			return badUse("--fair-share: %v", err)
		}
	}
	prof, err := profileNamed(o.profile)
	if err != nil {
		return badUse("--profile: %v%s", err, fromCfg(cfg.Profile != nil, "profile"))
	}
	prof.apply()
	var boot []peer.AddrInfo
	for _, s := range o.bootstrap {
		ai, err := peer.AddrInfoFromString(s)
		if err != nil {
			return badUse("--bootstrap %q: %w (want a multiaddr ending in /p2p/PEER-ID)", s, err)
		}
		boot = append(boot, *ai)
	}
	st, err := e.openStore(true)
	if err != nil {
		return err
	}
	defer st.Close()
	key, err := loadIdentity(filepath.Join(dir, identityFile))
	if err != nil {
		return err
	}
	cfgNet := bmnet.Config{Listen: o.listen, QUIC: hasQUIC(o.listen, o.bootstrap), Key: key, Bootstrap: boot, LowPower: prof.lowPower}
	grp, groupKey, grouped, err := e.group()
	if err != nil {
		return err
	}
	if grouped {
		cfgNet.GroupKey = groupKey
		fmt.Fprintf(e.stdout, "group %s: a private network; TCP only (QUIC cannot carry the group key)\n", grp.Name)
	}
	s0, err := st.Stats(ctx)
	if err != nil {
		return err
	}
	k := newKeeper(st, o.replicas, quota, s0.Bytes)
	d := &daemonNode{e: e, st: st, replicas: o.replicas, repo: dir, started: time.Now(), cache: cache, k: k, prof: prof, group: grp.Name}
	k.hold = func() func() {
		// No put runs while blocks go, and the next one sees the store
		// as it is then.
		d.mu.Lock()
		d.mixer = nil
		return d.mu.Unlock
	}
	if quota > 0 && s0.Bytes > quota {
		fmt.Fprintf(e.stderr, "blockmix: the store holds %s, more than the quota of %s: pushes are refused until cached blocks are evicted ('blockmix gc')\n", human(s0.Bytes), human(quota))
	}
	// The fair-share ledger is ready before the first push can come.
	var running atomic.Pointer[bmnet.Node]
	if k.ledger, err = loadLedger(filepath.Join(dir, ledgerFile), func() map[string]int64 {
		out := map[string]int64{}
		if n := running.Load(); n != nil {
			for p, s := range n.Blocks.Peers.All() {
				out[p.String()] = s.BytesOut
			}
		}
		return out
	}, func(p string) int64 {
		n := running.Load()
		id, err := peer.Decode(p)
		if n == nil || err != nil {
			return 0
		}
		return n.Blocks.Peers.Stats(id).BytesOut
	}); err != nil {
		return err
	}
	k.fair = fair
	node, err := bmnet.NewNode(cfgNet, touchingStore{st, k}, quotaSink{bmnet.NewStoreSink(st), k})
	if err != nil {
		return fmt.Errorf("%w%s", err, fromCfg(cfg.Listen != nil, "listen"))
	}
	defer node.Close()
	k.node = node
	running.Store(node)
	d.repair = newRepairer(st, node, o.replicas, repairRate)
	go d.repair.run(ctx, o.repairInt)

	defer func() {
		if err := k.ledger.save(); err != nil {
			fmt.Fprintf(e.stderr, "blockmix: %v\n", err)
		}
	}()
	go every(ctx, time.Minute, nil, func() { _ = k.ledger.save() })
	if o.donor {
		go k.run(ctx, time.Minute)
	}
	for _, ai := range boot {
		if err := connectRetry(ctx, node, ai, grouped); err != nil {
			fmt.Fprintf(e.stderr, "blockmix: bootstrap %s: %v\n", ai.ID, err)
		}
	}
	ln, err := stdnet.Listen("tcp", o.api)
	if err != nil {
		return fmt.Errorf("API on %s%s: %w", o.api, fromCfg(cfg.API != nil, "api"), err)
	}
	url := "http://" + ln.Addr().String()
	d.node = node
	go d.scrub(ctx, o.scrubInt, scrubRate)
	var hosts []string
	if ta, ok := ln.Addr().(*stdnet.TCPAddr); ok && !ta.IP.IsLoopback() {
		fmt.Fprintf(e.stderr, "blockmix: WARNING: the API and web page listen on %s, not on 127.0.0.1: anyone who can reach this address can put, get and remove files on this node\n", ln.Addr())
		if h, _, err := stdnet.SplitHostPort(o.api); err == nil && h != "" {
			hosts = append(hosts, h)
		}
	}
	web := webui.New(d, webui.Options{Hosts: hosts})
	defer web.Close()
	srv := &http.Server{Handler: web, ReadHeaderTimeout: 10 * time.Second}
	if err := os.WriteFile(filepath.Join(dir, apiFile), []byte(url+"\n"), 0o600); err != nil {
		return fmt.Errorf("write %s: %w", apiFile, err)
	}
	defer os.Remove(filepath.Join(dir, apiFile))

	id := d.ID()
	if haveCfg {
		fmt.Fprintf(e.stdout, "config %s\n", cfgPath)
	}
	fmt.Fprintf(e.stdout, "peer ID %s\n", id.ID)
	for _, a := range id.Addrs {
		fmt.Fprintf(e.stdout, "listening on %s\n", a)
	}
	fmt.Fprintf(e.stdout, "API on %s\n", url)
	fmt.Fprintf(e.stdout, "web page on %s/\n", url)

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case <-ctx.Done():
	case err := <-errc:
		return fmt.Errorf("API: %w", err)
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if srv.Shutdown(sctx) != nil {
		// A client still reading (a long block list): cut it, so that
		// the store's Close does not wait for it.
		_ = srv.Close()
	}
	return nil
}

// connectRetry dials a bootstrap peer a few times, clearing libp2p's dial
// backoff in between, so that one failed dial at start-up is not final. A
// group node gives up at once on a peer in another group.
func connectRetry(ctx context.Context, node *bmnet.Node, ai peer.AddrInfo, grouped bool) error {
	var err error
	for try := 0; try < 5; try++ {
		err = node.Join(ctx, ai, 5*time.Second, grouped)
		if err == nil || ctx.Err() != nil || errors.Is(err, bmnet.ErrOtherGroup) {
			return err
		}
		if sw, ok := node.Host.Network().(*swarm.Swarm); ok {
			sw.Backoff().Clear(ai.ID)
		}
		time.Sleep(200 * time.Millisecond)
	}
	return err
}

// loadIdentity reads the node's key, making and saving one on first use.
func loadIdentity(path string) (crypto.PrivKey, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		k, err := crypto.UnmarshalPrivateKey(b)
		if err != nil {
			return nil, fmt.Errorf("identity %s is damaged: %w", path, err)
		}
		return k, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("read identity: %w", err)
	}
	k, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("make identity: %w", err)
	}
	b, err = crypto.MarshalPrivateKey(k)
	if err != nil {
		return nil, fmt.Errorf("make identity: %w", err)
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		return nil, fmt.Errorf("save identity: %w", err)
	}
	return k, nil
}

// daemonNode is the running node as the API sees it.
type daemonNode struct {
	e        *env
	st       *blocks.Disk
	node     *bmnet.Node
	replicas int
	repo     string
	started  time.Time
	cache    int64   // keep fetched blocks while the store holds less
	k        *keeper // the quota, the blocks' last use, eviction
	repair   *repairer
	// scrubHealed counts corrupt blocks the scrub fetched again.
	scrubHealed atomic.Int64
	prof        profile
	group       string // the private group's name, or ""

	mu    sync.Mutex // one put at a time: a Mixer is sequential
	mixer *mixer.Mixer

	verifyMu sync.Mutex // one verify at a time
}

func (d *daemonNode) ID() apiv1.IDInfo {
	info := apiv1.IDInfo{ID: d.node.Host.ID().String(), RoutingTable: d.node.DHT.RoutingTable().Size(), Peers: len(d.node.Host.Network().Peers())}
	for _, a := range d.node.Host.Addrs() {
		info.Addrs = append(info.Addrs, a.String()+"/p2p/"+info.ID)
	}
	return info
}

func (d *daemonNode) Peers() []apiv1.PeerInfo {
	now := time.Now()
	var out []apiv1.PeerInfo
	for _, c := range d.node.Host.Network().Conns() {
		p := c.RemotePeer()
		s := d.node.Blocks.Peers.Stats(p)
		e := d.k.ledger.entry(p.String())
		out = append(out, apiv1.PeerInfo{
			ID: p.String(), Addr: c.RemoteMultiaddr().String(),
			LatencyMs: float64(s.Latency.Microseconds()) / 1000, Reliability: s.Reliability(), Score: s.Score(now),
			BytesIn: s.BytesIn, BytesOut: s.BytesOut, Lies: s.Lies, StoredHere: e.StoredHere, HoldsForUs: e.HoldsForUs,
		})
	}
	return out
}

func (d *daemonNode) Store() webui.Store { return d.st }

func (d *daemonNode) Daemon() apiv1.DaemonInfo {
	bw := d.node.Bandwidth()
	return apiv1.DaemonInfo{
		Repo: d.repo, Started: d.started, Replicas: d.replicas, Quota: d.k.quota, Profile: d.prof.name, Group: d.group, StoreError: d.k.lastFailure(), Repair: d.repair.lastRound(), ScrubHealed: d.scrubHealed.Load(),
		BytesIn: bw.TotalIn, BytesOut: bw.TotalOut, RateIn: bw.RateIn, RateOut: bw.RateOut,
	}
}

// Verify checks the store while the node keeps serving it. Two verifies
// at once would only read everything twice: the second waits.
func (d *daemonNode) Verify(ctx context.Context) (apiv1.VerifyInfo, error) {
	d.verifyMu.Lock()
	defer d.verifyMu.Unlock()
	return verifyStore(ctx, d.st, nil)
}

// keep says whether a fetched block may stay in the store (the cache
// limit), and counts it when it may.
func (d *daemonNode) keep(_ blocks.ID, size int) bool {
	if d.k.stored.Load()+int64(size) > d.cache || !d.k.fits(int64(size)) {
		return false
	}
	d.k.stored.Add(int64(size))
	return true
}

// GC evicts every cached block, and the network's blocks (after handing
// them off) only while the store is over its quota.
func (d *daemonNode) GC(ctx context.Context) (apiv1.GCInfo, error) {
	info, err := d.k.evict(ctx, -1, false)
	if err != nil {
		return info, err
	}
	if over := d.k.stored.Load() - d.k.quota; d.k.quota > 0 && over > 0 {
		more, err := d.k.evict(ctx, over, true)
		info.EvictedBlocks += more.EvictedBlocks
		info.EvictedBytes += more.EvictedBytes
		info.HandedOff, info.KeptBlocks = more.HandedOff, more.KeptBlocks
		if err != nil {
			return info, err
		}
	}
	return info, nil
}

// Remove takes a file off this node's list; its blocks stay.
func (d *daemonNode) Remove(ctx context.Context, key string) error { return d.st.RemoveFile(ctx, key) }

// Open rebuilds a file with blocks from the store and the network: the
// Fetcher asks the closest nodes, then the file's providers (looked up in
// the background), then everyone.
func (d *daemonNode) Open(ctx context.Context, rc recipe.Recipe) (*recipe.Reader, error) {
	f := d.fetcher(ctx, rc)
	f.Keep = d.keep
	return recipe.Open(ctx, mixer.NewCachedGetter(f, d.prof.cacheBytes), rc, recipe.Options{Workers: d.prof.workers})
}

// fetcher returns a Fetcher for rc's blocks with the file's providers,
// looked up in the background until ctx ends, as hints.
func (d *daemonNode) fetcher(ctx context.Context, rc recipe.Recipe) *bmnet.Fetcher {
	f := bmnet.NewFetcher(d.node, d.st)
	f.Near = d.replicas
	f.Streams = d.prof.streams
	go func() {
		for p := range d.node.FileProviders(ctx, rc.Root[0], 8) {
			f.Hint(p)
		}
	}()
	return f
}

func (d *daemonNode) Put(ctx context.Context, r io.Reader, size int64, name, typ string) (apiv1.PutInfo, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.mixer == nil {
		m, err := mixer.New(d.st, mixer.Options{})
		if err != nil {
			return apiv1.PutInfo{}, err
		}
		d.mixer = m
	}
	res, err := recipe.Put(ctx, d.mixer, d.st, r, size, name, typ, nil)
	if err != nil {
		d.mixer = nil // a failed mix leaves the Mixer unusable
		return apiv1.PutInfo{}, err
	}
	if err := d.st.Sync(); err != nil {
		return apiv1.PutInfo{}, fmt.Errorf("sync store: %w", err)
	}
	d.k.stored.Add(res.NewBytes)
	info := apiv1.PutInfo{
		Recipe: res.Recipe.String(), URL: res.Recipe.URL(""), Name: res.Recipe.Name, Size: res.Recipe.Size,
		Type: res.Recipe.Type, NewBytes: res.NewBytes, NewBlocks: res.NewBlocks, Blocks: len(res.Blocks), Replicas: d.replicas,
	}
	// Every block the file needs goes out, randomizers included: the
	// uploader may leave.
	short, nodes, err := d.node.PlaceAll(ctx, d.st, res.Blocks, d.replicas, nil)
	if err != nil && !errors.Is(err, bmnet.ErrUnderReplicated) {
		return info, err
	}
	info.Short, info.Nodes = &short, nodes
	if err != nil {
		info.Placement = err.Error()
	}
	// While this node is up, it is one more place to get the whole file.
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	_ = d.node.ProvideFile(pctx, res.Recipe.Root[0])
	return info, nil
}

// apiURL returns the URL of the daemon running on the repo, or "".
func (e *env) apiURL() string {
	dir, err := e.repoDir()
	if err != nil {
		return ""
	}
	b, err := os.ReadFile(filepath.Join(dir, apiFile))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}
