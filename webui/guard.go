package webui

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/blockmix/blockmix/webui/apiv1"
)

// The Content-Security-Policy of the page: its own scripts, styles and
// images only, no inline script, never inside a frame.
const pageCSP = "default-src 'self'; img-src 'self' blob: data:; media-src 'self' blob:; object-src 'self'; " +
	"style-src 'self'; script-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// apiCSP is sent with the API's answers: nothing they hold runs script
// on this origin. GET /api/v1/get sets its own headers per file (a PDF
// must stay viewable).
const apiCSP = "script-src 'none'; object-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// guard refuses requests with a foreign Host header (DNS rebinding) and
// state-changing requests from other origins (CSRF), bounds uploads to
// Options.MaxUpload and the transfers running at once to
// Options.MaxTransfers, and sets the security headers. Every refusal is an
// ErrorBody in plain words.
//
// When h is a *http.ServeMux, a GET of a path outside /api/ that h does
// not know is answered with the page's 404 in plain words.
func (s *Server) guard(h http.Handler) http.Handler {
	mux, _ := h.(*http.ServeMux)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		api := r.URL.Path == "/api" || strings.HasPrefix(r.URL.Path, "/api/")
		hd := w.Header()
		hd.Set("X-Content-Type-Options", "nosniff")
		// Recipes travel in URLs (/r/…, ?recipe=…): never in a Referer.
		hd.Set("Referrer-Policy", "no-referrer")
		switch {
		case r.URL.Path == "/api/v1/get":
		case api:
			hd.Set("Content-Security-Policy", apiCSP)
			hd.Set("X-Frame-Options", "DENY")
		default:
			hd.Set("Content-Security-Policy", pageCSP)
			hd.Set("X-Frame-Options", "DENY")
		}

		if err := s.checkHost(r.Host); err != nil {
			writeError(w, http.StatusForbidden, err)
			return
		}
		if err := checkOrigin(r, api); err != nil {
			writeError(w, http.StatusForbidden, err)
			return
		}
		if !api && mux != nil && (r.Method == http.MethodGet || r.Method == http.MethodHead) {
			if _, pattern := mux.Handler(r); pattern == "" {
				pageNotFound(w, r)
				return
			}
		}

		put := r.Method == http.MethodPost && r.URL.Path == "/api/v1/put"
		if put {
			if err := s.checkUpload(r); err != nil {
				writeError(w, http.StatusRequestEntityTooLarge, err)
				return
			}
		}
		if isTransferRequest(r) {
			release, ok := s.slot()
			if !ok {
				w.Header().Set("Retry-After", "5")
				writeError(w, http.StatusServiceUnavailable,
					fmt.Errorf("%w (%d); try again when one finishes", ErrBusy, s.opt.MaxTransfers))
				return
			}
			defer release()
		}
		// No connection waits forever on a client that stopped: each read
		// of the body and each write of the answer must move a byte within
		// Options.Stall.
		rc := http.NewResponseController(w)
		body := &stallBody{rc: r.Body, ctl: rc, stall: s.opt.Stall}
		defer body.done(r)
		r.Body = body
		w = &stallWriter{ResponseWriter: w, ctl: rc, stall: s.opt.Stall}
		if put {
			lb := &limitedBody{rc: http.MaxBytesReader(w, r.Body, s.opt.MaxUpload)}
			r.Body = lb
			w = &uploadWriter{ResponseWriter: w, body: lb, max: s.opt.MaxUpload}
		}
		h.ServeHTTP(w, r)
	})
}

// isTransferRequest tells the requests that move a whole file while they
// run: puts, gets, pins and repairs. (A fetch runs in the background and
// takes its slot there.)
func isTransferRequest(r *http.Request) bool {
	switch r.URL.Path {
	case "/api/v1/put", "/api/v1/pin", "/api/v1/repair", "/api/v1/peers/connect", "/api/v1/folder":
		return r.Method == http.MethodPost
	case "/api/v1/get", "/api/v1/folder/file", "/api/v1/folder/zip":
		return r.Method == http.MethodGet || r.Method == http.MethodHead
	}
	return false
}

// checkHost accepts a Host header naming a loopback address, "localhost"
// or one of Options.Hosts, with any port.
func (s *Server) checkHost(host string) error {
	name := hostOnly(host)
	if name != "" {
		if name == "localhost" {
			return nil
		}
		if ip := net.ParseIP(name); ip != nil && ip.IsLoopback() {
			return nil
		}
		for _, h := range s.opt.Hosts {
			if name == hostOnly(h) {
				return nil
			}
		}
	}
	allowed := "127.0.0.1/localhost"
	if len(s.opt.Hosts) > 0 {
		allowed = "127.0.0.1, localhost or " + strings.Join(s.opt.Hosts, ", ")
	}
	if host == "" {
		return fmt.Errorf("this node answers only to %s; the request named no host", allowed)
	}
	return fmt.Errorf("this node answers only to %s; got Host %s", allowed, clipText(name, 100))
}

// hostOnly is the host of a Host header, lower case, without port,
// brackets or a final dot.
func hostOnly(host string) string {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	return strings.TrimSuffix(strings.ToLower(host), ".")
}

