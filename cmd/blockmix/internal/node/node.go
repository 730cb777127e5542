// Package node is a running blockmix node: the block store, the libp2p
// host with blockmix's DHT and block protocol, the keeper of the quota,
// repair and scrub, the fair-share ledger, and the local API and web page.
// A Node is made with New, runs with Run and is closed with Close, which
// waits for every goroutine it started.
package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	stdnet "net"
	"net/http"
	"net/http/pprof"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/net/swarm"
	"golang.org/x/sync/errgroup"

	"github.com/blockmix/blockmix/blocks"
	"github.com/blockmix/blockmix/cmd/blockmix/internal/config"
	"github.com/blockmix/blockmix/cmd/blockmix/internal/keeper"
	"github.com/blockmix/blockmix/cmd/blockmix/internal/ledger"
	"github.com/blockmix/blockmix/cmd/blockmix/internal/live"
	"github.com/blockmix/blockmix/cmd/blockmix/internal/memtrim"
	"github.com/blockmix/blockmix/cmd/blockmix/internal/metrics"
	"github.com/blockmix/blockmix/cmd/blockmix/internal/putlog"
	"github.com/blockmix/blockmix/cmd/blockmix/internal/repair"
	"github.com/blockmix/blockmix/cmd/blockmix/internal/repo"
	"github.com/blockmix/blockmix/cmd/blockmix/internal/sched"
	"github.com/blockmix/blockmix/cmd/blockmix/internal/size"
	"github.com/blockmix/blockmix/mixer"
	bmnet "github.com/blockmix/blockmix/net"
	"github.com/blockmix/blockmix/recipe"
	"github.com/blockmix/blockmix/webui"
)

// Config is what a Node is made of.
type Config struct {
	Repo     repo.Repo
	Settings config.Settings
	// Log gets one line per event an operator cares about; nil: none.
	Log *slog.Logger
	// Pprof, when set, is a loopback address for net/http/pprof.
	Pprof string
	// Timeouts bound the API's connections (tests shorten them).
	Timeouts Timeouts
	// Home, for a pooled node (see StartPooled), is the group of the
	// donor that runs it, which it tells its peers: to the group it
	// serves it is a partner donor (see bmnet.Config.Home). "" for none.
	Home string
}

// Timeouts bound the API's connections: no client holds one forever by
// going quiet. Zero fields take the defaults.
type Timeouts struct {
	// ReadHeader bounds reading a request's headers; 10 s.
	ReadHeader time.Duration
	// Idle bounds a kept-alive connection waiting for its next request;
	// 2 min.
	Idle time.Duration
	// Stall cuts a request body that brings no byte, or an answer the
	// client takes no byte of, for this long; 30 s (webui.Options.Stall).
	Stall time.Duration
}

func (t Timeouts) withDefaults() Timeouts {
	if t.ReadHeader <= 0 {
		t.ReadHeader = 10 * time.Second
	}
	if t.Idle <= 0 {
		t.Idle = 2 * time.Minute
	}
	if t.Stall <= 0 {
		t.Stall = 30 * time.Second
	}
	return t
}

