package config

import (
	"strconv"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/spf13/pflag"

	"github.com/blockmix/blockmix/blocks/erasure"
	"github.com/blockmix/blockmix/cmd/blockmix/internal/size"
	"github.com/blockmix/blockmix/cmd/blockmix/internal/usage"
	bmnet "github.com/blockmix/blockmix/net"
)

// Options are the daemon's settings as given: flags, or keys of
// REPO/config.json (see File.Apply).
type Options struct {
	Listen         []string
	Bootstrap      []string
	API            string
	Replicas       int
	Cache          string
	Donor          bool
	Quota          string
	Profile        string
	Fair           string
	Share          string
	RepairInterval time.Duration
	RepairRate     string
	ScrubInterval  time.Duration
	ScrubRate      string
	// RelayService and MDNS are "true", "false" or "" (the default: see
	// AddFlags).
	RelayService string
	MDNS         string
	// Site is where the node stands (see net.CleanSite); "" for none.
	Site string
	// Allow lists the only peer IDs the node talks to; empty: any.
	Allow []string
	// Pool lists the repos of the groups a donor pools (see node.Pooled).
	Pool []string
	// Redundancy is the puts' default: "" (replication, --replicas),
	// "r:N" or "rs:K+M" (see erasure.ParseRedundancy).
	Redundancy string
	// PartnerCopies is how many of each block's copies go to partner
	// donors (see Settings.PartnerCopies).
	PartnerCopies int
	// LivePoll is how often a synced live folder looks for a new version.
	LivePoll time.Duration
}

// Settings are Options checked and read: what a node runs with.
type Settings struct {
	Listen    []string
	Bootstrap []peer.AddrInfo
	QUIC      bool // a listen or bootstrap address asks for QUIC
	API       string
	Replicas  int
	Cache     int64 // keep fetched blocks while the store holds less
	Donor     bool
	Quota     int64 // 0: none
	Fair      int64 // the fair-share allowance; 0: off
	Profile   Profile
	// Share is what a node that is not a donor gives other nodes' pushed
	// blocks at most (their cost on disk); 0: the default (DefaultShare
	// of the repo's file system); < 0: none (--share 0). A donor's quota
	// bounds them instead.
	Share int64

	RepairInterval time.Duration // 0: never
	RepairRate     int64         // bytes per second; 0: unpaced
	ScrubInterval  time.Duration // 0: never
	ScrubRate      int64         // bytes per second; 0: unpaced

	// RelayService: offer a relay to nodes behind NAT while this node is
	// reachable directly (default: on, but for the lowpower profile).
	RelayService bool
	// MDNS: find nodes on the local network; nil: the default (on outside
	// a private group, for a node listening on a network address).
	MDNS *bool
	// Site is where the node stands, cleaned (see net.CleanSite); ""
	// for none.
	Site string
	// Allow lists the only peers the node talks to (every bootstrap peer
	// among them); empty: any.
	Allow []peer.ID
	// Pool lists the repos of the groups this node also serves, each with
	// its own host, store and quota (see node.Pooled).
	Pool []string
	// Parity is the puts' default erasure coding (zero: replication).
	Parity erasure.Scheme
	// PartnerCopies is how many of each block's Replicas copies placement
	// and repair put on partner donors, the pooled nodes of donors whose
	// home is another group (see net.Config.PartnerCopies): 0 to
	// Replicas-1; 0, the default: none in particular.
	PartnerCopies int
	// LivePoll is how often a synced live folder looks for a new version
	// in the DHT.
	LivePoll time.Duration
}

// Defaults are the settings of a node given no flags and no config file,
// but for Listen, which a caller chooses.
func Defaults() Options {
	return Options{
		Listen: []string{"/ip4/0.0.0.0/tcp/4001", "/ip4/0.0.0.0/udp/4001/quic-v1"},
		API:    "127.0.0.1:7788", Replicas: 3, Cache: "10GiB", Profile: "default",
		RepairInterval: time.Hour, RepairRate: "8MiB", ScrubInterval: 24 * time.Hour, ScrubRate: "4MiB",
		LivePoll: 5 * time.Second,
	}
}

