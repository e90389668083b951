// Package pipeline is citecrawl's NATS JetStream wiring: the broker
// (embedded or external), the streams and durable consumers, and the
// three stages (fetch, classify, sink) that move records through them.
package pipeline

import (
	"errors"
	"fmt"
	"time"

	"github.com/citecrawl/citecrawl/ingest"
	"github.com/citecrawl/citecrawl/retry"
	"github.com/citecrawl/citecrawl/sink"
)

// RoadmapHub is the default hub: the pith.science hub of "A Roadmap to
// Pluralistic Alignment".
const RoadmapHub = "https://pith.science/citations/667ba460-8f85-44de-abed-e988dbbf316b"

// Config is everything a run or a worker needs. DefaultConfig holds every
// default, of every package, in one place; configs/citecrawl.yaml is the
// documented copy (a test keeps the two equal).
type Config struct {
	Hubs       []string       `yaml:"hubs"`
	FetchGraph bool           `yaml:"fetch_graph"`
	FullText   FullTextConfig `yaml:"full_text"`
	Discover   DiscoverConfig `yaml:"discover"`
	// Conditional sends If-None-Match / If-Modified-Since with what was
	// stored from the last fetch; a page answering 304 is not parsed again
	// and nothing built from it is published again.
	Conditional bool   `yaml:"conditional"`
	Rules       string `yaml:"rules"`
	// LeaseTTL is how long a scheduler's crawl lease lasts without renewal:
	// the longest a dead scheduler can block the others.
	LeaseTTL time.Duration      `yaml:"lease_ttl"`
	NATS     BrokerConfig       `yaml:"nats"`
	Stages   StageConfig        `yaml:"stages"`
	Fetch    ingest.FetchConfig `yaml:"fetch"`
	Sink     sink.Config        `yaml:"sink"`
	Log      LogConfig          `yaml:"log"`
}

// LogConfig says how the command line logs.
type LogConfig struct {
	Level  string `yaml:"level"`  // debug, info, warn, error
	Format string `yaml:"format"` // json or console
}

// FullTextConfig says how citing sentences are read from arXiv.
type FullTextConfig struct {
	// Enabled fetches https://arxiv.org/html/<id> of every citing paper.
	Enabled bool `yaml:"enabled"`
	// ArxivBase is where arXiv is (abstract pages and full text).
	ArxivBase string `yaml:"arxiv_base"`
	// TextFallback matches plain [n] markers when a paper links no
	// citation at all; such contexts are marked "text".
	TextFallback bool `yaml:"text_fallback"`
}

// DiscoverConfig follows /citations/ links to more hubs.
type DiscoverConfig struct {
	// Depth is how many links away from the configured hubs to go (0: none).
	Depth int `yaml:"depth"`
	// Hosts that may be followed.
	Hosts []string `yaml:"hosts"`
	// MaxPages is the most hubs one run discovers.
	MaxPages int `yaml:"max_pages"`
}

// BrokerConfig says which NATS to use.
type BrokerConfig struct {
	// URL of an external NATS server or cluster (comma-separated); empty
	// starts an embedded server with JetStream inside the process.
	URL      string `yaml:"url"`
	User     string `yaml:"user"`
	Password string `yaml:"password"`
	Token    string `yaml:"token"`
	Creds    string `yaml:"creds"`
	// DataDir is where the embedded server keeps its streams.
	DataDir string `yaml:"data_dir"`
	// Listen makes the embedded server accept clients (workers in other
	// processes) on host:port; empty keeps it in-process only.
	Listen string `yaml:"listen"`
	// Replicas of each stream (1 for one server, 3 for a cluster).
	Replicas int `yaml:"replicas"`
	// RetainRecords is how long raw and tagged records stay in their
	// streams (0: forever, so batch reprocessing can read them).
	RetainRecords time.Duration `yaml:"retain_records"`
}

// StageConfig tunes the durable consumers and the workers on them.
type StageConfig struct {
	MaxDeliver      int             `yaml:"max_deliver"`
	AckWait         time.Duration   `yaml:"ack_wait"`
	Backoff         []time.Duration `yaml:"backoff"`
	FetchWorkers    int             `yaml:"fetch_workers"`
	ClassifyWorkers int             `yaml:"classify_workers"`
	Batch           int             `yaml:"batch"`
	MaxPending      int             `yaml:"max_pending_publishes"`
	SinkDurable     string          `yaml:"sink_durable"`
}