// Node is a running node. Its methods that answer the API are safe for
// concurrent use.
type Node struct {
	cfg      config.Settings
	repo     repo.Repo
	log      *slog.Logger
	m        *metrics.Metrics
	st       *blocks.Disk
	net      *bmnet.Node
	keeper   *keeper.Keeper
	ledger   *ledger.Ledger
	repairer *repair.Repairer
	scrubber *repair.Scrubber
	web      *webui.Server
	live     *live.Manager
	api      stdnet.Listener
	pprof    stdnet.Listener
	group    string // the private group's name, or ""
	started  time.Time
	timeouts Timeouts

	// mu is held to use the Mixer (it is sequential: one part of one put
	// at a time) and while the keeper deletes blocks; never while a
	// request's body is read.
	mu      sync.Mutex
	mixer   *mixer.Mixer
	uploads map[*recipe.Upload]bool // the puts running
	// putting counts the puts running (n.uploads loses a put before it
	// ends); gcPercent restores the collector's settings the first of
	// them tightened (see tightenGC), and is called when the last one
	// ends.
	putting   int
	gcPercent func()

	verifyMu sync.Mutex // one verify at a time
	dedupMu  sync.Mutex // held to find a put's file shared before and forget the new copy
	likes    likes      // the files on the list by name, type and size (likes.go)

	// settingsMu is held to read and write config.json for the page;
	// cache is --cache, which the page may change while the node runs.
	settingsMu sync.Mutex
	cache      atomic.Int64

	countMu sync.Mutex // the block count for the metrics, and when
	count   int
	countAt time.Time

	// bg runs the node's short background work (announcing a file,
	// finding a file's providers) under bgCtx; Close cancels and waits.
	bg       sync.WaitGroup
	bgCtx    context.Context
	bgCancel context.CancelFunc

	closeOnce sync.Once
	closeErr  error
}

// background runs fn in a goroutine that Close cancels and waits for.
func (n *Node) background(fn func(ctx context.Context)) {
	n.bg.Add(1)
	go func() {
		defer n.bg.Done()
		fn(n.bgCtx)
	}()
}

