package main

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestStuckDaemon: a daemon that takes connections but never answers (a
// stopped or wedged process) gives "the daemon does not answer" within
// seconds, for a question (status) and for work (put), instead of a hang.
func TestStuckDaemon(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release)
	w := newWorld(t)
	if err := os.WriteFile(filepath.Join(w.repo, "api"), []byte(srv.URL+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	w.file("f.txt", []byte("hello"))
	t.Run("commands", func(t *testing.T) {
		for _, args := range [][]string{{"status"}, {"put", "f.txt"}} {
			t.Run(args[0], func(t *testing.T) {
				t.Parallel()
				start := time.Now()
				r := w.with(t).run(args...)
				if r.code != 1 || !strings.Contains(string(r.stderr), "the daemon does not answer") {
					t.Errorf("%v", r)
				}
				if d := time.Since(start); d > time.Minute {
					t.Errorf("%s took %v to say the daemon does not answer", args[0], d)
				}
			})
		}
	}) // returns once both parallel subtests are done, before release closes
}
