// Package livecmd holds the live folder commands: watch, sync, unwatch,
// unsync and resolve, all through the running daemon.
package livecmd

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/blockmix/blockmix/cmd/blockmix/internal/base"
	"github.com/blockmix/blockmix/cmd/blockmix/internal/live"
	"github.com/blockmix/blockmix/cmd/blockmix/internal/passphrase"
	"github.com/blockmix/blockmix/webui/apiv1"
)

// liveOptions are the flags of watch, sync and their undo commands.
type liveOptions struct {
	json, list, web bool
	force           bool
	pass            passphrase.Options
}

func NewWatchCommand(e *base.Env) *cobra.Command {
	var o liveOptions
	c := &cobra.Command{
		Use:   "watch DIR",
		Short: "Publish a folder under one live link that follows its changes",
		Long: `watch has the daemon publish the folder DIR as a folder recipe under a
live link (blockmix:live:…) that stays the same while the folder changes:
the daemon watches the folder (inotify), and a moment after files change
it mixes the changed files again and publishes the new version under the
same link. Give the link to friends: 'blockmix sync LINK DIR' keeps a
folder of theirs equal to yours.

The link is a signed record in the DHT: the nodes that hold it check its
signature and keep only the newest version, but cannot read it without
the link. The folder's key stays in this node's repo (live.json); the
watch continues after a restart of the daemon.

--passphrase (asked twice) or --passphrase-file FILE also prints the link
sealed with a passphrase (blockmix:live:sealed:…).

  blockmix watch ~/Photos/party        prints the live link
  blockmix watch --list                the watched folders and their state
  blockmix unwatch ~/Photos/party      stops publishing (the link keeps its last version)`,
		Args: listOr(&o, 1),
		RunE: func(c *cobra.Command, args []string) error {
			if o.list {
				return runLiveList(c.Context(), e, o, "watch")
			}
			return runWatch(c.Context(), e, o, args[0])
		},
	}
	c.Flags().BoolVar(&o.json, "json", false, "print JSON: the folder's id, kind, dir, link, url, sealed, seq, recipe, version, checked, state, message, files, changed, conflicts (--list: a list of them)")
	c.Flags().BoolVar(&o.list, "list", false, "list the watched folders instead")
	c.Flags().BoolVar(&o.web, "web", false, "print the clickable http://127.0.0.1:7788/l/… spelling instead of blockmix:live:…")
	o.pass.AddPutFlags(c.Flags())
	return c
}

func runWatch(ctx context.Context, e *base.Env, o liveOptions, dir string) error {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return base.BadUse("%s: %w", dir, err)
	}
	pass, err := e.Prompter().Sealing(o.pass, nil)
	if err != nil {
		return err
	}
	dc, err := e.NeedDaemon(ctx)
	if err != nil {
		return err
	}
	f, err := dc.Watch(ctx, abs, pass)
	if err != nil {
		return err
	}
	switch {
	case o.json:
		e.PrintJSON(f)
	case f.Sealed != "":
		fmt.Fprintln(e.Stdout, f.Sealed)
	case o.web:
		fmt.Fprintln(e.Stdout, f.URL)
	default:
		fmt.Fprintln(e.Stdout, f.Link)
	}
	if !o.json {
		fmt.Fprintf(e.Stderr, "blockmix: watching %s: each change is published under this link ('blockmix watch --list' tells the state)\n", f.Dir)
	}
	return nil
}

func NewSyncCommand(e *base.Env) *cobra.Command {
	var o liveOptions
	c := &cobra.Command{
		Use:   "sync LINK DIR",
		Short: "Keep a folder equal to the latest version of a live link",
		Long: `sync has the daemon keep the folder DIR (made when missing) equal to the
latest version of the live link LINK, one way, like a receive-only folder
(DIR must be missing or empty, unless --force):
it looks for a new version every --live-poll (a daemon flag, 5s), fetches
only the files that changed, and replaces each file atomically.

A local file that changed since the last sync is never lost: when the new
version changes it too, the local one is kept beside it as
"name (conflict 2026-12-02 0712).ext", and the state says so; when the new
version drops it, it stays. The sync continues after a restart of the
daemon.

  blockmix sync blockmix:live:… ~/Party
  blockmix sync --list                  the followed folders and their state
  blockmix unsync ~/Party               stops following (the files stay)`,
		Args: listOr(&o, 2),
		RunE: func(c *cobra.Command, args []string) error {
			if o.list {
				return runLiveList(c.Context(), e, o, "sync")
			}
			return runSync(c.Context(), e, o, args[0], args[1])
		},
	}
	c.Flags().BoolVar(&o.json, "json", false, "print JSON (see 'watch --help'; --list: a list)")
	c.Flags().BoolVar(&o.list, "list", false, "list the followed folders instead")
	c.Flags().BoolVar(&o.force, "force", false, "sync into a folder that holds files already (those that differ from the version are kept beside it)")
	o.pass.AddGetFlags(c.Flags())
	return c
}