// New opens the repo's store, starts the libp2p host, joins the bootstrap
// peers and opens the API's listener. The node serves peers from here on;
// Run serves the API and runs the background rounds. On error, whatever
// New opened is closed again.
func New(ctx context.Context, c Config) (_ *Node, err error) {
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	if c.Repo.Log == nil {
		c.Repo.Log = c.Log // damaged small files set aside are logged here
	}
	s := c.Settings
	// n, not the result: a "return nil, err" must leave the deferred Close
	// below a node to close.
	n := &Node{cfg: s, repo: c.Repo, log: c.Log, m: metrics.New(), started: time.Now(), timeouts: c.Timeouts.withDefaults(),
		uploads: map[*recipe.Upload]bool{}}
	n.bgCtx, n.bgCancel = context.WithCancel(context.Background())
	n.cache.Store(s.Cache)
	defer func() {
		if err != nil {
			n.Close()
		}
	}()
	s.Profile.Apply()
	rp := c.Repo
	rp.SmallIndex = s.Profile.LowPower
	if n.st, err = rp.OpenStore(true); err != nil {
		return nil, err
	}
	if r := n.st.Recovered(); r.Unclean {
		n.log.Warn("the store was not closed cleanly (a crash or a power cut): checked it against its segments and files journal",
			slog.Int("segments_scanned", r.Scanned), slog.Int("blocks_found", r.Added), slog.Int("entries_dropped", r.Dropped),
			slog.Int("files", r.Files), slog.Int("files_restored", r.Restored))
	}
	if swept, size, err := putlog.Sweep(ctx, c.Repo.Path(repo.PutsDir), n.st, n.log); err != nil {
		return nil, err
	} else if swept > 0 {
		n.log.Info("removed what unfinished puts left", slog.Int("blocks", swept), slog.Int64("bytes", size))
	}
	key, err := c.Repo.Identity()
	if err != nil {
		return nil, err
	}
	cfgNet := bmnet.Config{Listen: s.Listen, QUIC: s.QUIC, Key: key, Bootstrap: s.Bootstrap, LowPower: s.Profile.LowPower, Metrics: n.m.Reg,
		RelayService: s.RelayService, Site: s.Site, Records: liveRecords, Home: c.Home, PartnerCopies: s.PartnerCopies}
	n.allow(&cfgNet)
	grp, grouped, err := c.Repo.Group()
	if err != nil {
		return nil, err
	}
	if grouped {
		cfgNet.GroupKey = grp.KeyBytes()
		cfgNet.Group = grp.Name
		n.group = grp.Name
		n.log.Info("in a private group: TCP only (QUIC cannot carry the group key)", slog.String("group", grp.Name))
	}
	if s.MDNS != nil {
		cfgNet.MDNS = *s.MDNS
	} else {
		// A node on loopback alone has nothing to announce; a private
		// group's members may not share the LAN (--mdns turns it on).
		cfgNet.MDNS = !grouped && offLoopback(s.Listen)
	}
	if cfgNet.MDNS {
		n.log.Info("looking for blockmix nodes on the local network (mDNS; --mdns=false turns it off)")
	}
	n.keeper = keeper.New(n.st, s.Replicas, s.Quota, n.log, n.m)
	if err := n.keeper.Count(ctx); err != nil {
		return nil, err
	}
	if !s.Donor {
		n.keeper.Share = n.share(s.Share)
	}
	n.keeper.Hold = func() func() {
		// No put runs while blocks go, and the next one sees the store
		// as it is then.
		n.mu.Lock()
		n.mixer = nil
		return n.mu.Unlock
	}
	// Running puts' blocks are referenced by no file yet: they stay.
	n.keeper.Busy = n.uploadBlocks
	if stored := n.keeper.Stored(); s.Quota > 0 && stored > s.Quota {
		n.log.Warn("the store holds more than the quota: pushes are refused until cached blocks are evicted ('blockmix gc')",
			slog.String("stored", size.Human(stored)), slog.String("quota", size.Human(s.Quota)))
	}
	// The fair-share ledger is ready before the first push can come; it
	// reads the peer book once the network runs.
	if n.ledger, err = ledger.Load(c.Repo.Path(repo.LedgerFile), n.log, n.givenAll, n.givenTo); err != nil {
		return nil, err
	}
	n.keeper.Ledger, n.keeper.Fair = n.ledger, s.Fair
	// A peer caught claiming blocks it could not prove holds nothing for
	// this node as far as the fair share goes.
	// (The book is there once the network runs; pushes may come before.)
	var book atomic.Pointer[bmnet.Book]
	n.ledger.Liar = func(p string) bool {
		b := book.Load()
		id, err := peer.Decode(p)
		return b != nil && err == nil && b.Liar(id)
	}
	if n.net, err = bmnet.NewNode(cfgNet, n.keeper.Store(), n.keeper.Sink(bmnet.NewStoreSink(n.st))); err != nil {
		return nil, fmt.Errorf("%w (the listen addresses)", err)
	}
	n.keeper.Node = n.net
	book.Store(&n.net.Blocks.Peers)
	n.net.Host.Network().Notify(&network.NotifyBundle{
		ConnectedF: func(_ network.Network, c network.Conn) {
			n.log.Debug("peer connected", slog.String("peer", c.RemotePeer().String()), slog.String("addr", c.RemoteMultiaddr().String()))
		},
		DisconnectedF: func(_ network.Network, c network.Conn) {
			n.log.Debug("peer disconnected", slog.String("peer", c.RemotePeer().String()))
		},
	})
	n.repairer = repair.NewRepairer(n.st, n.st, n.net, s.Replicas, s.RepairRate, n.log, n.m)
	n.scrubber = repair.NewScrubber(n.st, n.refetch, s.ScrubRate, n.log, n.m)
	n.watch()
	for _, ai := range s.Bootstrap {
		if err := n.connectRetry(ctx, ai, grouped); err != nil {
			n.log.Warn("bootstrap peer not reached", slog.String("peer", ai.ID.String()), slog.Any("err", err))
		}
	}
	if n.api, err = stdnet.Listen("tcp", s.API); err != nil {
		return nil, fmt.Errorf("API on %s: %w", s.API, err)
	}
	var hosts []string
	if ta, ok := n.api.Addr().(*stdnet.TCPAddr); ok && !ta.IP.IsLoopback() {
		n.log.Warn("the API and web page listen off loopback: anyone who can reach this address can put, get and remove files on this node", slog.String("addr", n.api.Addr().String()))
		if h, _, err := stdnet.SplitHostPort(s.API); err == nil && h != "" {
			hosts = append(hosts, h)
		}
	}
	if c.Pprof != "" {
		if n.pprof, err = listenLoopback(c.Pprof); err != nil {
			return nil, fmt.Errorf("--pprof: %w", err)
		}
	}
	if n.live, err = n.newLive(); err != nil {
		return nil, err
	}
	n.web = webui.New(n, webui.Options{Live: n.live, Hosts: hosts, Log: n.log, Failed: n.m.GetsFailed.Inc, Stall: n.timeouts.Stall, MaxUnseals: s.Profile.Unseals,
		StateFile: c.Repo.Path(repo.TransfersFile)})
	return n, nil
}

