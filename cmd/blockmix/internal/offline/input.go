package offline

import (
	"bytes"
	"fmt"
	"io"
	"mime"
	"net/http"
	"os"
	"path/filepath"
)

// Input is one file to put, opened.
type Input struct {
	R          io.Reader
	Size       int64 // -1: unknown (standard input)
	Name, Type string
	Close      func()
}

// OpenInput opens path ("-": stdin) and works out its name (name, else the
// file's base name) and media type (typ, else from the name, else sniffed
// from the first bytes).
func OpenInput(path, name, typ string, stdin io.Reader) (Input, error) {
	in := Input{Size: -1, Name: name, Type: typ, Close: func() {}}
	if path == "-" {
		in.R = stdin
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
		in.R, in.Size, in.Close = f, fi.Size(), func() { f.Close() }
		if in.Name == "" {
			in.Name = filepath.Base(path)
		}
	}
	if in.Type == "" {
		in.Type = mime.TypeByExtension(filepath.Ext(in.Name))
	}
	if in.Type == "" {
		// Sniff the first bytes, then put them back in front of the stream.
		head := make([]byte, 512)
		n, err := io.ReadFull(in.R, head)
		if err != nil && err != io.EOF && err != io.ErrUnexpectedEOF {
			in.Close()
			return in, fmt.Errorf("read %s: %w", path, err)
		}
		in.Type = http.DetectContentType(head[:n])
		in.R = io.MultiReader(bytes.NewReader(head[:n]), in.R)
	}
	return in, nil
}
