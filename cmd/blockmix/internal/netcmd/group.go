package netcmd

import (
	"context"
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/blockmix/blockmix/cmd/blockmix/internal/base"
	"github.com/blockmix/blockmix/cmd/blockmix/internal/group"
	"github.com/blockmix/blockmix/webui/apiv1"
)

func NewGroupCommand(e *base.Env) *cobra.Command {
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
			name, err := group.Create(e.Repo(), args[0])
			if err != nil {
				return err
			}
			fmt.Fprintf(e.Stdout, "group %s created; (re)start the daemon to work in it, then 'blockmix group invite' prints the line friends join with\n", name)
			return nil
		},
	})
	g.AddCommand(&cobra.Command{
		Use:   "invite",
		Short: "Print the invite line for this node's group (the daemon must run in the group)",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			grp, ok, err := e.Repo().Group()
			if err != nil {
				return err
			}
			if !ok {
				return errors.New("this node is in no group: 'blockmix group create NAME' makes one")
			}
			dc := e.Daemon(c.Context())
			if dc == nil {
				return fmt.Errorf("%w: the invite carries the running node's address", base.ErrNoDaemon)
			}
			var st apiv1.StatusInfo
			if err := dc.Question(c.Context(), "/api/v1/status", &st); err != nil {
				return err
			}
			if st.Group != grp.Name {
				return fmt.Errorf("the daemon is not in group %s yet: restart it", grp.Name)
			}
			// The daemon picks the address friends can reach: a public
			// one, else one through its relay (behind NAT).
			var gi apiv1.GroupInfo
			if err := dc.Question(c.Context(), "/api/v1/group", &gi); err != nil {
				return err
			}
			if gi.Invite == "" {
				return errors.New("the daemon listens nowhere")
			}
			fmt.Fprintln(e.Stdout, gi.Invite)
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

// runJoin checks the invite by reaching its node with its key (within two
// seconds), then stores the group and adds the node to config.json's
// bootstrap list.
func runJoin(ctx context.Context, e *base.Env, text string) error {
	name, ai, err := group.Join(ctx, e.Repo(), text)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.Stdout, "joined group %s: reached %s; (re)start the daemon to work in the group\n", name, ai.ID)
	return nil
}
