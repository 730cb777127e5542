package webui

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/blockmix/blockmix/blocks"
)

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
	Overhead float64 `json:"overhead"` // stored bytes per file byte
}

// StatusInfo is GET /api/v1/status and `blockmix status --json`: the node
// summed up, with a verdict in plain words.
type StatusInfo struct {
	// Daemon is false when no daemon answered: then only Repo, ID (when the
	// repo has one), Store, State and Verdict are filled in.
	Daemon        bool       `json:"daemon"`
	Repo          string     `json:"repo"`
	ID            string     `json:"id,omitempty"`
	Started       time.Time  `json:"started,omitzero"`
	UptimeSeconds int64      `json:"uptime_seconds"`
	Peers         int        `json:"peers"`                 // connected now
	RoutingTable  int        `json:"routing_table"`         // peers the DHT knows
	Replicas      int        `json:"replicas"`              // other nodes that should hold each block
	Quota         int64      `json:"quota,omitempty"`       // bytes the store may hold (0: no quota)
	Profile       string     `json:"profile,omitempty"`     // "default" or "lowpower"
	Group         string     `json:"group,omitempty"`       // the private group the node is in ("" for none)
	StoreError    string     `json:"store_error,omitempty"` // the last failure to store a block, while it stands
	Repair        RepairInfo `json:"repair"`                // the last repair round
	ScrubHealed   int64      `json:"scrub_healed"`          // corrupt blocks the scrub quarantined and fetched again since the start
	Store         StoreInfo  `json:"store"`
	// Libp2p traffic since the daemon started, and the recent rates in
	// bytes per second (libp2p updates them about once a second).
	BytesIn  int64   `json:"bytes_in"`
	BytesOut int64   `json:"bytes_out"`
	RateIn   float64 `json:"rate_in"`
	RateOut  float64 `json:"rate_out"`
	// State is one of the State constants: the most pressing problem, or
	// StateOK. Verdict says it in one line of plain words, with what to do.
	State   string `json:"state"`
	Verdict string `json:"verdict"`
}

// Judge sets s.State and s.Verdict from the other fields. When there is
// more than one problem, State names the most pressing and Verdict lists
// them all, most pressing first, separated by "; ".
func (s *StatusInfo) Judge() {
	var states, lines []string
	add := func(state, line string) {
		states = append(states, state)
		lines = append(lines, line)
	}
	if !s.Daemon {
		add(StateOffline, fmt.Sprintf("no daemon running on %s (offline): nothing is served to peers or placed on other nodes; start one with 'blockmix daemon'", s.Repo))
	}
	if q := s.Store.Quarantined; q > 0 {
		add(StateQuarantined, fmt.Sprintf("quarantined: %s taken out of service; files that need them must fetch them from peers (run 'blockmix verify' to check the rest of the store)", plural(q, "corrupt block")))
	}
	if s.StoreError != "" {
		add(StateStoreFails, fmt.Sprintf("cannot store blocks: %s — the disk that holds the repo may be full, read-only or gone; blocks already here are still served, pushes go to other nodes", s.StoreError))
	}
	if s.Repair.StillShort > 0 {
		add(StateAtRisk, fmt.Sprintf("at risk: %d of the blocks this node holds for the network still have fewer than %d copies after the last repair (too few nodes reachable); connect more nodes", s.Repair.StillShort, s.Replicas))
	}
	if s.Quota > 0 && s.Store.Bytes > s.Quota {
		add(StateOverQuota, fmt.Sprintf("over quota: the store holds %s, the quota is %s; pushes are refused until 'blockmix gc' (or the node itself) frees cached blocks", HumanBytes(s.Store.Bytes), HumanBytes(s.Quota)))
	}
	if s.Daemon {
		switch {
		case s.Peers == 0:
			add(StateAlone, "alone: no peers connected — files you put stay only on this node; restart the daemon with --bootstrap ADDR (a friend's address from 'blockmix id')")
		case s.Peers < s.Replicas:
			add(StateFewPeers, fmt.Sprintf("few peers: connected to %s; files you put get %s on other nodes, not the %d wanted; connect more nodes with --bootstrap ADDR",
				plural(s.Peers, "peer"), copies(s.Peers), s.Replicas))
		}
	}
	if len(states) == 0 {
		s.State = StateOK
		s.Verdict = fmt.Sprintf("ok: connected to %s; files you put get %s on other nodes", plural(s.Peers, "peer"), copies(s.Replicas))
		return
	}
	s.State = states[0]
	s.Verdict = strings.Join(lines, "; ")
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

// status sums up a running node.
func status(ctx context.Context, n Node) (StatusInfo, error) {
	st, err := n.Store().Stats(ctx)
	if err != nil {
		return StatusInfo{}, err
	}
	id, d := n.ID(), n.Daemon()
	s := StatusInfo{
		Daemon: true, Repo: d.Repo, ID: id.ID, Started: d.Started,
		Peers: id.Peers, RoutingTable: id.RoutingTable, Replicas: d.Replicas, Quota: d.Quota, Profile: d.Profile, Group: d.Group, StoreError: d.StoreError, Repair: d.Repair, ScrubHealed: d.ScrubHealed,
		Store:   StoreInfo{Stats: st, Overhead: st.Overhead()},
		BytesIn: d.BytesIn, BytesOut: d.BytesOut, RateIn: d.RateIn, RateOut: d.RateOut,
	}
	if !d.Started.IsZero() {
		s.UptimeSeconds = int64(time.Since(d.Started) / time.Second)
	}
	s.Judge()
	return s, nil
}
