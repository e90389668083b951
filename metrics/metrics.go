// Package metrics is what citecrawl's workers show to monitoring:
// Prometheus counters, histograms and gauges on a registry the caller
// owns, and an HTTP server for /metrics, /healthz and /readyz.
//
// A nil *Metrics is valid and records nothing, so the pipeline calls it
// unconditionally whether or not --metrics-listen was given.
package metrics

import (
	"context"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Metrics holds every metric citecrawl exports. The README's table lists
// their names and meanings.
type Metrics struct {
	processed    *prometheus.CounterVec
	failed       *prometheus.CounterVec
	redelivered  *prometheus.CounterVec
	deadLettered *prometheus.CounterVec
	fetches      *prometheus.CounterVec
	fetchTime    *prometheus.HistogramVec
	publishTime  prometheus.Histogram
	segments     prometheus.Counter
	sinkBytes    prometheus.Counter
	sinkDown     prometheus.Gauge
	sinkIsDown   atomic.Bool
	leaseHeld    *prometheus.GaugeVec
	reg          prometheus.Registerer
}

// New makes the metrics and registers them, with the Go runtime's and the
// process's, on reg.
func New(reg prometheus.Registerer) *Metrics {
	stage := []string{"stage"}
	m := &Metrics{
		processed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "citecrawl_stage_messages_processed_total",
			Help: "Messages a stage handled and acknowledged (the sink: once their segment was sealed).",
		}, stage),
		failed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "citecrawl_stage_messages_failed_total",
			Help: "Deliveries a stage's handler failed (each is then redelivered or dead-lettered).",
		}, stage),
		redelivered: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "citecrawl_stage_messages_redelivered_total",
			Help: "Failed deliveries handed back to be delivered again after the stage's backoff.",
		}, stage),
		deadLettered: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "citecrawl_stage_messages_dead_lettered_total",
			Help: "Messages parked on citecrawl.dead.<stage> after failing for good.",
		}, stage),
		fetches: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "citecrawl_fetch_requests_total",
			Help: "HTTP requests of the crawler (every redirect hop and robots.txt included) by host and status; status \"error\" when no response came.",
		}, []string{"host", "status"}),
		fetchTime: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "citecrawl_fetch_request_duration_seconds",
			Help:    "Time to the response headers of one HTTP request, by host and status.",
			Buckets: []float64{.01, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"host", "status"}),
		publishTime: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "citecrawl_publish_duration_seconds",
			Help:    "Time for a stage's outputs of one batch to be stored by JetStream (all acknowledged).",
			Buckets: []float64{.001, .005, .01, .05, .1, .5, 1, 5, 30},
		}),
		segments: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "citecrawl_sink_segments_total",
			Help: "Output segments sealed holding new records (one per hub folder with new records at each flush of the sink).",
		}),
		sinkBytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "citecrawl_sink_bytes_total",
			Help: "Bytes of new records written by the sink (JSON lines).",
		}),
		sinkDown: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "citecrawl_sink_output_unavailable",
			Help: "1 while the sink's output is full or read-only (records are held, not written), else 0.",
		}),
		leaseHeld: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "citecrawl_lease_held",
			Help: "1 while this process holds the named scheduler lease, else 0.",
		}, []string{"lease"}),
		reg: reg,
	}
	reg.MustRegister(m.processed, m.failed, m.redelivered, m.deadLettered, m.fetches, m.fetchTime,
		m.publishTime, m.segments, m.sinkBytes, m.sinkDown, m.leaseHeld,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Processed counts n messages a stage acknowledged.
func (m *Metrics) Processed(stage string, n int) {
	if m != nil && n > 0 {
		m.processed.WithLabelValues(stage).Add(float64(n))
	}
}

// Failed counts a failed delivery; redelivered says whether it was handed
// back for another delivery (else it is parked, see DeadLettered).
func (m *Metrics) Failed(stage string, redelivered bool) {
	if m == nil {
		return
	}
	m.failed.WithLabelValues(stage).Inc()
	if redelivered {
		m.redelivered.WithLabelValues(stage).Inc()
	}
}

// DeadLettered counts a message parked as a dead letter.
func (m *Metrics) DeadLettered(stage string) {
	if m != nil {
		m.deadLettered.WithLabelValues(stage).Inc()
	}
}

// Published records how long a batch of publishes took to be stored.
func (m *Metrics) Published(d time.Duration) {
	if m != nil {
		m.publishTime.Observe(d.Seconds())
	}
}

// SinkSealed counts segments of new records sealed, and their bytes.
func (m *Metrics) SinkSealed(segments int, bytes int64) {
	if m != nil {
		m.segments.Add(float64(segments))
		m.sinkBytes.Add(float64(bytes))
	}
}

// SinkUnavailable sets whether the sink's output is full or read-only.
func (m *Metrics) SinkUnavailable(down bool) {
	if m != nil {
		m.sinkIsDown.Store(down)
		m.sinkDown.Set(map[bool]float64{false: 0, true: 1}[down])
	}
}

// SinkIsUnavailable says whether the sink's output was last reported
// unavailable, for the readiness check.
func (m *Metrics) SinkIsUnavailable() bool { return m != nil && m.sinkIsDown.Load() }

// LeaseHeld sets whether this process holds the lease name.
func (m *Metrics) LeaseHeld(name string, held bool) {
	if m == nil {
		return
	}
	v := 0.0
	if held {
		v = 1
	}
	m.leaseHeld.WithLabelValues(name).Set(v)
}

// Transport wraps an HTTP transport so each request is counted and timed
// by host and status. On a nil Metrics it returns next unchanged.
func (m *Metrics) Transport(next http.RoundTripper) http.RoundTripper {
	if m == nil {
		return next
	}
	return roundTripper{m: m, next: next}
}

type roundTripper struct {
	m    *Metrics
	next http.RoundTripper
}

func (t roundTripper) RoundTrip(req *http.Request) (*http.Response, error) {
	start := time.Now()
	resp, err := t.next.RoundTrip(req)
	status := "error"
	if err == nil {
		status = strconv.Itoa(resp.StatusCode)
	}
	t.m.fetches.WithLabelValues(req.URL.Host, status).Inc()
	t.m.fetchTime.WithLabelValues(req.URL.Host, status).Observe(time.Since(start).Seconds())
	return resp, err
}

// ConsumerState is where a durable consumer stands.
type ConsumerState struct {
	Stream, Consumer string
	Pending          uint64 // messages not yet delivered
	AckPending       int    // delivered, not yet acknowledged
}

// WatchConsumers reports the consumers' pending and ack-pending messages
// at every scrape, as read by states (asked with a short deadline; a
// consumer that cannot be read then is left out of that scrape).
func (m *Metrics) WatchConsumers(states func(ctx context.Context) ([]ConsumerState, error)) {
	if m != nil {
		m.reg.MustRegister(consumerCollector{states: states})
	}
}

var (
	pendingDesc = prometheus.NewDesc("citecrawl_consumer_pending_messages",
		"Messages of the consumer's stream not yet delivered to it (read from the server at scrape).", []string{"stream", "consumer"}, nil)
	ackPendingDesc = prometheus.NewDesc("citecrawl_consumer_ack_pending_messages",
		"Messages delivered to the consumer and not yet acknowledged (read from the server at scrape).", []string{"stream", "consumer"}, nil)
)

type consumerCollector struct {
	states func(ctx context.Context) ([]ConsumerState, error)
}

func (c consumerCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- pendingDesc
	ch <- ackPendingDesc
}

func (c consumerCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	states, _ := c.states(ctx)
	for _, s := range states {
		ch <- prometheus.MustNewConstMetric(pendingDesc, prometheus.GaugeValue, float64(s.Pending), s.Stream, s.Consumer)
		ch <- prometheus.MustNewConstMetric(ackPendingDesc, prometheus.GaugeValue, float64(s.AckPending), s.Stream, s.Consumer)
	}
}
