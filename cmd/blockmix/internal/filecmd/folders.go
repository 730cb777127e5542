package filecmd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/blockmix/blockmix/cmd/blockmix/internal/base"
	"github.com/blockmix/blockmix/cmd/blockmix/internal/folder"
	"github.com/blockmix/blockmix/cmd/blockmix/internal/progress"
	"github.com/blockmix/blockmix/recipe"
	"github.com/blockmix/blockmix/webui/apiv1"
)

// daemonPuts is how many files of a folder go to or come from the daemon
// at once (it runs 8 transfers at most).
const daemonPuts = 4

// runPutFolders puts each of dirs as one folder recipe (put DIR...).
func runPutFolders(ctx context.Context, e *base.Env, o putOptions, dirs []string) error {
	if o.name != "" && len(dirs) > 1 {
		return base.BadUse("--name needs exactly one FOLDER")
	}
	if o.pass.Wanted() {
		return base.BadUse("--passphrase seals file recipes only; a folder recipe cannot be sealed yet")
	}
	if o.typ != "" {
		return base.BadUse("--type is for files; a folder recipe's type is %s", recipe.FolderType)
	}
	cache := folder.OpenCache(e.Repo().Path(folder.CacheFile))
	for _, dir := range dirs {
		var bar *progress.Bar
		var last int64
		opt := folder.PutOptions{Name: o.name, Cache: cache, Progress: func(rel string, doneFiles, files int, doneBytes, bytes int64) {
			if bar == nil {
				bar = e.NewProgress(bytes, fmt.Sprintf("putting %d files of %s", files, filepath.Base(dir)))
			}
			bar.Add(doneBytes - last)
			last = doneBytes
		}}
		var info apiv1.FolderInfo
		var err error
		if dc := e.Daemon(ctx); dc != nil {
			t, terr := dc.FolderTarget(ctx)
			if terr != nil {
				return terr
			}
			// Puts through the daemon overlap (each syncs and places on
			// its own), within its transfer slots.
			opt.Parallel = daemonPuts
			info, err = folder.Put(ctx, dir, t, opt)
		} else {
			info, err = e.Offline().PutFolder(ctx, o.t, dir, opt)
		}
		bar.Finish()
		if err != nil {
			return fmt.Errorf("put %s: %w", dir, err)
		}
		for _, s := range info.Skipped {
			if s.Renamed {
				fmt.Fprintf(e.Stderr, "blockmix: %s: put as %q: %s\n", s.Path, s.As, s.Reason)
			} else {
				fmt.Fprintf(e.Stderr, "blockmix: %s: skipped: %s\n", s.Path, s.Reason)
			}
		}
		if info.Placement != "" {
			fmt.Fprintf(e.Stderr, "blockmix: %s: %s\n", info.Name, info.Placement)
		}
		switch {
		case o.json:
			b, _ := json.Marshal(info)
			fmt.Fprintln(e.Stdout, string(b))
		case o.web:
			fmt.Fprintln(e.Stdout, info.URL)
		default:
			fmt.Fprintln(e.Stdout, info.Recipe)
		}
	}
	return nil
}

