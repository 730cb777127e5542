// Package apiv1 holds the JSON types of the node's local API (/api/v1/):
// what the node answers, the web page shows and the command line prints.
// They belong to the API's contract, not to the server, the node or the
// client, so all three import them from here.
package apiv1

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/blockmix/blockmix/blocks"
)

// IDInfo is GET /api/v1/id.
type IDInfo struct {
	ID           string   `json:"id"`
	Addrs        []string `json:"addrs"` // full multiaddrs, /p2p/ID included
	RoutingTable int      `json:"routing_table"`
	Peers        int      `json:"peers"`
}

// PutInfo is POST /api/v1/put (and `blockmix put --json`, which leaves the
// placement fields out when no daemon placed the blocks).
type PutInfo struct {
	Recipe    string `json:"recipe"`
	URL       string `json:"url"`
	Name      string `json:"name"`
	Size      int64  `json:"size"`
	Type      string `json:"type,omitempty"`
	NewBytes  int64  `json:"new_bytes"`
	NewBlocks int    `json:"new_blocks"`
	// Blocks counts every distinct block the file needs: its data blocks'
	// tuples (randomizers included) and its descriptor's. DataBlocks is
	// the file's data blocks, as a get counts them.
	Blocks     int `json:"blocks"`
	DataBlocks int `json:"data_blocks,omitempty"`
	// SharedBefore is when the same file (name, type and bytes) was shared
	// before: Recipe is that first recipe, and nothing new was kept.
	SharedBefore time.Time `json:"shared_before,omitzero"`
	Replicas     int       `json:"replicas,omitempty"`
	// Short is how many blocks have fewer than Replicas copies on other
	// nodes (nil: not placed); Placement says why in plain words ("" when
	// all are placed).
	Short     *int   `json:"blocks_short,omitempty"`
	Placement string `json:"placement,omitempty"`
	// Nodes is how many distinct other nodes took blocks.
	Nodes int `json:"nodes,omitempty"`
	// Redundancy is how the file is kept: "r:3" (copies of every block)
	// or "rs:4+2" (Reed-Solomon stripes, one copy of each block on
	// distinct nodes; Replicas is then the copies of the blocks outside
	// the stripes).
	Redundancy string `json:"redundancy,omitempty"`
}

// PeerInfo is one entry of GET /api/v1/peers.
type PeerInfo struct {
	ID          string  `json:"id"`
	Addr        string  `json:"addr,omitempty"`
	LatencyMs   float64 `json:"latency_ms"`
	Reliability float64 `json:"reliability"` // share of requests that worked (a new peer: 0.5)
	Score       float64 `json:"score"`
	BytesIn     int64   `json:"bytes_in"`
	BytesOut    int64   `json:"bytes_out"`
	Lies        int64   `json:"lies"`
	// The fair-share ledger: bytes of the peer's blocks this node stores,
	// and of this node's blocks the peer took (across restarts).
	StoredHere int64 `json:"stored_here"`
	HoldsForUs int64 `json:"holds_for_us"`
	// Conn says how the connection reaches the peer: "direct", "hole
	// punched", or "relayed through RELAY (control only)".
	Conn string `json:"conn,omitempty"`
	// Site is where the peer says it stands ("" when it said nothing).
	Site string `json:"site,omitempty"`
}

// ReachInfo is how other nodes reach this one (status's reach).
type ReachInfo struct {
	// State is "direct", "relay", "unreachable", "unknown" or "local".
	State string `json:"state"`
	// NAT is AutoNAT's verdict: "public", "private" or "unknown".
	NAT string `json:"nat"`
	// Reachable are public addresses dials from outside reached.
	Reachable []string `json:"reachable,omitempty"`
	// Relays are the relays holding a slot for this node (peer IDs).
	Relays []string `json:"relays,omitempty"`
	// Relaying: this node relays for nodes behind NAT.
	Relaying bool `json:"relaying"`
	// HolePunched lists the peers a hole punch reached (newest last).
	HolePunched []string `json:"hole_punched,omitempty"`
	// Words says it in plain words; Advice what to do ("" when nothing).
	Words  string `json:"words"`
	Advice string `json:"advice,omitempty"`
}

// BlockInfo is one line of GET /api/v1/blocks (and of `blockmix block ls
// --json`).
type BlockInfo struct {
	ID   blocks.ID `json:"id"`
	Size int       `json:"size"`
	Refs int       `json:"refs"` // how many recorded files use the block
}

