package apiv1

import "time"

// LiveFolder is one watched or followed folder (GET /api/v1/live, and the
// answers of POST /api/v1/live/watch and /api/v1/live/sync).
type LiveFolder struct {
	ID string `json:"id"`
	// Kind is "watch" (this node publishes Dir under Link) or "sync"
	// (this node keeps Dir equal to Link's latest version).
	Kind string `json:"kind"`
	Dir  string `json:"dir"`
	// Link and URL are the live link's two spellings; Sealed, when the
	// watch was asked with a passphrase, its sealed spelling.
	Link   string `json:"link"`
	URL    string `json:"url"`
	Sealed string `json:"sealed,omitempty"`
	// Seq is the last version's sequence number (0: none yet); Recipe is
	// its folder recipe; Version is when it was published.
	Seq     uint64    `json:"seq"`
	Recipe  string    `json:"recipe,omitempty"`
	Version time.Time `json:"version,omitzero"`
	// Checked is when the node last published (watch) or looked for a
	// new version (sync).
	Checked time.Time `json:"checked,omitzero"`
	// State is "ok", "working" (putting or syncing now), "waiting" (no
	// version yet, or the DHT has no peers), "conflict" (a local change
	// was kept beside the new version; see Conflicts) or "error"; Message
	// says it in words.
	State   string `json:"state"`
	Message string `json:"message,omitempty"`
	// Files counts the folder's files in the last version; Changed, for a
	// watch, how many of them were mixed anew for it (the others were
	// unchanged since the version before).
	Files   int `json:"files"`
	Changed int `json:"changed,omitempty"`
	// Conflicts are the copies kept of local changes (paths relative to
	// Dir), newest last, at most 50.
	Conflicts []string `json:"conflicts,omitempty"`
}

// LiveInfo is GET /api/v1/live.
type LiveInfo struct {
	Folders []LiveFolder `json:"folders"`
}

// LiveRequest is the body of POST /api/v1/live/watch ({dir,
// passphrase}) and POST /api/v1/live/sync ({link, dir, passphrase,
// force}: the passphrase opens a sealed link; force syncs into a folder
// that holds files).
type LiveRequest struct {
	Dir        string `json:"dir"`
	Link       string `json:"link,omitempty"`
	Passphrase string `json:"passphrase,omitempty"`
	Force      bool   `json:"force,omitempty"`
}

// LiveVersion is GET /api/v1/live/resolve?link=…: the link's latest
// version as the DHT has it.
type LiveVersion struct {
	Link    string    `json:"link"`
	Seq     uint64    `json:"seq"`
	Recipe  string    `json:"recipe"`
	Version time.Time `json:"version"`
}
