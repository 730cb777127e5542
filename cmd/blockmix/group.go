package main

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/spf13/cobra"

	"github.com/blockmix/blockmix/blocks"
	bmnet "github.com/blockmix/blockmix/net"
	"github.com/blockmix/blockmix/webui/apiv1"
)

// groupFile holds the node's group: its name and key (mode 0600).
const groupFile = "group.json"

// invitePrefix starts an invite line.
const invitePrefix = "blockmix-invite:"

type groupConfig struct {
	Name string `json:"name"`
	Key  string `json:"key"` // hex, 32 bytes
}

// group reads the repo's group; ok is false when the node is in none.
func (e *env) group() (g groupConfig, key []byte, ok bool, err error) {
	dir, err := e.repoDir()
	if err != nil {
		return g, nil, false, err
	}
	b, err := os.ReadFile(filepath.Join(dir, groupFile))
	if errors.Is(err, os.ErrNotExist) {
		return g, nil, false, nil
	}
	if err != nil {
		return g, nil, false, fmt.Errorf("read group: %w", err)
	}
	if err := json.Unmarshal(b, &g); err != nil {
		return g, nil, false, fmt.Errorf("group file %s is damaged: %w", filepath.Join(dir, groupFile), err)
	}
	key, err = hex.DecodeString(g.Key)
	if err != nil || len(key) != bmnet.GroupKeySize {
		return g, nil, false, fmt.Errorf("group file %s has a bad key", filepath.Join(dir, groupFile))
	}
	return g, key, true, nil
}

func (e *env) saveGroup(name string, key []byte) error {
	dir, err := e.repoDir()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	b, _ := json.MarshalIndent(groupConfig{Name: name, Key: hex.EncodeToString(key)}, "", "  ")
	tmp := filepath.Join(dir, groupFile+".tmp")
	if err := os.WriteFile(tmp, append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("save group: %w", err)
	}
	return os.Rename(tmp, filepath.Join(dir, groupFile))
}

var b32 = base32.StdEncoding.WithPadding(base32.NoPadding)

// encodeInvite spells an invite: version 1, the key, the name, an address.
func encodeInvite(name string, key []byte, addr string) string {
	p := append([]byte{1}, key...)
	p = append(p, byte(len(name)))
	p = append(p, name...)
	p = append(p, addr...)
	return invitePrefix + strings.ToLower(b32.EncodeToString(p))
}

func decodeInvite(text string) (name string, key []byte, ai peer.AddrInfo, err error) {
	t := strings.TrimSpace(text)
	i := strings.Index(t, invitePrefix)
	if i < 0 {
		return "", nil, ai, badUse("not an invite: it starts with %s", invitePrefix)
	}
	t = strings.Fields(t[i+len(invitePrefix):] + " ")[0]
	p, err := b32.DecodeString(strings.ToUpper(t))
	if err != nil || len(p) < 2+bmnet.GroupKeySize || p[0] != 1 {
		return "", nil, ai, badUse("the invite is damaged or cut short")
	}
	key = p[1 : 1+bmnet.GroupKeySize]
	n := int(p[1+bmnet.GroupKeySize])
	rest := p[2+bmnet.GroupKeySize:]
	if n > len(rest) {
		return "", nil, ai, badUse("the invite is damaged or cut short")
	}
	name, addr := string(rest[:n]), string(rest[n:])
	a, err := peer.AddrInfoFromString(addr)
	if err != nil {
		return "", nil, ai, badUse("the invite's address %q: %v", addr, err)
	}
	return name, key, *a, nil
}

func newGroupCommand(e *env) *cobra.Command {
	g := &cobra.Command{
		Use:   "group",
		Short: "Private groups: nodes that talk only to each other",
		Long: `A group is a key shared by its nodes (a libp2p private network): a node in
a group talks only to nodes with the same key, over TCP (QUIC cannot carry
the key). 'group create NAME' makes one; 'group invite' prints a line for a
friend that carries the key and this node's address; 'group join INVITE'
stores it and checks that the node answers. The daemon joins the group when
it starts (restart it after create or join).`,
	}
	g.AddCommand(&cobra.Command{
		Use:   "create NAME",
		Short: "Make a new group key for this node",
		Args:  cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			name, err := createGroup(e, args[0])
			if err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "group %s created; (re)start the daemon to work in it, then 'blockmix group invite' prints the line friends join with\n", name)
			return nil
		},
	})
	g.AddCommand(&cobra.Command{
		Use:   "invite",
		Short: "Print the invite line for this node's group (the daemon must run in the group)",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			grp, key, ok, err := e.group()
			if err != nil {
				return err
			}
			if !ok {
				return errors.New("this node is in no group: 'blockmix group create NAME' makes one")
			}
			dc := e.daemon(c.Context())
			if dc == nil {
				return fmt.Errorf("%w: the invite carries the running node's address", errNoDaemon)
			}
			var st apiv1.StatusInfo
			if err := dc.getJSON(c.Context(), "/api/v1/status", &st); err != nil {
				return err
			}
			if st.Group != grp.Name {
				return fmt.Errorf("the daemon is not in group %s yet: restart it", grp.Name)
			}
			var id apiv1.IDInfo
			if err := dc.getJSON(c.Context(), "/api/v1/id", &id); err != nil {
				return err
			}
			if len(id.Addrs) == 0 {
				return errors.New("the daemon listens nowhere")
			}
			fmt.Fprintln(e.stdout, encodeInvite(grp.Name, key, id.Addrs[0]))
			return nil
		},
	})
	g.AddCommand(&cobra.Command{
		Use:   "join INVITE",
		Short: "Join a group from an invite line: store its key and bootstrap address",
		Args:  cobra.ExactArgs(1),
		RunE:  func(c *cobra.Command, args []string) error { return runJoin(c.Context(), e, args[0]) },
	})
	return g
}

