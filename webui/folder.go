package webui

import (
	"archive/zip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/blockmix/blockmix/recipe"
	"github.com/blockmix/blockmix/webui/apiv1"
)

// FolderNode is what the folder API needs of a node besides Node. A node
// that does not implement it answers the folder routes with 501.
type FolderNode interface {
	// PutFolder makes one folder recipe of a manifest whose files are
	// each put already (recorded in the node's store); it stores and
	// places the folder listings that are new. A manifest that does not
	// make a tree, or names files the store does not hold, is a BadInput.
	PutFolder(ctx context.Context, m apiv1.FolderManifest) (apiv1.FolderInfo, error)
	// ListFolder reads the listing of a folder recipe, fetching its
	// blocks as needed (recipe.ReadFolder's errors).
	ListFolder(ctx context.Context, rc recipe.Recipe) ([]recipe.Entry, error)
}

// maxManifest bounds the body of POST /api/v1/folder: about 100,000
// items of a few hundred bytes each.
const maxManifest = 32 << 20

// folderRoutes adds the folder API:
//
//	POST /api/v1/folder                       FolderManifest → FolderInfo
//	GET  /api/v1/folder?recipe=…[&path=…][&deep=1]   FolderList (a file's path: its one entry)
//	GET  /api/v1/folder/file?recipe=…&path=…  one file of the folder (as /api/v1/get?download=1)
//	GET  /api/v1/folder/zip?recipe=…[&path=…] the tree as a zip (stored, streamed)
//
// path names a folder or file below the folder recipe (slash separated,
// clean names); a path that names nothing is 404, a bad one 400.
func (s *Server) folderRoutes(mux *http.ServeMux) {
	mux.HandleFunc("POST /api/v1/folder", func(w http.ResponseWriter, r *http.Request) {
		fn, ok := s.folderNode(w)
		if !ok {
			return
		}
		var m apiv1.FolderManifest
		d := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxManifest))
		d.DisallowUnknownFields()
		if err := d.Decode(&m); err != nil {
			writeError(w, http.StatusBadRequest, fmt.Errorf("a folder manifest: %w (at most %d MiB)", err, maxManifest>>20))
			return
		}
		info, err := fn.PutFolder(r.Context(), m)
		if err != nil {
			writeNodeError(w, err)
			return
		}
		if rc, err := recipe.Parse(info.Recipe); err == nil {
			info.URL = rc.URL("http://" + r.Host)
		}
		writeJSON(w, info)
	})
	mux.HandleFunc("GET /api/v1/folder", func(w http.ResponseWriter, r *http.Request) {
		fn, rc, p, e, ok := s.folderEntry(w, r, wantAny)
		if !ok {
			return
		}
		list := apiv1.FolderList{Recipe: rc.String(), Name: rc.Name, Path: p, Entries: []apiv1.FolderEntry{}}
		if !e.Dir { // a file: its one entry
			list.Entries = append(list.Entries, apiv1.NewFolderEntry(p, e))
			writeJSON(w, list)
			return
		}
		deep := r.URL.Query().Get("deep") == "1"
		prefix := ""
		if p != "" {
			prefix = p + "/"
		}
		err := recipe.WalkFolder(r.Context(), fn.ListFolder, e.Recipe, func(q string, e recipe.Entry) error {
			list.Entries = append(list.Entries, apiv1.NewFolderEntry(prefix+q, e))
			if e.Dir && !deep {
				return fs.SkipDir
			}
			return nil
		})
		if err != nil {
			writeNodeError(w, folderErr(err))
			return
		}
		writeJSON(w, list)
	})
	mux.HandleFunc("GET /api/v1/folder/file", func(w http.ResponseWriter, r *http.Request) {
		_, _, p, e, ok := s.folderEntry(w, r, wantFile)
		if !ok {
			return
		}
		rd, err := s.n.Open(r.Context(), e.Recipe)
		if err != nil {
			writeNodeError(w, err)
			return
		}
		fileHeaders(w, e.Recipe, true)
		w.Header().Set("Content-Length", strconv.FormatInt(e.Size(), 10))
		if _, err := rd.WriteTo(w); err != nil {
			s.failed(r, "folder file", p, err)
			panic(http.ErrAbortHandler) // a cut answer, never a whole-looking wrong file
		}
	})
	mux.HandleFunc("GET /api/v1/folder/zip", func(w http.ResponseWriter, r *http.Request) {
		fn, _, _, e, ok := s.folderEntry(w, r, wantDir)
		if !ok {
			return
		}
		// The listings first: a bad tree is an error before any byte goes.
		type item struct {
			p string
			e recipe.Entry
		}
		var items []item
		err := recipe.WalkFolder(r.Context(), fn.ListFolder, e.Recipe, func(q string, e recipe.Entry) error {
			items = append(items, item{q, e})
			return nil
		})
		if err != nil {
			writeNodeError(w, folderErr(err))
			return
		}
		name := e.Recipe.Name
		if name == "" {
			name = "folder"
		}
		w.Header().Set("Content-Type", "application/zip")
		w.Header().Set("Content-Disposition", contentDisposition("attachment", name+".zip"))
		zw := zip.NewWriter(w)
		for _, it := range items {
			h := &zip.FileHeader{Name: name + "/" + it.p, Method: zip.Store, Modified: it.e.ModTime}
			if h.Modified.IsZero() {
				h.Modified = time.Unix(0, 0)
			}
			mode := it.e.Mode
			if it.e.Dir {
				h.Name += "/"
				mode |= fs.ModeDir
			}
			h.SetMode(mode)
			fw, err := zw.CreateHeader(h)
			if err == nil && !it.e.Dir {
				var rd *recipe.Reader
				if rd, err = s.n.Open(r.Context(), it.e.Recipe); err == nil {
					_, err = rd.WriteTo(fw) // the whole-file hash is checked at the end
				}
			}
			if err != nil {
				s.failed(r, "folder zip", path.Join(name, it.p), err)
				panic(http.ErrAbortHandler) // a cut zip has no central directory: it does not open
			}
		}
		if err := zw.Close(); err != nil {
			panic(http.ErrAbortHandler)
		}
	})
}