// VerifyInfo is POST /api/v1/verify (and `blockmix verify --json`).
type VerifyInfo struct {
	Checked     int         `json:"checked"`
	Bytes       int64       `json:"bytes"`
	Quarantined []blocks.ID `json:"quarantined"` // never null
	// ResumedAt is the share of the store (0 to 1, by block ID) that an
	// earlier verify had checked before it stopped: this one went on from
	// there. 0: a whole pass.
	ResumedAt float64 `json:"resumed_at,omitempty"`
}

// DaemonInfo is what a running node knows of itself beyond ID().
type DaemonInfo struct {
	Repo     string
	Started  time.Time
	Replicas int // how many other nodes should hold each block
	// Quota bounds the store's block bytes (0: none); Profile names the
	// daemon's profile ("default" or "lowpower").
	Quota int64
	// QuotaUsed is what the store's blocks cost on disk as the quota
	// counts them (their bytes, record headers and index entries).
	QuotaUsed int64
	Profile   string
	// Group names the private group the node is in ("" for none).
	Group string
	// Site is where the node stands ("" for none); Sites counts the
	// nodes it knows by site (see SiteInfo).
	Site  string
	Sites []SiteInfo
	// Home, for a pooled node, is the group of the donor that runs it
	// ("" for none); PartnerCopies is how many of each block's copies go
	// to partner donors; Partners counts the partner donors the node
	// knows by home group (see PartnerInfo).
	Home          string
	PartnerCopies int
	Partners      []PartnerInfo
	// Allowlist is how many peers --allow lists (0: any peer may talk).
	Allowlist int
	// Repair is the last repair round of the blocks this node holds for
	// the network; ScrubHealed counts the corrupt blocks the scrub
	// quarantined and fetched again since the start.
	Repair      RepairInfo
	ScrubHealed int64
	// StoreError is the standing failure to store blocks ("" when the
	// last block stored fine): a full or read-only disk.
	StoreError string
	// Traffic over libp2p since the start (all protocols), and the recent
	// rates in bytes per second.
	BytesIn, BytesOut int64
	RateIn, RateOut   float64
	// Reach is how other nodes reach this one.
	Reach ReachInfo
}

// ErrorBody is the JSON of every error answer.
type ErrorBody struct {
	Error string `json:"error"`
}

// RecipeInfo is GET /api/v1/recipe?recipe=…: what a recipe says, read from
// the recipe alone (nothing is fetched).
type RecipeInfo struct {
	Recipe    string `json:"recipe"` // the canonical blockmix: spelling
	URL       string `json:"url"`    // the link form, on this node's address
	Key       string `json:"key"`    // the file's key in GET /api/v1/files
	Name      string `json:"name"`
	Size      int64  `json:"size"`
	Type      string `json:"type,omitempty"`
	BlockSize int    `json:"block_size"` // the file's data block size
	Blocks    int64  `json:"blocks"`     // data blocks (tuples) in the file
	Local     bool   `json:"local"`      // the file is in this node's list
	// Renamed: the name in the link was cleaned (it held invisible or
	// direction-changing characters, a path or a leading dot).
	Renamed bool `json:"renamed,omitempty"`
}

// Transfer states.
const (
	TransferRunning   = "running"
	TransferDone      = "done"
	TransferFailed    = "failed"
	TransferCancelled = "cancelled"
)

// Transfer kinds.
const (
	TransferGet = "get" // a fetch of a whole file into this node
	TransferPut = "put" // a file shared from the page or the command line
)

// TransferInfo is one fetch of a whole file into this node (POST
// /api/v1/fetch?recipe=…) or one finished put: GET /api/v1/transfers, GET
// /api/v1/transfers/{id}. The node keeps the last ones across restarts.
type TransferInfo struct {
	ID         string    `json:"id"`
	Kind       string    `json:"kind"` // TransferGet or TransferPut
	Recipe     string    `json:"recipe"`
	Key        string    `json:"key"`
	Name       string    `json:"name"`
	Size       int64     `json:"size"`
	Type       string    `json:"type,omitempty"`
	State      string    `json:"state"` // running, done, failed or cancelled
	BytesDone  int64     `json:"bytes_done"`
	BlocksDone int64     `json:"blocks_done"`
	Blocks     int64     `json:"blocks"`
	Speed      float64   `json:"speed"`       // bytes per second over the last seconds
	Peers      int       `json:"peers"`       // peers that sent blocks during the transfer
	ETASeconds float64   `json:"eta_seconds"` // -1 when unknown
	Error      string    `json:"error,omitempty"`
	Started    time.Time `json:"started"`
	Finished   time.Time `json:"finished,omitzero"`
	// Put is a put's answer (Kind TransferPut only).
	Put *PutInfo `json:"put,omitempty"`
}

