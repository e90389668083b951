// Package pipeline is citecrawl's NATS JetStream wiring: the broker
// (embedded or external), the streams and durable consumers, and the
// three stages (fetch, classify, sink) that move records through them.
package pipeline

import (
	"errors"
	"fmt"
	"net"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/rs/zerolog"

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
	Metrics  MetricsConfig      `yaml:"metrics"`
}

// MetricsConfig says where run and worker serve Prometheus metrics and
// their health checks (see package metrics).
type MetricsConfig struct {
	// Listen is host:port for /metrics, /healthz and /readyz; empty serves
	// nothing.
	Listen string `yaml:"listen"`
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
	// TLSCA is a PEM file of the certificate authorities to trust for the
	// server's certificate; TLSCert and TLSKey are this client's
	// certificate and key, for servers that verify clients.
	TLSCA   string `yaml:"tls_ca"`
	TLSCert string `yaml:"tls_cert"`
	TLSKey  string `yaml:"tls_key"`
	// DataDir is where the embedded server keeps its streams.
	DataDir string `yaml:"data_dir"`
	// Listen makes the embedded server accept clients (workers in other
	// processes) on host:port; empty keeps it on a random loopback port
	// behind a token only this user can read (see share.go).
	Listen string `yaml:"listen"`
	// EmbeddedProcess says where the command line runs the embedded
	// server: in a process of its own (`citecrawl broker`), which the
	// command starts and stops, or in the command's. Open itself always
	// serves in-process.
	EmbeddedProcess string `yaml:"embedded_process"`
	// Replicas of each stream (1 for one server, 3 for a cluster).
	Replicas int `yaml:"replicas"`
	// RetainRecords is how long raw and tagged records stay in their
	// streams (0: forever, so batch reprocessing can read them).
	RetainRecords time.Duration `yaml:"retain_records"`
}

// The places nats.embedded_process gives the embedded server.
//
// In a process of its own the server's memory (the blocks it reads and
// caches; in a store of versions before 2026-12-02, an index entry for
// each self-tagged record too, 100 MiB at a million) is not in the heap
// the command's collector walks, nor its work on the command's scheduler.
// That pays for reprocess, which reads the whole store under a memory
// limit: a million self-tagged records took 26.9 to 37.3 CPU s with the
// child and 31.7 to 42.0 inside (3 runs each, in turn, 2026-12-02). It
// does not pay for a crawl: every message then crosses between two
// processes, and `run` on a hub of 5,000 papers took 1.92 CPU s against
// 1.55 with the server inside.
const (
	EmbeddedAuto   = "auto"   // a process of its own for reprocess, the command's for the others
	EmbeddedAlways = "always" // a process of its own for every command
	EmbeddedNever  = "never"  // the command's process
)

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
		NATS:        BrokerConfig{DataDir: "./data", EmbeddedProcess: EmbeddedAuto, Replicas: 1},
		Stages: StageConfig{
			MaxDeliver:      5,
			AckWait:         10 * time.Second,
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
		Sink: sink.Config{Out: "./out", JSONLConfig: sink.JSONLConfig{SegmentMaxBytes: 8 << 20, SegmentMaxAge: 5 * time.Second}, UnavailableTimeout: 5 * time.Minute},
		Log:  LogConfig{Level: "info", Format: "json"},
	}
}

// ErrBadConfig marks an option found wrong only once the server could be
// asked (more replicas than the cluster has servers): a usage error.
var ErrBadConfig = errors.New("bad configuration")

