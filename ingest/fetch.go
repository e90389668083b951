// Package ingest is citecrawl's crawling: the rules that turn a hub into
// citing papers and a paper into its raw record (crawl.go, crawlhub.go,
// paperbuild.go), a polite HTTP fetcher, robots.txt, and the parsers for
// pith.science hubs, graph snapshots and arXiv pages. Its failures speak
// package retry.
package ingest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/citecrawl/citecrawl/retry"
)

// FetchConfig holds every option of the Fetcher; pipeline.DefaultConfig
// gives the polite defaults.
type FetchConfig struct {
	// UserAgent is sent with every request; Contact is appended to it so a
	// site owner can reach the operator.
	UserAgent string `yaml:"user_agent"`
	Contact   string `yaml:"contact"`
	// Delay is the pause between two requests to the same host.
	Delay time.Duration `yaml:"delay"`
	// HostDelays overrides Delay per host name (for example arxiv.org: 3s).
	HostDelays map[string]time.Duration `yaml:"host_delays"`
	// HostConcurrency is how many requests may be in flight at once to a
	// host name; a host not listed gets one (politeness). Raise it for a
	// host you own, such as your own mirror.
	HostConcurrency map[string]int `yaml:"host_concurrency"`
	// Timeout bounds one request, headers and body.
	Timeout time.Duration `yaml:"timeout"`
	// MaxBodyBytes refuses bodies larger than this.
	MaxBodyBytes int64 `yaml:"max_body_bytes"`
	// MaxRedirects stops redirect chains and loops.
	MaxRedirects int `yaml:"max_redirects"`
	// Retries is how many times a 429, 5xx or network error is retried.
	Retries int `yaml:"retries"`
	// BackoffBase doubles on each retry, up to BackoffMax.
	BackoffBase time.Duration `yaml:"backoff_base"`
	BackoffMax  time.Duration `yaml:"backoff_max"`
	// MaxRetryAfter is the longest Retry-After the fetcher waits out; a
	// longer one fails the fetch so the message is retried later instead.
	MaxRetryAfter time.Duration `yaml:"max_retry_after"`
	// Robots turns robots.txt checking on (the default) or off.
	Robots bool `yaml:"robots"`
	// AllowPrivate lets the fetcher connect to loopback, private,
	// link-local, unique-local and cloud-metadata addresses, which it
	// refuses by default (see safety.go); AllowAddresses lets it connect to
	// the listed addresses or CIDR prefixes only (the offline snapshot's
	// own loopback address).
	AllowPrivate   bool     `yaml:"allow_private"`
	AllowAddresses []string `yaml:"allow_addresses"`
}

// Response is a fetched page.
type Response struct {
	URL    string // final URL after redirects
	Status int
	Header http.Header
	Body   []byte
}

// HTTPError is a response status the fetcher does not accept. The
// fetcher marks it permanent (4xx but 408 and 429) or retryable, with the
// server's Retry-After (429, 503), in the words of package retry.
type HTTPError struct {
	URL      string
	Status   int
	Attempts int
}

func (e *HTTPError) Error() string {
	return fmt.Sprintf("GET %s: HTTP %d after %d attempt(s)", e.URL, e.Status, e.Attempts)
}

// statusError is the error of a response with a failing status.
func statusError(rawURL string, resp *Response, attempts int) error {
	err := error(&HTTPError{URL: rawURL, Status: resp.Status, Attempts: attempts})
	switch s := resp.Status; {
	case s == http.StatusTooManyRequests || s == http.StatusServiceUnavailable:
		return retry.After(err, retryAfter(resp.Header.Get("Retry-After"), time.Now()))
	case s >= 400 && s < 500 && s != http.StatusRequestTimeout:
		return retry.Permanent(err)
	}
	return err
}

