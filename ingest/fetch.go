// Package ingest fetches and parses the pages citecrawl reads: a polite
// HTTP fetcher, robots.txt, and the parsers for pith.science hubs and
// graph snapshots.
package ingest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"
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
}

// Response is a fetched page.
type Response struct {
	URL    string // final URL after redirects
	Status int
	Header http.Header
	Body   []byte
}

// HTTPError is a response status the fetcher does not accept.
type HTTPError struct {
	URL      string
	Status   int
	Attempts int
}

func (e *HTTPError) Error() string {
	return fmt.Sprintf("GET %s: HTTP %d after %d attempt(s)", e.URL, e.Status, e.Attempts)
}

// ErrPermanent marks errors that retrying will not fix (robots disallow,
// 404, oversized body, bad URL). Test with IsPermanent.
var ErrPermanent = errors.New("permanent")

type permanentError struct{ err error }

func (e permanentError) Error() string        { return e.err.Error() }
func (e permanentError) Unwrap() []error      { return []error{e.err, ErrPermanent} }
func permanent(format string, a ...any) error { return permanentError{fmt.Errorf(format, a...)} }

// Permanent marks err as one that retrying will not fix.
func Permanent(err error) error { return permanentError{err} }

// IsPermanent tells whether err will fail again however often it is retried.
func IsPermanent(err error) bool {
	if errors.Is(err, ErrPermanent) {
		return true
	}
	var he *HTTPError
	if errors.As(err, &he) {
		return he.Status >= 400 && he.Status < 500 && he.Status != http.StatusTooManyRequests && he.Status != http.StatusRequestTimeout
	}
	return false
}

// Fetcher is a polite HTTP client: robots.txt, one request in flight per
// host with a delay between requests, backoff on 429 and 5xx honouring
// Retry-After, a timeout, a body cap and a redirect cap.
type Fetcher struct {
	cfg    FetchConfig
	client *http.Client
	log    zerolog.Logger

	mu     sync.Mutex
	hosts  map[string]*hostGate
	robots robotsCache
}

// NewFetcher builds a Fetcher. The redirect cap is enforced here so a loop
// ends with a clear error rather than the client's generic one.
func NewFetcher(cfg FetchConfig, log zerolog.Logger) *Fetcher {
	f := &Fetcher{cfg: cfg, log: log, hosts: map[string]*hostGate{}}
	f.client = &http.Client{
		Timeout: cfg.Timeout,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) > cfg.MaxRedirects {
				return permanent("GET %s: stopped after %d redirects (loop or chain too long)", via[0].URL, cfg.MaxRedirects)
			}
			return nil
		},
	}
	return f
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
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, permanent("GET %q: not an absolute http(s) URL", rawURL)
	}
	if f.cfg.Robots && u.Path != "/robots.txt" {
		ok, err := f.allowed(ctx, u, retries)
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, permanent("GET %s: disallowed by robots.txt of %s", rawURL, u.Host)
		}
	}
	var lastErr error
	for attempt := 1; ; attempt++ {
		resp, wait, err := f.once(ctx, u, hdr)
		if err == nil && resp.Status < 400 {
			return resp, nil
		}
		if err == nil {
			err = &HTTPError{URL: rawURL, Status: resp.Status, Attempts: attempt}
		}
		lastErr = err
		if IsPermanent(err) || attempt > retries || ctx.Err() != nil {
			return nil, lastErr
		}
		if wait == 0 {
			wait = f.backoff(attempt)
		}
		if wait > f.cfg.MaxRetryAfter {
			return nil, fmt.Errorf("GET %s: server asks to retry after %s, more than max_retry_after %s: %w", rawURL, wait, f.cfg.MaxRetryAfter, lastErr)
		}
		f.log.Debug().Str("url", rawURL).Int("attempt", attempt).Dur("wait", wait).Err(err).Msg("retrying")
		// The host stays blocked for others while we wait: backoff is per host.
		if err := f.gate(u.Host).hold(ctx, wait); err != nil {
			return nil, err
		}
	}
}

func (f *Fetcher) backoff(attempt int) time.Duration {
	d := f.cfg.BackoffBase << (attempt - 1)
	if d > f.cfg.BackoffMax || d <= 0 {
		d = f.cfg.BackoffMax
	}
	return d
}

// once makes one request under the host's gate. It returns how long the
// server asked us to wait (Retry-After) on 429 and 503.
func (f *Fetcher) once(ctx context.Context, u *url.URL, hdr http.Header) (*Response, time.Duration, error) {
	g := f.gate(u.Host)
	if err := g.acquire(ctx, f.delay(u)); err != nil {
		return nil, 0, err
	}
	defer g.release()

	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, 0, permanent("GET %s: %v", u, err)
	}
	for k, vs := range hdr {
		req.Header[k] = vs
	}
	req.Header.Set("User-Agent", f.UserAgent())
	resp, err := f.client.Do(req)
	if err != nil {
		var pe permanentError
		if errors.As(err, &pe) {
			return nil, 0, pe
		}
		return nil, 0, fmt.Errorf("GET %s: %w", u, err)
	}
	defer resp.Body.Close()
	if resp.ContentLength > f.cfg.MaxBodyBytes {
		return nil, 0, permanent("GET %s: body of %d bytes is over the cap of %d bytes", u, resp.ContentLength, f.cfg.MaxBodyBytes)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, f.cfg.MaxBodyBytes+1))
	if err != nil {
		return nil, 0, fmt.Errorf("GET %s: reading body: %w", u, err)
	}
	if int64(len(body)) > f.cfg.MaxBodyBytes {
		return nil, 0, permanent("GET %s: body is over the cap of %d bytes", u, f.cfg.MaxBodyBytes)
	}
	var wait time.Duration
	if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable {
		wait = retryAfter(resp.Header.Get("Retry-After"), time.Now())
	}
	return &Response{URL: resp.Request.URL.String(), Status: resp.StatusCode, Header: resp.Header, Body: body}, wait, nil
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

// delay is the host's configured delay, or its robots.txt Crawl-delay when
// that is longer.
func (f *Fetcher) delay(u *url.URL) time.Duration {
	d, ok := f.cfg.HostDelays[u.Hostname()]
	if !ok {
		d = f.cfg.Delay
	}
	return max(d, f.robots.crawlDelay(u.Host))
}

func (f *Fetcher) gate(host string) *hostGate {
	f.mu.Lock()
	defer f.mu.Unlock()
	g, ok := f.hosts[host]
	if !ok {
		g = &hostGate{slot: make(chan struct{}, 1)}
		f.hosts[host] = g
	}
	return g
}

// hostGate lets one request at a time through to a host, and keeps the
// host's delay between the end of one request and the start of the next.
type hostGate struct {
	slot     chan struct{}
	lastDone time.Time // guarded by holding slot
}

func (g *hostGate) acquire(ctx context.Context, delay time.Duration) error {
	select {
	case g.slot <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	if wait := time.Until(g.lastDone.Add(delay)); wait > 0 {
		t := time.NewTimer(wait)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
			<-g.slot
			return ctx.Err()
		}
	}
	return nil
}

func (g *hostGate) release() {
	g.lastDone = time.Now()
	<-g.slot
}

// hold keeps the host closed for d (a backoff), so other requests to the
// same host wait too.
func (g *hostGate) hold(ctx context.Context, d time.Duration) error {
	select {
	case g.slot <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	g.lastDone = time.Now().Add(d)
	<-g.slot
	// Our own next attempt waits in acquire like everyone else's.
	return nil
}
