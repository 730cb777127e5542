package webui

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/blockmix/blockmix/blocks"
	"github.com/blockmix/blockmix/mixer"
	"github.com/blockmix/blockmix/recipe"
	"github.com/blockmix/blockmix/webui/apiv1"
)

// memNode is a Node over an in-memory store, without a network.
type memNode struct {
	st    *blocks.Mem
	m     *mixer.Mixer
	peers int
	mu    sync.Mutex
	d     apiv1.DaemonInfo
}

func (n *memNode) ID() apiv1.IDInfo {
	return apiv1.IDInfo{ID: "test", Addrs: []string{"/ip4/127.0.0.1/tcp/1/p2p/test"}, Peers: n.peers, RoutingTable: n.peers + 1}
}
func (n *memNode) Peers() []apiv1.PeerInfo { return nil }
func (n *memNode) Daemon() apiv1.DaemonInfo {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.d
}

// setDaemon changes what Daemon says (the bandwidth sampler reads it).
func (n *memNode) setDaemon(d apiv1.DaemonInfo) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.d = d
}
func (n *memNode) Store() Store { return n.st }
func (n *memNode) Open(ctx context.Context, rc recipe.Recipe) (*recipe.Reader, error) {
	return recipe.Open(ctx, n.st, rc, recipe.Options{})
}
func (n *memNode) Put(ctx context.Context, r io.Reader, size int64, name, typ string) (apiv1.PutInfo, error) {
	res, err := recipe.Put(ctx, n.m, n.st, r, size, name, typ, nil)
	if err != nil {
		return apiv1.PutInfo{}, err
	}
	return apiv1.PutInfo{Recipe: res.Recipe.String(), Name: res.Recipe.Name, Size: res.Recipe.Size, Blocks: res.NBlock}, nil
}
func (n *memNode) Fetch(ctx context.Context, rc recipe.Recipe, progress func(int64)) error {
	r, err := recipe.Open(ctx, n.st, rc, recipe.Options{Progress: progressFunc(progress)})
	if err != nil {
		return err
	}
	_, err = r.WriteTo(io.Discard)
	return err
}
func (n *memNode) Health(ctx context.Context, rc recipe.Recipe) (apiv1.HealthInfo, error) {
	f, err := n.st.File(ctx, rc.Key())
	if err != nil {
		return apiv1.HealthInfo{}, err
	}
	h := apiv1.HealthInfo{Blocks: len(f.Blocks), MinCopies: 1, MedianCopies: 1, Replicas: 1}
	h.Judge()
	return h, nil
}
func (n *memNode) Remove(ctx context.Context, key string) error       { return n.st.RemoveFile(ctx, key) }
func (n *memNode) GC(ctx context.Context) (apiv1.GCInfo, error)       { return apiv1.GCInfo{}, nil }
func (n *memNode) Group(ctx context.Context) (apiv1.GroupInfo, error) { return apiv1.GroupInfo{}, nil }
func (n *memNode) CreateGroup(ctx context.Context, name string) (apiv1.GroupInfo, error) {
	return apiv1.GroupInfo{Name: name, Message: "created"}, nil
}
func (n *memNode) JoinGroup(ctx context.Context, invite string) (apiv1.GroupInfo, error) {
	return apiv1.GroupInfo{}, errors.New("not an invite")
}
func (n *memNode) Repair(ctx context.Context, rc recipe.Recipe) (apiv1.HealthInfo, error) {
	return n.Health(ctx, rc)
}
func (n *memNode) Verify(ctx context.Context) (apiv1.VerifyInfo, error) {
	var ids []blocks.ID
	if err := n.st.Enumerate(ctx, func(id blocks.ID, _ blocks.Meta) error { ids = append(ids, id); return nil }); err != nil {
		return apiv1.VerifyInfo{}, err
	}
	var v apiv1.VerifyInfo
	for _, id := range ids {
		b, err := n.st.Get(ctx, id)
		if errors.Is(err, blocks.ErrCorrupt) {
			if err := n.st.Quarantine(ctx, id, err.Error()); err != nil {
				return v, err
			}
			v.Quarantined = append(v.Quarantined, id)
		} else if err != nil {
			return v, err
		}
		v.Checked++
		v.Bytes += int64(len(b))
	}
	return v, nil
}

