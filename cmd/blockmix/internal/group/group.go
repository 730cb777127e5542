// Package group makes and joins private groups: a key shared by the
// group's nodes (libp2p's private network), stored in the repo, and the
// invite line that carries the key and a member's address to a friend.
package group

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base32"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/blockmix/blockmix/blocks"
	"github.com/blockmix/blockmix/cmd/blockmix/internal/atomicfile"
	"github.com/blockmix/blockmix/cmd/blockmix/internal/config"
	"github.com/blockmix/blockmix/cmd/blockmix/internal/repo"
	"github.com/blockmix/blockmix/cmd/blockmix/internal/usage"
	bmnet "github.com/blockmix/blockmix/net"
)

// invitePrefix starts an invite line.
const invitePrefix = "blockmix-invite:"

var b32 = base32.StdEncoding.WithPadding(base32.NoPadding)

// Invite spells an invite: version 1, the key, the name, an address.
func Invite(name string, key []byte, addr string) string {
	p := append([]byte{1}, key...)
	p = append(p, byte(len(name)))
	p = append(p, name...)
	p = append(p, addr...)
	return invitePrefix + strings.ToLower(b32.EncodeToString(p))
}

// ParseInvite reads an invite line; a damaged one is a usage error.
func ParseInvite(text string) (name string, key []byte, ai peer.AddrInfo, err error) {
	t := strings.TrimSpace(text)
	i := strings.Index(t, invitePrefix)
	if i < 0 {
		return "", nil, ai, usage.Errorf("not an invite: it starts with %s", invitePrefix)
	}
	t = strings.Fields(t[i+len(invitePrefix):] + " ")[0]
	p, err := b32.DecodeString(strings.ToUpper(t))
	if err != nil || len(p) < 2+bmnet.GroupKeySize || p[0] != 1 {
		return "", nil, ai, usage.Errorf("the invite is damaged or cut short")
	}
	key = p[1 : 1+bmnet.GroupKeySize]
	n := int(p[1+bmnet.GroupKeySize])
	rest := p[2+bmnet.GroupKeySize:]
	if n > len(rest) {
		return "", nil, ai, usage.Errorf("the invite is damaged or cut short")
	}
	name, addr := cleanName(string(rest[:n])), string(rest[n:])
	if name == "" {
		return "", nil, ai, usage.Errorf("the invite's group name is empty or unprintable")
	}
	a, err := peer.AddrInfoFromString(addr)
	if err != nil {
		return "", nil, ai, usage.Errorf("the invite's address %q: %v", addr, err)
	}
	return name, key, *a, nil
}

// cleanName keeps a group name printable: an invite comes from anyone,
// and its name is shown on terminals and pages (an escape sequence in it
// could rewrite the screen). Control, format and invalid characters go.
func cleanName(name string) string {
	name = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) || r == utf8.RuneError {
			return -1
		}
		return r
	}, name)
	return strings.TrimSpace(name)
}

// Create makes a new group key for the repo and returns the cleaned name.
func Create(r repo.Repo, name string) (string, error) {
	name = cleanName(name)
	if name == "" || len(name) > 64 {
		return "", usage.Errorf("a group name is 1 to 64 characters")
	}
	if _, ok, err := r.Group(); err != nil || ok {
		if err == nil {
			err = errors.New("this node is in a group already (remove REPO/group.json to leave it)")
		}
		return "", err
	}
	key := make([]byte, bmnet.GroupKeySize)
	if _, err := rand.Read(key); err != nil {
		return "", err
	}
	return name, r.SaveGroup(name, key)
}

// Join checks an invite by reaching its node with its key (within 1.2 s),
// then stores the group and adds the node to config.json's bootstrap
// list. Nothing is stored when the node cannot be reached.
func Join(ctx context.Context, r repo.Repo, text string) (string, peer.AddrInfo, error) {
	name, key, ai, err := ParseInvite(text)
	if err != nil {
		return "", ai, err
	}
	if cur, ok, err := r.Group(); err != nil {
		return "", ai, err
	} else if ok && !bytes.Equal(cur.KeyBytes(), key) {
		return "", ai, usage.Errorf("this node is in group %s already: one group at a time (remove REPO/group.json to leave it, then join)", cur.Name)
	}
	probe, err := bmnet.NewNode(bmnet.Config{GroupKey: key}, blocks.NewMem(), nil)
	if err != nil {
		return "", ai, err
	}
	defer probe.Close()
	if err := probe.Join(ctx, ai, 1200*time.Millisecond, true); err != nil {
		return "", ai, fmt.Errorf("could not join group %s through %s: %w", name, ai.ID, err)
	}
	if err := r.SaveGroup(name, key); err != nil {
		return "", ai, err
	}
	cfgPath := r.Path(repo.ConfigFile)
	cfg, _, err := config.Read(cfgPath, r.Logger())
	if err != nil {
		return "", ai, err
	}
	addr := ai.Addrs[0].String() + "/p2p/" + ai.ID.String()
	found := false
	for _, b := range cfg.Bootstrap {
		found = found || b == addr
	}
	if !found {
		cfg.Bootstrap = append(cfg.Bootstrap, addr)
		b, _ := json.MarshalIndent(cfg, "", "  ")
		if err := atomicfile.WriteFile(cfgPath, append(b, '\n'), 0o600); err != nil {
			return "", ai, fmt.Errorf("write %s: %w", cfgPath, err)
		}
	}
	return name, ai, nil
}