// Fetcher is a polite HTTP client: robots.txt, one request in flight per
// host (or fetch.host_concurrency's number) with a delay between requests,
// backoff on 429 and 5xx honouring Retry-After, a timeout, a body cap and
// a redirect cap.
type Fetcher struct {
	cfg    FetchConfig
	client *http.Client
	log    zerolog.Logger

	mu     sync.Mutex
	hosts  map[string]*hostGate
	robots robotsCache

	requests *atomic.Int64 // counts every request sent, when set
}

// FetcherOption changes how a Fetcher is built.
type FetcherOption func(*fetcherOptions)

type fetcherOptions struct {
	wrap     func(http.RoundTripper) http.RoundTripper
	requests *atomic.Int64
}

// WithTransport wraps the fetcher's HTTP transport, for example to count
// and time every request (each redirect hop and robots.txt included).
func WithTransport(wrap func(http.RoundTripper) http.RoundTripper) FetcherOption {
	return func(o *fetcherOptions) { o.wrap = wrap }
}

// WithRequestCount adds one to n for every HTTP request the fetcher sends:
// retries, redirects followed and robots.txt included.
func WithRequestCount(n *atomic.Int64) FetcherOption {
	return func(o *fetcherOptions) { o.requests = n }
}

// NewFetcher builds a Fetcher. Its transport connects only to the addresses
// the configuration allows (checked after DNS, see safety.go) and never
// through a proxy, which would hide the real destination from that check.
// Every redirect hop is checked here: http(s) only, allowed by its host's
// robots.txt, and the redirect cap, so a loop ends with a clear error
// rather than the client's generic one.
func NewFetcher(cfg FetchConfig, log zerolog.Logger, opts ...FetcherOption) *Fetcher {
	var o fetcherOptions
	for _, opt := range opts {
		opt(&o)
	}
	f := &Fetcher{cfg: cfg, log: log, hosts: map[string]*hostGate{}, requests: o.requests}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = nil
	tr.DialContext = newAddressGuard(cfg).dialer().DialContext
	// Keep as many connections to a host as may be in flight to it, so a
	// host with several slots does not dial anew for most requests.
	for _, n := range cfg.HostConcurrency {
		tr.MaxIdleConnsPerHost = max(tr.MaxIdleConnsPerHost, n)
	}
	var rt http.RoundTripper = tr
	if o.wrap != nil {
		rt = o.wrap(rt)
	}
	f.client = &http.Client{Timeout: cfg.Timeout, Transport: rt, CheckRedirect: f.checkRedirect}
	return f
}

// checkRedirect is the redirect policy: every hop is an http(s) URL that
// its host's robots.txt allows (read now if the host is new), and chains
// stop at max_redirects. Robots errors of a hop are those of a first
// request: permanent when forbidden, retryable when robots.txt cannot be
// read.
func (f *Fetcher) checkRedirect(req *http.Request, via []*http.Request) error {
	if len(via) > f.cfg.MaxRedirects {
		return retry.Permanentf("stopped after %d redirects (loop or chain too long)", f.cfg.MaxRedirects)
	}
	f.count() // the redirect is followed: one more request
	if err := CheckURL(req.URL.String()); err != nil {
		return retry.Permanentf("redirected to %w", err)
	}
	if f.cfg.Robots && req.URL.Path != "/robots.txt" {
		ok, err := f.allowed(req.Context(), req.URL, 0)
		if err != nil {
			return fmt.Errorf("redirected to %s: %w", req.URL, err)
		}
		if !ok {
			return retry.Permanentf("redirected to %s, which robots.txt of %s disallows", req.URL, req.URL.Host)
		}
	}
	return nil
}

// UserAgent is the header value sent with every request.
func (f *Fetcher) UserAgent() string {
	if f.cfg.Contact == "" {
		return f.cfg.UserAgent
	}
	return fmt.Sprintf("%s (+%s)", f.cfg.UserAgent, f.cfg.Contact)
}

// Get fetches rawURL, waiting its turn for the host, retrying transient
// failures. A non-2xx final status is an *HTTPError. hdr adds request
// headers (for example Accept or If-None-Match); a 304 is returned, not an
// error.
func (f *Fetcher) Get(ctx context.Context, rawURL string, hdr http.Header) (*Response, error) {
	return f.get(ctx, rawURL, hdr, f.cfg.Retries)
}

