package storecmd

import (
	"context"
	"fmt"
	"net/http"
	"net/url"

	"github.com/spf13/cobra"

	"github.com/blockmix/blockmix/cmd/blockmix/internal/base"
	"github.com/blockmix/blockmix/cmd/blockmix/internal/passphrase"
	"github.com/blockmix/blockmix/webui/apiv1"
)

func NewCheckCommand(e *base.Env) *cobra.Command {
	var asJSON, repair bool
	var po passphrase.Options
	c := &cobra.Command{
		Use:   "check RECIPE",
		Short: "Say whether a file is safe: how many copies its blocks have",
		Long: `check asks the nodes closest to each block of a file whether they hold it,
counts this node's copy too, and says in plain words
whether the file is healthy (every block has --replicas copies), at risk
(some have fewer: the nodes that hold them repair it in the background) or
lost (some block has no copy anywhere reachable). When the nodes stand in
two sites or more (see daemon --site), a block whose every copy is in one
site puts the file at risk too, and so, when the group wants partner
copies (see daemon --partner-copies) and partner donors are known, does a
block with no copy on a partner group's donors. --repair gives the
blocks the copies they lack now. Exit code 1 when the file is at risk or
lost. The file need not be here: for one that is not on this node's
list, check reads its descriptor (a few blocks, never the file's data) to
learn its blocks, so a friend can ask before fetching 40 GB. It needs the
daemon.`,
		Args: cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			return runCheck(c.Context(), e, po, args[0], repair, asJSON)
		},
	}
	po.AddGetFlags(c.Flags())
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON: blocks, min_copies, median_copies, missing, short, replicas, sites, one_site, partner_copies, partners, no_partner, state, verdict")
	c.Flags().BoolVar(&repair, "repair", false, "push the missing copies now, then check")
	return c
}

func runCheck(ctx context.Context, e *base.Env, po passphrase.Options, text string, repair, asJSON bool) error {
	rc, err := e.Prompter().RecipeArg(po, text)
	if err != nil {
		return err
	}
	if err := base.NotForFolders("check", rc); err != nil { // folders.go
		return err
	}
	text = rc.String()
	dc := e.Daemon(ctx)
	if dc == nil {
		return fmt.Errorf("%w: check asks the network", base.ErrNoDaemon)
	}
	q := "?" + url.Values{"recipe": {text}}.Encode()
	var h apiv1.HealthInfo
	if repair {
		err = dc.Work(ctx, http.MethodPost, "/api/v1/repair"+q, &h)
	} else {
		err = dc.Work(ctx, http.MethodGet, "/api/v1/health"+q, &h)
	}
	if err != nil {
		return err
	}
	if asJSON {
		e.PrintJSON(h)
	} else {
		fmt.Fprintln(e.Stdout, h.Verdict)
		fmt.Fprintf(e.Stdout, "blocks %d, copies: fewest %d, median %d; %d below %d, %d with none\n", h.Blocks, h.MinCopies, h.MedianCopies, h.Short, h.Replicas, h.Missing)
		if h.Sites >= 2 {
			fmt.Fprintf(e.Stdout, "sites %d known; %d blocks have every copy in one site\n", h.Sites, h.OneSite)
		}
		if h.PartnerCopies > 0 {
			fmt.Fprintf(e.Stdout, "partner donors %d known; %d blocks have no copy on them\n", h.Partners, h.NoPartner)
		}
		if h.State == apiv1.HealthAtRisk && !repair {
			fmt.Fprintln(e.Stdout, "the nodes that hold its blocks repair it in time; 'blockmix check --repair' does it now")
		}
	}
	if h.State != apiv1.HealthHealthy {
		return fmt.Errorf("the file is %s", h.State)
	}
	return nil
}