// folderGet is get's work on a folder recipe: rc is the folder (or,
// with p, the folder whose entry at p is wanted). It returns the file
// recipe to get as a file when p names a file, else gets the tree and
// returns done.
func folderGet(ctx context.Context, e *base.Env, o getOptions, rc recipe.Recipe, p string) (file recipe.Recipe, done bool, err error) {
	var src folder.Source
	var list recipe.Lister
	dc := e.Daemon(ctx)
	if dc != nil {
		src = dc.FolderSource()
		list = src.List
	} else {
		list = e.Offline().Lister()
	}
	if p != "" {
		ent, err := recipe.FindInFolder(ctx, list, rc, p)
		if err != nil {
			return rc, false, folderUse(err)
		}
		if !ent.Dir {
			return ent.Recipe, false, nil
		}
		rc = ent.Recipe
	}
	if o.pass.Wanted() {
		return rc, false, base.BadUse("--passphrase opens sealed file recipes; this is a folder recipe")
	}
	dest := o.out
	if dest == "" {
		dest = rc.Name
		if dest == "" {
			dest = "blockmix-" + rc.Key()[:12]
		}
	}
	if dest == "-" {
		return rc, false, base.BadUse("a folder cannot go to standard output: get it into a folder with -o DIR, or get one file with RECIPE/path/in/folder")
	}
	var bar *progress.Bar
	var last int64
	opt := folder.GetOptions{Force: o.force, Progress: func(_ string, done, total int64) {
		if bar == nil {
			bar = e.NewProgress(total, "rebuilding "+recipe.CleanName(filepath.Base(dest)))
		}
		bar.Add(done - last)
		last = done
	}}
	var res folder.GetResult
	if dc != nil {
		opt.Parallel = daemonPuts
		res, err = folder.Get(ctx, src, rc, dest, opt)
	} else {
		res, err = e.Offline().GetFolder(ctx, rc, dest, opt)
	}
	bar.Finish()
	if err != nil {
		return rc, true, folderUse(err)
	}
	if o.asJSON {
		b, _ := json.Marshal(res)
		fmt.Fprintln(e.Stdout, string(b))
	}
	return rc, true, nil
}

// folderUse makes a bad folder listing or path, or a folder in the way,
// bad input (exit code 2).
func folderUse(err error) error {
	if errors.Is(err, recipe.ErrBadFolder) || errors.Is(err, folder.ErrNotEmpty) || errors.Is(err, recipe.ErrNoEntry) {
		return base.BadUse("%w", err)
	}
	return err
}

type lsOptions struct {
	json, recursive bool
}

func NewLsCommand(e *base.Env) *cobra.Command {
	var o lsOptions
	c := &cobra.Command{
		Use:   "ls RECIPE[/path/in/folder]",
		Short: "List a folder recipe without fetching its files",
		Long: `ls lists the entries of a folder recipe (from 'put DIR'): mode, size,
modification time and name, folders with a trailing slash. Only the
folder listings are read (fetched from other nodes when a daemon runs),
never the files. RECIPE/path lists a folder inside it.`,
		Example: `  blockmix ls 'blockmix:aefc…/photos'
  blockmix ls -r --json 'blockmix:aefc…/photos/2024'`,
		Args: cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			return runLs(c.Context(), e, o, args[0])
		},
	}
	c.Flags().BoolVar(&o.json, "json", false, "print the listing as JSON: recipe, name, path, entries [{name, path, dir, mode, mtime, size, type, recipe}]")
	c.Flags().BoolVarP(&o.recursive, "recursive", "r", false, "list the whole tree, with paths")
	return c
}

func runLs(ctx context.Context, e *base.Env, o lsOptions, text string) error {
	rc, p, err := recipe.ParseFolderPath(text)
	if err != nil {
		return folderUse(err)
	}
	if !rc.IsFolder() {
		return base.BadUse("%s is the recipe of a file, not of a folder", rc.Name)
	}
	l := apiv1.FolderList{Recipe: rc.String(), Name: rc.Name, Path: p}
	if dc := e.Daemon(ctx); dc != nil {
		l, err = dc.Folder(ctx, rc, p, o.recursive)
	} else {
		l.Entries, err = e.Offline().ListFolder(ctx, rc, p, o.recursive)
	}
	if err != nil {
		return folderUse(err)
	}
	if o.json {
		e.PrintJSON(l)
		return nil
	}
	tw := tabwriter.NewWriter(e.Stdout, 0, 4, 2, ' ', tabwriter.AlignRight)
	for _, x := range l.Entries {
		mode := fs.FileMode(x.Mode)
		size := fmt.Sprint(x.Size)
		name := x.Name
		if o.recursive {
			name = x.Path
		}
		if x.Dir {
			mode |= fs.ModeDir
			size, name = "-", name+"/"
		}
		when := "-"
		if !x.ModTime.IsZero() {
			when = x.ModTime.Local().Format("2006-01-02 15:04")
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t %s\n", mode, size, when, strings.ReplaceAll(name, "\t", " "))
	}
	return tw.Flush()
}
