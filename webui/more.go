package webui

import (
	"fmt"
	"net/http"
	"time"
)

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
}

// Transfer states.
const (
	TransferRunning = "running"
	TransferDone    = "done"
	TransferFailed  = "failed"
)

// TransferInfo is one fetch of a whole file into this node: POST
// /api/v1/fetch?recipe=…, GET /api/v1/transfers, GET
// /api/v1/transfers/{id}.
type TransferInfo struct {
	ID         string    `json:"id"`
	Recipe     string    `json:"recipe"`
	Key        string    `json:"key"`
	Name       string    `json:"name"`
	Size       int64     `json:"size"`
	Type       string    `json:"type,omitempty"`
	State      string    `json:"state"` // running, done or failed
	BytesDone  int64     `json:"bytes_done"`
	BlocksDone int64     `json:"blocks_done"`
	Blocks     int64     `json:"blocks"`
	Speed      float64   `json:"speed"`       // bytes per second over the last seconds
	Peers      int       `json:"peers"`       // peers that sent blocks during the transfer
	ETASeconds float64   `json:"eta_seconds"` // -1 when unknown
	Error      string    `json:"error,omitempty"`
	Started    time.Time `json:"started"`
	Finished   time.Time `json:"finished,omitzero"`
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
	Replicas     int    `json:"replicas"`      // copies wanted
	State        string `json:"state"`         // healthy, at-risk or lost
	Verdict      string `json:"verdict"`       // in plain words
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

// progressFunc adapts a func to mixer.Progress.
type progressFunc func(n int64)

// Add implements mixer.Progress; a nil func does nothing.
func (f progressFunc) Add(n int64) {
	if f != nil {
		f(n)
	}
}

// Judge sets h.State and h.Verdict from the counts.
func (h *HealthInfo) Judge() {
	switch {
	case h.Missing > 0:
		h.State = HealthLost
		verb := "blocks have"
		if h.Missing == 1 {
			verb = "block has"
		}
		h.Verdict = fmt.Sprintf("lost: %d %s no copy anywhere this node can reach", h.Missing, verb)
	case h.MinCopies < h.Replicas:
		h.State = HealthAtRisk
		h.Verdict = fmt.Sprintf("at risk: some blocks have only %s (%d wanted)", copies(h.MinCopies), h.Replicas)
	default:
		h.State = HealthHealthy
		h.Verdict = fmt.Sprintf("healthy: every block has at least %s", copies(h.MinCopies))
	}
}

// moreRoutes adds the endpoints the web page needs.
func (s *Server) moreRoutes(mux *http.ServeMux) {}