// DefaultConfig returns the defaults of every component: the one place
// they are written.
func DefaultConfig() Config {
	return Config{
		Hubs:        []string{RoadmapHub},
		FetchGraph:  true,
		FullText:    FullTextConfig{Enabled: true, ArxivBase: "https://arxiv.org"},
		Discover:    DiscoverConfig{Hosts: []string{"pith.science"}, MaxPages: 50},
		Conditional: true,
		LeaseTTL:    5 * time.Minute,
		NATS:        BrokerConfig{DataDir: "./data", Replicas: 1},
		Stages: StageConfig{
			MaxDeliver:      5,
			AckWait:         2 * time.Minute,
			Backoff:         []time.Duration{2 * time.Second, 10 * time.Second, 30 * time.Second, time.Minute},
			FetchWorkers:    4,
			ClassifyWorkers: 2,
			Batch:           256,
			MaxPending:      4096,
			SinkDurable:     "sink",
		},
		Fetch: ingest.FetchConfig{
			UserAgent:     "citecrawl/0.1",
			Contact:       "https://github.com/citecrawl/citecrawl",
			Delay:         time.Second,
			HostDelays:    map[string]time.Duration{"arxiv.org": 3 * time.Second, "export.arxiv.org": 3 * time.Second},
			Timeout:       30 * time.Second,
			MaxBodyBytes:  20 << 20,
			MaxRedirects:  5,
			Retries:       3,
			BackoffBase:   2 * time.Second,
			BackoffMax:    time.Minute,
			MaxRetryAfter: 5 * time.Minute,
			Robots:        true,

			HostConcurrency: map[string]int{}, // one request at a time to every host
		},
		Sink: sink.Config{Out: "./out", SegmentMaxBytes: 8 << 20, SegmentMaxAge: 10 * time.Second},
		Log:  LogConfig{Level: "info", Format: "json"},
	}
}

// Validate names the first option that cannot work.
func (c *Config) Validate() error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	if c.Stages.MaxDeliver < 1 {
		bad("stages.max_deliver must be at least 1, not %d", c.Stages.MaxDeliver)
	}
	if c.Stages.AckWait < time.Second {
		bad("stages.ack_wait must be at least 1s, not %s", c.Stages.AckWait)
	}
	if c.Stages.FetchWorkers < 1 || c.Stages.ClassifyWorkers < 1 || c.Stages.Batch < 1 {
		bad("stages.fetch_workers, classify_workers and batch must be at least 1")
	}
	if c.Sink.Out != "-" && c.Sink.SegmentMaxAge >= c.Stages.AckWait {
		bad("sink.segment_max_age (%s) must be shorter than stages.ack_wait (%s): records are acked when their segment is sealed",
			c.Sink.SegmentMaxAge, c.Stages.AckWait)
	}
	if c.NATS.URL == "" && c.NATS.DataDir == "" {
		bad("nats.data_dir is needed for the embedded server")
	}
	if c.Fetch.MaxBodyBytes < 1 {
		bad("fetch.max_body_bytes must be positive")
	}
	for host, n := range c.Fetch.HostConcurrency {
		if n < 1 {
			bad("fetch.host_concurrency of %s must be at least 1, not %d", host, n)
		}
	}
	for _, h := range c.Hubs {
		if _, err := ingest.HubID(h); err != nil {
			bad("hubs: %w", err)
		}
	}
	return errors.Join(errs...)
}

// Policy is the stages' retry policy: max_deliver deliveries in all, the
// n-th redelivery after backoff[n-1] (the last one repeated), or after
// the failure's Retry-After when that is longer.
func (c *StageConfig) Policy() retry.Policy {
	return retry.Policy{Attempts: c.MaxDeliver, Backoff: c.Backoff}
}

// maxAckPending is how many messages one consumer may have out unacked.
// The sink holds messages until their segment is sealed, so it seals at
// half of this, before the server stops delivering.
func (c *StageConfig) maxAckPending() int { return max(c.Batch*8, 2048) }
