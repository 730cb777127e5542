// Package repo is the layout of a blockmix repo on disk: the block store,
// and the small files beside it (the node's identity key, the running
// daemon's API address, config.json, the group key, the fair-share
// ledger). Every small file is written atomically (see atomicfile), and a
// small file found torn all the same (a power cut on a file system that
// lost the data, a file from an older version) never keeps the node from
// starting: it is set aside as NAME.damaged-TIME with a warning, or, for
// the api hint, ignored.
package repo

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/blockmix/blockmix/blocks"
	"github.com/blockmix/blockmix/cmd/blockmix/internal/atomicfile"
	bmnet "github.com/blockmix/blockmix/net"
)

// The files of a repo beside the store.
const (
	IdentityFile = "identity.key" // the node's libp2p private key
	APIFile      = "api"          // the API's URL while a daemon runs
	ConfigFile   = "config.json"  // the daemon's settings (optional)
	GroupFile    = "group.json"   // the private group's name and key (mode 0600)
	LedgerFile   = "ledger.json"  // the fair-share ledger
	PutsDir      = "puts"         // notes of the puts running (see putlog)
	// TransfersFile keeps the last finished gets and puts for the page.
	TransfersFile = "transfers.json"
)

// Resolve finds the repo: flag (--repo), then $BLOCKMIX_REPO, then
// $XDG_DATA_HOME/blockmix, then ~/.local/share/blockmix.
func Resolve(flag string) (string, error) {
	if flag != "" {
		return flag, nil
	}
	if d := os.Getenv("BLOCKMIX_REPO"); d != "" {
		return d, nil
	}
	if d := os.Getenv("XDG_DATA_HOME"); d != "" {
		return filepath.Join(d, "blockmix"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("no repo: set --repo or BLOCKMIX_REPO (%w)", err)
	}
	return filepath.Join(home, ".local", "share", "blockmix"), nil
}

// ErrDamaged is wrapped by the errors about a small file that is there
// but cannot be read as what it should be (empty, cut short, garbage).
var ErrDamaged = errors.New("damaged")

// Repo is a repo directory.
type Repo struct {
	Dir string
	// Log receives the warnings about damaged files set aside (nil:
	// slog.Default()).
	Log *slog.Logger
	// SmallIndex opens the block store with small index caches
	// (blocks.DiskOptions.SmallIndex): the lowpower profile's.
	SmallIndex bool
}

// Logger returns r.Log, or slog.Default() when it is nil.
func (r Repo) Logger() *slog.Logger {
	if r.Log != nil {
		return r.Log
	}
	return slog.Default()
}

// Path returns the path of the repo file name.
func (r Repo) Path(name string) string { return filepath.Join(r.Dir, name) }

// OpenStore opens the repo's block store. Only create makes a new repo, so
// that a mistyped --repo on a get does not leave an empty repo behind. A
// missing repo wraps blocks.ErrNotFound; one in use wraps blocks.ErrLocked.
func (r Repo) OpenStore(create bool) (*blocks.Disk, error) {
	if create {
		if err := os.MkdirAll(r.Dir, 0o700); err != nil {
			return nil, fmt.Errorf("create repo %s: %w", r.Dir, err)
		}
	}
	return r.open(blocks.DiskOptions{SmallIndex: r.SmallIndex}, create)
}

// OpenReader opens the repo's block store read-only: it writes nothing,
// so it works on a full or read-only disk; writes fail with
// blocks.ErrReadOnly. A missing repo wraps blocks.ErrNotFound.
func (r Repo) OpenReader() (*blocks.Disk, error) {
	return r.open(blocks.DiskOptions{ReadOnly: true, SmallIndex: r.SmallIndex}, false)
}

func (r Repo) open(o blocks.DiskOptions, create bool) (*blocks.Disk, error) {
	if !create {
		if _, err := os.Stat(r.Path("index")); err != nil {
			return nil, fmt.Errorf("no blockmix repo at %s (put a file first, or check --repo and BLOCKMIX_REPO): %w", r.Dir, blocks.ErrNotFound)
		}
	}
	st, err := blocks.OpenDisk(r.Dir, o)
	if errors.Is(err, blocks.ErrLocked) {
		return nil, fmt.Errorf("repo %s is in use by another blockmix process (a daemon or another command); wait for it or stop it: %w", r.Dir, err)
	}
	if err != nil {
		return nil, fmt.Errorf("open repo %s: %w", r.Dir, err)
	}
	return st, nil
}

// RebuildIndex builds the store's index anew from its segments and files
// journal (see blocks.RebuildIndex), keeping the old index beside it. The
// store must not be open elsewhere (a daemon): that wraps
// blocks.ErrLocked.
func (r Repo) RebuildIndex() (blocks.RecoveryInfo, error) {
	if _, err := os.Stat(r.Path("segments")); err != nil {
		return blocks.RecoveryInfo{}, fmt.Errorf("no blockmix store at %s (no segments directory): %w", r.Dir, blocks.ErrNotFound)
	}
	info, err := blocks.RebuildIndex(r.Dir, blocks.DiskOptions{})
	if errors.Is(err, blocks.ErrLocked) {
		return info, fmt.Errorf("repo %s is in use by another blockmix process (stop the daemon first): %w", r.Dir, err)
	}
	return info, err
}

// HasIdentity reports whether the node has a key yet.
func (r Repo) HasIdentity() bool {
	_, err := os.Stat(r.Path(IdentityFile))
	return err == nil
}

// ReadIdentity reads the node's key and changes nothing. With no key yet
// the error wraps os.ErrNotExist; with a damaged key file (empty, cut
// short, not a key) it wraps ErrDamaged.
func (r Repo) ReadIdentity() (crypto.PrivKey, error) {
	path := r.Path(IdentityFile)
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read identity: %w", err)
	}
	k, err := crypto.UnmarshalPrivateKey(b)
	if err != nil {
		return nil, fmt.Errorf("identity %s is %w (%v)", path, ErrDamaged, err)
	}
	return k, nil
}

