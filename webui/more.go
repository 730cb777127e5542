package webui

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/blockmix/blockmix/mixer"
	"github.com/blockmix/blockmix/recipe"
	"github.com/blockmix/blockmix/webui/apiv1"
)

// progressFunc adapts a func to mixer.Progress.
type progressFunc func(n int64)

// Add implements mixer.Progress; a nil func does nothing.
func (f progressFunc) Add(n int64) {
	if f != nil {
		f(n)
	}
}

// parseRecipe reads the recipe query parameter, writing a 400 when it is
// missing or damaged.
func parseRecipe(w http.ResponseWriter, r *http.Request) (recipe.Recipe, bool) {
	text := r.URL.Query().Get("recipe")
	if strings.TrimSpace(text) == "" {
		writeError(w, http.StatusBadRequest, errors.New("no recipe given: paste a blockmix: recipe or a /r/ link"))
		return recipe.Recipe{}, false
	}
	rc, sealed, err := recipe.ParseAny(text)
	if err != nil {
		writeError(w, http.StatusBadRequest, fmt.Errorf("%w (the recipe is damaged, cut short, or not a blockmix recipe)", err))
		return recipe.Recipe{}, false
	}
	if sealed != nil {
		writeError(w, http.StatusBadRequest, ErrSealed)
		return recipe.Recipe{}, false
	}
	return rc, true
}

// ErrSealed: a request carried a sealed recipe; POST /api/v1/unseal opens
// it with its passphrase. The page tells it by the message's start.
var ErrSealed = errors.New("sealed: this recipe is protected by a passphrase; give it to open the recipe")

// recipeInfo is what rc says, with its link on host.
func recipeInfo(rc recipe.Recipe, host string) apiv1.RecipeInfo {
	cls := mixer.ClassFor(rc.Size)
	return apiv1.RecipeInfo{
		Recipe: rc.String(), URL: rc.URL("http://" + host), Key: rc.Key(), Name: rc.Name, Size: rc.Size, Type: rc.Type,
		BlockSize: cls, Blocks: dataBlocks(rc.Size, cls), Renamed: rc.Renamed,
	}
}

// withRecipe makes a handler that reads the recipe parameter (400 when
// damaged), calls f with it, and answers its value as JSON or its error
// (404 for blocks.ErrNotFound, else 500).
func withRecipe[T any](f func(context.Context, recipe.Recipe) (T, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		rc, ok := parseRecipe(w, r)
		if !ok {
			return
		}
		v, err := f(r.Context(), rc)
		if err != nil {
			writeNodeError(w, err)
			return
		}
		writeJSON(w, v)
	}
}

