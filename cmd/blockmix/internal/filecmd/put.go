// Package filecmd holds the commands that move files in and out of the
// store: put (files and folders), get (a file, a folder, one file of a
// folder) and ls (a folder recipe's listing).
package filecmd

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/blockmix/blockmix/blocks/erasure"
	"github.com/blockmix/blockmix/cmd/blockmix/internal/base"
	"github.com/blockmix/blockmix/cmd/blockmix/internal/client"
	"github.com/blockmix/blockmix/cmd/blockmix/internal/folder"
	"github.com/blockmix/blockmix/cmd/blockmix/internal/memtrim"
	"github.com/blockmix/blockmix/cmd/blockmix/internal/offline"
	"github.com/blockmix/blockmix/cmd/blockmix/internal/passphrase"
	"github.com/blockmix/blockmix/cmd/blockmix/internal/testhook"
	"github.com/blockmix/blockmix/mixer"
	"github.com/blockmix/blockmix/recipe"
	"github.com/blockmix/blockmix/webui/apiv1"
)

type putOptions struct {
	json bool
	t    int
	name string
	typ  string
	web  bool
	pass passphrase.Options
	// redundancy is --redundancy as given ("" for the daemon's default).
	redundancy string
}

// putOutput is one line of `put --json`.
type putOutput = apiv1.PutInfo

// sealedPutOutput is one line of `put --json` with a passphrase: recipe and
// url hold the sealed spellings, and sealed is true. name, size and type
// are the file's, for the uploader's records; the sealed recipe hides them.
type sealedPutOutput struct {
	putOutput
	Sealed bool `json:"sealed"`
}

func NewPutCommand(e *base.Env) *cobra.Command {
	var o putOptions
	c := &cobra.Command{
		Use:   "put FILE...|DIR...",
		Short: "Mix files into the store and print one recipe per file (or per folder)",
		Long: `put cuts each FILE into blocks, mixes every block with existing blocks of
the store so that what is stored looks like noise, and prints the file's
recipe: the only key to get it back. "-" reads standard input (name it with
--name).

A folder (DIR) gives one folder recipe for its whole tree: every file is
mixed, and a listing per folder (names, modes, modification times, sizes
and each file's recipe) is stored and mixed like a file. Symbolic links
and special files are skipped (and said so; --json lists them under
"skipped"). Putting the folder again reuses the recipes of the files that
did not change (the repo's folder-cache.json remembers them), so that it
costs the changed files and the listings of the folders on their paths.

The recipes go to standard output, one line per file in the order given; a
progress bar goes to standard error when it is a terminal. The store is
synced before put reports success.

--passphrase (asked twice on the terminal) or --passphrase-file FILE seals
each recipe: put prints blockmix:sealed:… (or http://127.0.0.1:7788/r/sealed:…
with --web) instead, which tells neither the blocks nor the file's name to
whoever sees it without the passphrase. 'blockmix get' opens it, asking for
the passphrase. The repo's own file list ('blockmix files') keeps the plain
recipe.`,
		Example: `  blockmix put holiday.jpg
  blockmix put --json a.pdf b.mp4
  tar c dir | blockmix put --name dir.tar -
  blockmix put --passphrase tax-return.pdf
  blockmix put --json photos/`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			return runPut(c.Context(), e, o, args)
		},
	}
	c.Flags().BoolVar(&o.json, "json", false, "print one JSON object per file: recipe, url, name, size, type, new_bytes, new_blocks, blocks (sealed: recipe and url are the sealed spellings, and \"sealed\": true)")
	c.Flags().IntVarP(&o.t, "tuple", "t", mixer.DefaultT, "blocks per tuple (2..8): a source block is stored as the XOR of itself and t−1 others")
	c.Flags().StringVar(&o.name, "name", "", "file name to put in the recipe (default: the file's base name)")
	c.Flags().StringVar(&o.typ, "type", "", "media type to put in the recipe (default: from the name, else sniffed)")
	c.Flags().BoolVar(&o.web, "web", false, "print the clickable http://127.0.0.1:7788/r/… spelling instead of blockmix:…")
	c.Flags().StringVar(&o.redundancy, "redundancy", "", "how the network keeps the file (needs the daemon): r:N, N copies of every block on N other nodes (the default, r:3 or the daemon's --replicas), or rs:K+M, Reed-Solomon erasure coding: every K blocks get M parity blocks, each of the K+M on a node of its own, so the file survives M nodes lost for (K+M)/K of its size (rs:4+2: 1.5×, against 3× for r:3); K 2..16, M 1..8")
	o.pass.AddPutFlags(c.Flags())
	return c
}

