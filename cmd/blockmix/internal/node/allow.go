package node

import (
	"log/slog"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	bmnet "github.com/blockmix/blockmix/net"
)

// allow sets up the allowlist (--allow): only the listed peers may talk
// to the node, and each refused peer is logged (at most once a minute).
func (n *Node) allow(c *bmnet.Config) {
	if len(n.cfg.Allow) == 0 {
		return
	}
	c.Allow = n.cfg.Allow
	c.AllowRefused = func(p peer.ID, dir network.Direction) {
		way := "it dialled this node"
		if dir == network.DirOutbound {
			way = "this node would have dialled it"
		}
		n.log.Warn("refused a peer not on the allowlist (--allow)", slog.String("peer", p.String()), slog.String("how", way))
	}
	n.log.Info("allowlist: talking only to the listed peers", slog.Int("peers", len(n.cfg.Allow)))
}