// moreRoutes adds the endpoints the web page needs.
func (s *Server) moreRoutes(mux *http.ServeMux) {
	n := s.n
	// GET /api/v1/recipe?recipe=…: RecipeInfo, from the recipe alone; 400
	// for a damaged one.
	mux.HandleFunc("GET /api/v1/recipe", func(w http.ResponseWriter, r *http.Request) {
		rc, ok := parseRecipe(w, r)
		if !ok {
			return
		}
		info := recipeInfo(rc, r.Host)
		fs, err := n.Store().Files(r.Context())
		if err != nil {
			writeError(w, http.StatusInternalServerError, err)
			return
		}
		for _, f := range fs {
			info.Local = info.Local || f.Key == info.Key
		}
		writeJSON(w, info)
	})
	// POST /api/v1/fetch?recipe=…: start fetching the whole file into this
	// node in the background (or join the running fetch of the same file);
	// answers TransferInfo with 202. 503 when too many run.
	mux.HandleFunc("POST /api/v1/fetch", func(w http.ResponseWriter, r *http.Request) {
		rc, ok := parseRecipe(w, r)
		if !ok {
			return
		}
		t, err := s.transfers.start(r.Context(), rc)
		if errors.Is(err, ErrBusy) {
			w.Header().Set("Retry-After", "5")
			writeError(w, http.StatusServiceUnavailable, fmt.Errorf("%w (%d); try again when one finishes", err, s.opt.MaxTransfers))
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusAccepted)
		_ = json.NewEncoder(w).Encode(t)
	})
	// GET /api/v1/transfers: every transfer, newest first: the running
	// gets and the last finished gets and puts (one per file and kind),
	// kept across restarts.
	mux.HandleFunc("GET /api/v1/transfers", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, s.transfers.list()) })
	// GET /api/v1/transfers/{id}: one transfer; 404 when unknown.
	mux.HandleFunc("GET /api/v1/transfers/{id}", func(w http.ResponseWriter, r *http.Request) {
		t, ok := s.transfers.get(r.PathValue("id"))
		if !ok {
			writeError(w, http.StatusNotFound, fmt.Errorf("no transfer %q here (finished transfers are kept for a while only)", r.PathValue("id")))
			return
		}
		writeJSON(w, t)
	})
	// DELETE /api/v1/files/{key}: take the file off this node's list
	// (its blocks stay until evicted); 204, or 404 when unknown.
	mux.HandleFunc("DELETE /api/v1/files/{key}", func(w http.ResponseWriter, r *http.Request) {
		if err := n.Remove(r.Context(), r.PathValue("key")); err != nil {
			writeNodeError(w, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	// GET /api/v1/health?recipe=…: HealthInfo for a file on this node's
	// list; 404 for another.
	mux.HandleFunc("GET /api/v1/health", withRecipe(n.Health))
	// POST /api/v1/gc: evict the cached blocks and reclaim their space;
	// GCInfo.
	mux.HandleFunc("POST /api/v1/gc", answer(func(r *http.Request) (apiv1.GCInfo, error) { return n.GC(r.Context()) }))
	// POST /api/v1/pin?recipe=…: fetch the whole file into this node (as
	// POST /api/v1/fetch, but answering when done) and keep it on the list,
	// so that its blocks are never evicted; RecipeInfo.
	mux.HandleFunc("POST /api/v1/pin", func(w http.ResponseWriter, r *http.Request) {
		withRecipe(func(ctx context.Context, rc recipe.Recipe) (apiv1.RecipeInfo, error) {
			info := recipeInfo(rc, r.Host)
			info.Local = true
			return info, n.Fetch(ctx, rc, nil)
		})(w, r)
	})
	// POST /api/v1/repair?recipe=…: give the file's blocks the copies they
	// lack now; HealthInfo afterwards. 404 for a file not on the list.
	mux.HandleFunc("POST /api/v1/repair", withRecipe(n.Repair))
	// POST /api/v1/unseal (a form: recipe, passphrase): the plain recipe
	// of a sealed one, as RecipeInfo; 400 for a damaged one, 403 for a
	// wrong passphrase, 503 when Options.MaxUnseals passphrases were being
	// checked for all of Options.UnsealWait. The passphrase stays on this machine: the page
	// sends it to its own node, which forgets it.
	mux.HandleFunc("POST /api/v1/unseal", func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
		if err := r.ParseForm(); err != nil {
			writeError(w, http.StatusBadRequest, err)
			return
		}
		sealed, err := recipe.ParseSealed(r.PostForm.Get("recipe"))
		if err != nil {
			writeError(w, http.StatusBadRequest, err)
			return
		}
		release, ok := s.passphraseTurn(w, r)
		if !ok {
			return
		}
		rc, err := openSealed(sealed, []byte(r.PostForm.Get("passphrase")))
		release()
		if err != nil {
			status := http.StatusBadRequest
			if errors.Is(err, recipe.ErrWrongPassphrase) {
				status = http.StatusForbidden
			}
			writeError(w, status, err)
			return
		}
		writeJSON(w, recipeInfo(rc, r.Host))
	})
	// GET /api/v1/group: GroupInfo. POST /api/v1/group/create?name=… and
	// POST /api/v1/group/join?invite=…: make or join one; an error says
	// why in plain words (a bad name or invite, or the invite's node not
	// reached with its key: "this peer is in another group").
	mux.HandleFunc("GET /api/v1/group", answer(func(r *http.Request) (apiv1.GroupInfo, error) { return n.Group(r.Context()) }))
	mux.HandleFunc("POST /api/v1/group/create", answer(func(r *http.Request) (apiv1.GroupInfo, error) {
		return n.CreateGroup(r.Context(), r.URL.Query().Get("name"))
	}))
	mux.HandleFunc("POST /api/v1/group/join", answer(func(r *http.Request) (apiv1.GroupInfo, error) {
		return n.JoinGroup(r.Context(), r.URL.Query().Get("invite"))
	}))
	// GET /api/v1/bandwidth: BandwidthInfo, the last hour of traffic.
	mux.HandleFunc("GET /api/v1/bandwidth", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, s.history.info()) })
	s.controlRoutes(mux)
}

// openSealed opens a sealed recipe (one Argon2id derivation); tests count
// the derivations through it.
var openSealed = recipe.OpenSealed

// passphraseTurn waits for a turn to work on a passphrase (see
// unsealTurn); when none comes it answers 503 and reports false.
func (s *Server) passphraseTurn(w http.ResponseWriter, r *http.Request) (release func(), ok bool) {
	release, err := s.unsealTurn(r.Context())
	if err != nil {
		w.Header().Set("Retry-After", "2")
		writeError(w, http.StatusServiceUnavailable, err)
		return nil, false
	}
	return release, true
}

// ErrUnsealBusy: Options.MaxUnseals passphrases are being checked and
// none finished within Options.UnsealWait.
var ErrUnsealBusy = errors.New("busy: other passphrases are being checked (each takes 64 MiB of memory); try again in a moment")

// unsealTurn waits, up to Options.UnsealWait and while ctx lasts, until
// fewer than Options.MaxUnseals passphrases are being checked. It returns
// the func that ends the turn, or ErrUnsealBusy (wrapping ctx's error
// when ctx ended first).
func (s *Server) unsealTurn(ctx context.Context) (func(), error) {
	select {
	case s.unseals <- struct{}{}:
		return func() { <-s.unseals }, nil
	default:
	}
	t := time.NewTimer(s.opt.UnsealWait)
	defer t.Stop()
	select {
	case s.unseals <- struct{}{}:
		return func() { <-s.unseals }, nil
	case <-t.C:
		return nil, ErrUnsealBusy
	case <-ctx.Done():
		return nil, fmt.Errorf("%w (%w)", ErrUnsealBusy, ctx.Err())
	}
}
