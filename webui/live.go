package webui

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/blockmix/blockmix/recipe"
	"github.com/blockmix/blockmix/webui/apiv1"
)

// Live is the node's live folders: folders it publishes under a live link
// (watch) and folders it keeps equal to one (sync). Errors that are the
// request's fault implement BadInput. Safe for concurrent use.
type Live interface {
	List() []apiv1.LiveFolder
	// Watch publishes the folder dir (an absolute path) under a live
	// link; a passphrase seals the link too.
	Watch(dir string, passphrase []byte) (apiv1.LiveFolder, error)
	// Sync keeps dir equal to the latest version of link (a sealed link
	// opens with passphrase); a dir that holds files needs force.
	Sync(link, dir string, passphrase []byte, force bool) (apiv1.LiveFolder, error)
	// Remove stops the watch or sync (kind) whose ID or folder is
	// idOrDir.
	Remove(kind, idOrDir string) (apiv1.LiveFolder, error)
	// Resolve finds link's latest version.
	Resolve(ctx context.Context, link string, passphrase []byte) (apiv1.LiveVersion, error)
}

// maxLiveBody bounds a live request's JSON body.
const maxLiveBody = 16 << 10

// liveRoutes adds the live folders' API:
//
//	GET    /api/v1/live                 LiveInfo
//	POST   /api/v1/live/watch           {dir, passphrase?} → LiveFolder
//	POST   /api/v1/live/sync            {link, dir, passphrase?, force?} → LiveFolder
//	POST   /api/v1/live/resolve         {link, passphrase?} → LiveVersion
//	DELETE /api/v1/live/watch?id=ID|DIR → LiveFolder (the one stopped)
//	DELETE /api/v1/live/sync?id=ID|DIR  → LiveFolder
//
// Without Options.Live they answer 501. A passphrase waits for its turn
// like an unseal (Options.MaxUnseals).
func (s *Server) liveRoutes(mux *http.ServeMux) {
	l := s.opt.Live
	on := func(h http.HandlerFunc) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			if l == nil {
				writeError(w, http.StatusNotImplemented, errors.New("this node has no live folders"))
				return
			}
			h(w, r)
		}
	}
	// body reads a LiveRequest and takes a passphrase turn when it has a
	// passphrase; release is never nil.
	body := func(w http.ResponseWriter, r *http.Request) (req apiv1.LiveRequest, release func(), ok bool) {
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxLiveBody)).Decode(&req); err != nil {
			writeError(w, http.StatusBadRequest, fmt.Errorf("the request is not a JSON object {dir, link, passphrase}: %w", err))
			return req, nil, false
		}
		release = func() {}
		if req.Passphrase != "" {
			if release, ok = s.passphraseTurn(w, r); !ok {
				return req, nil, false
			}
		}
		return req, release, true
	}
	liveError := func(w http.ResponseWriter, err error) {
		if errors.Is(err, recipe.ErrWrongPassphrase) {
			writeError(w, http.StatusForbidden, err)
			return
		}
		writeNodeError(w, err)
	}
	mux.HandleFunc("GET /api/v1/live", on(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, apiv1.LiveInfo{Folders: l.List()})
	}))
	// post answers POST path with what do makes of the request.
	post := func(path string, do func(r *http.Request, q apiv1.LiveRequest) (any, error)) {
		mux.HandleFunc("POST "+path, on(func(w http.ResponseWriter, r *http.Request) {
			req, release, ok := body(w, r)
			if !ok {
				return
			}
			v, err := do(r, req)
			release()
			if err != nil {
				liveError(w, err)
				return
			}
			writeJSON(w, v)
		}))
	}
	post("/api/v1/live/watch", func(_ *http.Request, q apiv1.LiveRequest) (any, error) {
		return l.Watch(q.Dir, []byte(q.Passphrase))
	})
	post("/api/v1/live/sync", func(_ *http.Request, q apiv1.LiveRequest) (any, error) {
		return l.Sync(q.Link, q.Dir, []byte(q.Passphrase), q.Force)
	})
	post("/api/v1/live/resolve", func(r *http.Request, q apiv1.LiveRequest) (any, error) {
		return l.Resolve(r.Context(), q.Link, []byte(q.Passphrase))
	})
	for _, kind := range []string{"watch", "sync"} {
		mux.HandleFunc("DELETE /api/v1/live/"+kind, on(func(w http.ResponseWriter, r *http.Request) {
			f, err := l.Remove(kind, r.URL.Query().Get("id"))
			if err != nil {
				liveError(w, err)
				return
			}
			writeJSON(w, f)
		}))
	}
}