// share is what this node, not a donor, gives other nodes' pushed blocks:
// set (> 0), none (< 0), or the default of the repo's file system's free
// space now (0).
func (n *Node) share(set int64) int64 {
	if set != 0 {
		return max(set, 0)
	}
	free, err := freeSpace(n.repo.Dir)
	share := config.DefaultShare(free)
	if err != nil {
		share = config.DefaultShare(1 << 62) // unknown: the 1 GiB cap
		n.log.Warn("free disk space unknown: other nodes' blocks may take up to the default share", slog.String("share", size.Human(share)), slog.Any("err", err))
	}
	n.log.Info("not a donor: other nodes' pushed blocks may take a share of this disk (--share)", slog.String("share", size.Human(share)),
		slog.String("held", size.Human(n.keeper.HeldForNetwork())))
	return share
}

// listenLoopback listens on addr, which must be a loopback address: the
// profiler tells anyone who reaches it what the node holds in memory.
func listenLoopback(addr string) (stdnet.Listener, error) {
	host, _, err := stdnet.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	if ip := stdnet.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return nil, fmt.Errorf("%s is not a loopback address (use 127.0.0.1:PORT)", addr)
	}
	return stdnet.Listen("tcp", addr)
}

// URL is the API's and the web page's address.
func (n *Node) URL() string { return "http://" + n.api.Addr().String() }

// PprofURL is the profiler's address, or "".
func (n *Node) PprofURL() string {
	if n.pprof == nil {
		return ""
	}
	return "http://" + n.pprof.Addr().String() + "/debug/pprof/"
}

// trimEvery is how often the daemon looks whether a burst of work is
// over, to give its memory back (see memtrim).
const trimEvery = 10 * time.Second