// What folderEntry accepts at the path.
const (
	wantDir = iota
	wantFile
	wantAny
)

// folderNode returns the node's folder side, or answers 501.
func (s *Server) folderNode(w http.ResponseWriter) (FolderNode, bool) {
	fn, ok := s.n.(FolderNode)
	if !ok {
		writeError(w, http.StatusNotImplemented, errors.New("this node has no folder support"))
	}
	return fn, ok
}

// folderEntry reads ?recipe= (a folder recipe) and ?path=, and returns
// the entry at the path (the folder itself for no path, as a Dir entry),
// which must be a folder (wantDir) or a file (wantFile); else it answers
// the error itself and returns false.
func (s *Server) folderEntry(w http.ResponseWriter, r *http.Request, want int) (FolderNode, recipe.Recipe, string, recipe.Entry, bool) {
	fn, ok := s.folderNode(w)
	if !ok {
		return nil, recipe.Recipe{}, "", recipe.Entry{}, false
	}
	rc, ok := parseRecipe(w, r)
	if !ok {
		return nil, rc, "", recipe.Entry{}, false
	}
	if !rc.IsFolder() {
		writeError(w, http.StatusBadRequest, fmt.Errorf("%s is the recipe of a file, not of a folder", rc.Name))
		return nil, rc, "", recipe.Entry{}, false
	}
	p := strings.Trim(r.URL.Query().Get("path"), "/")
	e := recipe.Entry{Name: rc.Name, Dir: true, Recipe: rc}
	if p != "" {
		var err error
		if e, err = recipe.FindInFolder(r.Context(), fn.ListFolder, rc, p); err != nil {
			writeNodeError(w, folderErr(err))
			return nil, rc, p, e, false
		}
	}
	switch {
	case want == wantDir && !e.Dir:
		writeError(w, http.StatusBadRequest, fmt.Errorf("%s is a file, not a folder", p))
		return nil, rc, p, e, false
	case want == wantFile && e.Dir:
		writeError(w, http.StatusBadRequest, fmt.Errorf("%q is a folder: get it as a zip", p))
		return nil, rc, p, e, false
	}
	return fn, rc, p, e, true
}

// folderErr makes a bad listing or path the request's fault (400).
func folderErr(err error) error {
	if errors.Is(err, recipe.ErrBadFolder) {
		return badInput{err}
	}
	return err
}

type badInput struct{ error }

func (b badInput) Unwrap() error  { return b.error }
func (b badInput) BadInput() bool { return true }

// failed logs a transfer of a folder's file that failed after its
// headers went out (the client going away is its choice: a debug line).
func (s *Server) failed(r *http.Request, what, name string, err error) {
	level := slog.LevelWarn
	if r.Context().Err() != nil {
		level = slog.LevelDebug
	} else {
		s.opt.Failed()
	}
	s.opt.Log.Log(r.Context(), level, what+" failed", slog.String("name", name), slog.Any("err", err))
}
