package config

import (
	"strings"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/blockmix/blockmix/cmd/blockmix/internal/usage"
)

// checkAllow reads the peer IDs of --allow; every bootstrap peer must be
// among them (else the node could join through none). from says where
// the list came from (" (set in PATH)" or "").
func checkAllow(allow []string, bootstrap []peer.AddrInfo, from string) ([]peer.ID, error) {
	if len(allow) == 0 {
		return nil, nil
	}
	var out []peer.ID
	in := map[peer.ID]bool{}
	for _, a := range allow {
		id, err := peer.Decode(strings.TrimSpace(a))
		if err != nil {
			return nil, usage.Errorf("--allow %q: not a peer ID (want one such as 12D3KooW…, as 'blockmix id' prints)%s", a, from)
		}
		if !in[id] {
			in[id] = true
			out = append(out, id)
		}
	}
	for _, b := range bootstrap {
		if !in[b.ID] {
			return nil, usage.Errorf("--bootstrap peer %s is not in --allow: the node would refuse it; add it to the list%s", b.ID, from)
		}
	}
	return out, nil
}