func runPut(ctx context.Context, e *base.Env, o putOptions, files []string) error {
	if err := mixer.ValidT(o.t); err != nil {
		return base.BadUse("--tuple: %w", err)
	}
	if o.redundancy != "" {
		if _, err := erasure.ParseRedundancy(o.redundancy); err != nil {
			return base.BadUse("--redundancy: %w", err)
		}
	}
	if dirs, err := folder.HasFolders(files); err != nil || dirs {
		if err != nil {
			return base.BadUse("%w", err)
		}
		if o.redundancy != "" {
			return base.BadUse("--redundancy is for files: a folder's files are kept as the daemon's default says (its --redundancy)")
		}
		return runPutFolders(ctx, e, o, files) // folders.go
	}
	if o.name != "" && len(files) > 1 {
		return base.BadUse("--name needs exactly one FILE")
	}
	for _, f := range files {
		if f == "-" {
			continue
		}
		if fi, err := os.Stat(f); err != nil {
			return base.BadUse("cannot read %s: %w", f, err)
		} else if !fi.Mode().IsRegular() {
			return base.BadUse("%s is not a regular file", f)
		}
	}
	// Ask before the work: a mistyped passphrase costs nothing yet.
	pass, err := e.Prompter().Sealing(o.pass, files)
	if err != nil {
		return err
	}
	// The live heap of a put is 30 to 50 MiB (randomizer cache, blocks in
	// flight, the index's buffers): the collector runs more often, so the
	// garbage does not double it (GOGC, GOMEMLIMIT override).
	defer memtrim.TightenForPut()()
	var outs []putOutput
	if dc := e.Daemon(ctx); dc != nil {
		if outs, err = putViaDaemon(ctx, e, dc, o, files); err != nil {
			return err
		}
	} else if o.redundancy != "" {
		return base.BadUse("--redundancy: no daemon runs on this repo; the blocks' copies and parity go to other nodes, so start 'blockmix daemon' first")
	} else if outs, err = e.Offline().Put(ctx, o.t, files, func(path string) (offline.Input, error) { return openInput(ctx, e, o, path) }); err != nil {
		return err
	}
	if pass != nil {
		if err := passphrase.SealPut(outs, pass); err != nil {
			return err
		}
	}
	for _, out := range outs {
		if o.json {
			var v any = out
			if pass != nil {
				v = sealedPutOutput{out, true}
			}
			b, _ := json.Marshal(v)
			fmt.Fprintln(e.Stdout, string(b))
		} else if o.web {
			fmt.Fprintln(e.Stdout, out.URL)
		} else {
			fmt.Fprintln(e.Stdout, out.Recipe)
		}
	}
	return nil
}

// openInput opens a file to put, with put's --name and --type.
func openInput(ctx context.Context, e *base.Env, o putOptions, path string) (offline.Input, error) {
	in, err := offline.OpenInput(path, o.name, o.typ, e.Stdin)
	in.R = testhook.PauseReader(ctx, in.R, e.Stderr)
	return in, err
}

// putViaDaemon puts the files through the daemon that runs on the repo: it
// mixes them into its store and places their blocks on other nodes.
func putViaDaemon(ctx context.Context, e *base.Env, dc *client.Client, o putOptions, files []string) ([]putOutput, error) {
	var outs []putOutput
	for _, path := range files {
		in, err := openInput(ctx, e, o, path)
		if err != nil {
			return outs, err
		}
		bar := e.NewProgress(in.Size, "sending "+recipe.CleanName(in.Name))
		info, err := dc.PutWith(ctx, io.TeeReader(in.R, bar), in.Size, in.Name, in.Type, o.redundancy)
		bar.Finish()
		in.Close()
		if err != nil {
			return outs, fmt.Errorf("put %s: %w", path, err)
		}
		if info.Placement != "" {
			fmt.Fprintf(e.Stderr, "blockmix: %s: %s\n", info.Name, info.Placement)
		}
		outs = append(outs, info)
	}
	return outs, nil
}
