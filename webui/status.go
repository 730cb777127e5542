package webui

import (
	"context"
	"time"

	"github.com/blockmix/blockmix/webui/apiv1"
)

// status sums up a running node.
func status(ctx context.Context, n Node) (apiv1.StatusInfo, error) {
	st, err := n.Store().Stats(ctx)
	if err != nil {
		return apiv1.StatusInfo{}, err
	}
	id, d := n.ID(), n.Daemon()
	s := apiv1.StatusInfo{
		Daemon: true, Repo: d.Repo, ID: id.ID, Started: d.Started,
		Peers: id.Peers, RoutingTable: id.RoutingTable, Replicas: d.Replicas, Quota: d.Quota, QuotaUsed: d.QuotaUsed, Profile: d.Profile, Group: d.Group, StoreError: d.StoreError, Repair: d.Repair, ScrubHealed: d.ScrubHealed,
		Store:   apiv1.StoreInfo{Stats: st, Overhead: st.Overhead()},
		BytesIn: d.BytesIn, BytesOut: d.BytesOut, RateIn: d.RateIn, RateOut: d.RateOut, Reach: d.Reach,
	}
	if !d.Started.IsZero() {
		s.UptimeSeconds = int64(time.Since(d.Started) / time.Second)
	}
	s.Judge()
	return s, nil
}