// linkPassphrase checks a live link and asks for its passphrase when it
// is sealed (nil otherwise).
func linkPassphrase(e *base.Env, o liveOptions, text string) ([]byte, error) {
	_, sealed, err := live.Parse(text)
	if err != nil {
		return nil, base.BadUse("%w", err)
	}
	if sealed == nil {
		return nil, nil
	}
	return e.Prompter().Opening(o.pass)
}

func runSync(ctx context.Context, e *base.Env, o liveOptions, link, dir string) error {
	pass, err := linkPassphrase(e, o, link)
	if err != nil {
		return err
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return base.BadUse("%s: %w", dir, err)
	}
	dc, err := e.NeedDaemon(ctx)
	if err != nil {
		return err
	}
	f, err := dc.Sync(ctx, link, abs, pass, o.force)
	if err != nil {
		return err
	}
	if o.json {
		e.PrintJSON(f)
		return nil
	}
	fmt.Fprintf(e.Stdout, "syncing %s from %s (%s)\n", f.Dir, f.Link, f.ID)
	return nil
}

func NewUnliveCommand(e *base.Env, kind, use, short string) *cobra.Command {
	var o liveOptions
	c := &cobra.Command{
		Use:   use + " DIR|ID",
		Short: short,
		Args:  cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			ctx := c.Context()
			dc, err := e.NeedDaemon(ctx)
			if err != nil {
				return err
			}
			arg := args[0]
			if abs, err := filepath.Abs(arg); err == nil && !strings.HasPrefix(arg, kind[:1]+"-") {
				arg = abs
			}
			f, err := dc.Unlive(ctx, kind, arg)
			if err != nil {
				return err
			}
			if o.json {
				e.PrintJSON(f)
				return nil
			}
			fmt.Fprintf(e.Stdout, "stopped %s of %s; its files stay\n", kind, f.Dir)
			return nil
		},
	}
	c.Flags().BoolVar(&o.json, "json", false, "print the stopped folder as JSON")
	return c
}

func NewResolveCommand(e *base.Env) *cobra.Command {
	var o liveOptions
	c := &cobra.Command{
		Use:   "resolve LINK",
		Short: "Print the folder recipe a live link points to now",
		Long: `resolve looks up the latest version of a live link in the DHT and prints
its folder recipe ('blockmix get' rebuilds it once; 'blockmix sync' keeps
a folder equal to it).`,
		Args: cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			ctx := c.Context()
			pass, err := linkPassphrase(e, o, args[0])
			if err != nil {
				return err
			}
			dc, err := e.NeedDaemon(ctx)
			if err != nil {
				return err
			}
			v, err := dc.Resolve(ctx, args[0], pass)
			if err != nil {
				return err
			}
			if o.json {
				e.PrintJSON(v)
				return nil
			}
			fmt.Fprintln(e.Stdout, v.Recipe)
			fmt.Fprintf(e.Stderr, "blockmix: version %d of %s\n", v.Seq, v.Version.Local().Format(time.DateTime))
			return nil
		},
	}
	c.Flags().BoolVar(&o.json, "json", false, "print JSON: link, seq, recipe, version")
	o.pass.AddGetFlags(c.Flags())
	return c
}

func runLiveList(ctx context.Context, e *base.Env, o liveOptions, kind string) error {
	dc, err := e.NeedDaemon(ctx)
	if err != nil {
		return err
	}
	all, err := dc.Live(ctx)
	if err != nil {
		return err
	}
	fs := []apiv1.LiveFolder{}
	for _, f := range all {
		if f.Kind == kind {
			fs = append(fs, f)
		}
	}
	if o.json {
		e.PrintJSON(fs)
		return nil
	}
	if len(fs) == 0 {
		fmt.Fprintf(e.Stdout, "no %s folders\n", map[string]string{"watch": "watched", "sync": "synced"}[kind])
		return nil
	}
	tw := tabwriter.NewWriter(e.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tDIR\tVERSION\tWHEN\tFILES\tSTATE")
	for _, f := range fs {
		when := "-"
		if !f.Version.IsZero() {
			when = f.Version.Local().Format(time.DateTime)
		}
		state := f.State
		if f.Message != "" {
			state += ": " + f.Message
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%d\t%s\n", f.ID, f.Dir, f.Seq, when, f.Files, state)
	}
	tw.Flush()
	for _, f := range fs {
		fmt.Fprintf(e.Stdout, "%s  %s\n", f.ID, f.Link)
	}
	return nil
}

// listOr takes no arguments with --list, else exactly n.
func listOr(o *liveOptions, n int) cobra.PositionalArgs {
	return func(c *cobra.Command, args []string) error {
		if o.list {
			return cobra.NoArgs(c, args)
		}
		return cobra.ExactArgs(n)(c, args)
	}
}
