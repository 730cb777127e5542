package net

import (
	"sort"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// PeerStats is what this node has measured of one peer.
type PeerStats struct {
	Latency   time.Duration `json:"latency_ns"` // moving average of the time per block of requests
	Successes int64         `json:"successes"`
	Failures  int64         `json:"failures"`
	Lies      int64         `json:"lies"` // blocks that did not match their IDs
	BytesIn   int64         `json:"bytes_in"`
	BytesOut  int64         `json:"bytes_out"`
	LastLie   time.Time     `json:"last_lie,omitzero"`
	// The last request that worked and the last that failed.
	LastSuccess time.Time `json:"last_success,omitzero"`
	LastFailure time.Time `json:"last_failure,omitzero"`
}

// downFor is how long a peer whose last request failed counts as down.
const downFor = 10 * time.Minute

// Down reports whether the peer's last request failed, recently: it is
// likely gone, and placement and repair should not count on it.
func (s PeerStats) Down(now time.Time) bool {
	return s.LastFailure.After(s.LastSuccess) && now.Sub(s.LastFailure) < downFor
}

// Reliability is the share of requests that succeeded, with one success and
// one failure assumed (a new peer starts at 0.5).
func (s PeerStats) Reliability() float64 {
	return float64(s.Successes+1) / float64(s.Successes+s.Failures+2)
}

// liePenalty is how long a peer that lied (a block that did not match its
// ID, a claim it could not prove) gets no requests at all, and its claims
// to hold blocks count for nothing.
const liePenalty = time.Hour

// Liar reports whether the peer lied within liePenalty.
func (s PeerStats) Liar(now time.Time) bool {
	return !s.LastLie.IsZero() && now.Sub(s.LastLie) < liePenalty
}

// unknownLatency stands in for a peer not measured yet.
const unknownLatency = 50 * time.Millisecond

// Score ranks peers for requests: reliability per second of latency, so a
// slow or failing peer gets a smaller share, not the same one. A peer that
// lied within liePenalty scores 0.
func (s PeerStats) Score(now time.Time) float64 {
	if s.Liar(now) {
		return 0
	}
	lat := s.Latency
	if lat <= 0 {
		lat = unknownLatency
	}
	return s.Reliability() / lat.Seconds()
}

// Book keeps PeerStats for the peers this node talked to, at most
// bookSize of them: when a new one would pass that, the eighth heard from
// least recently are forgotten (a peer that lied within liePenalty only
// after all others). Safe for concurrent use; the zero value is ready.
type Book struct {
	mu sync.Mutex
	m  map[peer.ID]*PeerStats
}

// bookSize bounds the peers a Book remembers.
var bookSize = 4096

// lastHeard is when the peer last answered or failed to.
func (s *PeerStats) lastHeard() time.Time {
	if s.LastFailure.After(s.LastSuccess) {
		return s.LastFailure
	}
	return s.LastSuccess
}

func (b *Book) get(p peer.ID) *PeerStats {
	if b.m == nil {
		b.m = map[peer.ID]*PeerStats{}
	}
	s, ok := b.m[p]
	if !ok {
		if len(b.m) >= bookSize {
			b.forgetOldest(time.Now())
		}
		s = &PeerStats{}
		b.m[p] = s
	}
	return s
}

// forgetOldest drops the eighth of the book heard from least recently,
// liars last.
func (b *Book) forgetOldest(now time.Time) {
	type heard struct {
		p    peer.ID
		liar bool
		at   time.Time
	}
	all := make([]heard, 0, len(b.m))
	for p, s := range b.m {
		all = append(all, heard{p, s.Liar(now), s.lastHeard()})
	}
	sort.Slice(all, func(i, j int) bool {
		if all[i].liar != all[j].liar {
			return !all[i].liar
		}
		return all[i].at.Before(all[j].at)
	})
	for _, h := range all[:max(1, len(all)/8)] {
		delete(b.m, h.p)
	}
}

// Success records a request that took rtt and brought in bytes.
func (b *Book) Success(p peer.ID, rtt time.Duration, bytesIn int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := b.get(p)
	s.Successes++
	s.LastSuccess = time.Now()
	s.BytesIn += bytesIn
	if s.Latency == 0 {
		s.Latency = rtt
	} else {
		s.Latency = (4*s.Latency + rtt) / 5
	}
}

// Answered records that p answered a request that is not a fetch (a push,
// a has-list, a proof, a dial): it is up, and the request counts as a
// success, as a failed one counts as a failure. Latency and bytes are
// left alone: they measure fetches.
func (b *Book) Answered(p peer.ID) {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := b.get(p)
	s.Successes++
	s.LastSuccess = time.Now()
}

// Failure records a request that failed (timeout, reset, refused stream).
func (b *Book) Failure(p peer.ID) {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := b.get(p)
	s.Failures++
	s.LastFailure = time.Now()
}

// Lie records a peer that sent a block not matching its ID, or claimed a
// block it could not prove it holds.
func (b *Book) Lie(p peer.ID, now time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := b.get(p)
	s.Lies++
	s.Failures++
	s.LastLie, s.LastFailure = now, now
}

// Liar reports whether p lied within liePenalty.
func (b *Book) Liar(p peer.ID) bool { return b.Stats(p).Liar(time.Now()) }

// Sent records bytes this node sent to p.
func (b *Book) Sent(p peer.ID, n int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.get(p).BytesOut += n
}

// Stats returns p's stats (zero for a peer never seen).
func (b *Book) Stats(p peer.ID) PeerStats {
	b.mu.Lock()
	defer b.mu.Unlock()
	if s, ok := b.m[p]; ok {
		return *s
	}
	return PeerStats{}
}

// All returns the stats of every peer seen, by peer.
func (b *Book) All() map[peer.ID]PeerStats {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make(map[peer.ID]PeerStats, len(b.m))
	for p, s := range b.m {
		out[p] = *s
	}
	return out
}

// Rank returns ps best first, without the peers that score 0 (liars within
// their penalty). Equal scores keep their order.
func (b *Book) Rank(ps []peer.ID, now time.Time) []peer.ID {
	b.mu.Lock()
	scores := make(map[peer.ID]float64, len(ps))
	for _, p := range ps {
		s := PeerStats{}
		if st, ok := b.m[p]; ok {
			s = *st
		}
		scores[p] = s.Score(now)
	}
	b.mu.Unlock()
	out := make([]peer.ID, 0, len(ps))
	for _, p := range ps {
		if scores[p] > 0 {
			out = append(out, p)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return scores[out[i]] > scores[out[j]] })
	return out
}
