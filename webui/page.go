package webui

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"html"
	"io/fs"
	"mime"
	"net/http"
	"os"
	"path"
	"time"
)

// static holds the web page: index.html, app.js, style.css and the icon.
//
//go:embed static
var static embed.FS

// AssetsEnv names the environment variable that, when set to a directory,
// makes the server read the page's files from that directory on every
// request instead of the copies built into the binary: for editing the page
// without rebuilding (BLOCKMIX_WEBUI_ASSETS=webui/static).
const AssetsEnv = "BLOCKMIX_WEBUI_ASSETS"

// assetTypes are the Content-Types of the page's files, fixed here rather
// than read from the system's MIME tables.
var assetTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".svg":  "image/svg+xml",
	".png":  "image/png",
	".ico":  "image/x-icon",
	".json": "application/json",
	".txt":  "text/plain; charset=utf-8",
}

// pageRoutes adds the web page to mux: GET / and GET /r/{recipe…} answer
// the page itself (the page reads a recipe from its own address and starts
// getting it), GET /static/{file} the page's files and /favicon.ico its
// icon. The files are revalidated on each use (Cache-Control: no-cache,
// with an ETag), so a new binary's page is never mixed with an old one's
// script.
func (s *Server) pageRoutes(mux *http.ServeMux) {
	var files fs.FS
	if dir := os.Getenv(AssetsEnv); dir != "" {
		files = os.DirFS(dir)
	} else {
		files, _ = fs.Sub(static, "static") // cannot fail: "static" is a valid path
	}
	index := func(w http.ResponseWriter, r *http.Request) { serveAsset(w, r, files, "index.html") }
	mux.HandleFunc("GET /{$}", index)
	mux.HandleFunc("GET /r/{rest...}", index)
	mux.HandleFunc("GET /l/{rest...}", index) // a live link: the page offers to sync it
	// Browsers ask for it on their own (on the 404 page, on a file shown
	// in a tab).
	mux.HandleFunc("GET /favicon.ico", func(w http.ResponseWriter, r *http.Request) { serveAsset(w, r, files, "favicon.svg") })
	mux.HandleFunc("GET /static/{file...}", func(w http.ResponseWriter, r *http.Request) {
		serveAsset(w, r, files, r.PathValue("file"))
	})
}

// serveAsset answers one of the page's files, or the 404 page.
func serveAsset(w http.ResponseWriter, r *http.Request, files fs.FS, name string) {
	if !fs.ValidPath(name) {
		pageNotFound(w, r)
		return
	}
	b, err := fs.ReadFile(files, name)
	if err != nil { // missing, or a directory
		pageNotFound(w, r)
		return
	}
	ext := path.Ext(name)
	typ, ok := assetTypes[ext]
	if !ok {
		if typ = mime.TypeByExtension(ext); typ == "" {
			typ = "application/octet-stream"
		}
	}
	sum := sha256.Sum256(b)
	h := w.Header()
	h.Set("Content-Type", typ)
	h.Set("Cache-Control", "no-cache")
	h.Set("ETag", `"`+hex.EncodeToString(sum[:12])+`"`)
	http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(b))
}

// pageNotFound is the 404 of the page's addresses, in plain words.
func pageNotFound(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusNotFound)
	if r.Method == http.MethodHead {
		return
	}
	_, _ = w.Write([]byte(`<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Not here · blockmix</title>
<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">
<link rel="stylesheet" href="/static/style.css"></head>
<body><main class="notfound"><h1>Nothing here</h1>
<p>This node has no page at <code>` + html.EscapeString(clipText(r.URL.Path, 200)) + `</code>.
A recipe link looks like <code>/r/aeix7mby…/name.ext</code>; check that it was copied whole.</p>
<p><a href="/">Go to this node's page</a></p></main></body></html>
`))
}
