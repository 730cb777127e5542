// Package passphrase gets the passphrase that seals or opens a recipe:
// from --passphrase-file, or asked on the terminal without echo; and
// seals and opens recipes with it.
package passphrase

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/pflag"
	"golang.org/x/term"

	"github.com/blockmix/blockmix/cmd/blockmix/internal/usage"
	"github.com/blockmix/blockmix/recipe"
	"github.com/blockmix/blockmix/webui/apiv1"
)

// maxPassphrase bounds what is read as a passphrase (the first line of a
// --passphrase-file, or what is typed).
const maxPassphrase = 4096

// shortPassphrase is the length under which put warns: a sealed recipe can
// be attacked offline, and only the passphrase stands in the way.
const shortPassphrase = 10

// Options are the flags that give a passphrase to seal or open a
// recipe.
type Options struct {
	ask  bool   // --passphrase (put only): ask on the terminal
	file string // --passphrase-file: its first line; "-" for standard input
}

// Prompter reads passphrases from In (a file, or the terminal it is) and
// talks to the user on Err.
type Prompter struct {
	In  io.Reader
	Err io.Writer
}

// AddPutFlags adds put's flags: --passphrase and --passphrase-file.
func (o *Options) AddPutFlags(fs *pflag.FlagSet) {
	fs.BoolVar(&o.ask, "passphrase", false, "seal the recipe with a passphrase, asked twice on the terminal: print blockmix:sealed:… instead")
	fs.StringVar(&o.file, "passphrase-file", "", "seal the recipe with the first line of this file as the passphrase (- for standard input; for scripts)")
}

// Wanted reports whether a flag gives or asks for a passphrase.
func (o Options) Wanted() bool { return o.ask || o.file != "" }

// AddGetFlags adds --passphrase-file, for the commands that open a recipe.
func (o *Options) AddGetFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.file, "passphrase-file", "", "open a sealed recipe with the first line of this file as the passphrase (- for standard input); without it, get asks on the terminal")
}

// Sealing returns the passphrase put seals with, or nil when no
// flag asks for one. files are put's arguments: "-" among them takes
// standard input, which then cannot also give the passphrase.
func (e Prompter) Sealing(o Options, files []string) ([]byte, error) {
	stdinIsData := false
	for _, f := range files {
		stdinIsData = stdinIsData || f == "-"
	}
	var pass []byte
	switch {
	case o.ask && o.file != "":
		return nil, usage.Errorf("--passphrase and --passphrase-file: give only one")
	case o.file != "":
		if o.file == "-" && stdinIsData {
			return nil, usage.Errorf("--passphrase-file -: standard input is already the file to put; put the passphrase in a file")
		}
		var err error
		if pass, err = e.readFile(o.file); err != nil {
			return nil, err
		}
	case o.ask:
		fd, ok := e.terminal()
		if !ok || stdinIsData {
			return nil, usage.Errorf("--passphrase asks on the terminal, and standard input is not one: use --passphrase-file FILE")
		}
		var err error
		if pass, err = e.ask(fd, "passphrase to seal the recipe: "); err != nil {
			return nil, err
		}
		again, err := e.ask(fd, "the same passphrase again: ")
		if err != nil {
			return nil, err
		}
		if !bytes.Equal(pass, again) {
			return nil, usage.Errorf("the two passphrases differ: nothing was put")
		}
	default:
		return nil, nil
	}
	if n := len([]rune(string(pass))); n < shortPassphrase {
		fmt.Fprintf(e.Err, "blockmix: warning: a passphrase of %d characters is easy to guess for whoever gets the sealed recipe; several words are better\n", n)
	}
	return pass, nil
}

// opening returns the passphrase for a sealed recipe: from
// --passphrase-file, else asked once on the terminal.
func (e Prompter) opening(o Options) ([]byte, error) {
	if o.file != "" {
		return e.readFile(o.file)
	}
	fd, ok := e.terminal()
	if !ok {
		return nil, usage.Errorf("the recipe is sealed and standard input is not a terminal to ask for its passphrase on: give it with --passphrase-file FILE")
	}
	return e.ask(fd, "passphrase of the sealed recipe: ")
}