// Run serves the API (with GET /metrics) and runs repair, scrub, the
// ledger's saves and, on a donor, eviction, and gives the memory of a
// burst of work back once it is over, until ctx ends or the API fails.
// It records the API's address in the repo while it runs. Every
// goroutine it starts has ended when it returns.
func (n *Node) Run(ctx context.Context) error {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", n.m.Handler())
	mux.Handle("/", n.web)
	// Bodies and answers get their stall cut from the web server
	// (Timeouts.Stall): a long upload that keeps sending is never cut.
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: n.timeouts.ReadHeader, IdleTimeout: n.timeouts.Idle}
	if err := n.repo.SetAPIURL(n.URL()); err != nil {
		return err
	}
	defer n.repo.SetAPIURL("")

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { n.repairer.Run(gctx, n.cfg.RepairInterval); return nil })
	g.Go(func() error {
		sched.Every(gctx, n.cfg.RepairInterval, nil, func() { n.repairParity(gctx) })
		return nil
	})
	g.Go(func() error { n.scrubber.Run(gctx, n.cfg.ScrubInterval); return nil })
	g.Go(func() error {
		sched.Every(gctx, time.Minute, nil, func() {
			if err := n.ledger.Save(); err != nil {
				n.log.Warn("ledger not saved", slog.Any("err", err))
			}
		})
		return nil
	})
	if n.cfg.Donor {
		g.Go(func() error { n.keeper.Run(gctx, time.Minute); return nil })
	}
	g.Go(func() error { n.watchRouting(gctx); return nil })
	// A burst of work (a put, a gigabyte of pushes) gives its memory back
	// within trimEvery or two of going quiet. On a small board the pages
	// of the program's own file go too, once start-up is over and after
	// each burst: most of the binary is mapped by then and little of it
	// runs again (see memtrim.DropCode).
	trim := memtrim.New()
	first := true
	if n.cfg.Profile.LowPower {
		_, _ = memtrim.DropCode() // start-up is over; tried again at the first tick
	}
	g.Go(func() error {
		sched.Every(gctx, trimEvery, nil, func() {
			trimmed := trim.Tick()
			if n.cfg.Profile.LowPower && (first || trimmed) {
				if _, err := memtrim.DropCode(); err != nil {
					n.log.Debug("program pages not dropped", slog.Any("err", err))
				}
			}
			first = false
		})
		return nil
	})
	g.Go(func() error { n.watchReach(gctx); return nil })
	g.Go(func() error { n.live.Run(gctx); return nil })
	serve := func(s *http.Server, ln stdnet.Listener, what string) {
		g.Go(func() error {
			if err := s.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
				return fmt.Errorf("%s: %w", what, err)
			}
			return nil
		})
		g.Go(func() error {
			<-gctx.Done()
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if s.Shutdown(sctx) != nil {
				// A client still reading (a long block list): cut it, so
				// that the store's Close does not wait for it.
				_ = s.Close()
			}
			return nil
		})
	}
	serve(srv, n.api, "API")
	if n.pprof != nil {
		pm := http.NewServeMux()
		pm.HandleFunc("/debug/pprof/", pprof.Index)
		pm.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		pm.HandleFunc("/debug/pprof/profile", pprof.Profile)
		pm.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		pm.HandleFunc("/debug/pprof/trace", pprof.Trace)
		serve(&http.Server{Handler: pm, ReadHeaderTimeout: n.timeouts.ReadHeader, IdleTimeout: n.timeouts.Idle}, n.pprof, "pprof")
	}
	n.log.Info("node running", slog.String("peer", n.net.Host.ID().String()), slog.Any("listen", n.ID().Addrs), slog.String("api", n.URL()),
		slog.Int("replicas", n.cfg.Replicas), slog.String("profile", n.cfg.Profile.Name), slog.Bool("donor", n.cfg.Donor), slog.Int64("quota", n.cfg.Quota))
	err := g.Wait()
	n.log.Info("node stopping")
	return err
}

// Close stops the node: the web page's work, the network, the ledger
// (saved) and the store. Run must have returned. Safe to call twice.
func (n *Node) Close() error {
	n.closeOnce.Do(func() {
		var errs []error
		n.bgCancel()
		n.bg.Wait()
		if n.web != nil {
			n.web.Close()
		}
		if n.api != nil {
			_ = n.api.Close()
		}
		if n.pprof != nil {
			_ = n.pprof.Close()
		}
		if n.net != nil {
			errs = append(errs, n.net.Close())
		}
		if n.ledger != nil {
			errs = append(errs, n.ledger.Save())
		}
		if n.st != nil {
			errs = append(errs, n.st.Close())
		}
		n.closeErr = errors.Join(errs...)
	})
	return n.closeErr
}

// watch registers the gauges read at each scrape.
func (n *Node) watch() {
	n.m.Watch(metrics.Gauges{
		BlocksHeld:   n.blockCount,
		BytesHeld:    func() float64 { return float64(n.keeper.Stored()) },
		Quota:        func() float64 { return float64(n.cfg.Quota) },
		Peers:        func() float64 { return float64(len(n.net.Host.Network().Peers())) },
		RoutingTable: func() float64 { return float64(n.net.DHT.RoutingTable().Size()) },
		BlocksServed: func() float64 { return float64(n.keeper.Served()) },
		Transfers:    func() float64 { return float64(n.web.Running()) },
	})
}

