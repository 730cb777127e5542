// Package webui serves the local HTTP API of a running node (and, later,
// its web page). It reaches the node only through the Node interface.
package webui

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/blockmix/blockmix/blocks"
	"github.com/blockmix/blockmix/recipe"
	"github.com/blockmix/blockmix/webui/apiv1"
)

// Store is the part of the node's own block store that the API reads.
// *blocks.Disk and *blocks.Mem implement it. It must be safe for
// concurrent use.
type Store interface {
	blocks.Getter
	blocks.Enumerator
	Stats(ctx context.Context) (blocks.Stats, error)
	Files(ctx context.Context) ([]blocks.FileRecord, error)
}

// Node is what the API needs of a running node.
type Node interface {
	ID() apiv1.IDInfo
	Peers() []apiv1.PeerInfo
	Daemon() apiv1.DaemonInfo
	// Put mixes r into the store, syncs it and places its blocks.
	Put(ctx context.Context, r io.Reader, size int64, name, typ string) (apiv1.PutInfo, error)
	// Open rebuilds a file, fetching blocks from peers as needed.
	Open(ctx context.Context, rc recipe.Recipe) (*recipe.Reader, error)
	// Store is the node's local store, read as it is: nothing is fetched.
	Store() Store
	// Fetch rebuilds the whole file into this node: every block fetched
	// and kept, the whole-file hash checked, the file added to the
	// store's list. progress gets the file bytes as they are rebuilt.
	Fetch(ctx context.Context, rc recipe.Recipe, progress func(n int64)) error
	// Health counts the reachable copies of each block of a file, on this
	// node's list or not (its descriptor tells the blocks).
	Health(ctx context.Context, rc recipe.Recipe) (apiv1.HealthInfo, error)
	// Repair gives every block of a file the copies it lacks (fetching it
	// first when it is not here) and answers the file's health afterwards.
	Repair(ctx context.Context, rc recipe.Recipe) (apiv1.HealthInfo, error)
	// Group tells the node's private group (zero when none); CreateGroup
	// and JoinGroup make or join one (the daemon works in it after a
	// restart).
	Group(ctx context.Context) (apiv1.GroupInfo, error)
	CreateGroup(ctx context.Context, name string) (apiv1.GroupInfo, error)
	JoinGroup(ctx context.Context, invite string) (apiv1.GroupInfo, error)
	// GC evicts every cached block (pinned ones never; the network's only
	// when the store is over its quota, after handing them off) and
	// reclaims the space.
	GC(ctx context.Context) (apiv1.GCInfo, error)
	// Remove takes a file off this node's list (its blocks stay until
	// evicted); an unknown key wraps blocks.ErrNotFound.
	Remove(ctx context.Context, key string) error
	// Verify re-hashes every local block, quarantines the ones whose
	// bytes do not match their ID and syncs the store. Finding corrupt
	// blocks is not an error: they are listed in the answer.
	Verify(ctx context.Context) (apiv1.VerifyInfo, error)
}

