// Package metrics is what a node tells Prometheus: blocks and bytes held,
// the quota, pushes accepted and refused, blocks served and fetched, fetch
// latency, repair and scrub, transfers, peers and the routing table. The
// daemon serves them with libp2p's own on GET /metrics.
package metrics

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics are a node's counters. Safe for concurrent use.
type Metrics struct {
	Reg *prometheus.Registry

	PushesAccepted prometheus.Counter
	PushesRefused  *prometheus.CounterVec // by reason
	BlocksFetched  prometheus.Counter
	BytesFetched   prometheus.Counter
	FetchSeconds   prometheus.Histogram // one Get of a block that was not here
	Evicted        prometheus.Counter
	HandedOff      prometheus.Counter
	RepairRounds   prometheus.Counter
	RepairShort    prometheus.Gauge // blocks short of copies in the last round
	RepairPushed   prometheus.Counter
	ScrubHealed    prometheus.Counter
	ScrubCorrupt   prometheus.Counter
	PutFiles       prometheus.Counter
	PutBytes       prometheus.Counter
	GetsFailed     prometheus.Counter
}

// Gauges are read when Prometheus scrapes: the node's state now.
type Gauges struct {
	BlocksHeld   func() float64
	BytesHeld    func() float64
	Quota        func() float64
	Peers        func() float64
	RoutingTable func() float64
	BlocksServed func() float64 // counter: blocks sent to peers since the start
	Transfers    func() float64 // gets and fetches running
}

// New makes the counters on a fresh registry, with the Go runtime's and
// the process's collectors.
func New() *Metrics {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	f := func(name, help string) prometheus.Counter {
		c := prometheus.NewCounter(prometheus.CounterOpts{Name: "blockmix_" + name, Help: help})
		reg.MustRegister(c)
		return c
	}
	m := &Metrics{
		Reg:            reg,
		PushesAccepted: f("pushes_accepted_total", "Blocks peers pushed that this node stored."),
		PushesRefused: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "blockmix_pushes_refused_total",
			Help: "Blocks peers pushed that this node refused, by reason (quota, fair_share, error)."}, []string{"reason"}),
		BlocksFetched: f("blocks_fetched_total", "Blocks fetched from peers."),
		BytesFetched:  f("bytes_fetched_total", "Bytes of blocks fetched from peers."),
		FetchSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "blockmix_fetch_seconds",
			Help: "Time to fetch one block from the network.", Buckets: prometheus.ExponentialBuckets(0.001, 4, 9)}),
		Evicted:      f("evicted_blocks_total", "Blocks evicted to stay within the quota or by gc."),
		HandedOff:    f("handed_off_blocks_total", "Blocks held for the network handed to the next closest node before eviction."),
		RepairRounds: f("repair_rounds_total", "Repair rounds run."),
		RepairShort: prometheus.NewGauge(prometheus.GaugeOpts{Name: "blockmix_repair_short_blocks",
			Help: "Blocks held for the network that had fewer copies than wanted in the last repair round."}),
		RepairPushed: f("repair_pushed_blocks_total", "Blocks repair pushed to the next closest nodes."),
		ScrubCorrupt: f("scrub_corrupt_blocks_total", "Corrupt blocks the scrub found."),
		ScrubHealed:  f("scrub_healed_blocks_total", "Corrupt blocks the scrub quarantined and fetched again."),
		PutFiles:     f("put_files_total", "Files put through this node."),
		PutBytes:     f("put_bytes_total", "File bytes put through this node."),
		GetsFailed:   f("transfers_failed_total", "Gets and fetches that failed."),
	}
	reg.MustRegister(m.PushesRefused, m.FetchSeconds, m.RepairShort)
	return m
}

// Watch registers g, read at each scrape.
func (m *Metrics) Watch(g Gauges) {
	gauge := func(name, help string, fn func() float64) {
		if fn != nil {
			m.Reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "blockmix_" + name, Help: help}, fn))
		}
	}
	gauge("blocks", "Blocks in the store.", g.BlocksHeld)
	gauge("bytes", "Block bytes in the store.", g.BytesHeld)
	gauge("quota_bytes", "The store's quota in bytes (0: none).", g.Quota)
	gauge("peers", "Peers connected.", g.Peers)
	gauge("routing_table_peers", "Peers in the DHT's routing table.", g.RoutingTable)
	gauge("transfers_running", "Gets and fetches running.", g.Transfers)
	if g.BlocksServed != nil {
		m.Reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "blockmix_blocks_served_total",
			Help: "Blocks sent to peers."}, g.BlocksServed))
	}
}

// Handler serves the metrics in Prometheus's text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.Reg, promhttp.HandlerOpts{})
}
