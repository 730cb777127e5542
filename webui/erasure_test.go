package webui

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/blockmix/blockmix/blocks/erasure"
	"github.com/blockmix/blockmix/webui/apiv1"
)

// redundancyNode records the redundancy each Put was asked for.
type redundancyNode struct {
	*memNode
	got []string
}

func (n *redundancyNode) Put(ctx context.Context, r io.Reader, size int64, name, typ string) (apiv1.PutInfo, error) {
	red, ok := erasure.RedundancyFrom(ctx)
	if ok {
		n.got = append(n.got, red.String())
	} else {
		n.got = append(n.got, "")
	}
	return n.memNode.Put(ctx, r, size, name, typ)
}

// TestAPIPutRedundancy: redundancy= reaches the node's Put (none: the
// node's default); a bad one is a 400 that says what is accepted, and
// nothing is put.
func TestAPIPutRedundancy(t *testing.T) {
	n := &redundancyNode{memNode: newMemNode(t)}
	srv := httptest.NewServer(API(n))
	defer srv.Close()
	post := func(q string) (int, string) {
		resp, err := http.Post(srv.URL+"/api/v1/put?name=a.txt&size=2"+q, "application/octet-stream", strings.NewReader("hi"))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, b := post("&redundancy=rs:4%2B2"); code != 200 {
		t.Fatalf("rs:4+2: %d %s", code, b)
	}
	if code, b := post(""); code != 200 {
		t.Fatalf("no redundancy: %d %s", code, b)
	}
	if code, b := post("&redundancy=rs:1%2B2"); code != 400 || !strings.Contains(b, "bad redundancy") || !strings.Contains(b, "r:N") {
		t.Fatalf("rs:1+2: %d %s", code, b)
	}
	if strings.Join(n.got, ",") != "rs:4+2," {
		t.Fatalf("the node was asked for %q", n.got)
	}
}