// Check reads o into Settings. Every problem is a usage error that names
// the flag, and the config file at path when the value came from it (f
// holds what the file set; given reports the flags given on the command
// line).
func (o Options) Check(f File, path string, given func(flag string) bool) (Settings, error) {
	fromCfg := func(set bool, flag string) string {
		if set && !given(flag) {
			return " (set in " + path + ")"
		}
		return ""
	}
	s := Settings{Pool: o.Pool, Listen: o.Listen, API: o.API, Replicas: o.Replicas, Donor: o.Donor,
		RepairInterval: o.RepairInterval, ScrubInterval: o.ScrubInterval, QUIC: HasQUIC(o.Listen, o.Bootstrap), LivePoll: o.LivePoll}
	var err error
	if o.Replicas < 1 {
		return s, usage.Errorf("--replicas must be at least 1")
	}
	if o.Redundancy != "" {
		red, err := erasure.ParseRedundancy(o.Redundancy)
		if err != nil {
			return s, usage.Errorf("--redundancy: %v%s", err, fromCfg(f.Redundancy != nil, "redundancy"))
		}
		if red.Scheme.IsZero() {
			s.Replicas = red.Replicas
		}
		s.Parity = red.Scheme
	}
	if o.PartnerCopies < 0 || o.PartnerCopies >= s.Replicas {
		return s, usage.Errorf("--partner-copies %d: want 0 to %d, fewer than the %d copies of each block (--replicas)%s",
			o.PartnerCopies, s.Replicas-1, s.Replicas, fromCfg(f.PartnerCopies != nil, "partner-copies"))
	}
	s.PartnerCopies = o.PartnerCopies
	if s.Cache, err = size.Parse(o.Cache); err != nil {
		return s, usage.Errorf("--cache: %v%s", err, fromCfg(f.Cache != nil, "cache"))
	}
	if o.Quota != "" {
		if s.Quota, err = size.Parse(o.Quota); err != nil || s.Quota <= 0 {
			return s, usage.Errorf("--quota %q: want a size such as 50GiB%s", o.Quota, fromCfg(f.Quota != nil, "quota"))
		}
	}
	if o.Donor && s.Quota == 0 {
		return s, usage.Errorf("--donor needs --quota: the space this node gives (for example --quota 50GiB)")
	}
	if s.RepairRate, err = size.Parse(o.RepairRate); err != nil {
		return s, usage.Errorf("--repair-rate: %v", err)
	}
	if s.ScrubRate, err = size.Parse(o.ScrubRate); err != nil {
		return s, usage.Errorf("--scrub-rate: %v", err)
	}
	if o.LivePoll < 100*time.Millisecond {
		return s, usage.Errorf("--live-poll must be at least 100ms")
	}
	if o.RepairInterval < 0 || o.ScrubInterval < 0 {
		return s, usage.Errorf("--repair-interval and --scrub-interval must not be negative")
	}
	if o.Fair != "" {
		if s.Fair, err = size.Parse(o.Fair); err != nil {
			return s, usage.Errorf("--fair-share: %v", err)
		}
	}
	if o.Share != "" {
		if s.Share, err = size.Parse(o.Share); err != nil {
			return s, usage.Errorf("--share: %v%s", err, fromCfg(f.Share != nil, "share"))
		}
		if s.Share == 0 {
			s.Share = -1 // none
		}
	}
	if s.Profile, err = ProfileNamed(o.Profile); err != nil {
		return s, usage.Errorf("--profile: %v%s", err, fromCfg(f.Profile != nil, "profile"))
	}
	s.RelayService = !s.Profile.LowPower
	if o.RelayService != "" {
		if s.RelayService, err = strconv.ParseBool(o.RelayService); err != nil {
			return s, usage.Errorf("--relay-service %q: want true or false%s", o.RelayService, fromCfg(f.RelayService != nil, "relay-service"))
		}
	}
	if o.MDNS != "" {
		on, err := strconv.ParseBool(o.MDNS)
		if err != nil {
			return s, usage.Errorf("--mdns %q: want true or false%s", o.MDNS, fromCfg(f.MDNS != nil, "mdns"))
		}
		s.MDNS = &on
	}
	if o.Site != "" {
		if s.Site, err = bmnet.CleanSite(o.Site); err != nil {
			return s, usage.Errorf("--site: %v%s", err, fromCfg(f.Site != nil, "site"))
		}
	}
	for _, b := range o.Bootstrap {
		ai, err := peer.AddrInfoFromString(b)
		if err != nil {
			return s, usage.Errorf("--bootstrap %q: %w (want a multiaddr ending in /p2p/PEER-ID)", b, err)
		}
		s.Bootstrap = append(s.Bootstrap, *ai)
	}
	if s.Allow, err = checkAllow(o.Allow, s.Bootstrap, fromCfg(f.Allow != nil, "allow")); err != nil {
		return s, err
	}
	return s, nil
}

