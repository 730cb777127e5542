package webui

import (
	"context"
	"time"

	"github.com/blockmix/blockmix/webui/apiv1"
)

// status sums up a running node from the store's counters (no walk of
// its index).
func status(ctx context.Context, n Node) (apiv1.StatusInfo, error) {
	st, err := n.Store().Stats(ctx)
	if err != nil {
		return apiv1.StatusInfo{}, err
	}
	id, d := n.ID(), n.Daemon()
	s := apiv1.StatusInfo{
		Daemon: true, Repo: d.Repo, ID: id.ID, Started: d.Started,
		Peers: id.Peers, RoutingTable: id.RoutingTable, Replicas: d.Replicas, Quota: d.Quota, QuotaUsed: d.QuotaUsed, Profile: d.Profile, Group: d.Group, Site: d.Site, Sites: d.Sites, Home: d.Home, PartnerCopies: d.PartnerCopies, Partners: d.Partners, Allowlist: d.Allowlist, StoreError: d.StoreError, Repair: d.Repair, ScrubHealed: d.ScrubHealed,
		// A donor holds many blocks for other nodes: the overhead is what
		// this node's own files cost, over the blocks they use.
		Store:   apiv1.NewStoreInfo(st),
		BytesIn: d.BytesIn, BytesOut: d.BytesOut, RateIn: d.RateIn, RateOut: d.RateOut, Reach: d.Reach,
	}
	if !d.Started.IsZero() {
		s.UptimeSeconds = int64(time.Since(d.Started) / time.Second)
	}
	s.Judge()
	return s, nil
}