// Health states, worst last.
const (
	HealthHealthy = "healthy"
	HealthAtRisk  = "at-risk"
	HealthLost    = "lost"
)

// HealthInfo is GET /api/v1/health?recipe=…: how many copies of the file's
// blocks the network holds (this node's included).
type HealthInfo struct {
	Blocks       int    `json:"blocks"`        // blocks the file needs, descriptor included
	MinCopies    int    `json:"min_copies"`    // of the least-copied block
	MedianCopies int    `json:"median_copies"` // of the median block
	Missing      int    `json:"missing"`       // blocks with no copy reachable
	Short        int    `json:"short"`         // blocks with fewer copies than Replicas
	Replicas     int    `json:"replicas"`      // copies wanted
	State        string `json:"state"`         // healthy, at-risk or lost
	Verdict      string `json:"verdict"`       // in plain words
	// Holders are the nodes that hold the file's blocks, this node first
	// (when it holds any), then the others, most blocks first.
	Holders []HolderInfo `json:"holders,omitempty"`
	// Sites is how many sites the nodes this node knows stand in;
	// OneSite, when they are two or more, counts the blocks whose copies
	// do not stand in two of them (peers that said no site count as
	// none): one site stopping could lose them.
	Sites   int `json:"sites,omitempty"`
	OneSite int `json:"one_site,omitempty"`
	// PartnerCopies is how many of each block's copies should stand on
	// partner donors (see --partner-copies); Partners how many partner
	// donors this node knows; NoPartner, when both are above 0, counts
	// the blocks with no copy on a partner donor: losing the group's own
	// nodes could lose them.
	PartnerCopies int `json:"partner_copies,omitempty"`
	Partners      int `json:"partners,omitempty"`
	NoPartner     int `json:"no_partner,omitempty"`
	// For a file put with erasure coding (see judgeStripes): the scheme
	// ("rs:4+2"), its stripes, those missing blocks, and how many more
	// nodes every stripe can lose (−1: some stripe cannot be rebuilt).
	// The block counts above are then those of the blocks outside the
	// stripes (the descriptor's root, the manifest).
	Parity         string `json:"parity,omitempty"`
	Stripes        int    `json:"stripes,omitempty"`
	StripesShort   int    `json:"stripes_short,omitempty"`
	StripesCanLose int    `json:"stripes_can_lose,omitempty"`
}

// HolderInfo is one node holding some of a file's blocks.
type HolderInfo struct {
	Peer   string `json:"peer"`           // its peer ID
	Self   bool   `json:"self,omitempty"` // this node
	Blocks int    `json:"blocks"`         // how many of the file's blocks it holds
}

// GCInfo is POST /api/v1/gc (and `blockmix gc --json`): what eviction
// freed and what it kept.
type GCInfo struct {
	EvictedBlocks  int   `json:"evicted_blocks"`
	EvictedBytes   int64 `json:"evicted_bytes"`
	HandedOff      int   `json:"handed_off"`    // the network's blocks given to the next closest node first
	KeptBlocks     int   `json:"kept_blocks"`   // the network's blocks kept (this node is among their closest)
	PinnedBlocks   int   `json:"pinned_blocks"` // used by files on this node's list: never evicted
	UploadBlocks   int   `json:"upload_blocks"` // used by puts still running: kept
	ReclaimedBytes int64 `json:"reclaimed_bytes"`
}

// RepairInfo is one repair round: the blocks this node holds for the
// network (it is one of the R closest to them) that it checked, those that
// had fewer copies than wanted, and what it pushed.
type RepairInfo struct {
	Started     time.Time `json:"started,omitzero"`
	Finished    time.Time `json:"finished,omitzero"`
	Checked     int       `json:"checked"`
	Short       int       `json:"short"`       // had fewer than R copies
	Repaired    int       `json:"repaired"`    // got pushed to the next closest
	StillShort  int       `json:"still_short"` // could not get all copies (too few nodes)
	BytesPushed int64     `json:"bytes_pushed"`
}

// GroupInfo is GET /api/v1/group and the answer to POST
// /api/v1/group/create?name=… and /api/v1/group/join?invite=….
type GroupInfo struct {
	Name    string `json:"name,omitempty"`    // "" when the node is in no group
	Active  bool   `json:"active"`            // the running daemon works in it
	Invite  string `json:"invite,omitempty"`  // the line friends join with (a secret)
	Message string `json:"message,omitempty"` // what to do next, in plain words
}

