package apiv1

import (
	"time"

	"github.com/blockmix/blockmix/recipe"
)

// FolderItem is one line of a FolderManifest: a file already put (its
// recipe) or a folder (for its mode and time, and to keep it when empty).
type FolderItem struct {
	Path    string    `json:"path"` // slash separated below the folder; clean names
	Dir     bool      `json:"dir,omitempty"`
	Mode    uint32    `json:"mode"` // permission bits (0o644 = 420)
	ModTime time.Time `json:"mtime,omitzero"`
	Size    int64     `json:"size,omitempty"`   // a file's, checked against its recipe
	Recipe  string    `json:"recipe,omitempty"` // a file's recipe
}

// FolderManifest is POST /api/v1/folder: a tree whose files were each
// put already (POST /api/v1/put), to be made one folder recipe. Every
// file's recipe must be recorded in the node's store.
type FolderManifest struct {
	Name  string       `json:"name"`
	Items []FolderItem `json:"items"`
}

// FolderSkip is something a folder put left out (a symbolic link, a
// device, a name clash), or put under a cleaned name (Renamed, with As).
type FolderSkip struct {
	Path    string `json:"path"`
	Reason  string `json:"reason"`
	As      string `json:"as,omitempty"`
	Renamed bool   `json:"renamed,omitzero"`
}

// FolderInfo is the answer of POST /api/v1/folder and one line of
// `blockmix put --json DIR`.
type FolderInfo struct {
	Recipe  string `json:"recipe"`
	URL     string `json:"url"`
	Name    string `json:"name"`
	Folder  bool   `json:"folder"` // always true: tells it from a PutInfo
	Files   int    `json:"files"`
	Folders int    `json:"folders"` // the folder itself included
	Bytes   int64  `json:"bytes"`   // of the files
	// NewBlocks and NewBytes count what this put stored: files mixed
	// anew and folder listings that changed.
	NewBlocks int   `json:"new_blocks"`
	NewBytes  int64 `json:"new_bytes"`
	// PutFiles is how many files were mixed, ReusedFiles how many kept the
	// recipe of an earlier put (unchanged since); ReusedFolders how many
	// folder listings were the same as one stored before.
	PutFiles      int          `json:"put_files"`
	ReusedFiles   int          `json:"reused_files"`
	ReusedFolders int          `json:"reused_folders"`
	Skipped       []FolderSkip `json:"skipped,omitempty"`
	// Placement as in PutInfo: why some blocks lack copies ("" when none).
	Placement string `json:"placement,omitempty"`
}

// FolderEntry is one entry of a FolderList.
type FolderEntry struct {
	Name    string    `json:"name"`
	Path    string    `json:"path"` // below the listed folder recipe
	Dir     bool      `json:"dir,omitempty"`
	Mode    uint32    `json:"mode"`
	ModTime time.Time `json:"mtime"`
	Size    int64     `json:"size"`
	Type    string    `json:"type,omitempty"`
	Recipe  string    `json:"recipe"` // the file's recipe, or the sub folder's
}

// FolderList is GET /api/v1/folder?recipe=…[&path=…][&deep=1] and
// `blockmix ls --json`: the entries of one folder (deep: of the whole
// tree, folders before what they hold).
type FolderList struct {
	Recipe  string        `json:"recipe"`
	Name    string        `json:"name"`
	Path    string        `json:"path,omitempty"`
	Entries []FolderEntry `json:"entries"`
}

// NewFolderEntry is the entry e, at path p below the listed folder, as
// the API shows it.
func NewFolderEntry(p string, e recipe.Entry) FolderEntry {
	typ := e.Recipe.Type
	if e.Dir {
		typ = ""
	}
	return FolderEntry{
		Name: e.Name, Path: p, Dir: e.Dir, Mode: uint32(e.Mode), ModTime: e.ModTime,
		Size: e.Size(), Type: typ, Recipe: e.Recipe.String(),
	}
}
