package repo

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/libp2p/go-libp2p/core/crypto"

	"github.com/blockmix/blockmix/cmd/blockmix/internal/atomicfile"
)

// testRepo is a repo in a temporary directory whose log (debug and up)
// goes to the returned buffer.
func testRepo(t *testing.T) (Repo, *bytes.Buffer) {
	t.Helper()
	var lb bytes.Buffer
	return Repo{Dir: t.TempDir(), Log: slog.New(slog.NewTextHandler(&lb, &slog.HandlerOptions{Level: slog.LevelDebug}))}, &lb
}

// setAside returns the one file name was set aside as, checking that it
// holds want, byte for byte, and that name is gone or holds something
// else.
func setAside(t *testing.T, r Repo, name string, want []byte) string {
	t.Helper()
	ps, _ := filepath.Glob(r.Path(name + atomicfile.DamagedMarker + "*"))
	if len(ps) != 1 {
		t.Fatalf("%s set aside as %v, want one file", name, ps)
	}
	if b, err := os.ReadFile(ps[0]); err != nil || !bytes.Equal(b, want) {
		t.Errorf("%s set aside holds %q (%v), want %q", name, b, err, want)
	}
	return ps[0]
}

// torn is the ways a small file is found after a power cut: empty, cut
// short, zeros where the data was lost, garbage.
func torn(whole []byte) map[string][]byte {
	return map[string][]byte{
		"empty":     {},
		"truncated": whole[:len(whole)/2],
		"zeros":     make([]byte, len(whole)),
		"garbage":   []byte("\x8a\x01garbage"),
	}
}

// TestIdentityTorn: a torn identity key is set aside with its bytes, the
// node gets a new key (a new peer ID) and a warning says so.
func TestIdentityTorn(t *testing.T) {
	k, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	whole, err := crypto.MarshalPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	for name, b := range torn(whole) {
		t.Run(name, func(t *testing.T) {
			r, lb := testRepo(t)
			if err := os.WriteFile(r.Path(IdentityFile), b, 0o600); err != nil {
				t.Fatal(err)
			}
			if _, err := r.ReadIdentity(); !errors.Is(err, ErrDamaged) {
				t.Errorf("ReadIdentity of a torn key: %v, want ErrDamaged", err)
			}
			if _, err := os.Stat(r.Path(IdentityFile)); err != nil {
				t.Errorf("ReadIdentity moved the file: %v", err)
			}
			nk, err := r.Identity()
			if err != nil {
				t.Fatalf("Identity with a torn key: %v", err)
			}
			aside := setAside(t, r, IdentityFile, b)
			again, err := r.ReadIdentity()
			if err != nil || !again.Equals(nk) {
				t.Errorf("the new key is not saved: %v", err)
			}
			if log := lb.String(); !strings.Contains(log, "level=WARN") || !strings.Contains(log, "NEW PEER ID") || !strings.Contains(log, aside) {
				t.Errorf("no warning naming %s and the new peer ID:\n%s", aside, log)
			}
		})
	}
	// A whole key is kept as it is.
	r, lb := testRepo(t)
	if err := os.WriteFile(r.Path(IdentityFile), whole, 0o600); err != nil {
		t.Fatal(err)
	}
	if got, err := r.Identity(); err != nil || !got.Equals(k) {
		t.Errorf("a whole key: %v", err)
	}
	if lb.Len() != 0 {
		t.Errorf("a whole key logged:\n%s", lb)
	}
}

// TestGroupTorn: a torn group file is set aside with its bytes; the node
// is in no group, and a warning says so and how to rejoin.
func TestGroupTorn(t *testing.T) {
	whole, _ := json.Marshal(Group{Name: "friends", Key: hex.EncodeToString(make([]byte, 32))})
	cases := torn(whole)
	cases["short key"] = []byte(`{"name": "friends", "key": "00ff"}`)
	for name, b := range cases {
		t.Run(name, func(t *testing.T) {
			r, lb := testRepo(t)
			if err := os.WriteFile(r.Path(GroupFile), b, 0o600); err != nil {
				t.Fatal(err)
			}
			g, ok, err := r.Group()
			if err != nil || ok {
				t.Fatalf("Group with a torn file: %+v %v %v, want none and no error", g, ok, err)
			}
			aside := setAside(t, r, GroupFile, b)
			if _, err := os.Stat(r.Path(GroupFile)); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("the torn group file is still there: %v", err)
			}
			if log := lb.String(); !strings.Contains(log, "level=WARN") || !strings.Contains(log, "OUTSIDE its private group") ||
				!strings.Contains(log, "blockmix group join") || !strings.Contains(log, aside) {
				t.Errorf("no warning that the node is outside its group:\n%s", log)
			}
		})
	}
	// A whole group file is read.
	r, _ := testRepo(t)
	if err := os.WriteFile(r.Path(GroupFile), whole, 0o600); err != nil {
		t.Fatal(err)
	}
	if g, ok, err := r.Group(); err != nil || !ok || g.Name != "friends" {
		t.Errorf("a whole group file: %+v %v %v", g, ok, err)
	}
}

// TestAPIURLTorn: the api file is a hint: a torn one is ignored with a
// debug line, never returned as a URL.
func TestAPIURLTorn(t *testing.T) {
	for name, b := range torn([]byte("http://127.0.0.1:7788\n")) {
		t.Run(name, func(t *testing.T) {
			r, lb := testRepo(t)
			if err := os.WriteFile(r.Path(APIFile), b, 0o600); err != nil {
				t.Fatal(err)
			}
			if u := r.APIURL(); u != "" {
				t.Errorf("APIURL of a torn api file: %q", u)
			}
			if !strings.Contains(lb.String(), "level=DEBUG") {
				t.Errorf("no debug line:\n%s", lb)
			}
		})
	}
	r, _ := testRepo(t)
	if err := r.SetAPIURL("http://127.0.0.1:7788"); err != nil {
		t.Fatal(err)
	}
	if u := r.APIURL(); u != "http://127.0.0.1:7788" {
		t.Errorf("APIURL: %q", u)
	}
}
