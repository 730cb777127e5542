package main

import (
	"os"
	"strings"
	"testing"
)

// TestGetSaysNameCleaned: a recipe whose name would make a hidden file
// (or hides a direction change) is saved under the cleaned name, and get
// says so.
func TestGetSaysNameCleaned(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.file("x.txt", []byte("export EVIL=1\n"))
	rc := w.okLine("put", "x.txt")
	link := rc[:strings.LastIndex(rc, "/")+1] + ".bashrc"
	r := w.want(0, "get", link)
	if !strings.Contains(string(r.stderr), `cleaned to "bashrc"`) {
		t.Errorf("get did not say the name was cleaned:\n%s", r.stderr)
	}
	mustNotExist(t, w.path(".bashrc"))
	if b, err := os.ReadFile(w.path("bashrc")); err != nil || string(b) != "export EVIL=1\n" {
		t.Fatalf("the file under its cleaned name: %q, %v", b, err)
	}
}
