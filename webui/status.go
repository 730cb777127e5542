package webui

import (
	"context"
	"fmt"
	"time"

	"github.com/blockmix/blockmix/blocks"
	"github.com/blockmix/blockmix/webui/apiv1"
)

// status sums up a running node. It walks the store's index twice
// (Stats, then the blocks the files use).
func status(ctx context.Context, n Node) (apiv1.StatusInfo, error) {
	st, err := n.Store().Stats(ctx)
	if err != nil {
		return apiv1.StatusInfo{}, err
	}
	id, d := n.ID(), n.Daemon()
	s := apiv1.StatusInfo{
		Daemon: true, Repo: d.Repo, ID: id.ID, Started: d.Started,
		Peers: id.Peers, RoutingTable: id.RoutingTable, Replicas: d.Replicas, Quota: d.Quota, QuotaUsed: d.QuotaUsed, Profile: d.Profile, Group: d.Group, StoreError: d.StoreError, Repair: d.Repair, ScrubHealed: d.ScrubHealed,
		Store:   apiv1.StoreInfo{Stats: st},
		BytesIn: d.BytesIn, BytesOut: d.BytesOut, RateIn: d.RateIn, RateOut: d.RateOut,
	}
	// A donor holds many blocks for other nodes: the overhead is what
	// this node's own files cost, counted over the blocks they use.
	err = n.Store().Enumerate(ctx, func(_ blocks.ID, m blocks.Meta) error {
		if m.Refs > 0 {
			s.Store.FilesBlockBytes += int64(m.Size)
		}
		return nil
	})
	if err != nil {
		return apiv1.StatusInfo{}, fmt.Errorf("count the files' blocks: %w", err)
	}
	s.Store.OtherBytes = max(st.Bytes-s.Store.FilesBlockBytes, 0)
	if st.FileBytes > 0 {
		s.Store.Overhead = float64(s.Store.FilesBlockBytes) / float64(st.FileBytes)
	}
	if !d.Started.IsZero() {
		s.UptimeSeconds = int64(time.Since(d.Started) / time.Second)
	}
	s.Judge()
	return s, nil
}
