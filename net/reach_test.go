package net

import (
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/protocol/holepunch"
	ma "github.com/multiformats/go-multiaddr"
)

// TestReachWords: what AutoNAT, the relays and the hole punches found is
// said in plain words with what to do, and the last hole punch to a peer
// decides PunchFailed. (The lab tests in cmd/blockmix run the real thing
// behind NAT routers.)
func TestReachWords(t *testing.T) {
	relay, err := peer.Decode("12D3KooWDMhxbL9remDyHQXhzKbGHQZGVQyhfGRDDF9zkaj4t14F")
	if err != nil {
		t.Fatal(err)
	}
	other, err := peer.Decode("12D3KooWJExzN8TicvS9sJMsaMHWbyoC3cE8rdWSgXyTHL9QWrRg")
	if err != nil {
		t.Fatal(err)
	}
	pub := []ma.Multiaddr{ma.StringCast("/ip4/198.51.7.1/tcp/4001")}
	home := []ma.Multiaddr{ma.StringCast("/ip4/10.0.0.2/tcp/4001")}
	for _, c := range []struct {
		name   string
		r      *reacher
		listen []ma.Multiaddr
		state  string
		says   []string
	}{
		{"loopback", &reacher{}, []ma.Multiaddr{ma.StringCast("/ip4/127.0.0.1/tcp/4001")}, ReachLocal, []string{"loopback only", "--listen"}},
		{"unknown", &reacher{}, home, ReachUnknown, []string{"not known yet", "--bootstrap"}},
		{"public", &reacher{nat: network.ReachabilityPublic, reachable: pub}, pub, ReachDirect, []string{"reachable directly at /ip4/198.51.7.1/tcp/4001"}},
		{"private", &reacher{nat: network.ReachabilityPrivate, listenPort: "4002"}, home, ReachUnreachable, []string{"behind NAT and unreachable", "forward TCP port 4002"}},
		{"relayed", &reacher{nat: network.ReachabilityPrivate, relayAddrs: []ma.Multiaddr{ma.StringCast("/ip4/198.51.7.1/tcp/4001/p2p/" + relay.String() + "/p2p-circuit")}}, home,
			ReachRelay, []string{"behind NAT: reachable through relay " + Short(relay), "nothing is needed"}},
	} {
		got := c.r.reach(c.listen)
		if got.State != c.state {
			t.Errorf("%s: state %q, want %q (%+v)", c.name, got.State, c.state, got)
		}
		for _, s := range c.says {
			if !strings.Contains(got.Words+" / "+got.Advice, s) {
				t.Errorf("%s: %q / %q does not say %q", c.name, got.Words, got.Advice, s)
			}
		}
	}

	var r reacher
	if _, failed := r.PunchFailed(other); failed {
		t.Error("no hole punch yet, but PunchFailed")
	}
	now := time.Now()
	r.Trace(&holepunch.Event{Remote: other, Timestamp: now.UnixNano(), Evt: &holepunch.EndHolePunchEvt{Success: false, Error: "all dials failed"}})
	if at, failed := r.PunchFailed(other); !failed || !at.Equal(time.Unix(0, now.UnixNano())) {
		t.Errorf("after a failed punch: %v %v", at, failed)
	}
	if w := r.reach(home).Words; !strings.Contains(w, "hole punch to "+Short(other)+" failed") {
		t.Errorf("words after a failed punch: %q", w)
	}
	r.Trace(&holepunch.Event{Remote: other, Timestamp: now.Add(time.Second).UnixNano(), Evt: &holepunch.EndHolePunchEvt{Success: true}})
	if _, failed := r.PunchFailed(other); failed {
		t.Error("the last punch worked, but PunchFailed")
	}
	if _, ok := r.Punched(other); !ok || !strings.Contains(r.reach(home).Words, "hole punched to "+Short(other)) {
		t.Errorf("after a punch that worked: %q", r.reach(home).Words)
	}
	for i := range 2 * maxPunches {
		r.Trace(&holepunch.Event{Remote: relay, Timestamp: now.Add(time.Duration(i+2) * time.Second).UnixNano(), Evt: &holepunch.EndHolePunchEvt{}})
	}
	if n := len(r.reach(home).Punches); n != maxPunches {
		t.Errorf("%d punches kept, want %d", n, maxPunches)
	}
}