// Identity reads the node's key, making and saving one on first use. A
// damaged key file is set aside as identity.key.damaged-TIME, with a
// warning in r.Log, and a new key is made: the node gets a new peer ID.
// An error is returned only when the file cannot be read, set aside or
// written.
func (r Repo) Identity() (crypto.PrivKey, error) {
	k, err := r.ReadIdentity()
	if err == nil {
		return k, nil
	}
	var aside string
	switch {
	case errors.Is(err, ErrDamaged):
		if aside, err = atomicfile.SetAside(r.Path(IdentityFile)); err != nil {
			return nil, fmt.Errorf("identity is damaged and cannot be set aside: %w", err)
		}
	case !errors.Is(err, os.ErrNotExist):
		return nil, err
	}
	k, _, err = crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("make identity: %w", err)
	}
	b, err := crypto.MarshalPrivateKey(k)
	if err != nil {
		return nil, fmt.Errorf("make identity: %w", err)
	}
	if err := atomicfile.WriteFile(r.Path(IdentityFile), b, 0o600); err != nil {
		return nil, fmt.Errorf("save identity: %w", err)
	}
	if aside != "" {
		id, _ := peer.IDFromPrivateKey(k)
		r.Logger().Warn("the node's identity key is damaged: set aside; the node has a new key and so a NEW PEER ID "+
			"(give friends who bootstrap from this node its new address)",
			slog.String("file", r.Path(IdentityFile)), slog.String("set_aside", aside), slog.String("peer_id", id.String()))
	}
	return k, nil
}

// APIURL returns the URL of the daemon running on the repo, or "". The
// file is only a hint: a damaged one (not one line ending in a newline,
// as SetAPIURL writes it, holding an http URL with a host and a port) is
// ignored, with a debug line in r.Log, and left for the next daemon to
// replace.
func (r Repo) APIURL() string {
	b, err := os.ReadFile(r.Path(APIFile))
	if err != nil {
		return ""
	}
	s := strings.TrimSpace(string(b))
	u, err := url.Parse(s)
	if !bytes.HasSuffix(b, []byte("\n")) || err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Port() == "" {
		r.Logger().Debug("the api file is damaged: ignored", slog.String("file", r.Path(APIFile)), slog.String("content", fmt.Sprintf("%.80q", s)))
		return ""
	}
	return s
}

// SetAPIURL records the running daemon's API URL ("": none runs).
func (r Repo) SetAPIURL(url string) error {
	if url == "" {
		if err := os.Remove(r.Path(APIFile)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("remove %s: %w", APIFile, err)
		}
		return nil
	}
	if err := atomicfile.WriteFile(r.Path(APIFile), []byte(url+"\n"), 0o600); err != nil {
		return fmt.Errorf("write %s: %w", APIFile, err)
	}
	return nil
}

// Group is the private group a node is in.
type Group struct {
	Name string `json:"name"`
	Key  string `json:"key"` // hex, 32 bytes
}

// KeyBytes returns the group's key.
func (g Group) KeyBytes() []byte {
	k, _ := hex.DecodeString(g.Key)
	return k
}

// Group reads the repo's group; ok is false when the node is in none. A
// damaged group file (not a group's JSON, or a key of the wrong length:
// the node writes it, so any of these is damage, not a person's edit) is
// set aside as group.json.damaged-TIME with a warning in r.Log, and the
// node is in no group until it joins again. An error is returned only when
// the file cannot be read or set aside.
func (r Repo) Group() (g Group, ok bool, err error) {
	path := r.Path(GroupFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return g, false, nil
	}
	if err != nil {
		return g, false, fmt.Errorf("read group: %w", err)
	}
	problem := json.Unmarshal(b, &g)
	if key, err := hex.DecodeString(g.Key); problem == nil && (err != nil || len(key) != bmnet.GroupKeySize) {
		problem = fmt.Errorf("the key is not %d bytes of hex", bmnet.GroupKeySize)
	}
	if problem == nil {
		return g, true, nil
	}
	aside, err := atomicfile.SetAside(path)
	if err != nil {
		return Group{}, false, fmt.Errorf("group file %s is %w (%v) and cannot be set aside: %w", path, ErrDamaged, problem, err)
	}
	r.Logger().Warn("the group file is damaged: set aside; this node is now OUTSIDE its private group "+
		"(to rejoin, get an invite from a member's 'blockmix group invite', run 'blockmix group join INVITE' here, then restart the daemon)",
		slog.String("file", path), slog.String("set_aside", aside), slog.Any("err", problem))
	return Group{}, false, nil
}

// SaveGroup makes the node a member of the group name with key.
func (r Repo) SaveGroup(name string, key []byte) error {
	if err := os.MkdirAll(r.Dir, 0o700); err != nil {
		return err
	}
	b, _ := json.MarshalIndent(Group{Name: name, Key: hex.EncodeToString(key)}, "", "  ")
	if err := atomicfile.WriteFile(r.Path(GroupFile), append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("save group: %w", err)
	}
	return nil
}
