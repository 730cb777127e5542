package netcmd

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/blockmix/blockmix/cmd/blockmix/internal/base"
	"github.com/blockmix/blockmix/cmd/blockmix/internal/size"
	"github.com/blockmix/blockmix/cmd/blockmix/internal/storecmd"
)

func NewStatusCommand(e *base.Env) *cobra.Command {
	var asJSON bool
	c := &cobra.Command{
		Use:   "status",
		Short: "Sum up the node in plain words: daemon, peers, store, traffic, and what to do",
		Long: `status tells in one screen how the node is doing. Its first line is the
verdict, in plain words, with what to do about it:

  ok           connected to enough peers: what you put gets its copies
  few peers    fewer peers than --replicas: what you put gets fewer copies
  alone        no peers: what you put stays only on this node
  quarantined  the store took corrupt blocks out of service
  offline      no daemon runs on the repo

Then, from a running daemon: the peer ID, the uptime, the connected peers
and the routing table, how other nodes reach this one (directly, behind
NAT through a relay, hole punched to a peer, or unreachable, with what to
do), the replicas setting, the store (blocks, bytes,
files, shared blocks, overhead, quarantined) and the network traffic since
the daemon started. Without a daemon, the store alone. status exits 0
whatever the verdict.`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error { return runStatus(c.Context(), e, asJSON) },
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON: daemon, repo, id, started, uptime_seconds, peers, routing_table, reach, replicas, site, sites, home, partner_copies, partners, allowlist, store, bytes_in, bytes_out, rate_in, rate_out, state, verdict")
	return c
}

func runStatus(ctx context.Context, e *base.Env, asJSON bool) error {
	s, err := e.Backend(ctx).Status(ctx)
	if err != nil {
		return err
	}
	if asJSON {
		e.PrintJSON(s)
		return nil
	}
	fmt.Fprintln(e.Stdout, s.Verdict)
	fmt.Fprintln(e.Stdout)
	if s.ID != "" {
		fmt.Fprintf(e.Stdout, "peer ID        %s\n", s.ID)
	}
	if s.Daemon {
		up := time.Duration(s.UptimeSeconds) * time.Second
		fmt.Fprintf(e.Stdout, "uptime         %s (since %s)\n", up, s.Started.Local().Format("2006-01-02 15:04"))
		fmt.Fprintf(e.Stdout, "peers          %d connected, %d in the routing table\n", s.Peers, s.RoutingTable)
		if s.Reach.Words != "" {
			fmt.Fprintf(e.Stdout, "reachability   %s\n", s.Reach.Words)
			if s.Reach.Advice != "" {
				fmt.Fprintf(e.Stdout, "               to do: %s\n", s.Reach.Advice)
			}
		}
		fmt.Fprintf(e.Stdout, "replicas       %d (other nodes that should hold each block)\n", s.Replicas)
		fmt.Fprintf(e.Stdout, "profile        %s\n", s.Profile)
		if s.Group != "" {
			fmt.Fprintf(e.Stdout, "group          %s (private: only nodes with its key; TCP only)\n", s.Group)
		} else {
			fmt.Fprintf(e.Stdout, "group          none (open to any blockmix node)\n")
		}
		fmt.Fprintf(e.Stdout, "site           %s\n", siteWords(s.Site, s.Sites))
		if s.Home != "" {
			fmt.Fprintf(e.Stdout, "home           %s (this pooled node's donor is at home there: a partner donor to group %s)\n", s.Home, s.Group)
		}
		if s.PartnerCopies > 0 || len(s.Partners) > 0 {
			fmt.Fprintf(e.Stdout, "partners       %s\n", partnerWords(s.PartnerCopies, s.Partners))
		}
		if s.Allowlist > 0 {
			fmt.Fprintf(e.Stdout, "allowlist      %d peers: only they may talk to this node (--allow)\n", s.Allowlist)
		}
		if r := s.Repair; !r.Finished.IsZero() {
			fmt.Fprintf(e.Stdout, "repair         %s: %d blocks held for the network checked, %d short, %d repaired, %d still short\n",
				r.Finished.Local().Format("15:04:05"), r.Checked, r.Short, r.Repaired, r.StillShort)
		} else {
			fmt.Fprintf(e.Stdout, "repair         no round yet (see --repair-interval)\n")
		}
		if s.Quota > 0 {
			fmt.Fprintf(e.Stdout, "quota          %s of %s used (%.0f%%)\n", size.Human(s.Used()), size.Human(s.Quota), 100*float64(s.Used())/float64(s.Quota))
		} else {
			fmt.Fprintf(e.Stdout, "quota          none\n")
		}
		fmt.Fprintf(e.Stdout, "network        %s in, %s out since the start (now %s/s in, %s/s out)\n",
			size.Human(s.BytesIn), size.Human(s.BytesOut), size.Human(int64(s.RateIn)), size.Human(int64(s.RateOut)))
	}
	storecmd.PrintStats(e.Stdout, s.Repo, s.Store.Stats)
	if s.Store.Quarantined == 0 {
		fmt.Fprintf(e.Stdout, "quarantined    none\n")
	}
	return nil
}
