package webui

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"unicode/utf8"

	qr "github.com/piglig/go-qr"

	"github.com/blockmix/blockmix/recipe"
	"github.com/blockmix/blockmix/webui/apiv1"
)

// Configurer is a node whose settings the page can read and change (in
// the repo's config.json). SetSettings checks every value first: a bad
// one is an error that implements BadInput, and nothing is written.
type Configurer interface {
	Settings(ctx context.Context) (apiv1.SettingsInfo, error)
	SetSettings(ctx context.Context, s apiv1.SettingsInfo) (apiv1.SettingsInfo, error)
}

// Connector is a node the page can connect to another node: addr is a
// multiaddr ending in /p2p/PEER-ID (a bad one is BadInput); remember adds
// it to config.json's bootstrap list once reached.
type Connector interface {
	Connect(ctx context.Context, addr string, remember bool) (apiv1.ConnectInfo, error)
}

// Limits on what a request can make the node hold or do.
const (
	maxSettingsBody = 16 << 10 // a SettingsInfo is a few hundred bytes
	maxQRText       = 1024     // a link or a recipe is a few hundred characters
	maxAddr         = 1024     // a multiaddr with its peer ID
	maxPassphrase   = 1024
)

var errNotHere = errors.New("this node does not offer that")

// controlRoutes adds the page's controls: cancelling transfers, settings,
// connecting to a peer, sealing a recipe and QR codes.
func (s *Server) controlRoutes(mux *http.ServeMux) {
	// DELETE /api/v1/transfers/{id}: cancel a running transfer (it turns
	// cancelled; what it fetched stays cached) or forget a finished one;
	// 204, or 404 when unknown.
	mux.HandleFunc("DELETE /api/v1/transfers/{id}", func(w http.ResponseWriter, r *http.Request) {
		if !s.transfers.cancel(r.PathValue("id")) {
			writeError(w, http.StatusNotFound, fmt.Errorf("no transfer %q here", r.PathValue("id")))
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	// GET /api/v1/settings: SettingsInfo. PUT /api/v1/settings (a JSON
	// SettingsInfo, at most 16 KiB): check, save to config.json, apply
	// what can be applied now; the answer says what applies when. 400 for
	// a bad value (nothing is saved), 501 for a node without settings.
	mux.HandleFunc("GET /api/v1/settings", answer(func(r *http.Request) (apiv1.SettingsInfo, error) {
		c, ok := s.n.(Configurer)
		if !ok {
			return apiv1.SettingsInfo{}, errNotHere
		}
		return c.Settings(r.Context())
	}))
	mux.HandleFunc("PUT /api/v1/settings", func(w http.ResponseWriter, r *http.Request) {
		c, ok := s.n.(Configurer)
		if !ok {
			writeError(w, http.StatusNotImplemented, errNotHere)
			return
		}
		var in apiv1.SettingsInfo
		d := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxSettingsBody))
		d.DisallowUnknownFields()
		if err := d.Decode(&in); err != nil {
			writeError(w, http.StatusBadRequest, fmt.Errorf("settings: %w", err))
			return
		}
		out, err := c.SetSettings(r.Context(), in)
		if err != nil {
			writeNodeError(w, err)
			return
		}
		writeJSON(w, out)
	})
	// POST /api/v1/peers/connect?addr=…[&remember=1]: connect to a node by
	// its full address (as 'blockmix id' and the Node tab show it);
	// ConnectInfo. 400 for a malformed address, 500 when it is not reached.
	mux.HandleFunc("POST /api/v1/peers/connect", func(w http.ResponseWriter, r *http.Request) {
		c, ok := s.n.(Connector)
		if !ok {
			writeError(w, http.StatusNotImplemented, errNotHere)
			return
		}
		addr := r.URL.Query().Get("addr")
		if addr == "" || len(addr) > maxAddr {
			writeError(w, http.StatusBadRequest, errors.New("give the node's full address: a multiaddr ending in /p2p/PEER-ID"))
			return
		}
		info, err := c.Connect(r.Context(), addr, r.URL.Query().Get("remember") == "1")
		if err != nil {
			writeNodeError(w, err)
			return
		}
		writeJSON(w, info)
	})
	// POST /api/v1/seal (a form: recipe, passphrase): the recipe sealed
	// with the passphrase, as SealInfo; 400 for a damaged recipe or an
	// empty passphrase, 503 as /api/v1/unseal when too many passphrases
	// are being worked on. The passphrase stays on this machine.
	mux.HandleFunc("POST /api/v1/seal", func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
		if err := r.ParseForm(); err != nil {
			writeError(w, http.StatusBadRequest, err)
			return
		}
		rc, sealed, err := recipe.ParseAny(r.PostForm.Get("recipe"))
		switch {
		case err != nil:
			writeError(w, http.StatusBadRequest, fmt.Errorf("%w (the recipe is damaged, cut short, or not a blockmix recipe)", err))
			return
		case sealed != nil:
			writeError(w, http.StatusBadRequest, errors.New("this recipe is sealed already"))
			return
		}
		pass := r.PostForm.Get("passphrase")
		if pass == "" || len(pass) > maxPassphrase {
			writeError(w, http.StatusBadRequest, errors.New("give a passphrase (at most 1024 bytes)"))
			return
		}
		release, ok := s.passphraseTurn(w, r)
		if !ok {
			return
		}
		out, err := recipe.Seal(rc, []byte(pass))
		release()
		if err != nil {
			writeError(w, http.StatusInternalServerError, fmt.Errorf("seal: %w", err))
			return
		}
		writeJSON(w, apiv1.SealInfo{Recipe: out.String(), URL: out.URL("http://" + r.Host)})
	})
	// GET /api/v1/qr?text=…: a QR code of text (at most 1024 bytes of
	// UTF-8: a link or a recipe) as an SVG image, for a phone's camera.
	mux.HandleFunc("GET /api/v1/qr", func(w http.ResponseWriter, r *http.Request) {
		text := r.URL.Query().Get("text")
		if text == "" || len(text) > maxQRText || !utf8.ValidString(text) {
			writeError(w, http.StatusBadRequest, fmt.Errorf("give the text of the QR code: 1 to %d bytes of UTF-8", maxQRText))
			return
		}
		svg, err := qrSVG(text)
		if err != nil {
			writeError(w, http.StatusBadRequest, err)
			return
		}
		w.Header().Set("Content-Type", "image/svg+xml")
		w.Header().Set("Content-Length", strconv.Itoa(len(svg)))
		w.Header().Set("Cache-Control", "no-store") // it may hold a recipe
		_, _ = w.Write(svg)
	})
}

// qrSVG draws text as a QR code (error correction M, a 4-module quiet
// zone) in SVG: one path of dark squares, black on white whatever the
// page's theme, since cameras want it so.
func qrSVG(text string) ([]byte, error) {
	code, err := qr.EncodeText(text, qr.Medium)
	if err != nil {
		return nil, fmt.Errorf("QR code: %w", err)
	}
	const quiet = 4
	n := code.Size()
	var b bytes.Buffer
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 %d %d" shape-rendering="crispEdges">`, n+2*quiet, n+2*quiet)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="#fff"/><path fill="#000" d="`)
	for y := 0; y < n; y++ {
		for x := 0; x < n; x++ {
			if code.Module(x, y) {
				fmt.Fprintf(&b, "M%d %dh1v1h-1z", x+quiet, y+quiet)
			}
		}
	}
	b.WriteString(`"/></svg>`)
	return b.Bytes(), nil
}
