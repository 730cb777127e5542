package webui

import (
	"sync"
	"time"

	"github.com/blockmix/blockmix/webui/apiv1"
)

// historyLen is an hour of samples at the default interval.
const historyLen = 360

// history samples the node's traffic at a fixed interval and keeps the
// last historyLen samples.
type history struct {
	every time.Duration

	mu      sync.Mutex
	samples []apiv1.BandwidthSample
}

// run samples n until stop closes.
func (h *history) run(n Node, stop <-chan struct{}) {
	tick := time.NewTicker(h.every)
	defer tick.Stop()
	d := n.Daemon()
	lastIn, lastOut, last := d.BytesIn, d.BytesOut, time.Now()
	for {
		select {
		case <-stop:
			return
		case now := <-tick.C:
			d := n.Daemon()
			secs := now.Sub(last).Seconds()
			s := apiv1.BandwidthSample{Time: now.UTC(), In: float64(d.BytesIn-lastIn) / secs, Out: float64(d.BytesOut-lastOut) / secs}
			lastIn, lastOut, last = d.BytesIn, d.BytesOut, now
			h.mu.Lock()
			h.samples = append(h.samples, s)
			if len(h.samples) > historyLen {
				h.samples = h.samples[len(h.samples)-historyLen:]
			}
			h.mu.Unlock()
		}
	}
}

func (h *history) info() apiv1.BandwidthInfo {
	h.mu.Lock()
	defer h.mu.Unlock()
	return apiv1.BandwidthInfo{IntervalSeconds: int(h.every / time.Second), Samples: append([]apiv1.BandwidthSample{}, h.samples...)}
}
