package filecmd

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/blockmix/blockmix/cmd/blockmix/internal/atomicfile"
	"github.com/blockmix/blockmix/cmd/blockmix/internal/base"
	"github.com/blockmix/blockmix/cmd/blockmix/internal/passphrase"
	"github.com/blockmix/blockmix/cmd/blockmix/internal/testhook"
	"github.com/blockmix/blockmix/recipe"
)

type getOptions struct {
	out    string
	force  bool
	asJSON bool
	pass   passphrase.Options
}

// getOutput is `get --json`.
type getOutput struct {
	Path   string `json:"path"`
	Name   string `json:"name"`
	Size   int64  `json:"size"`
	Type   string `json:"type,omitempty"`
	SHA256 string `json:"sha256"`
}

func NewGetCommand(e *base.Env) *cobra.Command {
	var o getOptions
	c := &cobra.Command{
		Use:   "get RECIPE",
		Short: "Rebuild a file from its recipe",
		Long: `get rebuilds the file a recipe names and writes it under the recipe's file
name in the current directory (or in -o DIR), or to -o PATH, or to standard
output with -o -. RECIPE may be either spelling (blockmix:… or http://…/r/…), and may
be pasted with spaces or line breaks in it: quote it.

The file is written under a temporary name and renamed only once its
whole-file sha256 matches; an existing file is never overwritten without
--force. A damaged recipe (typo, cut short) exits with code 2.

A sealed recipe (blockmix:sealed:… or …/r/sealed:…, from 'put --passphrase')
is opened here first, with the passphrase asked on the terminal or read
from --passphrase-file FILE; a daemon, if one runs, gets only the opened
recipe, never the passphrase. A wrong passphrase exits with code 2 and
writes nothing.

A folder recipe (from 'put DIR') rebuilds the whole tree into a new or
empty folder: -o DIR, else the folder's name here (--force writes into a
folder that is not empty). Names are cleaned as for files, modes
(permission bits) and modification times are kept, every file is checked
and renamed into place, and nothing is written outside the folder.
RECIPE/path/in/folder gets one file (or one sub folder) out of it.`,
		Example: `  blockmix get 'blockmix:afzq…/holiday.jpg'
  blockmix get -o - "$RECIPE" | mpv -
  blockmix get --passphrase-file ~/.secret 'blockmix:sealed:…'
  blockmix get -o photos-copy 'blockmix:aefc…/photos'
  blockmix get 'blockmix:aefc…/photos/2024/beach.jpg'`,
		Args: cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			return runGet(c.Context(), e, o, args[0])
		},
	}
	c.Flags().StringVarP(&o.out, "output", "o", "", "where to write the file; - for standard output")
	c.Flags().BoolVar(&o.force, "force", false, "overwrite an existing file")
	c.Flags().BoolVar(&o.asJSON, "json", false, "print JSON once the file is saved: path, name, size, type, sha256")
	o.pass.AddGetFlags(c.Flags())
	return c
}

func runGet(ctx context.Context, e *base.Env, o getOptions, text string) error {
	rc, sealed, err := recipe.ParseAny(text)
	if err != nil {
		return err
	}
	if sealed == nil && rc.IsFolder() {
		frc, p, err := recipe.ParseFolderPath(text)
		if err != nil {
			return folderUse(err)
		}
		file, done, err := folderGet(ctx, e, o, frc, p) // folders.go
		if done || err != nil {
			return err
		}
		rc, text = file, file.String()
	}
	if sealed != nil {
		if rc, err = e.Prompter().Unseal(o.pass, *sealed); err != nil {
			return err
		}
		text = rc.String() // what a daemon gets: never the passphrase
	}
	name := rc.Name
	if name == "" {
		name = "blockmix-" + rc.Key()[:12]
	}
	if rc.Renamed {
		fmt.Fprintf(e.Stderr, "blockmix: the file name in the recipe was cleaned to %q: it held invisible, direction-changing or control characters, a folder or a leading dot\n", name)
	}
	dest := o.out
	if dest == "" {
		dest = name
	} else if fi, err := os.Stat(dest); err == nil && fi.IsDir() {
		dest = filepath.Join(dest, name) // -o DIR: the recipe's name inside it
	}
	if dest != "-" && !o.force {
		if _, err := os.Lstat(dest); err == nil {
			return base.BadUse("%s exists; use --force to overwrite it or -o to choose another name", dest)
		}
	}
	if dest != "-" {
		if n := atomicfile.Sweep(filepath.Dir(dest)); n > 0 {
			fmt.Fprintf(e.Stderr, "blockmix: removed %d partial files that interrupted gets left in %s\n", n, filepath.Dir(dest))
		}
	}
	if dc := e.Daemon(ctx); dc != nil {
		bar := e.NewProgress(rc.Size, "fetching "+recipe.CleanName(filepath.Base(dest)))
		defer bar.Finish()
		if dest == "-" {
			return dc.Get(ctx, text, io.MultiWriter(e.Stdout, bar))
		}
		h := sha256.New()
		if err := atomicfile.Write(dest, o.force, 0, func(w io.Writer) error { return dc.Get(ctx, text, io.MultiWriter(w, h, bar)) }); err != nil {
			return err
		}
		if o.asJSON {
			b, _ := json.Marshal(getOutput{Path: dest, Name: rc.Name, Size: rc.Size, Type: rc.Type, SHA256: hex.EncodeToString(h.Sum(nil))})
			fmt.Fprintln(e.Stdout, string(b))
		}
		return nil
	}
	what := "rebuilding " + recipe.CleanName(filepath.Base(dest))
	if dest == "-" {
		if o.asJSON {
			return base.BadUse("--json prints a summary on standard output: it does not go with -o -")
		}
		_, err := e.Offline().Get(ctx, rc, e.Stdout, what)
		return err
	}
	var sum [32]byte
	err = atomicfile.Write(dest, o.force, 0, func(w io.Writer) (err error) {
		sum, err = e.Offline().Get(ctx, rc, testhook.PauseWriter(ctx, w, e.Stderr), what)
		return err
	})
	if err != nil || !o.asJSON {
		return err
	}
	b, _ := json.Marshal(getOutput{Path: dest, Name: rc.Name, Size: rc.Size, Type: rc.Type, SHA256: hex.EncodeToString(sum[:])})
	fmt.Fprintln(e.Stdout, string(b))
	return nil
}
