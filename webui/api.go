// Package webui serves the local HTTP API of a running node (and, later,
// its web page). It reaches the node only through the Node interface.
package webui

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"

	"github.com/blockmix/blockmix/blocks"
	"github.com/blockmix/blockmix/recipe"
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
	Blocks    int    `json:"blocks"`
	Replicas  int    `json:"replicas,omitempty"`
	// Short is how many blocks have fewer than Replicas copies on other
	// nodes (nil: not placed); Placement says why in plain words ("" when
	// all are placed).
	Short     *int   `json:"blocks_short,omitempty"`
	Placement string `json:"placement,omitempty"`
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
}

// Node is what the API needs of a running node.
type Node interface {
	ID() IDInfo
	Peers() []PeerInfo
	// Put mixes r into the store, syncs it and places its blocks.
	Put(ctx context.Context, r io.Reader, size int64, name, typ string) (PutInfo, error)
	// Open rebuilds a file, fetching blocks from peers as needed.
	Open(ctx context.Context, rc recipe.Recipe) (*recipe.Reader, error)
	Stats(ctx context.Context) (blocks.Stats, error)
}

// API returns the HTTP handler of the node's API under /api/v1/.
func API(n Node) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v1/id", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, n.ID()) })
	mux.HandleFunc("GET /api/v1/peers", func(w http.ResponseWriter, r *http.Request) {
		ps := n.Peers()
		if ps == nil {
			ps = []PeerInfo{}
		}
		writeJSON(w, ps)
	})
	mux.HandleFunc("GET /api/v1/stat", func(w http.ResponseWriter, r *http.Request) {
		s, err := n.Stats(r.Context())
		if err != nil {
			writeError(w, http.StatusInternalServerError, err)
			return
		}
		writeJSON(w, s)
	})
	mux.HandleFunc("POST /api/v1/put", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		size := int64(-1)
		if s := q.Get("size"); s != "" {
			v, err := strconv.ParseInt(s, 10, 64)
			if err != nil || v < 0 {
				writeError(w, http.StatusBadRequest, fmt.Errorf("bad size %q", s))
				return
			}
			size = v
		}
		info, err := n.Put(r.Context(), r.Body, size, q.Get("name"), q.Get("type"))
		if err != nil {
			writeError(w, http.StatusInternalServerError, err)
			return
		}
		writeJSON(w, info)
	})
	mux.HandleFunc("GET /api/v1/get", func(w http.ResponseWriter, r *http.Request) {
		rc, err := recipe.Parse(r.URL.Query().Get("recipe"))
		if err != nil {
			writeError(w, http.StatusBadRequest, err)
			return
		}
		rd, err := n.Open(r.Context(), rc)
		if err != nil {
			status := http.StatusInternalServerError
			if errors.Is(err, blocks.ErrNotFound) {
				status = http.StatusNotFound
			}
			writeError(w, status, err)
			return
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Content-Length", strconv.FormatInt(rc.Size, 10))
		if _, err := rd.WriteTo(w); err != nil {
			// Headers are out: break the connection so that the client
			// sees a cut response, never a whole-looking wrong file.
			panic(http.ErrAbortHandler)
		}
	})
	return mux
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

// ErrorBody is the JSON of every error answer.
type ErrorBody struct {
	Error string `json:"error"`
}

func writeError(w http.ResponseWriter, status int, err error) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(ErrorBody{err.Error()})
}