// GetOnce is Get without retries, for cheap checks whose failure only
// means "do the full work".
func (f *Fetcher) GetOnce(ctx context.Context, rawURL string, hdr http.Header) (*Response, error) {
	return f.get(ctx, rawURL, hdr, 0)
}

func (f *Fetcher) get(ctx context.Context, rawURL string, hdr http.Header, retries int) (*Response, error) {
	if err := CheckURL(rawURL); err != nil {
		return nil, fmt.Errorf("GET: %w", err)
	}
	u, _ := url.Parse(rawURL)
	if f.cfg.Robots && u.Path != "/robots.txt" {
		ok, err := f.allowed(ctx, u, retries)
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, retry.Permanentf("GET %s: disallowed by robots.txt of %s", rawURL, u.Host)
		}
	}
	policy := f.cfg.Policy()
	policy.Attempts = retries + 1 // GetOnce tries once
	for attempt := 1; ; attempt++ {
		resp, err := f.once(ctx, u, hdr)
		if err == nil && resp.Status < 400 {
			return resp, nil
		}
		if err == nil {
			err = statusError(rawURL, resp, attempt)
		}
		if ctx.Err() != nil || IsUnreachable(err) {
			return nil, err // an unreachable host is tried again by redelivery (unreachable.go)
		}
		next := policy.Next(attempt, err)
		if !next.Retry {
			if next.Wait > 0 {
				return nil, fmt.Errorf("GET %s: server asks to retry after %s, more than max_retry_after %s: %w", rawURL, next.Wait, f.cfg.MaxRetryAfter, err)
			}
			return nil, err
		}
		f.log.Debug().Str("url", rawURL).Int("attempt", attempt).Dur("wait", next.Wait).Err(err).Msg("retrying")
		// The host stays blocked for others while we wait: backoff is per host.
		f.gate(u).hold(next.Wait)
	}
}

// Policy is the retry policy within one delivery: Retries more attempts
// after the first, waiting BackoffBase doubling up to BackoffMax, or a
// longer Retry-After up to MaxRetryAfter.
func (c FetchConfig) Policy() retry.Policy {
	return retry.Policy{Attempts: c.Retries + 1, Backoff: retry.Doubling(c.BackoffBase, c.BackoffMax, c.Retries), MaxWait: c.MaxRetryAfter}
}

// once makes one request under the host's gate.
func (f *Fetcher) once(ctx context.Context, u *url.URL, hdr http.Header) (*Response, error) {
	g, delay := f.gate(u), f.delay(u)
	if err := g.acquire(ctx, delay); err != nil {
		return nil, err
	}
	defer g.release(delay)

	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, retry.Permanentf("GET %s: %w", u, err)
	}
	for k, vs := range hdr {
		req.Header[k] = vs
	}
	req.Header.Set("User-Agent", f.UserAgent())
	f.count()
	resp, err := f.client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // the redirect policy's or the address check's own message
		}
		return nil, fmt.Errorf("GET %s: %w", u, unreachable(u.Host, err))
	}
	defer resp.Body.Close()
	if resp.ContentLength > f.cfg.MaxBodyBytes {
		return nil, retry.Permanentf("GET %s: body of %d bytes is over the cap of %d bytes", u, resp.ContentLength, f.cfg.MaxBodyBytes)
	}
	body, err := readBody(resp, f.cfg.MaxBodyBytes+1)
	if err != nil {
		return nil, fmt.Errorf("GET %s: reading body: %w", u, err)
	}
	if int64(len(body)) > f.cfg.MaxBodyBytes {
		return nil, retry.Permanentf("GET %s: body is over the cap of %d bytes", u, f.cfg.MaxBodyBytes)
	}
	return &Response{URL: resp.Request.URL.String(), Status: resp.StatusCode, Header: resp.Header, Body: body}, nil
}