// apiRoutes adds the node's API under /api/v1/ to mux. Every answer is
// JSON unless said otherwise; every error the handlers write is an
// ErrorBody with a 4xx (bad request, not found) or 5xx status (an unknown
// path or method gets net/http's plain-text 404 or 405).
func (s *Server) apiRoutes(mux *http.ServeMux) {
	n := s.n
	// GET /api/v1/id: IDInfo.
	mux.HandleFunc("GET /api/v1/id", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, n.ID()) })
	// GET /api/v1/peers: a []PeerInfo of the connected peers ([] when none).
	mux.HandleFunc("GET /api/v1/peers", func(w http.ResponseWriter, r *http.Request) {
		ps := n.Peers()
		if ps == nil {
			ps = []apiv1.PeerInfo{}
		}
		writeJSON(w, ps)
	})
	// GET /api/v1/stat: the local store's blocks.Stats.
	mux.HandleFunc("GET /api/v1/stat", answer(func(r *http.Request) (blocks.Stats, error) {
		return n.Store().Stats(r.Context())
	}))
	// GET /api/v1/status: StatusInfo, the node summed up with a verdict.
	mux.HandleFunc("GET /api/v1/status", answer(func(r *http.Request) (apiv1.StatusInfo, error) {
		return status(r.Context(), n)
	}))
	// GET /api/v1/files: a []blocks.FileRecord of the files recorded in the
	// store, oldest first ([] when none).
	mux.HandleFunc("GET /api/v1/files", answer(func(r *http.Request) ([]blocks.FileRecord, error) {
		fs, err := n.Store().Files(r.Context())
		if fs == nil {
			fs = []blocks.FileRecord{}
		}
		return fs, err
	}))
	// POST /api/v1/verify: re-hash every local block (it takes as long as
	// reading the whole store) and answer VerifyInfo. Corrupt blocks found
	// are quarantined and listed with status 200; an error means the check
	// itself could not run to the end.
	mux.HandleFunc("POST /api/v1/verify", answer(func(r *http.Request) (apiv1.VerifyInfo, error) {
		v, err := n.Verify(r.Context())
		if v.Quarantined == nil {
			v.Quarantined = []blocks.ID{}
		}
		return v, err
	}))
	// GET /api/v1/blocks: every local block in ID order, streamed as
	// newline-delimited JSON (application/x-ndjson), one BlockInfo per
	// line. An error before the first line is an ErrorBody; after it, the
	// connection is cut, so a client that reads to a clean end has the
	// whole list.
	mux.HandleFunc("GET /api/v1/blocks", func(w http.ResponseWriter, r *http.Request) {
		cw := &countingWriter{w: w}
		bw := bufio.NewWriterSize(cw, 64<<10)
		enc := json.NewEncoder(bw)
		w.Header().Set("Content-Type", "application/x-ndjson")
		err := n.Store().Enumerate(r.Context(), func(id blocks.ID, m blocks.Meta) error {
			return enc.Encode(apiv1.BlockInfo{ID: id, Size: m.Size, Refs: m.Refs})
		})
		if err == nil {
			err = bw.Flush()
		}
		if err != nil {
			if cw.n == 0 {
				writeError(w, http.StatusInternalServerError, err)
				return
			}
			panic(http.ErrAbortHandler)
		}
	})
	// GET /api/v1/blocks/{id}: one local block's bytes exactly as stored
	// (application/octet-stream), checked against its ID first. 400 for a
	// malformed ID, 404 when the store does not hold the block (the
	// network is not asked), 500 with "corrupt" when its bytes do not match.
	mux.HandleFunc("GET /api/v1/blocks/{id}", func(w http.ResponseWriter, r *http.Request) {
		id, err := blocks.ParseID(r.PathValue("id"))
		if err != nil {
			writeError(w, http.StatusBadRequest, err)
			return
		}
		b, err := blocks.GetVerified(r.Context(), n.Store(), id)
		if err != nil {
			writeNodeError(w, err)
			return
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Content-Length", strconv.Itoa(len(b)))
		_, _ = w.Write(b)
	})
	// POST /api/v1/put?name=…&type=…&size=…: the body is the file; the
	// answer is PutInfo once the file is stored, synced and placed (and
	// kept among the transfers). A client that goes before the answer
	// cancels the put: the file is not kept.
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
		started := time.Now()
		info, err := n.Put(r.Context(), r.Body, size, q.Get("name"), q.Get("type"))
		if err != nil {
			writeNodeError(w, err)
			return
		}
		// The link on the address the client reached this node at, not
		// the default port.
		if rc, err := recipe.Parse(info.Recipe); err == nil {
			info.URL = rc.URL("http://" + r.Host)
		}
		s.transfers.recordPut(info, started)
		writeJSON(w, info)
	})
	// GET /api/v1/get?recipe=…[&download=1]: the file's bytes (400 for a
	// damaged recipe, 404 when blocks are nowhere). A whole-file answer is
	// checked against the file's hash at the end: a cut connection means
	// it did not check out. Range requests are served too (206), so that a
	// player can seek before the file is here. Images, audio, video, PDF
	// and plain text come with their type, to be shown inline; anything
	// else, and any file with download=1, as an attachment.
	mux.HandleFunc("GET /api/v1/get", func(w http.ResponseWriter, r *http.Request) {
		rc, ok := parseRecipe(w, r)
		if !ok {
			return
		}
		rd, err := n.Open(r.Context(), rc)
		if err != nil {
			writeNodeError(w, err)
			return
		}
		fileHeaders(w, rc, r.URL.Query().Get("download") == "1")
		if r.Header.Get("Range") != "" || r.Method == http.MethodHead {
			// A player seeking: the blocks asked for, each verified
			// against its ID (the whole-file hash needs the whole file).
			http.ServeContent(w, r, "", time.Time{}, rd)
			return
		}
		// A client that asks for it (the command line: trailer=1) gets the
		// reason of a failure after the headers in the ErrorTrailer
		// trailer of a chunked answer; any other client a cut answer.
		trailer := r.URL.Query().Get("trailer") == "1"
		if trailer {
			w.Header().Set("Trailer", ErrorTrailer)
		} else {
			w.Header().Set("Content-Length", strconv.FormatInt(rc.Size, 10))
		}
		w.Header().Set("Accept-Ranges", "bytes")
		if sent, err := rd.WriteTo(w); err != nil {
			// The client going away is its choice; anything else is
			// the node's failure, and the operator needs its reason.
			level := slog.LevelWarn
			if r.Context().Err() != nil {
				level = slog.LevelDebug
			} else {
				s.opt.Failed()
			}
			s.opt.Log.Log(r.Context(), level, "get failed", slog.String("name", rc.Name), slog.Int64("size", rc.Size),
				slog.Int64("sent", sent), slog.Any("err", err))
			if trailer && r.Context().Err() == nil {
				w.Header().Set(ErrorTrailer, strings.ReplaceAll(err.Error(), "\n", " "))
				return
			}
			// Headers are out: break the connection so that the client
			// sees a cut response, never a whole-looking wrong file.
			panic(http.ErrAbortHandler)
		}
	})
	s.moreRoutes(mux)
	s.folderRoutes(mux)
}