func newMemNode(t *testing.T) *memNode {
	t.Helper()
	st := blocks.NewMem()
	m, err := mixer.New(st, mixer.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return &memNode{st: st, m: m}
}

func TestAPI(t *testing.T) {
	srv := httptest.NewServer(API(newMemNode(t)))
	defer srv.Close()

	data := make([]byte, 300<<10+9)
	rand.NewChaCha8([32]byte{3}).Read(data)
	resp, err := http.Post(srv.URL+"/api/v1/put?name=a.bin&size="+strconv.Itoa(len(data)), "application/octet-stream", bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	var info apiv1.PutInfo
	if err := json.NewDecoder(resp.Body).Decode(&info); err != nil || resp.StatusCode != 200 || info.Size != int64(len(data)) {
		t.Fatalf("put: %d %+v %v", resp.StatusCode, info, err)
	}
	resp.Body.Close()

	resp, err = http.Get(srv.URL + "/api/v1/get?" + url.Values{"recipe": {info.Recipe}}.Encode())
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !bytes.Equal(got, data) {
		t.Fatalf("get: %d, %d bytes", resp.StatusCode, len(got))
	}

	// A damaged recipe: 400 with a JSON error that says so.
	resp, err = http.Get(srv.URL + "/api/v1/get?recipe=blockmix:abc")
	if err != nil {
		t.Fatal(err)
	}
	var e apiv1.ErrorBody
	_ = json.NewDecoder(resp.Body).Decode(&e)
	resp.Body.Close()
	if resp.StatusCode != 400 || !strings.Contains(e.Error, "damaged recipe") {
		t.Fatalf("damaged recipe: %d %q", resp.StatusCode, e.Error)
	}

	// A recipe whose blocks are nowhere: 404.
	other := blocks.NewMem()
	m2, _ := mixer.New(other, mixer.Options{})
	res, err := recipe.Put(context.Background(), m2, other, bytes.NewReader([]byte("elsewhere")), 9, "x", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err = http.Get(srv.URL + "/api/v1/get?" + url.Values{"recipe": {res.Recipe.String()}}.Encode())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 404 {
		t.Fatalf("missing blocks: %d, want 404", resp.StatusCode)
	}

	resp, err = http.Get(srv.URL + "/api/v1/stat")
	if err != nil {
		t.Fatal(err)
	}
	var s blocks.Stats
	_ = json.NewDecoder(resp.Body).Decode(&s)
	resp.Body.Close()
	if s.Files != 1 || s.FileBytes != int64(len(data)) {
		t.Fatalf("stat: %+v", s)
	}
}

// call does one request and returns the status and the body.
func call(t *testing.T, method, url string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, url, err)
	}
	return resp.StatusCode, b
}

// callJSON does one request, wants status and decodes the answer into v.
func callJSON(t *testing.T, method, url string, status int, v any) {
	t.Helper()
	code, b := call(t, method, url)
	if code != status {
		t.Fatalf("%s %s: status %d, want %d: %s", method, url, code, status, b)
	}
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	if err := d.Decode(v); err != nil {
		t.Fatalf("%s %s: decode %T from %s: %v", method, url, v, b, err)
	}
}

func putMem(t *testing.T, n *memNode, name string, data []byte) apiv1.PutInfo {
	t.Helper()
	info, err := n.Put(context.Background(), bytes.NewReader(data), int64(len(data)), name, "")
	if err != nil {
		t.Fatal(err)
	}
	return info
}

// TestAPIStore: files, blocks, one block and verify answer what the store
// holds, with the statuses their contracts promise.
func TestAPIStore(t *testing.T) {
	n := newMemNode(t)
	srv := httptest.NewServer(API(n))
	defer srv.Close()
	ctx := context.Background()

	// An empty store: lists, not null.
	if code, b := call(t, "GET", srv.URL+"/api/v1/files"); code != 200 || strings.TrimSpace(string(b)) != "[]" {
		t.Fatalf("files of an empty store: %d %s", code, b)
	}
	if code, b := call(t, "GET", srv.URL+"/api/v1/blocks"); code != 200 || len(b) != 0 {
		t.Fatalf("blocks of an empty store: %d %q", code, b)
	}
	var v apiv1.VerifyInfo
	callJSON(t, "POST", srv.URL+"/api/v1/verify", 200, &v)
	if v.Checked != 0 || v.Quarantined == nil {
		t.Fatalf("verify of an empty store: %+v", v)
	}

	putMem(t, n, "a.bin", bytes.Repeat([]byte{1}, 200<<10))
	putMem(t, n, "b.txt", []byte("hello"))

	var fs []blocks.FileRecord
	callJSON(t, "GET", srv.URL+"/api/v1/files", 200, &fs)
	want, _ := n.st.Files(ctx)
	if len(fs) != 2 || fs[0].Name != "a.bin" || fs[1].Name != "b.txt" || fs[0].Recipe != want[0].Recipe ||
		fs[0].NBlock != want[0].NBlock || !fs[0].Added.Equal(want[0].Added) {
		t.Fatalf("files: %+v, want %+v", fs, want)
	}

	// blocks: one BlockInfo per line, in the store's order.
	code, body := call(t, "GET", srv.URL+"/api/v1/blocks")
	if code != 200 {
		t.Fatalf("blocks: %d %s", code, body)
	}
	var wantBlocks []apiv1.BlockInfo
	_ = n.st.Enumerate(ctx, func(id blocks.ID, m blocks.Meta) error {
		wantBlocks = append(wantBlocks, apiv1.BlockInfo{ID: id, Size: m.Size, Refs: m.Refs})
		return nil
	})
	lines := strings.Split(strings.TrimSuffix(string(body), "\n"), "\n")
	if len(lines) != len(wantBlocks) || len(lines) == 0 {
		t.Fatalf("blocks: %d lines for %d blocks", len(lines), len(wantBlocks))
	}
	for i, line := range lines {
		var bi apiv1.BlockInfo
		d := json.NewDecoder(strings.NewReader(line))
		d.DisallowUnknownFields()
		if err := d.Decode(&bi); err != nil || bi != wantBlocks[i] {
			t.Fatalf("blocks line %d: %s (%v), want %+v", i, line, err, wantBlocks[i])
		}
	}

	// One block: its bytes; a malformed ID 400, a missing one 404.
	id := wantBlocks[0].ID
	code, body = call(t, "GET", srv.URL+"/api/v1/blocks/"+id.String())
	if code != 200 || blocks.Sum(body) != id {
		t.Fatalf("block %s: %d, %d bytes", id, code, len(body))
	}
	var e apiv1.ErrorBody
	callJSON(t, "GET", srv.URL+"/api/v1/blocks/not-an-id", 400, &e)
	callJSON(t, "GET", srv.URL+"/api/v1/blocks/"+blocks.Sum([]byte("nowhere")).String(), 404, &e)
	if !strings.Contains(e.Error, "not found") {
		t.Errorf("missing block: %q", e.Error)
	}

	// A corrupt block: 500 saying so; verify quarantines it, then it is
	// missing, and a second verify is clean.
	n.st.Corrupt(id)
	callJSON(t, "GET", srv.URL+"/api/v1/blocks/"+id.String(), 500, &e)
	if !strings.Contains(e.Error, "corrupt") {
		t.Errorf("corrupt block: %q", e.Error)
	}
	callJSON(t, "POST", srv.URL+"/api/v1/verify", 200, &v)
	if v.Checked != len(wantBlocks) || len(v.Quarantined) != 1 || v.Quarantined[0] != id {
		t.Fatalf("verify: %+v, want %d checked and %s quarantined", v, len(wantBlocks), id)
	}
	callJSON(t, "GET", srv.URL+"/api/v1/blocks/"+id.String(), 404, &e)
	callJSON(t, "POST", srv.URL+"/api/v1/verify", 200, &v)
	if v.Checked != len(wantBlocks)-1 || len(v.Quarantined) != 0 {
		t.Fatalf("second verify: %+v", v)
	}
	if code, _ := call(t, "GET", srv.URL+"/api/v1/verify"); code != http.StatusMethodNotAllowed {
		t.Errorf("GET verify: %d, want 405", code)
	}
}

// failingStore lists n made-up blocks, then fails.
type failingStore struct {
	*blocks.Mem
	n int
}

var errListing = errors.New("index read failed")

func (s failingStore) Enumerate(ctx context.Context, fn func(blocks.ID, blocks.Meta) error) error {
	for i := range s.n {
		if err := fn(blocks.Sum([]byte(strconv.Itoa(i))), blocks.Meta{Size: 1 << 10}); err != nil {
			return err
		}
	}
	return errListing
}

type failingNode struct {
	memNode
	st failingStore
}

func (n *failingNode) Store() Store { return n.st }

// TestAPIBlocksFailure: a listing that fails before anything went out is
// an error answer; one that fails later is a cut stream, never a
// whole-looking short list.
func TestAPIBlocksFailure(t *testing.T) {
	for _, n := range []int{0, 10, 5000} {
		fn := &failingNode{st: failingStore{blocks.NewMem(), n}}
		srv := httptest.NewServer(API(fn))
		resp, err := http.Get(srv.URL + "/api/v1/blocks")
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		srv.Close()
		if n < 100 {
			var e apiv1.ErrorBody
			if resp.StatusCode != 500 || json.Unmarshal(b, &e) != nil || !strings.Contains(e.Error, errListing.Error()) {
				t.Errorf("%d blocks then a failure: %d %s, want 500 with the error", n, resp.StatusCode, b)
			}
			continue
		}
		if err == nil {
			t.Errorf("%d blocks then a failure: the stream ended cleanly after %d bytes", n, len(b))
		}
	}
}

// TestAPIStatus: the status answer sums up the node and judges it.
func TestAPIStatus(t *testing.T) {
	n := newMemNode(t)
	started := time.Now().Add(-90 * time.Second)
	n.setDaemon(apiv1.DaemonInfo{Repo: "/r", Started: started, Replicas: 3, BytesIn: 1000, BytesOut: 2000, RateIn: 1.5, RateOut: 2.5})
	srv := httptest.NewServer(API(n))
	defer srv.Close()
	putMem(t, n, "a.bin", bytes.Repeat([]byte{2}, 300<<10))

	var s apiv1.StatusInfo
	callJSON(t, "GET", srv.URL+"/api/v1/status", 200, &s)
	st, _ := n.st.Stats(context.Background())
	if !s.Daemon || s.Repo != "/r" || s.ID != "test" || !s.Started.Equal(started) || s.UptimeSeconds < 89 || s.UptimeSeconds > 120 ||
		s.Replicas != 3 || s.Store.Stats != st || s.Store.FilesBlockBytes+s.Store.OtherBytes != st.Bytes ||
		s.Store.FilesBlockBytes < 300<<10 || s.Store.Overhead != float64(s.Store.FilesBlockBytes)/float64(st.FileBytes) ||
		s.BytesIn != 1000 || s.BytesOut != 2000 || s.RateIn != 1.5 || s.RateOut != 2.5 {
		t.Fatalf("status: %+v", s)
	}
	if s.State != apiv1.StateAlone || !strings.HasPrefix(s.Verdict, "alone: no peers connected") || !strings.Contains(s.Verdict, "--bootstrap") {
		t.Errorf("no peers: %s %q", s.State, s.Verdict)
	}

	n.peers = 4
	callJSON(t, "GET", srv.URL+"/api/v1/status", 200, &s)
	if s.Peers != 4 || s.RoutingTable != 5 || s.State != apiv1.StateOK || s.Verdict != "ok: connected to 4 peers; files you put get 3 copies on other nodes" {
		t.Errorf("four peers: %+v", s)
	}

	// A quarantined block comes first.
	var id blocks.ID
	_ = n.st.Enumerate(context.Background(), func(i blocks.ID, _ blocks.Meta) error { id = i; return errors.New("stop") })
	n.st.Corrupt(id)
	if _, err := n.Verify(context.Background()); err != nil {
		t.Fatal(err)
	}
	n.peers = 0
	callJSON(t, "GET", srv.URL+"/api/v1/status", 200, &s)
	if s.State != apiv1.StateQuarantined || !strings.HasPrefix(s.Verdict, "quarantined: 1 corrupt block taken out of service") ||
		!strings.Contains(s.Verdict, "blockmix verify") || !strings.Contains(s.Verdict, "; alone: ") {
		t.Errorf("quarantined and alone: %s %q", s.State, s.Verdict)
	}
}

func TestJudge(t *testing.T) {
	cases := []struct {
		s     apiv1.StatusInfo
		state string
		words []string
	}{
		{apiv1.StatusInfo{Repo: "/r"}, apiv1.StateOffline, []string{"no daemon running on /r (offline)", "blockmix daemon"}},
		{apiv1.StatusInfo{Repo: "/r", Store: apiv1.StoreInfo{Stats: blocks.Stats{Quarantined: 2}}}, apiv1.StateOffline,
			[]string{"(offline)", "; quarantined: 2 corrupt blocks"}},
		{apiv1.StatusInfo{Daemon: true, Replicas: 3}, apiv1.StateAlone, []string{"alone: no peers connected — files you put stay only on this node", "--bootstrap ADDR"}},
		{apiv1.StatusInfo{Daemon: true, Replicas: 1, Peers: 3, Quota: 1 << 20, Store: apiv1.StoreInfo{Stats: blocks.Stats{Bytes: 2 << 20}}}, apiv1.StateOverQuota,
			[]string{"over quota: the store holds 2.0 MiB, the quota is 1.0 MiB", "blockmix gc"}},
		{apiv1.StatusInfo{Daemon: true, Replicas: 1, Peers: 3, StoreError: "write x: file too large", Quota: 1 << 20, Store: apiv1.StoreInfo{Stats: blocks.Stats{Bytes: 2 << 20}}}, apiv1.StateStoreFails,
			[]string{"cannot store blocks: write x: file too large", "may be full", "; over quota"}},
		{apiv1.StatusInfo{Daemon: true, Peers: 1, Replicas: 3}, apiv1.StateFewPeers, []string{"few peers: connected to 1 peer;", "get 1 copy on other nodes, not the 3 wanted"}},
		{apiv1.StatusInfo{Daemon: true, Peers: 3, Replicas: 3}, apiv1.StateOK, []string{"ok: connected to 3 peers; files you put get 3 copies"}},
		{apiv1.StatusInfo{Daemon: true, Peers: 1, Replicas: 1}, apiv1.StateOK, []string{"ok: connected to 1 peer;", "get 1 copy on"}},
	}
	for _, c := range cases {
		c.s.Judge()
		if c.s.State != c.state {
			t.Errorf("%+v: state %q, want %q", c.s, c.s.State, c.state)
		}
		for _, w := range c.words {
			if !strings.Contains(c.s.Verdict, w) {
				t.Errorf("verdict %q does not say %q", c.s.Verdict, w)
			}
		}
		if strings.Contains(c.s.Verdict, "\n") {
			t.Errorf("verdict %q is more than one line", c.s.Verdict)
		}
	}
}
