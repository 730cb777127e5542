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
}

func newDaemonCommand(e *env) *cobra.Command {
	var o daemonOptions
	c := &cobra.Command{
		Use:   "daemon",
		Short: "Run a node: serve blocks to peers, place and fetch them, and the local API",
		Long: `daemon runs a blockmix node on the repo: a libp2p host with blockmix's own
DHT (never the public IPFS network), the block protocol, and the local HTTP
API (default http://127.0.0.1:7788). While it runs, put, get and stat on
the same repo go through it. It prints its peer ID and addresses; give one
of the addresses to friends as their --bootstrap.`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error { return runDaemon(c.Context(), e, o) },
	}
	c.Flags().StringArrayVar(&o.listen, "listen", []string{"/ip4/0.0.0.0/tcp/4001"}, "multiaddr to listen on (repeatable)")
	c.Flags().StringArrayVar(&o.bootstrap, "bootstrap", nil, "multiaddr with /p2p/ID of a node to join through (repeatable)")
	c.Flags().StringVar(&o.api, "api", "127.0.0.1:7788", "address of the local HTTP API (port 0: any)")
	c.Flags().IntVar(&o.replicas, "replicas", 3, "how many other nodes should hold each block")
	return c
}

func runDaemon(ctx context.Context, e *env, o daemonOptions) error {
	if o.replicas < 1 {
		return badUse("--replicas must be at least 1")
	}
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
	dir, _ := e.repoDir()
	key, err := loadIdentity(filepath.Join(dir, identityFile))
	if err != nil {
		return err
	}
	node, err := bmnet.NewNode(bmnet.Config{Listen: o.listen, Key: key, Bootstrap: boot}, st, storeSink{st})
	if err != nil {
		return err
	}
	defer node.Close()
	for _, ai := range boot {
		if err := connectRetry(ctx, node, ai); err != nil {
			fmt.Fprintf(e.stderr, "blockmix: bootstrap %s: %v\n", ai.ID, err)
		}
	}
	ln, err := stdnet.Listen("tcp", o.api)
	if err != nil {
		return fmt.Errorf("API on %s: %w", o.api, err)
	}
	url := "http://" + ln.Addr().String()
	d := &daemonNode{e: e, st: st, node: node, replicas: o.replicas}
	srv := &http.Server{Handler: webui.API(d), ReadHeaderTimeout: 10 * time.Second}
	if err := os.WriteFile(filepath.Join(dir, apiFile), []byte(url+"\n"), 0o600); err != nil {
		return fmt.Errorf("write %s: %w", apiFile, err)
	}
	defer os.Remove(filepath.Join(dir, apiFile))

	id := d.ID()
	fmt.Fprintf(e.stdout, "peer ID %s\n", id.ID)
	for _, a := range id.Addrs {
		fmt.Fprintf(e.stdout, "listening on %s\n", a)
	}
	fmt.Fprintf(e.stdout, "API on %s\n", url)

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case <-ctx.Done():
	case err := <-errc:
		return fmt.Errorf("API: %w", err)
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(sctx)
	return nil
}

// connectRetry dials a bootstrap peer a few times, clearing libp2p's dial
// backoff in between, so that one failed dial at start-up is not final.
func connectRetry(ctx context.Context, node *bmnet.Node, ai peer.AddrInfo) error {
	var err error
	for try := 0; try < 5; try++ {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err = node.Host.Connect(cctx, ai)
		cancel()
		if err == nil || ctx.Err() != nil {
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

// storeSink takes every verified pushed block into the store (quotas come
// with donor nodes).
type storeSink struct{ st blocks.Store }

func (s storeSink) Accept(ctx context.Context, _ string, id blocks.ID, data []byte) error {
	if err := s.st.Put(ctx, id, data, bmnet.FreshTag()); err != nil {
		return err
	}
	return s.st.Sync()
}

// daemonNode is the running node as the API sees it.
type daemonNode struct {
	e        *env
	st       *blocks.Disk
	node     *bmnet.Node
	replicas int

	mu    sync.Mutex // one put at a time: a Mixer is sequential
	mixer *mixer.Mixer
}

func (d *daemonNode) ID() webui.IDInfo {
	info := webui.IDInfo{ID: d.node.Host.ID().String(), RoutingTable: d.node.DHT.RoutingTable().Size(), Peers: len(d.node.Host.Network().Peers())}
	for _, a := range d.node.Host.Addrs() {
		info.Addrs = append(info.Addrs, a.String()+"/p2p/"+info.ID)
	}
	return info
}

func (d *daemonNode) Peers() []webui.PeerInfo {
	now := time.Now()
	var out []webui.PeerInfo
	for _, c := range d.node.Host.Network().Conns() {
		p := c.RemotePeer()
		s := d.node.Blocks.Peers.Stats(p)
		out = append(out, webui.PeerInfo{
			ID: p.String(), Addr: c.RemoteMultiaddr().String(),
			LatencyMs: float64(s.Latency.Microseconds()) / 1000, Reliability: s.Reliability(), Score: s.Score(now),
			BytesIn: s.BytesIn, BytesOut: s.BytesOut, Lies: s.Lies,
		})
	}
	return out
}

func (d *daemonNode) Stats(ctx context.Context) (blocks.Stats, error) { return d.st.Stats(ctx) }

func (d *daemonNode) Open(ctx context.Context, rc recipe.Recipe) (*recipe.Reader, error) {
	g := mixer.NewCachedGetter(bmnet.NewFetcher(d.node, d.st), 32<<20)
	return recipe.Open(ctx, g, rc, recipe.Options{})
}

func (d *daemonNode) Put(ctx context.Context, r io.Reader, size int64, name, typ string) (webui.PutInfo, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.mixer == nil {
		m, err := mixer.New(d.st, mixer.Options{})
		if err != nil {
			return webui.PutInfo{}, err
		}
		d.mixer = m
	}
	res, err := recipe.Put(ctx, d.mixer, d.st, r, size, name, typ, nil)
	if err != nil {
		d.mixer = nil // a failed mix leaves the Mixer unusable
		return webui.PutInfo{}, err
	}
	if err := d.st.Sync(); err != nil {
		return webui.PutInfo{}, fmt.Errorf("sync store: %w", err)
	}
	info := webui.PutInfo{
		Recipe: res.Recipe.String(), URL: res.Recipe.URL(""), Name: res.Recipe.Name, Size: res.Recipe.Size,
		Type: res.Recipe.Type, NewBytes: res.NewBytes, NewBlocks: res.NewBlocks, Blocks: len(res.Blocks), Replicas: d.replicas,
	}
	// Every block the file needs goes out, randomizers included: the
	// uploader may leave.
	var bs []blocks.Block
	for _, id := range res.Blocks {
		blk, err := blocks.GetBlock(ctx, d.st, id)
		if err != nil {
			return info, fmt.Errorf("read block to place: %w", err)
		}
		bs = append(bs, blk)
	}
	pls, err := d.node.Place(ctx, bs, d.replicas)
	short := 0
	for _, pl := range pls {
		if len(pl.Holders) < d.replicas {
			short++
		}
	}
	info.Short = &short
	if err != nil {
		info.Placement = err.Error()
	}
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
