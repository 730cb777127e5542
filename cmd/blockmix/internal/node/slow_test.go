package node

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"testing"
	"time"

	"github.com/blockmix/blockmix/cmd/blockmix/internal/repo"
	"github.com/blockmix/blockmix/webui/apiv1"
)

// slowPut opens a connection to n's API and sends the head of a put of
// size bytes and the first sent bytes of body; the rest is the caller's
// to send (or not) on the connection.
func slowPut(t *testing.T, n *Node, name string, body []byte, sent int) net.Conn {
	t.Helper()
	u, err := url.Parse(n.URL())
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	fmt.Fprintf(c, "POST /api/v1/put?name=%s&size=%d HTTP/1.1\r\nHost: %s\r\nContent-Length: %d\r\nContent-Type: application/octet-stream\r\n\r\n",
		name, len(body), u.Host, len(body))
	if _, err := c.Write(body[:sent]); err != nil {
		t.Fatal(err)
	}
	return c
}

// uploading reports how many puts run and how many blocks they stored.
func (n *Node) uploading() (puts, stored int) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for up := range n.uploads {
		puts++
		stored += len(up.New())
	}
	return puts, stored
}

// apiClient gives up on a request after a minute: a request held up
// behind a stalled upload fails the test instead of hanging it.
var apiClient = &http.Client{Timeout: time.Minute}

func putHTTP(t *testing.T, n *Node, name string, data []byte) apiv1.PutInfo {
	t.Helper()
	resp, err := apiClient.Post(n.URL()+"/api/v1/put?name="+name+"&size="+fmt.Sprint(len(data)), "application/octet-stream", bytes.NewReader(data))
	if err != nil {
		t.Fatalf("put %s while another upload stalls: %v", name, err)
	}
	defer resp.Body.Close()
	var info apiv1.PutInfo
	if resp.StatusCode != 200 || json.NewDecoder(resp.Body).Decode(&info) != nil {
		t.Fatalf("put %s: %s", name, resp.Status)
	}
	return info
}

func getHTTP(t *testing.T, n *Node, rc string) []byte {
	t.Helper()
	resp, err := apiClient.Get(n.URL() + "/api/v1/get?" + url.Values{"recipe": {rc}}.Encode())
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("get: %s %v", resp.Status, err)
	}
	return b
}

func randomBytes(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, seed))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// TestSlowUploadHoldsNothing: an upload that has sent a part and a few
// bytes and then stalls holds up no other put, no gc and no get; gc
// leaves the stalled upload's blocks alone, and once the rest comes the
// upload finishes and its file reads back whole.
func TestSlowUploadHoldsNothing(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	n := startNodeTimeouts(t, ctx, nil, Timeouts{Stall: 10 * time.Minute})

	slow := randomBytes(5<<20, 1)
	sent := 2<<20 + 10 // one part (16 blocks of 128 KiB) mixed, and a few bytes
	c := slowPut(t, n.Node, "slow.bin", slow, sent)
	waitFor(t, "the slow upload's first part stored", func() bool { _, stored := n.uploading(); return stored >= 16 })

	fast := randomBytes(300<<10, 2)
	info := putHTTP(t, n.Node, "fast.bin", fast)
	if !bytes.Equal(getHTTP(t, n.Node, info.Recipe), fast) {
		t.Fatal("the put made while another stalls does not read back")
	}
	resp, err := apiClient.Post(n.URL()+"/api/v1/gc", "", nil)
	if err != nil {
		t.Fatalf("gc while an upload stalls: %v", err)
	}
	var gc apiv1.GCInfo
	err = json.NewDecoder(resp.Body).Decode(&gc)
	resp.Body.Close()
	if resp.StatusCode != 200 || err != nil {
		t.Fatalf("gc: %s %v", resp.Status, err)
	}
	if gc.UploadBlocks < 16 {
		t.Errorf("gc kept %d blocks of the running upload, want its 16 and more: %+v", gc.UploadBlocks, gc)
	}

	if _, err := c.Write(slow[sent:]); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(time.Minute))
	sresp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	var sinfo apiv1.PutInfo
	err = json.NewDecoder(sresp.Body).Decode(&sinfo)
	sresp.Body.Close()
	if sresp.StatusCode != 200 || err != nil {
		t.Fatalf("the slow upload, finished: %s %v", sresp.Status, err)
	}
	if !bytes.Equal(getHTTP(t, n.Node, sinfo.Recipe), slow) {
		t.Fatal("the slow upload does not read back after a gc ran in its middle")
	}
	if !bytes.Equal(getHTTP(t, n.Node, info.Recipe), fast) {
		t.Fatal("the fast upload does not read back at the end")
	}
}

// TestStalledUploadIsCut: a client that sends part of a body and then
// nothing is cut after Timeouts.Stall, and its put leaves nothing: no
// block, no journal note.
func TestStalledUploadIsCut(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	n := startNodeTimeouts(t, ctx, nil, Timeouts{Stall: 300 * time.Millisecond})

	body := randomBytes(5<<20, 3)
	c := slowPut(t, n.Node, "stalled.bin", body, 2<<20+10)
	// The server must answer or hang up on its own; a minute is the bound
	// of the test, far beyond the stall cut.
	_ = c.SetReadDeadline(time.Now().Add(time.Minute))
	if resp, err := http.ReadResponse(bufio.NewReader(c), nil); err == nil {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == 200 {
			t.Fatalf("a stalled upload succeeded: %s", b)
		}
	} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatal("the stalled upload was not cut within a minute")
	}
	waitFor(t, "the cut upload ends", func() bool { puts, _ := n.uploading(); return puts == 0 })
	st, err := n.Store().Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Blocks != 0 {
		t.Errorf("the cut upload left %d blocks", st.Blocks)
	}
	notes, _ := filepath.Glob(filepath.Join(n.repo.Path(repo.PutsDir), "*"))
	if len(notes) != 0 {
		t.Errorf("the cut upload left journal notes: %v", notes)
	}
	// And the node still takes puts.
	data := randomBytes(200<<10, 4)
	info := putHTTP(t, n.Node, "after.bin", data)
	if !bytes.Equal(getHTTP(t, n.Node, info.Recipe), data) {
		t.Fatal("a put after the cut does not read back")
	}
}