// ErrorTrailer is the trailer of GET /api/v1/get?trailer=1 that carries
// why a file stopped after its headers went out ("block … is lost: …").
// A client that asks for it must read the whole body and then check it:
// without it the answer looks whole.
const ErrorTrailer = "Blockmix-Error"

// inlineType returns the normalised media type of t when the page may
// show it in the browser: images, audio, video, PDF and plain text (with
// its charset, UTF-8 when t names none). Any
// other type (HTML, SVG, scripts…), and any t that does not parse as one
// media type ("image/png,text/html" from a hostile recipe), could run in
// this origin: it is only ever downloaded.
func inlineType(t string) (string, bool) {
	mt, params, err := mime.ParseMediaType(t)
	if err != nil {
		return "", false
	}
	switch {
	case mt == "application/pdf":
	case mt == "text/plain":
		// Browsers send a text file's type without its charset; read
		// without one, UTF-8 shows garbled. Text without a charset is
		// taken for UTF-8 (of which ASCII is a part).
		cs := strings.ToLower(params["charset"])
		if cs == "" {
			cs = "utf-8"
		}
		return mime.FormatMediaType(mt, map[string]string{"charset": cs}), cs == "utf-8" || cs == "us-ascii" || cs == "iso-8859-1"
	case mt == "image/svg+xml":
		return "", false
	case strings.HasPrefix(mt, "image/"), strings.HasPrefix(mt, "audio/"), strings.HasPrefix(mt, "video/"):
	default:
		return "", false
	}
	return mt, true
}

// fileHeaders sets the type, disposition and safety headers of a file
// answer. The name comes from the recipe, so from anyone: it is cleaned
// and encoded (RFC 6266 / 2231), never pasted in raw.
func fileHeaders(w http.ResponseWriter, rc recipe.Recipe, download bool) {
	h := w.Header()
	disp := "attachment"
	if typ, ok := inlineType(rc.Type); ok && !download {
		disp = "inline"
		h.Set("Content-Type", typ) // the normalised type, never the recipe's text
	} else {
		h.Set("Content-Type", "application/octet-stream")
	}
	h.Set("Content-Disposition", contentDisposition(disp, rc.Name))
	h.Set("X-Content-Type-Options", "nosniff")
	// Whatever the bytes are, they run nothing in this origin. PDF too:
	// Chromium's viewer shows a PDF opened in its own tab under this
	// policy (checked by hand: a screenshot of the viewer with and without
	// it, Debian's chromium 2026-12).
	h.Set("Content-Security-Policy", "sandbox; default-src 'none'; img-src 'self'; media-src 'self'; style-src 'unsafe-inline'")
}

// contentDisposition spells disp with the cleaned file name.
func contentDisposition(disp, name string) string {
	name = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || r == '"' || r == '\\' || r == '/' {
			return '_'
		}
		return r
	}, recipe.CleanName(name))
	if name == "" {
		name = "file"
	}
	if v := mime.FormatMediaType(disp, map[string]string{"filename": name}); v != "" {
		return v
	}
	return disp + `; filename="file"`
}

// countingWriter counts the bytes that went through it.
type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// answer makes a handler that writes f's value as JSON, or its error as an
// ErrorBody with status 500.
func answer[T any](f func(r *http.Request) (T, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		v, err := f(r)
		if err != nil {
			writeNodeError(w, err)
			return
		}
		writeJSON(w, v)
	}
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

// writeNodeError answers an error from the node: 404 when it wraps
// blocks.ErrNotFound, else 500.
func writeNodeError(w http.ResponseWriter, err error) {
	writeError(w, statusFor(err), err)
}

// BadInput is implemented by errors that are the request's fault (a bad
// invite, a malformed name): the API answers them with 400, not 500.
type BadInput interface{ BadInput() bool }

// statusFor is the HTTP status of an error from the node: 400 for bad
// input (BadInput, a body shorter or longer than its size), 404 for a
// block found nowhere, else 500.
func statusFor(err error) int {
	var bi BadInput
	switch {
	case errors.As(err, &bi) && bi.BadInput(), errors.Is(err, recipe.ErrSizeMismatch):
		return http.StatusBadRequest
	case errors.Is(err, blocks.ErrNotFound):
		return http.StatusNotFound
	}
	return http.StatusInternalServerError
}

func writeError(w http.ResponseWriter, status int, err error) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(apiv1.ErrorBody{Error: err.Error()})
}
