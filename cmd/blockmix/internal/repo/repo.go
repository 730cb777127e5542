// Package repo is the layout of a blockmix repo on disk: the block store,
// and the small files beside it (the node's identity key, the running
// daemon's API address, config.json, the group key, the fair-share
// ledger). Every small file is written atomically.
package repo

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/libp2p/go-libp2p/core/crypto"

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

// Repo is a repo directory.
type Repo struct{ Dir string }

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
	return r.open(blocks.DiskOptions{}, create)
}

// OpenReader opens the repo's block store read-only: it writes nothing,
// so it works on a full or read-only disk; writes fail with
// blocks.ErrReadOnly. A missing repo wraps blocks.ErrNotFound.
func (r Repo) OpenReader() (*blocks.Disk, error) {
	return r.open(blocks.DiskOptions{ReadOnly: true}, false)
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

// Identity reads the node's key, making and saving one on first use.
func (r Repo) Identity() (crypto.PrivKey, error) {
	path := r.Path(IdentityFile)
	b, err := os.ReadFile(path)
	if err == nil {
		k, err := crypto.UnmarshalPrivateKey(b)
		if err != nil {
			return nil, fmt.Errorf("identity %s is damaged: %w", path, err)
		}
		return k, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("read identity: %w", err)
	}
	k, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("make identity: %w", err)
	}
	b, err = crypto.MarshalPrivateKey(k)
	if err != nil {
		return nil, fmt.Errorf("make identity: %w", err)
	}
	if err := atomicfile.WriteFile(path, b, 0o600); err != nil {
		return nil, fmt.Errorf("save identity: %w", err)
	}
	return k, nil
}

// APIURL returns the URL of the daemon running on the repo, or "".
func (r Repo) APIURL() string {
	b, err := os.ReadFile(r.Path(APIFile))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
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

// Group reads the repo's group; ok is false when the node is in none.
func (r Repo) Group() (g Group, ok bool, err error) {
	path := r.Path(GroupFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return g, false, nil
	}
	if err != nil {
		return g, false, fmt.Errorf("read group: %w", err)
	}
	if err := json.Unmarshal(b, &g); err != nil {
		return g, false, fmt.Errorf("group file %s is damaged: %w", path, err)
	}
	if key, err := hex.DecodeString(g.Key); err != nil || len(key) != bmnet.GroupKeySize {
		return g, false, fmt.Errorf("group file %s has a bad key", path)
	}
	return g, true, nil
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
