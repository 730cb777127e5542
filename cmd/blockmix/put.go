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
)

// putMemoryLimit is the soft memory limit of a put (see runPut).
const putMemoryLimit = 44 << 20

type putOptions struct {
	json bool
	t    int
	name string
	typ  string
	web  bool
}

// putOutput is one line of `put --json`.
type putOutput struct {
	Recipe    string `json:"recipe"`
	URL       string `json:"url"`
	Name      string `json:"name"`
	Size      int64  `json:"size"`
	Type      string `json:"type,omitempty"`
	NewBytes  int64  `json:"new_bytes"`
	NewBlocks int    `json:"new_blocks"`
	Blocks    int    `json:"blocks"`
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
synced before put reports success.`,
		Example: `  blockmix put holiday.jpg
  blockmix put --json a.pdf b.mp4
  tar c dir | blockmix put --name dir.tar -`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			return runPut(c.Context(), e, o, args)
		},
	}
	c.Flags().BoolVar(&o.json, "json", false, "print one JSON object per file: recipe, url, name, size, type, new_bytes, new_blocks, blocks")
	c.Flags().IntVarP(&o.t, "tuple", "t", mixer.DefaultT, "blocks per tuple (2..8): a source block is stored as the XOR of itself and t−1 others")
	c.Flags().StringVar(&o.name, "name", "", "file name to put in the recipe (default: the file's base name)")
	c.Flags().StringVar(&o.typ, "type", "", "media type to put in the recipe (default: from the name, else sniffed)")
	c.Flags().BoolVar(&o.web, "web", false, "print the clickable http://127.0.0.1:7788/r/… spelling instead of blockmix:…")
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
	// The live heap of a put is about 25 MiB (randomizer cache, blocks in
	// flight, the index's buffers); a soft limit keeps the garbage from
	// doubling it. GOMEMLIMIT overrides.
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(putMemoryLimit)
	}
	st, err := e.openStore(true)
	if err != nil {
		return err
	}
	defer st.Close()
	m, err := mixer.New(st, mixer.Options{T: o.t})
	if err != nil {
		return err
	}
	var outs []putOutput
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
	for _, out := range outs {
		if o.json {
			b, _ := json.Marshal(out)
			fmt.Fprintln(e.stdout, string(b))
		} else if o.web {
			fmt.Fprintln(e.stdout, out.URL)
		} else {
			fmt.Fprintln(e.stdout, out.Recipe)
		}
	}
	return nil
}

func putOne(ctx context.Context, e *env, m *mixer.Mixer, st recipe.Store, o putOptions, path string) (putOutput, error) {
	var r io.Reader
	size := int64(-1)
	name := o.name
	if path == "-" {
		r = e.stdin
	} else {
		f, err := os.Open(path)
		if err != nil {
			return putOutput{}, fmt.Errorf("open %s: %w", path, err)
		}
		defer f.Close()
		fi, err := f.Stat()
		if err != nil {
			return putOutput{}, fmt.Errorf("stat %s: %w", path, err)
		}
		r, size = f, fi.Size()
		if name == "" {
			name = filepath.Base(path)
		}
	}
	typ := o.typ
	var head []byte
	if typ == "" {
		typ = mime.TypeByExtension(filepath.Ext(name))
	}
	if typ == "" {
		// Sniff the first bytes, then put them back in front of the stream.
		head = make([]byte, 512)
		n, err := io.ReadFull(r, head)
		if err != nil && err != io.EOF && err != io.ErrUnexpectedEOF {
			return putOutput{}, fmt.Errorf("read %s: %w", path, err)
		}
		head = head[:n]
		typ = http.DetectContentType(head)
		r = io.MultiReader(bytesReader(head), r)
	}
	bar := e.newProgress(size, "mixing "+recipe.CleanName(name))
	res, err := recipe.Put(ctx, m, st, r, size, name, typ, bar)
	bar.finish()
	if err != nil {
		return putOutput{}, err
	}
	return putOutput{
		Recipe: res.Recipe.String(), URL: res.Recipe.URL(""), Name: res.Recipe.Name, Size: res.Recipe.Size,
		Type: res.Recipe.Type, NewBytes: res.NewBytes, NewBlocks: res.NewBlocks, Blocks: len(res.Blocks),
	}, nil
}
