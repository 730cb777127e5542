package main

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"
)

func newStatusCommand(e *env) *cobra.Command {
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

func runStatus(ctx context.Context, e *env, asJSON bool) error {
	s, err := e.backend(ctx).Status(ctx)
	if err != nil {
		return err
	}
	if asJSON {
		printJSON(e, s)
		return nil
	}
	fmt.Fprintln(e.stdout, s.Verdict)
	fmt.Fprintln(e.stdout)
	if s.ID != "" {
		fmt.Fprintf(e.stdout, "peer ID        %s\n", s.ID)
	}
	if s.Daemon {
		up := time.Duration(s.UptimeSeconds) * time.Second
		fmt.Fprintf(e.stdout, "uptime         %s (since %s)\n", up, s.Started.Local().Format("2006-01-02 15:04"))
		fmt.Fprintf(e.stdout, "peers          %d connected, %d in the routing table\n", s.Peers, s.RoutingTable)
		if s.Reach.Words != "" {
			fmt.Fprintf(e.stdout, "reachability   %s\n", s.Reach.Words)
			if s.Reach.Advice != "" {
				fmt.Fprintf(e.stdout, "               to do: %s\n", s.Reach.Advice)
			}
		}
		fmt.Fprintf(e.stdout, "replicas       %d (other nodes that should hold each block)\n", s.Replicas)
		fmt.Fprintf(e.stdout, "profile        %s\n", s.Profile)
		if s.Group != "" {
			fmt.Fprintf(e.stdout, "group          %s (private: only nodes with its key; TCP only)\n", s.Group)
		} else {
			fmt.Fprintf(e.stdout, "group          none (open to any blockmix node)\n")
		}
		fmt.Fprintf(e.stdout, "site           %s\n", siteWords(s.Site, s.Sites))
		if s.Home != "" {
			fmt.Fprintf(e.stdout, "home           %s (this pooled node's donor is at home there: a partner donor to group %s)\n", s.Home, s.Group)
		}
		if s.PartnerCopies > 0 || len(s.Partners) > 0 {
			fmt.Fprintf(e.stdout, "partners       %s\n", partnerWords(s.PartnerCopies, s.Partners))
		}
		if s.Allowlist > 0 {
			fmt.Fprintf(e.stdout, "allowlist      %d peers: only they may talk to this node (--allow)\n", s.Allowlist)
		}
		if r := s.Repair; !r.Finished.IsZero() {
			fmt.Fprintf(e.stdout, "repair         %s: %d blocks held for the network checked, %d short, %d repaired, %d still short\n",
				r.Finished.Local().Format("15:04:05"), r.Checked, r.Short, r.Repaired, r.StillShort)
		} else {
			fmt.Fprintf(e.stdout, "repair         no round yet (see --repair-interval)\n")
		}
		if s.Quota > 0 {
			fmt.Fprintf(e.stdout, "quota          %s of %s used (%.0f%%)\n", human(s.Used()), human(s.Quota), 100*float64(s.Used())/float64(s.Quota))
		} else {
			fmt.Fprintf(e.stdout, "quota          none\n")
		}
		fmt.Fprintf(e.stdout, "network        %s in, %s out since the start (now %s/s in, %s/s out)\n",
			human(s.BytesIn), human(s.BytesOut), human(int64(s.RateIn)), human(int64(s.RateOut)))
	}
	printStats(e.stdout, s.Repo, s.Store.Stats)
	if s.Store.Quarantined == 0 {
		fmt.Fprintf(e.stdout, "quarantined    none\n")
	}
	return nil
}
