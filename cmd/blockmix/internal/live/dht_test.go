package live

import (
	"bytes"
	"context"
	"path/filepath"
	"testing"
	"time"

	ds "github.com/ipfs/go-datastore"
	"github.com/ipfs/go-datastore/query"
	dssync "github.com/ipfs/go-datastore/sync"
	"github.com/libp2p/go-libp2p"
	dht "github.com/libp2p/go-libp2p-kad-dht"
	record "github.com/libp2p/go-libp2p-record"
	"github.com/libp2p/go-libp2p/core/peer"

	bmnet "github.com/blockmix/blockmix/net"
)

// acceptAll is a hostile node's validator: it sends anything.
type acceptAll struct{}

func (acceptAll) Validate(string, []byte) error        { return nil }
func (acceptAll) Select(string, [][]byte) (int, error) { return 0, nil }

var _ record.Validator = acceptAll{}

type dhtNode struct {
	d  *dht.IpfsDHT
	ds ds.Datastore
}

// newDHT starts a libp2p host on 127.0.0.1 with blockmix's DHT (server
// mode, as the node runs it) and v for live records.
func newDHT(t *testing.T, v record.Validator) dhtNode {
	t.Helper()
	h, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"))
	if err != nil {
		t.Fatal(err)
	}
	store := dssync.MutexWrap(ds.NewMapDatastore())
	d, err := dht.New(h, dht.ProtocolPrefix(bmnet.DHTPrefix), dht.Mode(dht.ModeServer), dht.NamespacedValidator(Namespace, v), dht.Datastore(store))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close(); h.Close() })
	return dhtNode{d, store}
}

// holds reports whether n's datastore holds a record containing b.
func (n dhtNode) holds(t *testing.T, b []byte) bool {
	t.Helper()
	res, err := n.ds.Query(context.Background(), query.Query{})
	if err != nil {
		t.Fatal(err)
	}
	defer res.Close()
	for e := range res.Next() {
		if bytes.Contains(e.Value, b) {
			return true
		}
	}
	return false
}

// TestRecordsThroughKadDHT: a record published on one node resolves on
// another through kad-dht with our validator; a forged record and an
// older one, sent by a node that validates nothing, are refused by every
// honest holder.
func TestRecordsThroughKadDHT(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var honest []dhtNode
	for range 4 {
		honest = append(honest, newDHT(t, Validator{}))
	}
	evil := newDHT(t, acceptAll{})
	all := append(append([]dhtNode(nil), honest...), evil)
	for i, a := range all {
		for _, b := range all[i+1:] {
			ai := peer.AddrInfo{ID: b.d.Host().ID(), Addrs: b.d.Host().Addrs()}
			if err := a.d.Host().Connect(ctx, ai); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, n := range all {
		for n.d.RoutingTable().Size() < len(all)-1 {
			select {
			case <-ctx.Done():
				t.Fatal("routing tables did not fill")
			case <-time.After(20 * time.Millisecond):
			}
		}
	}
	l, sign := mustLink(t)
	key := DHTKey(l.Pub)
	v1, v2 := sign(1, "blockmix:version-one"), sign(2, "blockmix:version-two")
	if err := honest[0].d.PutValue(ctx, key, v1.Bytes()); err != nil {
		t.Fatal(err)
	}
	if err := honest[0].d.PutValue(ctx, key, v2.Bytes()); err != nil {
		t.Fatal(err)
	}
	resolve := func(n dhtNode) uint64 {
		t.Helper()
		b, err := n.d.GetValue(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		r, err := ParseRecord(b)
		if err != nil {
			t.Fatal(err)
		}
		p, err := r.Open(l)
		if err != nil {
			t.Fatal(err)
		}
		if want := map[uint64]string{1: "blockmix:version-one", 2: "blockmix:version-two"}[r.Seq]; string(p) != want {
			t.Fatalf("seq %d opened to %q", r.Seq, p)
		}
		return r.Seq
	}
	if got := resolve(honest[3]); got != 2 {
		t.Fatalf("resolved seq %d, want 2", got)
	}
	// The hostile node replays version 1 and forges a version 3 (seq
	// changed after signing) to everyone.
	forged := bytes.Clone(v2.Bytes())
	forged[40] = 3
	for _, bad := range [][]byte{v1.Bytes(), forged} {
		_ = evil.d.PutValue(ctx, key, bad) // the honest holders' refusals are its errors
	}
	if !evil.holds(t, forged) {
		t.Fatal("the hostile node did not even keep its forgery: the test sends nothing")
	}
	for i, n := range honest {
		if n.holds(t, forged) {
			t.Fatalf("honest node %d holds the forged record", i)
		}
		if got := resolve(n); got != 2 {
			t.Fatalf("node %d resolved seq %d after the replay, want 2", i, got)
		}
	}
	held := 0
	for _, n := range honest {
		if n.holds(t, v2.Bytes()) {
			held++
		}
		if n.holds(t, v1.Bytes()) {
			t.Fatal("an honest holder went back to version 1")
		}
	}
	if held < 2 {
		t.Fatalf("version 2 is held by %d honest nodes, want it on several", held)
	}
}

// TestFollowerKeepsRecord: a node that follows a live link keeps its
// record in the DHT: a node that joined after the publisher's put (and
// never got it) comes to hold it through the follower's lookups (kad-dht
// puts the best record back on the closest nodes that lack it).
func TestFollowerKeepsRecord(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	pub, follower := newDHT(t, Validator{}), newDHT(t, Validator{})
	connect := func(a, b dhtNode) {
		t.Helper()
		if err := a.d.Host().Connect(ctx, peer.AddrInfo{ID: b.d.Host().ID(), Addrs: b.d.Host().Addrs()}); err != nil {
			t.Fatal(err)
		}
		for a.d.RoutingTable().Find(b.d.Host().ID()) == "" || b.d.RoutingTable().Find(a.d.Host().ID()) == "" {
			select {
			case <-ctx.Done():
				t.Fatal("routing tables did not fill")
			case <-time.After(20 * time.Millisecond):
			}
		}
	}
	connect(pub, follower)
	l, sign := mustLink(t)
	rec := sign(1, "v1")
	if err := pub.d.PutValue(ctx, DHTKey(l.Pub), rec.Bytes()); err != nil {
		t.Fatal(err)
	}
	f := &fakeFolders{versions: map[string][]Entry{"v1": nil}, bytes: map[string]string{}}
	m, err := New(filepath.Join(t.TempDir(), "live.json"), f, follower.d, nil, Options{Poll: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	mctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { m.Run(mctx); close(done) }()
	defer func() { stop(); <-done }()
	if _, err := m.Sync(l.String(), filepath.Join(t.TempDir(), "in"), nil, false); err != nil {
		t.Fatal(err)
	}
	late := newDHT(t, Validator{})
	connect(late, follower)
	for !late.holds(t, rec.Bytes()) {
		select {
		case <-ctx.Done():
			t.Fatalf("the late node never got the record; the follower's state: %+v", m.List())
		case <-time.After(50 * time.Millisecond):
		}
	}
}
