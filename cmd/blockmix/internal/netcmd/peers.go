package netcmd

import (
	"context"
	"fmt"
	"sort"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/blockmix/blockmix/cmd/blockmix/internal/base"
	"github.com/blockmix/blockmix/cmd/blockmix/internal/size"
	"github.com/blockmix/blockmix/webui/apiv1"
)

func NewIDCommand(e *base.Env) *cobra.Command {
	var asJSON bool
	c := &cobra.Command{
		Use:   "id",
		Short: "Show this node's peer ID and addresses",
		Long: `id prints the node's peer ID and, while a daemon runs, the full addresses
friends give to --bootstrap. Without a daemon it reads the ID from the repo.`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error { return runID(c.Context(), e, asJSON) },
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON: id, addrs, routing_table, peers")
	return c
}

func runID(ctx context.Context, e *base.Env, asJSON bool) error {
	info, err := e.Backend(ctx).ID(ctx)
	if err != nil {
		return err
	}
	if asJSON {
		if info.Addrs == nil {
			info.Addrs = []string{}
		}
		e.PrintJSON(info)
		return nil
	}
	fmt.Fprintf(e.Stdout, "peer ID  %s\n", info.ID)
	for _, a := range info.Addrs {
		fmt.Fprintf(e.Stdout, "address  %s\n", a)
	}
	return nil
}

func NewPeersCommand(e *base.Env) *cobra.Command {
	var asJSON bool
	c := &cobra.Command{
		Use:   "peers",
		Short: "List the connected peers with latency, reliability and traffic",
		Long: `peers lists the peers the running daemon is connected to, best first: the
measured latency per block, the share of requests that worked, the score
that ranks them for fetches, the bytes fetched from and pushed to
them, and how the connection reaches them: direct, hole punched (through
both NATs), or relayed (control traffic only: blocks wait for a direct
connection). A peer that sent bad blocks shows its lies and scores 0.`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error { return runPeers(c.Context(), e, asJSON) },
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print a JSON array: id, addr, latency_ms, reliability, score, bytes_in, bytes_out, lies, stored_here, holds_for_us, conn, site")
	return c
}

func runPeers(ctx context.Context, e *base.Env, asJSON bool) error {
	dc := e.Daemon(ctx)
	if dc == nil {
		return base.ErrNoDaemon
	}
	var ps []apiv1.PeerInfo
	if err := dc.Question(ctx, "/api/v1/peers", &ps); err != nil {
		return err
	}
	sort.SliceStable(ps, func(i, j int) bool { return ps[i].Score > ps[j].Score })
	if asJSON {
		e.PrintJSON(ps)
		return nil
	}
	var st apiv1.StatusInfo
	if err := dc.Question(ctx, "/api/v1/status", &st); err != nil {
		return err
	}
	if st.Group != "" {
		fmt.Fprintf(e.Stdout, "group %s: only nodes with its key\n", st.Group)
	} else {
		fmt.Fprintln(e.Stdout, "no group: open to any blockmix node")
	}
	if st.Reach.Words != "" {
		fmt.Fprintf(e.Stdout, "this node: %s\n", st.Reach.Words)
		if st.Reach.Advice != "" {
			fmt.Fprintf(e.Stdout, "to do: %s\n", st.Reach.Advice)
		}
	}
	tw := tabwriter.NewWriter(e.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintf(e.Stdout, "site: %s\n", siteWords(st.Site, st.Sites))
	fmt.Fprintln(tw, "PEER\tSITE\tCONNECTION\tLATENCY\tRELIABILITY\tIN\tOUT\tLIES\tSTORED HERE\tHOLDS FOR US")
	for _, p := range ps {
		site := p.Site
		if site == "" {
			site = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%.1f ms\t%.0f%%\t%s\t%s\t%d\t%s\t%s\n", p.ID, site, p.Conn, p.LatencyMs, 100*p.Reliability, size.Human(p.BytesIn), size.Human(p.BytesOut), p.Lies, size.Human(p.StoredHere), size.Human(p.HoldsForUs))
	}
	return tw.Flush()
}
