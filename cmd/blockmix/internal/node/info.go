package node

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/blockmix/blockmix/blocks"
	"github.com/blockmix/blockmix/cmd/blockmix/internal/group"
	bmnet "github.com/blockmix/blockmix/net"
	"github.com/blockmix/blockmix/webui"
	"github.com/blockmix/blockmix/webui/apiv1"
)

// ID is the node's peer ID, full addresses, routing table and peers.
func (n *Node) ID() apiv1.IDInfo {
	info := apiv1.IDInfo{ID: n.net.Host.ID().String(), RoutingTable: n.net.DHT.RoutingTable().Size(), Peers: len(n.net.Host.Network().Peers())}
	for _, a := range n.net.Host.Addrs() {
		info.Addrs = append(info.Addrs, a.String()+"/p2p/"+info.ID)
	}
	return info
}

// Peers lists the connected peers, each once whatever its connections
// (libp2p may hold several to one peer: TCP and QUIC, both sides
// dialling, a relayed one), with what the node measured of them: its
// direct connection when it has one, else its relayed one.
func (n *Node) Peers() []apiv1.PeerInfo {
	now := time.Now()
	var out []apiv1.PeerInfo
	nw := n.net.Host.Network()
	for _, p := range nw.Peers() {
		cs := nw.ConnsToPeer(p)
		if len(cs) == 0 {
			continue // gone since Peers
		}
		c := cs[0]
		for _, o := range cs {
			if !o.Stat().Limited {
				c = o
				break
			}
		}
		s := n.net.Blocks.Peers.Stats(p)
		e := n.ledger.Entry(p.String())
		out = append(out, apiv1.PeerInfo{
			ID: p.String(), Addr: c.RemoteMultiaddr().String(),
			LatencyMs: float64(s.Latency.Microseconds()) / 1000, Reliability: s.Reliability(), Score: s.Score(now),
			BytesIn: s.BytesIn, BytesOut: s.BytesOut, Lies: s.Lies, StoredHere: e.StoredHere, HoldsForUs: e.HoldsForUs,
			Conn: n.net.ConnKind(c), Site: n.net.SiteOf(p),
		})
	}
	return out
}

// Store is the node's local store.
func (n *Node) Store() webui.Store { return n.st }

// Net is the node's libp2p side, for tests and tools.
func (n *Node) Net() *bmnet.Node { return n.net }

// Daemon is what the node knows of itself beyond ID.
func (n *Node) Daemon() apiv1.DaemonInfo {
	bw := n.net.Bandwidth()
	return apiv1.DaemonInfo{
		Repo: n.repo.Dir, Started: n.started, Replicas: n.cfg.Replicas, Quota: n.keeper.Quota(), QuotaUsed: n.keeper.Stored(), Profile: n.cfg.Profile.Name, Group: n.group, Site: n.net.Site(), Sites: n.sites(), Home: n.net.Home(), PartnerCopies: n.cfg.PartnerCopies, Partners: n.partners(), Allowlist: len(n.cfg.Allow),
		StoreError: n.keeper.LastFailure(), Repair: n.repairer.LastRound(), ScrubHealed: n.scrubber.Healed(),
		BytesIn: bw.TotalIn, BytesOut: bw.TotalOut, RateIn: bw.RateIn, RateOut: bw.RateOut, Reach: reachInfo(n.net.Reach()),
	}
}

// reachInfo is r for the API.
func reachInfo(r bmnet.Reach) apiv1.ReachInfo {
	out := apiv1.ReachInfo{State: r.State, NAT: r.NAT, Reachable: r.Reachable, Relaying: r.Relaying, Words: r.Words, Advice: r.Advice}
	for _, p := range r.Relays {
		out.Relays = append(out.Relays, p.String())
	}
	for _, p := range r.Punches {
		if p.OK {
			out.HolePunched = append(out.HolePunched, p.Peer.String())
		}
	}
	return out
}

// Verify checks the store while the node keeps serving it. Two verifies
// at once would only read everything twice: the second waits.
func (n *Node) Verify(ctx context.Context) (apiv1.VerifyInfo, error) {
	n.verifyMu.Lock()
	defer n.verifyMu.Unlock()
	return VerifyStore(ctx, n.st, nil)
}

// GC evicts every cached block, and the network's blocks (after handing
// them off) only while the store is over its quota.
func (n *Node) GC(ctx context.Context) (apiv1.GCInfo, error) { return n.keeper.GC(ctx) }

// Remove takes a file off this node's list; its blocks stay.
func (n *Node) Remove(ctx context.Context, key string) error { return n.st.RemoveFile(ctx, key) }

// refetch gets a block the scrub quarantined back from a peer.
func (n *Node) refetch(ctx context.Context, id blocks.ID) error {
	f := bmnet.NewFetcher(n.net, n.st)
	f.Near = n.cfg.Replicas
	_, err := f.Get(ctx, id)
	return err
}

// Group tells the page the node's group and, when the node works in it,
// the invite line.
func (n *Node) Group(ctx context.Context) (apiv1.GroupInfo, error) {
	grp, ok, err := n.repo.Group()
	if err != nil || !ok {
		return apiv1.GroupInfo{}, err
	}
	info := apiv1.GroupInfo{Name: grp.Name, Active: grp.Name == n.group}
	if !info.Active {
		info.Message = "restart the daemon to work in the group"
		return info, nil
	}
	if a := n.inviteAddr(); a != "" {
		info.Invite = group.Invite(grp.Name, grp.KeyBytes(), a)
	}
	return info, nil
}

// inviteAddr is the address an invite carries: one that dials from
// outside reached, else one through a relay (behind NAT), else one on the
// network (not loopback), else any.
func (n *Node) inviteAddr() string {
	addrs := n.ID().Addrs
	if len(addrs) == 0 {
		return ""
	}
	r := n.net.Reach()
	for _, want := range [][]string{r.Reachable, r.RelayAddrs} {
		for _, a := range addrs {
			for _, w := range want {
				if strings.HasPrefix(a, w+"/p2p/") {
					return a
				}
			}
		}
	}
	for _, a := range addrs {
		if !strings.HasPrefix(a, "/ip4/127.") && !strings.HasPrefix(a, "/ip6/::1/") {
			return a
		}
	}
	return addrs[0]
}

// CreateGroup makes a group key for this node (it works in the group
// after a restart).
func (n *Node) CreateGroup(ctx context.Context, name string) (apiv1.GroupInfo, error) {
	name, err := group.Create(n.repo, name)
	if err != nil {
		return apiv1.GroupInfo{}, err
	}
	return apiv1.GroupInfo{Name: name, Message: "group " + name + " created: restart the daemon to work in it, then share the invite"}, nil
}

// JoinGroup joins a group from an invite (it works in it after a restart).
func (n *Node) JoinGroup(ctx context.Context, invite string) (apiv1.GroupInfo, error) {
	name, ai, err := group.Join(ctx, n.repo, invite)
	if err != nil {
		return apiv1.GroupInfo{}, err
	}
	return apiv1.GroupInfo{Name: name, Message: fmt.Sprintf("joined group %s (reached %s): restart the daemon to work in it", name, ai.ID.ShortString())}, nil
}