// BandwidthSample is the node's traffic over one interval, in bytes per
// second.
type BandwidthSample struct {
	Time time.Time `json:"t"`
	In   float64   `json:"in"`
	Out  float64   `json:"out"`
}

// BandwidthInfo is GET /api/v1/bandwidth: the last hour, oldest first.
type BandwidthInfo struct {
	IntervalSeconds int               `json:"interval_seconds"`
	Samples         []BandwidthSample `json:"samples"` // never null
}

// Judge sets h.State and h.Verdict from the counts. The verdict says how
// many blocks lack copies, how many copies the fewest have, and whether
// the file is safe; it names no command (the page offers a Repair button,
// the command line prints its own hint).
func (h *HealthInfo) Judge() {
	if h.Parity != "" {
		h.judgeStripes()
		return
	}
	switch {
	case h.Missing > 0:
		h.State = HealthLost
		h.Verdict = fmt.Sprintf("lost: %d of %s %s no copy anywhere this node can reach; the file cannot be rebuilt now",
			h.Missing, plural(h.Blocks, "block"), has(h.Missing))
	case h.MinCopies < h.Replicas:
		h.State = HealthAtRisk
		n := max(h.Short, 1)
		safe := "the file can be got now, but one node going away could lose it"
		if h.MinCopies >= 2 {
			safe = fmt.Sprintf("the file can be got now and survives %s going away", plural(h.MinCopies-1, "node"))
		}
		each := "have"
		if n == 1 {
			each = "has"
		}
		fewest := fmt.Sprintf("the fewest %s %s", each, copies(h.MinCopies))
		if n > 1 && h.MedianCopies == h.MinCopies {
			fewest = fmt.Sprintf("most have %s", copies(h.MinCopies))
		}
		if n == h.Blocks && h.MedianCopies == h.MinCopies {
			fewest = fmt.Sprintf("%s each", copies(h.MinCopies))
		}
		h.Verdict = fmt.Sprintf("at risk: %d of %s %s fewer than %d copies (%s); %s",
			n, plural(h.Blocks, "block"), has(n), h.Replicas, fewest, safe)
	case h.Sites >= 2 && h.OneSite > 0:
		h.State = HealthAtRisk
		h.Verdict = fmt.Sprintf("at risk: every copy of %d of %s is in one site; the file can be got now, but that site stopping would lose it",
			h.OneSite, plural(h.Blocks, "block"))
	case h.PartnerCopies > 0 && h.Partners > 0 && h.NoPartner > 0:
		h.State = HealthAtRisk
		h.Verdict = fmt.Sprintf("at risk: no copy of %d of %s is on a partner group's donors; the file can be got now, but losing this group's own nodes would lose it",
			h.NoPartner, plural(h.Blocks, "block"))
	default:
		h.State = HealthHealthy
		h.Verdict = fmt.Sprintf("healthy: every block has at least %s (%d wanted); the file is safe", copies(h.MinCopies), h.Replicas)
	}
}

// has is "has" for one, "have" for more.
func has(n int) string {
	if n == 1 {
		return "has"
	}
	return "have"
}

// The states of StatusInfo, from worst to best.
const (
	StateOffline     = "offline"     // no daemon answered (said by the CLI only)
	StateQuarantined = "quarantined" // the store has taken corrupt blocks out of service
	StateAlone       = "alone"       // no peers: what is put stays on this node
	StateFewPeers    = "few-peers"   // fewer peers than the replicas wanted
	StateOverQuota   = "over-quota"  // the store holds more than its quota
	StateStoreFails  = "store-fails" // blocks cannot be stored (disk full or read-only)
	StateAtRisk      = "at-risk"     // blocks held for the network lack copies the network cannot give
	StateOK          = "ok"
)

// StoreInfo is the store part of StatusInfo: blocks.Stats with the
// overhead spelled out.
type StoreInfo struct {
	blocks.Stats
	// FilesBlockBytes is the bytes of the blocks the files on this node's
	// list use; OtherBytes the rest (held for other nodes, cached).
	FilesBlockBytes int64 `json:"files_block_bytes"`
	OtherBytes      int64 `json:"other_bytes"`
	// Overhead is FilesBlockBytes per file byte: what this node's own
	// files cost, not inflated by the blocks it holds for others.
	Overhead float64 `json:"overhead"`
}

