package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"os"
	"path/filepath"
	"runtime/debug"

	"github.com/spf13/cobra"

	"github.com/blockmix/blockmix/mixer"
	"github.com/blockmix/blockmix/recipe"
	"github.com/blockmix/blockmix/webui/apiv1"
)

// putMemoryLimit is the soft memory limit of a put (see runPut).
const putMemoryLimit = 44 << 20

type putOptions struct {
	json bool
	t    int
	name string
	typ  string
	web  bool
	pass passphraseOptions
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

func newPutCommand(e *env) *cobra.Command {
	var o putOptions
	c := &cobra.Command{
		Use:   "put FILE...",
		Short: "Mix files into the store and print one recipe per file",
		Long: `put cuts each FILE into blocks, mixes every block with existing blocks of
the store so that what is stored looks like noise, and prints the file's
recipe: the only key to get it back. "-" reads standard input (name it with
--name).

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
  blockmix put --passphrase tax-return.pdf`,
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
	o.pass.addPutFlags(c.Flags())
	return c
}

func runPut(ctx context.Context, e *env, o putOptions, files []string) error {
	if err := mixer.ValidT(o.t); err != nil {
		return badUse("--tuple: %w", err)
	}
	if o.name != "" && len(files) > 1 {
		return badUse("--name needs exactly one FILE")
	}
	for _, f := range files {
		if f == "-" {
			continue
		}
		if fi, err := os.Stat(f); err != nil {
			return badUse("cannot read %s: %w", f, err)
		} else if !fi.Mode().IsRegular() {
			return badUse("%s is not a regular file", f)
		}
	}
	// Ask before the work: a mistyped passphrase costs nothing yet.
	pass, err := e.sealingPassphrase(o.pass, files)
	if err != nil {
		return err
	}
	// The live heap of a put is about 25 MiB (randomizer cache, blocks in
	// flight, the index's buffers); a soft limit keeps the garbage from
	// doubling it. GOMEMLIMIT overrides.
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(putMemoryLimit)
	}
	var outs []putOutput
	if dc := e.daemon(ctx); dc != nil {
		var err error
		if outs, err = putViaDaemon(ctx, e, dc, o, files); err != nil {
			return err
		}
	} else {
		st, err := e.openStore(true)
		if err != nil {
			return err
		}
		defer st.Close()
		m, err := mixer.New(st, mixer.Options{T: o.t})
		if err != nil {
			return err
		}
		for _, f := range files {
			out, err := putOne(ctx, e, m, st, o, f)
			if err != nil {
				return err
			}
			outs = append(outs, out)
		}
		if err := st.Sync(); err != nil {
			return fmt.Errorf("sync store: %w", err)
		}
	}
	if pass != nil {
		if err := sealOutputs(outs, pass); err != nil {
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
			fmt.Fprintln(e.stdout, string(b))
		} else if o.web {
			fmt.Fprintln(e.stdout, out.URL)
		} else {
			fmt.Fprintln(e.stdout, out.Recipe)
		}
	}
	return nil
}

// input is one file to put, opened.
type input struct {
	r         io.Reader
	size      int64
	name, typ string
	close     func()
}

// openInput opens path ("-": standard input) and works out its name and
// media type (from the name, else sniffed from the first bytes).
func openInput(e *env, o putOptions, path string) (input, error) {
	in := input{size: -1, name: o.name, typ: o.typ, close: func() {}}
	if path == "-" {
		in.r = e.stdin
	} else {
		f, err := os.Open(path)
		if err != nil {
			return in, fmt.Errorf("open %s: %w", path, err)
		}
		fi, err := f.Stat()
		if err != nil {
			f.Close()
			return in, fmt.Errorf("stat %s: %w", path, err)
		}
		in.r, in.size, in.close = f, fi.Size(), func() { f.Close() }
		if in.name == "" {
			in.name = filepath.Base(path)
		}
	}
	if in.typ == "" {
		in.typ = mime.TypeByExtension(filepath.Ext(in.name))
	}
	if in.typ == "" {
		// Sniff the first bytes, then put them back in front of the stream.
		head := make([]byte, 512)
		n, err := io.ReadFull(in.r, head)
		if err != nil && err != io.EOF && err != io.ErrUnexpectedEOF {
			in.close()
			return in, fmt.Errorf("read %s: %w", path, err)
		}
		in.typ = http.DetectContentType(head[:n])
		in.r = io.MultiReader(bytesReader(head[:n]), in.r)
	}
	return in, nil
}

func putOne(ctx context.Context, e *env, m *mixer.Mixer, st recipe.Store, o putOptions, path string) (putOutput, error) {
	in, err := openInput(e, o, path)
	if err != nil {
		return putOutput{}, err
	}
	defer in.close()
	bar := e.newProgress(in.size, "mixing "+recipe.CleanName(in.name))
	res, err := recipe.Put(ctx, m, st, in.r, in.size, in.name, in.typ, bar)
	bar.finish()
	if err != nil {
		return putOutput{}, err
	}
	return putOutput{
		Recipe: res.Recipe.String(), URL: res.Recipe.URL(""), Name: res.Recipe.Name, Size: res.Recipe.Size,
		Type: res.Recipe.Type, NewBytes: res.NewBytes, NewBlocks: res.NewBlocks, Blocks: len(res.Blocks),
	}, nil
}

// putViaDaemon puts the files through the daemon that runs on the repo: it
// mixes them into its store and places their blocks on other nodes.
func putViaDaemon(ctx context.Context, e *env, dc *daemonClient, o putOptions, files []string) ([]putOutput, error) {
	var outs []putOutput
	for _, path := range files {
		in, err := openInput(e, o, path)
		if err != nil {
			return outs, err
		}
		bar := e.newProgress(in.size, "sending "+recipe.CleanName(in.name))
		info, err := dc.put(ctx, io.TeeReader(in.r, bar), in.size, in.name, in.typ)
		bar.finish()
		in.close()
		if err != nil {
			return outs, fmt.Errorf("put %s: %w", path, err)
		}
		if info.Placement != "" {
			fmt.Fprintf(e.stderr, "blockmix: %s: %s\n", info.Name, info.Placement)
		}
		outs = append(outs, info)
	}
	return outs, nil
}