// blockCount counts the store's blocks for the metrics. Stats reads the
// whole index, so a scrape reuses a count up to five minutes old.
func (n *Node) blockCount() float64 {
	n.countMu.Lock()
	defer n.countMu.Unlock()
	if time.Since(n.countAt) > 5*time.Minute {
		ctx, cancel := context.WithTimeout(n.bgCtx, time.Minute)
		defer cancel()
		if s, err := n.st.Stats(ctx); err == nil {
			n.count, n.countAt = s.Blocks, time.Now()
		}
	}
	return float64(n.count)
}

// watchRouting logs peers joining and leaving (debug) and the DHT's
// routing table emptying or filling again.
func (n *Node) watchRouting(ctx context.Context) {
	last := -1
	sched.Every(ctx, 5*time.Second, nil, func() {
		size := n.net.DHT.RoutingTable().Size()
		switch {
		case size == 0 && last != 0:
			n.log.Warn("the DHT's routing table is empty: no peers known; files put now stay on this node")
		case size > 0 && last == 0:
			n.log.Info("the DHT's routing table has peers again", slog.Int("peers", size))
		case size != last && last >= 0:
			n.log.Debug("routing table", slog.Int("peers", size), slog.Int("was", last))
		}
		last = size
	})
}

// watchReach logs how other nodes reach this one whenever it changes
// (reachable directly, through a relay, unreachable) and each hole punch,
// with what to do.
func (n *Node) watchReach(ctx context.Context) {
	last, seen := "", time.Time{}
	sched.Every(ctx, 2*time.Second, nil, func() {
		r := n.net.Reach()
		if r.State != last {
			attrs := []any{slog.String("reach", r.State), slog.String("nat", r.NAT)}
			if len(r.Relays) > 0 {
				attrs = append(attrs, slog.Any("relays", r.Relays))
			}
			if r.Advice != "" {
				attrs = append(attrs, slog.String("todo", r.Advice))
			}
			n.log.Info(r.Words, attrs...)
			last = r.State
		}
		for _, p := range r.Punches {
			if !p.At.After(seen) {
				continue
			}
			seen = p.At
			if p.OK {
				n.log.Info("hole punched: a direct connection to a peer behind NAT", slog.String("peer", p.Peer.String()))
			} else {
				n.log.Info("hole punch failed: blocks cannot flow to this peer until one of the two is reachable directly",
					slog.String("peer", p.Peer.String()), slog.String("err", p.Error))
			}
		}
	})
}

// offLoopback reports whether a listen address is not on loopback.
func offLoopback(listen []string) bool {
	for _, l := range listen {
		if !strings.HasPrefix(l, "/ip4/127.") && !strings.HasPrefix(l, "/ip6/::1/") {
			return true
		}
	}
	return false
}

// givenAll and givenTo read, from the peer book, this run's bytes each
// peer accepted from this node, for the ledger.
func (n *Node) givenAll() map[string]int64 {
	out := map[string]int64{}
	if n.net != nil {
		for p, s := range n.net.Blocks.Peers.All() {
			out[p.String()] = s.BytesOut
		}
	}
	return out
}

func (n *Node) givenTo(p string) int64 {
	id, err := peer.Decode(p)
	if n.net == nil || err != nil {
		return 0
	}
	return n.net.Blocks.Peers.Stats(id).BytesOut
}

// connectRetry dials a bootstrap peer a few times, clearing libp2p's dial
// backoff in between, so that one failed dial at start-up is not final. A
// group node gives up at once on a peer in another group.
func (n *Node) connectRetry(ctx context.Context, ai peer.AddrInfo, grouped bool) error {
	var err error
	for try := 0; try < 5; try++ {
		err = n.net.Join(ctx, ai, 5*time.Second, grouped)
		if err == nil || ctx.Err() != nil || errors.Is(err, bmnet.ErrOtherGroup) {
			return err
		}
		if sw, ok := n.net.Host.Network().(*swarm.Swarm); ok {
			sw.Backoff().Clear(ai.ID)
		}
		select {
		case <-time.After(200 * time.Millisecond):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return err
}
