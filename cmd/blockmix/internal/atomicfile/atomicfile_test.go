package atomicfile

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// partials lists the temporary files Write left in dir.
func partials(t *testing.T, dir string) []string {
	t.Helper()
	ps, err := filepath.Glob(filepath.Join(dir, ".*"+PartialMarker+"*"))
	if err != nil {
		t.Fatal(err)
	}
	return ps
}

// TestWriteFileOldOrNew: at every step of WriteFile the name holds the
// old content or the whole new one; the new content is fsynced before it
// takes the name; a write stopped at any step (a crash) leaves the old
// content and no temporary file.
func TestWriteFileOldOrNew(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "f.json")
	oldData, newData := []byte(`{"old": 1}`), []byte(`{"new": 22222}`)
	if err := os.WriteFile(path, oldData, 0o600); err != nil {
		t.Fatal(err)
	}
	read := func(p string) []byte {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	var steps []string
	testStep = func(step, tmp string) error {
		steps = append(steps, step)
		switch step {
		case "synced":
			if got := read(path); !bytes.Equal(got, oldData) {
				t.Errorf("the name holds %q before the rename", got)
			}
			if got := read(tmp); !bytes.Equal(got, newData) {
				t.Errorf("the temporary file holds %q once synced", got)
			}
		case "renamed":
			if got := read(path); !bytes.Equal(got, newData) {
				t.Errorf("the name holds %q after the rename", got)
			}
		}
		return nil
	}
	t.Cleanup(func() { testStep = nil })
	if err := WriteFile(path, newData, 0o600); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(steps) != "[synced renamed]" {
		t.Errorf("steps %v, want the fsync before the rename", steps)
	}
	if got := read(path); !bytes.Equal(got, newData) {
		t.Errorf("after WriteFile: %q", got)
	}

	// Stopped before the rename (by the hook, or by a failing fill): the
	// old content stays, the temporary file goes.
	crash := errors.New("power cut")
	testStep = func(step, _ string) error {
		if step == "synced" {
			return crash
		}
		return nil
	}
	if err := WriteFile(path, []byte("never"), 0o600); !errors.Is(err, crash) {
		t.Fatalf("WriteFile stopped after the fsync: %v", err)
	}
	if got := read(path); !bytes.Equal(got, newData) {
		t.Errorf("a write stopped before the rename changed the file: %q", got)
	}
	testStep = nil
	err := Write(path, true, 0o600, func(w io.Writer) error {
		_, _ = w.Write([]byte("half"))
		return crash
	})
	if !errors.Is(err, crash) {
		t.Fatalf("Write with a failing fill: %v", err)
	}
	if got := read(path); !bytes.Equal(got, newData) {
		t.Errorf("a failed fill changed the file: %q", got)
	}
	if ps := partials(t, dir); len(ps) != 0 {
		t.Errorf("temporary files left behind: %v", ps)
	}
}

// TestWriteFileConcurrent: writers of one name at once each use their own
// temporary file: the name ends up holding one writer's whole content,
// and no temporary file is left.
func TestWriteFileConcurrent(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "ledger.json")
	const writers = 16
	contents := map[string]bool{}
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for i := range writers {
		data := strings.Repeat(fmt.Sprintf("writer %02d ", i), 4000)
		contents[data] = true
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- WriteFile(path, []byte(data), 0o600)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !contents[string(b)] {
		t.Errorf("the file holds a mix or a part of the writers' contents (%d bytes)", len(b))
	}
	if ps := partials(t, dir); len(ps) != 0 {
		t.Errorf("temporary files left behind: %v", ps)
	}
}

// TestSetAside: a damaged file moves to NAME.damaged-TIME with its bytes
// intact, and its name is free.
func TestSetAside(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "group.json")
	torn := []byte(`{"name": "fri`)
	if err := os.WriteFile(path, torn, 0o600); err != nil {
		t.Fatal(err)
	}
	aside, err := SetAside(path)
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Dir(aside) != dir || !strings.HasPrefix(filepath.Base(aside), "group.json"+DamagedMarker) {
		t.Errorf("set aside as %s", aside)
	}
	if b, err := os.ReadFile(aside); err != nil || !bytes.Equal(b, torn) {
		t.Errorf("the set-aside copy: %q, %v", b, err)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the damaged file is still under its name: %v", err)
	}
	if _, err := SetAside(path); err == nil {
		t.Error("SetAside of a missing file worked")
	}
}