// NewStoreInfo sums a store up from its Stats (no walk: the store keeps
// the bytes its files use).
func NewStoreInfo(st blocks.Stats) StoreInfo {
	s := StoreInfo{Stats: st, FilesBlockBytes: st.UsedBytes, OtherBytes: max(st.Bytes-st.UsedBytes, 0)}
	if st.FileBytes > 0 {
		s.Overhead = float64(st.UsedBytes) / float64(st.FileBytes)
	}
	return s
}

// StatusInfo is GET /api/v1/status and `blockmix status --json`: the node
// summed up, with a verdict in plain words.
type StatusInfo struct {
	// Daemon is false when no daemon answered: then only Repo, ID (when the
	// repo has one), Store, State and Verdict are filled in.
	Daemon        bool          `json:"daemon"`
	Repo          string        `json:"repo"`
	ID            string        `json:"id,omitempty"`
	Started       time.Time     `json:"started,omitzero"`
	UptimeSeconds int64         `json:"uptime_seconds"`
	Peers         int           `json:"peers"`                    // connected now
	RoutingTable  int           `json:"routing_table"`            // peers the DHT knows
	Replicas      int           `json:"replicas"`                 // other nodes that should hold each block
	Quota         int64         `json:"quota,omitempty"`          // bytes the store may hold (0: no quota)
	QuotaUsed     int64         `json:"quota_used,omitempty"`     // what the store's blocks cost on disk, as the quota counts them
	Profile       string        `json:"profile,omitempty"`        // "default" or "lowpower"
	Group         string        `json:"group,omitempty"`          // the private group the node is in ("" for none)
	Site          string        `json:"site,omitempty"`           // where the node stands ("" for none)
	Sites         []SiteInfo    `json:"sites,omitempty"`          // the nodes it knows (itself included) by site, most first
	Home          string        `json:"home,omitempty"`           // for a pooled node: the group of the donor that runs it
	PartnerCopies int           `json:"partner_copies,omitempty"` // copies of each block wanted on partner donors
	Partners      []PartnerInfo `json:"partners,omitempty"`       // the partner donors it knows by home group, most first
	Allowlist     int           `json:"allowlist,omitempty"`      // how many peers --allow lists: only they may talk to the node (0: any)
	StoreError    string        `json:"store_error,omitempty"`    // the last failure to store a block, while it stands
	Repair        RepairInfo    `json:"repair"`                   // the last repair round
	ScrubHealed   int64         `json:"scrub_healed"`             // corrupt blocks the scrub quarantined and fetched again since the start
	Store         StoreInfo     `json:"store"`
	// Libp2p traffic since the daemon started, and the recent rates in
	// bytes per second (libp2p updates them about once a second).
	BytesIn  int64   `json:"bytes_in"`
	BytesOut int64   `json:"bytes_out"`
	RateIn   float64 `json:"rate_in"`
	RateOut  float64 `json:"rate_out"`
	// Reach is how other nodes reach this node, in plain words.
	Reach ReachInfo `json:"reach"`
	// State is one of the State constants: the most pressing problem, or
	// StateOK. Verdict says it in one line of plain words, with what to do.
	State   string `json:"state"`
	Verdict string `json:"verdict"`
	// Summary is Verdict without the commands to run; Actions are the
	// Action constants the page offers buttons for.
	Summary string   `json:"summary"`
	Actions []string `json:"actions,omitempty"`
}

// Actions the page offers for a status problem (StatusInfo.Actions).
const (
	ActionAddPeer = "add-peer" // connect to a friend's node
	ActionGC      = "gc"       // evict cached blocks
	ActionVerify  = "verify"   // re-hash the store
)