// clipText shortens s to at most n bytes for an error message.
func clipText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// checkOrigin refuses a request that changes something (any method but
// GET, HEAD and OPTIONS) when a browser says it comes from another site:
// an Origin that is not this node's, or, without Origin, a Sec-Fetch-Site
// other than same-origin or none. Programs that send neither header (the
// CLI) pass. On the API, a browser's cross-site request that is not a
// navigation (an <img> or <video> of another site pointing here) is
// refused too, so that other sites cannot probe or use this node.
func checkOrigin(r *http.Request, api bool) error {
	site := r.Header.Get("Sec-Fetch-Site")
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		other := site == "cross-site" || site == "same-site"
		// A get makes the node fetch and keep a file: even a link on
		// another site (a navigation) must go through the node's own page,
		// which shows what the file is and waits for a click (a folder's file
		// or zip too).
		if api && other && (r.Header.Get("Sec-Fetch-Mode") != "navigate" || r.URL.Path == "/api/v1/get" || strings.HasPrefix(r.URL.Path, "/api/v1/folder/")) {
			return errors.New("refused: another web site asked this node for " + r.URL.Path + "; open the node's own page instead")
		}
		return nil
	}
	if origin := r.Header.Get("Origin"); origin != "" {
		if strings.EqualFold(origin, "http://"+r.Host) || strings.EqualFold(origin, "https://"+r.Host) {
			return nil
		}
		return fmt.Errorf("refused: a page of %s tried to %s %s on this node; only the node's own page may", clipText(origin, 100), r.Method, r.URL.Path)
	}
	switch site {
	case "", "same-origin", "none":
		return nil
	}
	return fmt.Errorf("refused: a %s request tried to %s %s on this node; only the node's own page may", site, r.Method, r.URL.Path)
}

// checkUpload refuses an upload whose declared size (the size parameter or
// Content-Length) is over Options.MaxUpload.
func (s *Server) checkUpload(r *http.Request) error {
	size := r.ContentLength
	if v, err := strconv.ParseInt(r.URL.Query().Get("size"), 10, 64); err == nil && v > size {
		size = v
	}
	if size > s.opt.MaxUpload {
		return uploadTooLarge(size, s.opt.MaxUpload)
	}
	return nil
}

func uploadTooLarge(size, max int64) error {
	if size < 0 {
		return fmt.Errorf("file too large: this node takes files of at most %s", apiv1.HumanBytes(max))
	}
	return fmt.Errorf("file too large: it is %s and this node takes files of at most %s", apiv1.HumanBytes(size), apiv1.HumanBytes(max))
}

// limitedBody notes when the upload went over its bound. The handler may
// read it from other goroutines.
type limitedBody struct {
	rc   io.ReadCloser
	over atomic.Bool
}

func (b *limitedBody) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	var mb *http.MaxBytesError
	if err != nil && errors.As(err, &mb) {
		b.over.Store(true)
	}
	return n, err
}

func (b *limitedBody) Close() error { return b.rc.Close() }

// uploadWriter turns the handler's error answer into a 413 when the upload
// went over its bound: the handler only sees a read error.
type uploadWriter struct {
	http.ResponseWriter
	body     *limitedBody
	max      int64
	wrote    bool
	replaced bool
}

func (u *uploadWriter) WriteHeader(code int) {
	if code < 200 {
		u.ResponseWriter.WriteHeader(code)
		return
	}
	if u.wrote {
		return
	}
	u.wrote = true
	if code >= 400 && u.body.over.Load() {
		u.replaced = true
		u.ResponseWriter.Header().Del("Content-Length")
		writeError(u.ResponseWriter, http.StatusRequestEntityTooLarge, uploadTooLarge(-1, u.max))
		return
	}
	u.ResponseWriter.WriteHeader(code)
}

func (u *uploadWriter) Write(p []byte) (int, error) {
	if !u.wrote {
		u.WriteHeader(http.StatusOK)
	}
	if u.replaced {
		return len(p), nil
	}
	return u.ResponseWriter.Write(p)
}

// Unwrap lets http.ResponseController reach the real writer.
func (u *uploadWriter) Unwrap() http.ResponseWriter { return u.ResponseWriter }

// stallBody gives each read of a request body Options.Stall to bring a
// byte: a client that sends a little and then nothing is cut, one that
// keeps sending never is. Once the body has ended the deadline is lifted,
// so that it cannot cut the connection while the handler works; after a
// failed read it stays (the connection is done for).
type stallBody struct {
	rc    io.ReadCloser
	ctl   *http.ResponseController
	stall time.Duration
	eof   bool
}

func (b *stallBody) Read(p []byte) (int, error) {
	_ = b.ctl.SetReadDeadline(time.Now().Add(b.stall))
	n, err := b.rc.Read(p)
	if err == io.EOF {
		b.eof = true
		_ = b.ctl.SetReadDeadline(time.Time{})
	}
	return n, err
}

func (b *stallBody) Close() error { return b.rc.Close() }

// done bounds what net/http reads of a body the handler left unread (it
// drains a little before it answers): that too gets Options.Stall.
func (b *stallBody) done(r *http.Request) {
	if !b.eof && b.rc != nil && b.rc != http.NoBody && r.ContentLength != 0 {
		_ = b.ctl.SetReadDeadline(time.Now().Add(b.stall))
	}
}

// stallWriter gives each write of an answer Options.Stall to go out: a
// client that stops reading is cut, the handler's write fails.
type stallWriter struct {
	http.ResponseWriter
	ctl   *http.ResponseController
	stall time.Duration
}

func (w *stallWriter) Write(p []byte) (int, error) {
	_ = w.ctl.SetWriteDeadline(time.Now().Add(w.stall))
	n, err := w.ResponseWriter.Write(p)
	_ = w.ctl.SetWriteDeadline(time.Time{})
	return n, err
}

// Unwrap lets http.ResponseController reach the real writer.
func (w *stallWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
