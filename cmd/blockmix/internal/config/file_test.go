package config

import (
	"bytes"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/blockmix/blockmix/cmd/blockmix/internal/atomicfile"
	"github.com/blockmix/blockmix/cmd/blockmix/internal/usage"
)

// TestReadTorn: a config.json a power cut tore (empty, cut short, zeros)
// is set aside with its bytes and a warning, and the defaults are used;
// a person's mistake inside the file is still an error naming the place,
// and the file stays where it is.
func TestReadTorn(t *testing.T) {
	whole := "{\n  \"listen\": [\"/ip4/0.0.0.0/tcp/4001\"],\n  \"replicas\": 3\n}\n"
	tornCases := map[string]string{
		"empty":            "",
		"white space":      "\n  \n",
		"cut in a key":     whole[:5],
		"cut in a string":  whole[:25],
		"cut after value":  whole[:len(whole)-3],
		"zeros":            string(make([]byte, len(whole))),
		"zeros at the end": whole[:20] + string(make([]byte, 30)),
	}
	for name, text := range tornCases {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "config.json")
			if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
				t.Fatal(err)
			}
			var lb bytes.Buffer
			c, found, err := Read(path, slog.New(slog.NewTextHandler(&lb, nil)))
			if err != nil || found || c.Listen != nil || c.Replicas != nil {
				t.Fatalf("Read of a torn config: %+v %v %v, want the defaults", c, found, err)
			}
			ps, _ := filepath.Glob(path + atomicfile.DamagedMarker + "*")
			if len(ps) != 1 {
				t.Fatalf("set aside as %v", ps)
			}
			if b, err := os.ReadFile(ps[0]); err != nil || string(b) != text {
				t.Errorf("the copy set aside holds %q (%v)", b, err)
			}
			if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("the torn config is still there: %v", err)
			}
			if log := lb.String(); !strings.Contains(log, "level=WARN") || !strings.Contains(log, "torn") || !strings.Contains(log, ps[0]) {
				t.Errorf("no warning naming the copy:\n%s", log)
			}
		})
	}

	// A person's edits: errors that say where, and the file stays.
	for _, text := range []string{
		"{\n  \"listen\": [\"/ip4/0.0.0.0/tcp/4001\",]\n}\n", // a syntax error mid-file
		`{"replicas": 3}}`,  // one brace too many
		`{"replicas": "3"}`, // well formed, wrong
		`{"listn": []}`,
	} {
		path := filepath.Join(t.TempDir(), "config.json")
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		var lb bytes.Buffer
		_, _, err := Read(path, slog.New(slog.NewTextHandler(&lb, nil)))
		if !usage.Is(err) || !strings.Contains(err.Error(), "config "+path+": ") {
			t.Errorf("config %q: %v, want a usage error naming the file", text, err)
		}
		if b, rerr := os.ReadFile(path); rerr != nil || string(b) != text {
			t.Errorf("config %q was moved or changed: %v", text, rerr)
		}
		if lb.Len() != 0 {
			t.Errorf("config %q logged:\n%s", text, lb.String())
		}
	}
}