// AddFlags adds the daemon's flags for o to fs, with o's values as their
// defaults (see Defaults).
func (o *Options) AddFlags(f *pflag.FlagSet) {
	f.StringArrayVar(&o.Listen, "listen", o.Listen, "multiaddr to listen on (repeatable; config.json key listen)")
	f.StringArrayVar(&o.Bootstrap, "bootstrap", nil, "multiaddr with /p2p/ID of a node to join through (repeatable; config.json key bootstrap)")
	f.StringVar(&o.API, "api", o.API, "address of the local HTTP API and /metrics (port 0: any; config.json key api)")
	f.IntVar(&o.Replicas, "replicas", o.Replicas, "how many other nodes should hold each block (config.json key replicas)")
	f.StringVar(&o.Redundancy, "redundancy", o.Redundancy, "how puts keep files by default: r:N (N copies of every block, as --replicas) or rs:K+M (Reed-Solomon: every K blocks get M parity blocks, one copy each on K+M distinct nodes; rs:4+2 survives 2 lost nodes for 1.5x the size); put --redundancy chooses per file (config.json key redundancy)")
	f.BoolVar(&o.Donor, "donor", false, "run as a donor: give --quota of space to other people's blocks, evicting cached blocks in the background to stay under it")
	f.StringVar(&o.Quota, "quota", "", "the most block bytes this node stores (50GiB, 2TB…); pushes past it are refused; default none (config.json key quota)")
	f.StringVar(&o.Profile, "profile", o.Profile, "default, or lowpower for small boards: fewer connections and streams, small caches, a memory limit (config.json key profile)")
	f.StringVar(&o.Fair, "fair-share", "", "accept from each peer what it holds for this node; beyond that, all peers together share this allowance (for example 1GiB); the ledger shows in 'peers'; default off")
	f.StringVar(&o.Share, "share", "", "when not a donor: the most space other nodes' pushed blocks may take here (0: take none); default 1GiB or 5% of the repo's free disk space at start, whichever is smaller (config.json key share)")
	f.DurationVar(&o.LivePoll, "live-poll", o.LivePoll, "how often a synced live folder ('blockmix sync') looks for a new version")
	f.DurationVar(&o.RepairInterval, "repair-interval", o.RepairInterval, "how often to check that the blocks this node holds for the network have their copies elsewhere, and push the missing ones (0: never)")
	f.StringVar(&o.RepairRate, "repair-rate", o.RepairRate, "the most bytes per second repair pushes")
	f.DurationVar(&o.ScrubInterval, "scrub-interval", o.ScrubInterval, "how often to re-read every local block; a corrupt one is quarantined and fetched again from a peer (0: never)")
	f.StringVar(&o.ScrubRate, "scrub-rate", o.ScrubRate, "the most bytes per second the scrub reads")
	f.StringVar(&o.Cache, "cache", o.Cache, "keep blocks fetched from peers (they then serve other files and peers) while the store holds less than this; 0: keep none (config.json key cache)")
	f.StringVar(&o.RelayService, "relay-service", o.RelayService, "when this node is reachable directly, relay control traffic for nodes behind NAT (never blocks; a few slots, 128 KiB per circuit); default on, off with --profile lowpower (config.json key relay_service)")
	f.Lookup("relay-service").NoOptDefVal = "true"
	f.StringVar(&o.MDNS, "mdns", o.MDNS, "find and join blockmix nodes on the local network (multicast DNS); default on for a node listening on a network address, off in a private group (config.json key mdns)")
	f.Lookup("mdns").NoOptDefVal = "true"
	f.StringArrayVar(&o.Allow, "allow", nil, "talk only to this peer ID (repeatable): every other peer is refused, both ways, with a line in the log; list every bootstrap peer too (config.json key allow); default: any peer")
	f.StringArrayVar(&o.Pool, "pool", nil, "also serve the private group of this repo (repeatable; made with 'blockmix --repo DIR group join INVITE'): one more libp2p host in this process, with DIR's store and DIR/config.json's quota, donor and replicas (config.json key pool)")
	f.IntVar(&o.PartnerCopies, "partner-copies", o.PartnerCopies, "in a private group: how many of each block's --replicas copies go to partner donors (nodes that serve this group from a donor whose home is another group, see --pool) when the network has them; 0 to replicas-1; give every member of the group the same (config.json key partner_copies)")
	f.StringVar(&o.Site, "site", o.Site, "where this node stands (east-office, home…): each block's copies go to nodes in at least two sites when the network has two, so a whole site stopping loses no file; up to 32 letters, digits, '-', '_' or '.' (config.json key site)")
}

// DefaultShare is the share of a node that is not a donor when --share is
// not given: 1 GiB, or 5 % of free, the free space of the repo's file
// system at start, whichever is smaller.
func DefaultShare(free int64) int64 { return min(1<<30, max(free, 0)/20) }