// Validate checks every option before anything starts, and names each
// one that cannot work with the values it accepts.
func (c *Config) Validate() error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	atLeast := func(name string, v, least int) {
		if v < least {
			bad("%s must be at least %d, not %d", name, least, v)
		}
	}
	// Durations: a negative pause or a zero timeout would hang or spin.
	durationAtLeast := func(name string, v, least time.Duration) {
		switch {
		case v >= least:
		case least == 0:
			bad("%s must be 0 or more (a duration like 1s), not %s", name, v)
		case least == time.Nanosecond:
			bad("%s must be more than 0 (a duration like 30s), not %s", name, v)
		default:
			bad("%s must be at least %s, not %s", name, least, v)
		}
	}
	for host, n := range c.Fetch.HostConcurrency {
		if n < 1 {
			bad("fetch.host_concurrency of %s must be at least 1, not %d", host, n)
		}
	}
	for _, h := range c.Hubs {
		if err := ingest.CheckURL(h); err != nil {
			bad("hubs: %w", err)
		} else if _, err := ingest.HubID(h); err != nil {
			bad("hubs: %w", err)
		}
	}
	if err := ingest.CheckURL(c.FullText.ArxivBase); err != nil {
		bad("full_text.arxiv_base: %w", err)
	}
	atLeast("discover.depth", c.Discover.Depth, 0)
	atLeast("discover.max_pages", c.Discover.MaxPages, 0)
	durationAtLeast("lease_ttl", c.LeaseTTL, time.Nanosecond)

	atLeast("stages.max_deliver", c.Stages.MaxDeliver, 1)
	durationAtLeast("stages.ack_wait", c.Stages.AckWait, time.Second)
	for _, d := range c.Stages.Backoff {
		if d <= 0 {
			bad("stages.backoff: every delay must be more than 0 (durations like 2s,10s), not %s", d)
			break
		}
	}
	atLeast("stages.fetch_workers", c.Stages.FetchWorkers, 1)
	atLeast("stages.classify_workers", c.Stages.ClassifyWorkers, 1)
	atLeast("stages.batch", c.Stages.Batch, 1)
	atLeast("stages.max_pending_publishes", c.Stages.MaxPending, 1)
	if err := CheckName(c.Stages.SinkDurable); err != nil {
		bad("stages.sink_durable: %w", err)
	}

	if c.NATS.URL == "" && c.NATS.DataDir == "" {
		bad("nats.data_dir is needed for the embedded server")
	}
	switch c.NATS.EmbeddedProcess {
	case EmbeddedAuto, EmbeddedAlways, EmbeddedNever:
	default:
		bad("nats.embedded_process %q: want %s, %s or %s", c.NATS.EmbeddedProcess, EmbeddedAuto, EmbeddedAlways, EmbeddedNever)
	}
	if c.NATS.Replicas < 1 || c.NATS.Replicas > 5 {
		bad("nats.replicas must be from 1 to 5, not %d", c.NATS.Replicas)
	} else if c.NATS.URL == "" && c.NATS.Replicas > 1 {
		bad("nats.replicas is %d, but the embedded server is one server: use 1, or nats.url to name a cluster of at least %d", c.NATS.Replicas, c.NATS.Replicas)
	}
	durationAtLeast("nats.retain_records", c.NATS.RetainRecords, 0)
	if (c.NATS.TLSCert == "") != (c.NATS.TLSKey == "") {
		bad("nats.tls_cert and nats.tls_key go together: give both or neither")
	}
	for name, f := range map[string]string{"nats.tls_ca": c.NATS.TLSCA, "nats.tls_cert": c.NATS.TLSCert, "nats.tls_key": c.NATS.TLSKey, "nats.creds": c.NATS.Creds} {
		if f == "" {
			continue
		}
		if _, err := os.Stat(f); err != nil {
			bad("%s: %w", name, err)
		}
	}
	if c.NATS.Listen != "" {
		host, _, err := net.SplitHostPort(c.NATS.Listen)
		switch {
		case err != nil:
			bad("nats.listen %q: want host:port: %w", c.NATS.Listen, err)
		case c.NATS.URL == "" && !loopbackHost(host) && c.NATS.Token == "" && c.NATS.User == "":
			bad("nats.listen %q is reachable from other machines: set nats.token, or nats.user and nats.password, so that clients must authenticate (or listen on 127.0.0.1)", c.NATS.Listen)
		}
	}

	f := c.Fetch
	if strings.TrimSpace(f.UserAgent) == "" {
		bad("fetch.user_agent must not be empty: sites are told who is crawling")
	}
	durationAtLeast("fetch.delay", f.Delay, 0)
	for host, d := range f.HostDelays {
		durationAtLeast("fetch.host_delays of "+host, d, 0)
	}
	durationAtLeast("fetch.timeout", f.Timeout, time.Nanosecond)
	if f.MaxBodyBytes < 1 {
		bad("fetch.max_body_bytes must be at least 1, not %d", f.MaxBodyBytes)
	}
	atLeast("fetch.max_redirects", f.MaxRedirects, 0)
	atLeast("fetch.retries", f.Retries, 0)
	durationAtLeast("fetch.backoff_base", f.BackoffBase, 0)
	if f.BackoffMax < f.BackoffBase {
		bad("fetch.backoff_max (%s) must be at least fetch.backoff_base (%s)", f.BackoffMax, f.BackoffBase)
	}
	durationAtLeast("fetch.max_retry_after", f.MaxRetryAfter, 0)
	if _, err := ingest.ParseAllowAddresses(f.AllowAddresses); err != nil {
		bad("%w", err)
	}

	if err := c.Sink.Validate(); err != nil {
		errs = append(errs, err)
	}
	if c.Sink.SegmentMaxBytes < 1 {
		bad("sink.segment_max_bytes must be at least 1, not %d", c.Sink.SegmentMaxBytes)
	}
	durationAtLeast("sink.segment_max_age", c.Sink.SegmentMaxAge, time.Nanosecond)
	durationAtLeast("sink.unavailable_timeout", c.Sink.UnavailableTimeout, time.Nanosecond)
	if _, folder := c.Sink.Folder(); folder && c.Sink.SegmentMaxAge >= c.Stages.AckWait {
		bad("sink.segment_max_age (%s) must be shorter than stages.ack_wait (%s): records are acked when their segment is sealed",
			c.Sink.SegmentMaxAge, c.Stages.AckWait)
	}

	if _, err := zerolog.ParseLevel(c.Log.Level); err != nil {
		bad("log.level %q: want debug, info, warn or error", c.Log.Level)
	}
	switch c.Log.Format {
	case "json", "console", "":
	default:
		bad("log.format %q: want json or console", c.Log.Format)
	}
	if c.Metrics.Listen != "" {
		if _, _, err := net.SplitHostPort(c.Metrics.Listen); err != nil {
			bad("metrics.listen %q: want host:port: %w", c.Metrics.Listen, err)
		}
	}
	return errors.Join(errs...)
}

// validName is what NATS accepts as a consumer name and as one subject
// token: no dots, wildcards, spaces or path separators.
var validName = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// CheckName refuses a durable consumer name NATS would refuse or misread
// (a dot would make it two subject tokens).
func CheckName(name string) error {
	if !validName.MatchString(name) {
		return fmt.Errorf("%q is not a consumer name: want 1 to 64 letters, digits, - or _", name)
	}
	return nil
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