// readBody reads resp's body, at most limit bytes of it. A body of an
// announced length is read into a buffer of exactly that size (then to
// its end, so the connection is kept for the next request); any other
// into one grown by doubling.
func readBody(resp *http.Response, limit int64) ([]byte, error) {
	body := io.LimitReader(resp.Body, limit)
	if n := resp.ContentLength; n >= 0 && n < limit {
		b := make([]byte, n)
		if _, err := io.ReadFull(body, b); err != nil {
			return nil, err
		}
		var more [1]byte // a body longer than announced is read on, to the limit
		switch _, err := io.ReadFull(body, more[:]); {
		case err == io.EOF:
			return b, nil
		case err != nil:
			return nil, err
		}
		buf := bytes.NewBuffer(append(b, more[0]))
		_, err := buf.ReadFrom(body)
		return buf.Bytes(), err
	}
	var buf bytes.Buffer
	_, err := buf.ReadFrom(body)
	return buf.Bytes(), err
}

func (f *Fetcher) count() {
	if f.requests != nil {
		f.requests.Add(1)
	}
}

// retryAfter parses a Retry-After value: delay seconds or an HTTP date.
func retryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(v); err == nil && s >= 0 {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// Spaced says whether requests to rawURL's host wait for one another: a
// delay between them (fetch.delay, fetch.host_delays, or the Crawl-delay
// its robots.txt gave so far), or one at a time (fetch.host_concurrency
// not above 1, the default). An unparsable URL counts as spaced.
func (f *Fetcher) Spaced(rawURL string) (delayed, oneAtATime bool) {
	u, err := url.Parse(rawURL)
	if err != nil || u.Host == "" {
		return true, true
	}
	return f.delay(u) > 0, f.concurrency(u) <= 1
}

// delay is the host's configured delay, or its robots.txt Crawl-delay when
// that is longer.
func (f *Fetcher) delay(u *url.URL) time.Duration {
	d, ok := f.cfg.HostDelays[u.Hostname()]
	if !ok {
		d = f.cfg.Delay
	}
	return max(d, f.robots.crawlDelay(u.Host))
}

// gate is the host's gate, made on its first request with the host's
// concurrency.
func (f *Fetcher) gate(u *url.URL) *hostGate {
	f.mu.Lock()
	defer f.mu.Unlock()
	g, ok := f.hosts[u.Host]
	if !ok {
		g = &hostGate{slots: make(chan struct{}, f.concurrency(u))}
		f.hosts[u.Host] = g
	}
	return g
}

// concurrency is how many requests may be in flight to u's host at once:
// fetch.host_concurrency, else one.
func (f *Fetcher) concurrency(u *url.URL) int {
	if n, ok := f.cfg.HostConcurrency[u.Hostname()]; ok && n > 0 {
		return n
	}
	return 1
}

// hostGate lets up to cap(slots) requests at a time through to a host, and
// keeps the host's delay between requests: a request starts no sooner than
// the delay after the previous one started or ended (with one slot, after
// it ended).
type hostGate struct {
	slots chan struct{}
	mu    sync.Mutex
	next  time.Time // earliest start of the next request
}

func (g *hostGate) acquire(ctx context.Context, delay time.Duration) error {
	select {
	case g.slots <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	for {
		g.mu.Lock()
		now := time.Now()
		wait := g.next.Sub(now)
		if wait <= 0 {
			g.next = now.Add(delay)
			g.mu.Unlock()
			return nil
		}
		g.mu.Unlock()
		// Another slot holder may take the turn meanwhile: look again.
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			<-g.slots
			return ctx.Err()
		}
	}
}

func (g *hostGate) release(delay time.Duration) {
	g.push(time.Now().Add(delay))
	<-g.slots
}

// hold keeps the host closed for d (a backoff), so other requests to the
// same host wait too; our own next attempt waits in acquire like
// everyone else's.
func (g *hostGate) hold(d time.Duration) { g.push(time.Now().Add(d)) }

// push moves the next start to t, unless it is later already.
func (g *hostGate) push(t time.Time) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if t.After(g.next) {
		g.next = t
	}
}