// terminal returns standard input's descriptor when it is a terminal.
func (e Prompter) terminal() (int, bool) {
	f, ok := e.In.(*os.File)
	if !ok || f == nil || !term.IsTerminal(int(f.Fd())) {
		return 0, false
	}
	return int(f.Fd()), true
}

// ask prompts on standard error and reads a line from the
// terminal fd without echo.
func (e Prompter) ask(fd int, prompt string) ([]byte, error) {
	fmt.Fprint(e.Err, prompt)
	pass, err := term.ReadPassword(fd)
	fmt.Fprintln(e.Err)
	if err != nil {
		return nil, fmt.Errorf("read the passphrase: %w", err)
	}
	if len(pass) == 0 {
		return nil, usage.Errorf("the passphrase is empty")
	}
	if len(pass) > maxPassphrase {
		return nil, usage.Errorf("the passphrase is longer than %d bytes", maxPassphrase)
	}
	return pass, nil
}

// readFile returns the first line of path ("-": standard input)
// without its line ending. Spaces are part of the passphrase.
func (e Prompter) readFile(path string) ([]byte, error) {
	var r io.Reader
	if path == "-" {
		r = e.In
	} else {
		f, err := os.Open(path)
		if err != nil {
			return nil, usage.Errorf("--passphrase-file: %w", err)
		}
		defer f.Close()
		r = f
	}
	line, err := bufio.NewReaderSize(io.LimitReader(r, maxPassphrase+2), maxPassphrase+2).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, usage.Errorf("--passphrase-file %s: %w", path, err)
	}
	if !strings.HasSuffix(line, "\n") && len(line) > maxPassphrase {
		return nil, usage.Errorf("--passphrase-file %s: the first line is longer than %d bytes", path, maxPassphrase)
	}
	line = strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r")
	if line == "" {
		return nil, usage.Errorf("--passphrase-file %s: the first line is empty", path)
	}
	return []byte(line), nil
}

// Unseal opens a sealed recipe. A wrong passphrase is bad input
// (exit code 2).
func (e Prompter) Unseal(o Options, s recipe.Sealed) (recipe.Recipe, error) {
	pass, err := e.opening(o)
	if err != nil {
		return recipe.Recipe{}, err
	}
	rc, err := recipe.OpenSealed(s, pass)
	if errors.Is(err, recipe.ErrWrongPassphrase) {
		return recipe.Recipe{}, usage.Errorf("%w: it does not open this sealed recipe (nothing was fetched or written)", recipe.ErrWrongPassphrase)
	}
	return rc, err
}

// RecipeArg reads a recipe argument in any spelling: a sealed one is
// opened here, with the passphrase asked or read from --passphrase-file.
func (e Prompter) RecipeArg(o Options, text string) (recipe.Recipe, error) {
	rc, sealed, err := recipe.ParseAny(text)
	if err != nil {
		return recipe.Recipe{}, usage.Errorf("%v (the recipe is damaged or was made by another program)", err)
	}
	if sealed != nil {
		return e.Unseal(o, *sealed)
	}
	return rc, nil
}

// SealPut replaces each output's recipe and url by their sealed
// spellings under pass (each with its own salt).
func SealPut(outs []apiv1.PutInfo, pass []byte) error {
	for i := range outs {
		rc, err := recipe.Parse(outs[i].Recipe)
		if err != nil {
			return fmt.Errorf("seal the recipe of %s: %w", outs[i].Name, err)
		}
		s, err := recipe.Seal(rc, pass)
		if err != nil {
			return err
		}
		base := ""
		if k := strings.Index(outs[i].URL, "/r/"); k > 0 {
			base = outs[i].URL[:k]
		}
		outs[i].Recipe, outs[i].URL = s.String(), s.URL(base)
	}
	return nil
}