// Judge sets s.State, s.Verdict, s.Summary and s.Actions from the other
// fields. When there is more than one problem, State names the most
// pressing and Verdict lists them all, most pressing first, separated by
// "; ". Verdict ends each problem with the command that helps; Summary
// is the same without the commands, and Actions names what the page
// offers a button for instead.
func (s *StatusInfo) Judge() {
	var states, lines, summary []string
	s.Actions = nil
	add := func(state, line, cli, action string) {
		states = append(states, state)
		summary = append(summary, line)
		if cli != "" {
			line += cli
		}
		lines = append(lines, line)
		if action != "" && !slices.Contains(s.Actions, action) {
			s.Actions = append(s.Actions, action)
		}
	}
	if !s.Daemon {
		add(StateOffline, fmt.Sprintf("no daemon running on %s (offline): nothing is served to peers or placed on other nodes", s.Repo), "; start one with 'blockmix daemon'", "")
	}
	if q := s.Store.Quarantined; q > 0 {
		add(StateQuarantined, fmt.Sprintf("quarantined: %s taken out of service; files that need them must fetch them from peers", plural(q, "corrupt block")),
			" (run 'blockmix verify' to check the rest of the store)", ActionVerify)
	}
	if s.StoreError != "" {
		add(StateStoreFails, fmt.Sprintf("cannot store blocks: %s — the disk that holds the repo may be full, read-only or gone; blocks already here are still served, pushes go to other nodes", s.StoreError), "", "")
	}
	if s.Repair.StillShort > 0 {
		add(StateAtRisk, fmt.Sprintf("at risk: %d of the blocks this node holds for the network still have fewer than %d copies after the last repair (too few nodes reachable)", s.Repair.StillShort, s.Replicas),
			"; connect more nodes", ActionAddPeer)
	}
	if used := s.Used(); s.Quota > 0 && used > s.Quota {
		add(StateOverQuota, fmt.Sprintf("over quota: the store holds %s, the quota is %s; pushes are refused until cached blocks are freed", HumanBytes(used), HumanBytes(s.Quota)),
			" ('blockmix gc', or the node itself)", ActionGC)
	}
	if s.Daemon {
		switch {
		case s.Peers == 0:
			add(StateAlone, "alone: no peers connected — files you put stay only on this node",
				"; restart the daemon with --bootstrap ADDR (a friend's address from 'blockmix id')", ActionAddPeer)
		case s.Peers < s.Replicas:
			add(StateFewPeers, fmt.Sprintf("few peers: connected to %s; files you put get %s on other nodes, not the %d wanted",
				plural(s.Peers, "peer"), copies(s.Peers), s.Replicas), "; connect more nodes with --bootstrap ADDR", ActionAddPeer)
		}
	}
	if len(states) == 0 {
		s.State = StateOK
		s.Verdict = fmt.Sprintf("ok: connected to %s; files you put get %s on other nodes", plural(s.Peers, "peer"), copies(s.Replicas))
		s.Summary = s.Verdict
		return
	}
	s.State = states[0]
	s.Verdict = strings.Join(lines, "; ")
	s.Summary = strings.Join(summary, "; ")
}

// plural spells n things.
func plural(n int, thing string) string {
	if n == 1 {
		return "1 " + thing
	}
	return fmt.Sprintf("%d %ss", n, thing)
}

func copies(n int) string {
	if n == 1 {
		return "1 copy"
	}
	return fmt.Sprintf("%d copies", n)
}

// HumanBytes spells a byte count with a binary unit ("3.0 MiB"), as the
// CLI and the page do.
func HumanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// Used is what the quota counts as used: QuotaUsed, or the block bytes
// from an older daemon that does not send it.
func (s StatusInfo) Used() int64 {
	if s.QuotaUsed > 0 {
		return s.QuotaUsed
	}
	return s.Store.Bytes
}

// SettingsInfo is GET /api/v1/settings and the body and answer of PUT
// /api/v1/settings: the settings the page can change, as saved in the
// repo's config.json. A flag given to the running daemon wins over the
// file at its next start, as it always does.
type SettingsInfo struct {
	Replicas int    `json:"replicas"`        // other nodes that should hold each block
	Cache    string `json:"cache"`           // keep fetched blocks while the store holds less ("10GiB"; "0": none)
	Donor    bool   `json:"donor"`           // give Quota to other people's blocks
	Quota    string `json:"quota,omitempty"` // the most block bytes stored ("" : none)
	Profile  string `json:"profile"`         // "default" or "lowpower"
	// RepairInterval is how often held blocks get their copies checked:
	// a Go duration ("1h", "30m"; "0": never).
	RepairInterval string `json:"repair_interval"`
	// In answers: the settings applied to the running node now, and those
	// that apply when it next starts.
	Applied []string `json:"applied,omitempty"`
	Restart []string `json:"restart,omitempty"`
}

// ConnectInfo is POST /api/v1/peers/connect?addr=…[&remember=1]: the peer
// reached, and whether its address was added to config.json's bootstrap
// list (so that the node joins through it at every start).
type ConnectInfo struct {
	ID         string `json:"id"`
	Remembered bool   `json:"remembered"`
}

// SealInfo is POST /api/v1/seal: a recipe sealed with a passphrase, and
// its link on this node's address.
type SealInfo struct {
	Recipe string `json:"recipe"`
	URL    string `json:"url"`
}