// createGroup makes a new group key for the repo.
func createGroup(e *env, name string) (string, error) {
	name = strings.TrimSpace(name)
	if name == "" || len(name) > 64 {
		return "", badUse("a group name is 1 to 64 characters")
	}
	if _, _, ok, err := e.group(); err != nil || ok {
		if err == nil {
			err = errors.New("this node is in a group already (remove REPO/group.json to leave it)")
		}
		return "", err
	}
	key := make([]byte, bmnet.GroupKeySize)
	if _, err := rand.Read(key); err != nil {
		return "", err
	}
	return name, e.saveGroup(name, key)
}

// runJoin checks the invite by reaching its node with its key (within two
// seconds), then stores the group and adds the node to config.json's
// bootstrap list.
func runJoin(ctx context.Context, e *env, text string) error {
	name, ai, err := joinGroup(ctx, e, text)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "joined group %s: reached %s; (re)start the daemon to work in the group\n", name, ai.ID)
	return nil
}

// joinGroup checks an invite and stores its group (see runJoin).
func joinGroup(ctx context.Context, e *env, text string) (string, peer.AddrInfo, error) {
	name, key, ai, err := decodeInvite(text)
	if err != nil {
		return "", ai, err
	}
	probe, err := bmnet.NewNode(bmnet.Config{GroupKey: key}, blocks.NewMem(), nil)
	if err != nil {
		return "", ai, err
	}
	defer probe.Close()
	if err := probe.Join(ctx, ai, 1200*time.Millisecond, true); err != nil {
		return "", ai, fmt.Errorf("could not join group %s through %s: %w", name, ai.ID, err)
	}
	if err := e.saveGroup(name, key); err != nil {
		return "", ai, err
	}
	dir, _ := e.repoDir()
	cfgPath := filepath.Join(dir, configFile)
	cfg, _, err := readConfig(cfgPath)
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
		if err := os.WriteFile(cfgPath, append(b, '\n'), 0o600); err != nil {
			return "", ai, fmt.Errorf("write %s: %w", cfgPath, err)
		}
	}
	return name, ai, nil
}

// Group tells the page the node's group and, when the daemon works in it,
// the invite line.
func (d *daemonNode) Group(ctx context.Context) (apiv1.GroupInfo, error) {
	grp, key, ok, err := d.e.group()
	if err != nil || !ok {
		return apiv1.GroupInfo{}, err
	}
	info := apiv1.GroupInfo{Name: grp.Name, Active: grp.Name == d.group}
	if !info.Active {
		info.Message = "restart the daemon to work in the group"
		return info, nil
	}
	if addrs := d.ID().Addrs; len(addrs) > 0 {
		info.Invite = encodeInvite(grp.Name, key, addrs[0])
	}
	return info, nil
}

// CreateGroup makes a group key for this node (it works in the group
// after a restart).
func (d *daemonNode) CreateGroup(ctx context.Context, name string) (apiv1.GroupInfo, error) {
	n, err := createGroup(d.e, name)
	if err != nil {
		return apiv1.GroupInfo{}, err
	}
	return apiv1.GroupInfo{Name: n, Message: "group " + n + " created: restart the daemon to work in it, then share the invite"}, nil
}

// JoinGroup joins a group from an invite (it works in it after a restart).
func (d *daemonNode) JoinGroup(ctx context.Context, invite string) (apiv1.GroupInfo, error) {
	n, ai, err := joinGroup(ctx, d.e, invite)
	if err != nil {
		return apiv1.GroupInfo{}, err
	}
	return apiv1.GroupInfo{Name: n, Message: fmt.Sprintf("joined group %s (reached %s): restart the daemon to work in it", n, ai.ID.ShortString())}, nil
}
