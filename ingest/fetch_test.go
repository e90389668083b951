package ingest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/citecrawl/citecrawl/retry"
)

// testFetchConfig is polite but fast: no delay, short backoff.
func testFetchConfig() FetchConfig {
	return FetchConfig{
		UserAgent:     "citecrawl/0.1",
		Contact:       "https://github.com/citecrawl/citecrawl",
		Timeout:       5 * time.Second,
		MaxBodyBytes:  20 << 20,
		MaxRedirects:  5,
		Retries:       3,
		BackoffBase:   5 * time.Millisecond,
		BackoffMax:    50 * time.Millisecond,
		MaxRetryAfter: 5 * time.Minute,
		Robots:        true,
		// The test sites are httptest servers on loopback, which the
		// fetcher refuses unless told.
		AllowAddresses: []string{"127.0.0.1"},
	}
}

// siteWithoutRobots serves h on loopback, with no robots.txt (404: all
// allowed), until the test ends.
func siteWithoutRobots(t *testing.T, h http.HandlerFunc) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/robots.txt" {
			http.NotFound(w, r)
			return
		}
		h(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestFetchRobotsDisallow(t *testing.T) {
	var private atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/robots.txt":
			fmt.Fprint(w, "User-agent: otherbot\nDisallow: /\n\nUser-agent: *\nDisallow: /private/\nAllow: /private/open$\n")
		case strings.HasPrefix(r.URL.Path, "/private/"):
			private.Add(1)
			fmt.Fprint(w, "secret")
		default:
			fmt.Fprint(w, "ok")
		}
	}))
	defer srv.Close()
	f := NewFetcher(testFetchConfig(), zerolog.Nop())
	ctx := context.Background()

	_, err := f.Get(ctx, srv.URL+"/private/page", nil)
	if err == nil || !retry.IsPermanent(err) || !strings.Contains(err.Error(), "robots.txt") {
		t.Fatalf("err = %v, want a permanent robots.txt refusal", err)
	}
	if private.Load() != 0 {
		t.Fatalf("the disallowed path was requested %d times", private.Load())
	}
	if _, err := f.Get(ctx, srv.URL+"/private/open", nil); err != nil {
		t.Fatalf("allowed path refused: %v", err)
	}
	if _, err := f.Get(ctx, srv.URL+"/public", nil); err != nil {
		t.Fatalf("public path refused: %v", err)
	}
}

func TestFetchRetryAfterIsWaitedOut(t *testing.T) {
	var mu sync.Mutex
	var hits []time.Time
	srv := siteWithoutRobots(t, func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		hits = append(hits, time.Now())
		n := len(hits)
		mu.Unlock()
		if n == 1 {
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusTooManyRequests)
			return
		}
		fmt.Fprint(w, "ok")
	})
	resp, err := NewFetcher(testFetchConfig(), zerolog.Nop()).Get(context.Background(), srv.URL+"/p", nil)
	if err != nil || string(resp.Body) != "ok" {
		t.Fatalf("resp %v err %v", resp, err)
	}
	if len(hits) != 2 {
		t.Fatalf("%d requests, want 2", len(hits))
	}
	// Correctness, not speed: the second request must not come before the
	// server said it may.
	if gap := hits[1].Sub(hits[0]); gap < time.Second {
		t.Fatalf("retried after %v, before the Retry-After of 1s", gap)
	}
}

// A Retry-After longer than max_retry_after ends the fetch at once, still
// retryable, and hands the wait on to the stage.
func TestFetchLongRetryAfterIsHandedOn(t *testing.T) {
	var hits atomic.Int32
	srv := siteWithoutRobots(t, func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Header().Set("Retry-After", "600")
		w.WriteHeader(http.StatusTooManyRequests)
	})
	cfg := testFetchConfig()
	cfg.MaxRetryAfter = time.Second
	_, err := NewFetcher(cfg, zerolog.Nop()).Get(context.Background(), srv.URL+"/p", nil)
	if err == nil || retry.IsPermanent(err) || retry.RetryAfter(err) != 10*time.Minute || !strings.Contains(err.Error(), "more than max_retry_after") {
		t.Fatalf("err = %v (retry after %s), want a retryable error asking for 10m", err, retry.RetryAfter(err))
	}
	if hits.Load() != 1 {
		t.Fatalf("%d requests, want 1: the wait is not sat out here", hits.Load())
	}
}

// Which statuses are permanent and which carry the server's wait.
func TestStatusError(t *testing.T) {
	for _, tc := range []struct {
		status     int
		retryAfter string
		permanent  bool
		wait       time.Duration
	}{
		{400, "", true, 0},
		{404, "", true, 0},
		{410, "", true, 0},
		{408, "", false, 0},
		{429, "7", false, 7 * time.Second},
		{500, "", false, 0},
		{503, "2", false, 2 * time.Second},
		{502, "9", false, 0}, // Retry-After is read on 429 and 503 only
	} {
		resp := &Response{Status: tc.status, Header: http.Header{}}
		if tc.retryAfter != "" {
			resp.Header.Set("Retry-After", tc.retryAfter)
		}
		err := statusError("http://x/p", resp, 2)
		var he *HTTPError
		if retry.IsPermanent(err) != tc.permanent || retry.RetryAfter(err) != tc.wait || !errors.As(err, &he) || he.Status != tc.status || he.Attempts != 2 {
			t.Errorf("HTTP %d: %v permanent %v wait %s", tc.status, err, retry.IsPermanent(err), retry.RetryAfter(err))
		}
	}
}

func TestRetryAfterDate(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	if d := retryAfter(now.Add(90*time.Second).Format(http.TimeFormat), now); d != 90*time.Second {
		t.Fatalf("HTTP-date Retry-After = %v, want 90s", d)
	}
	if d := retryAfter("soon", now); d != 0 {
		t.Fatalf("garbage Retry-After = %v, want 0", d)
	}
}

func TestFetchPersistent500IsRetriedThenFails(t *testing.T) {
	var n atomic.Int32
	srv := siteWithoutRobots(t, func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		http.Error(w, "boom", http.StatusInternalServerError)
	})
	cfg := testFetchConfig()
	_, err := NewFetcher(cfg, zerolog.Nop()).Get(context.Background(), srv.URL+"/p", nil)
	if err == nil || retry.IsPermanent(err) || !strings.Contains(err.Error(), "HTTP 500") {
		t.Fatalf("err = %v, want a transient HTTP 500 error", err)
	}
	if int(n.Load()) != cfg.Retries+1 {
		t.Fatalf("%d attempts, want %d", n.Load(), cfg.Retries+1)
	}
}

func TestFetch404IsPermanent(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	defer srv.Close()
	_, err := NewFetcher(testFetchConfig(), zerolog.Nop()).Get(context.Background(), srv.URL+"/gone", nil)
	if !retry.IsPermanent(err) || !strings.Contains(err.Error(), "404") {
		t.Fatalf("err = %v, want a permanent 404", err)
	}
}

func TestFetchOversizedBodyRefused(t *testing.T) {
	srv := siteWithoutRobots(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/chunked" {
			w.(http.Flusher).Flush() // no Content-Length: the cap must hold while reading
		}
		fmt.Fprint(w, strings.Repeat("x", 4096))
	})
	cfg := testFetchConfig()
	cfg.MaxBodyBytes = 1024
	f := NewFetcher(cfg, zerolog.Nop())
	for _, p := range []string{"/sized", "/chunked"} {
		_, err := f.Get(context.Background(), srv.URL+p, nil)
		if !retry.IsPermanent(err) || !strings.Contains(err.Error(), "over the cap of 1024 bytes") || !strings.Contains(err.Error(), p) {
			t.Fatalf("%s: err = %v, want a clear oversize error naming the URL", p, err)
		}
	}
}

func TestFetchRedirectLoopStops(t *testing.T) {
	var n atomic.Int32
	srv := siteWithoutRobots(t, func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		http.Redirect(w, r, "/loop", http.StatusFound)
	})
	cfg := testFetchConfig()
	_, err := NewFetcher(cfg, zerolog.Nop()).Get(context.Background(), srv.URL+"/loop", nil)
	if !retry.IsPermanent(err) || !strings.Contains(err.Error(), "redirects") {
		t.Fatalf("err = %v, want a permanent redirect error", err)
	}
	if int(n.Load()) != cfg.MaxRedirects+1 {
		t.Fatalf("followed %d hops, want %d", n.Load(), cfg.MaxRedirects+1)
	}
}

func TestFetchOneRequestPerHostAndUserAgent(t *testing.T) {
	var inFlight, maxInFlight atomic.Int32
	var ua atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ua.Store(r.UserAgent())
		cur := inFlight.Add(1)
		defer inFlight.Add(-1)
		for {
			m := maxInFlight.Load()
			if cur <= m || maxInFlight.CompareAndSwap(m, cur) {
				break
			}
		}
		// Hold the request open long enough for others to pile up if
		// the gate let them.
		time.Sleep(2 * time.Millisecond)
		fmt.Fprint(w, "ok")
	}))
	defer srv.Close()
	f := NewFetcher(testFetchConfig(), zerolog.Nop())
	var wg sync.WaitGroup
	for i := 0; i < 20; i++ {
		wg.Go(func() {
			if _, err := f.Get(context.Background(), fmt.Sprintf("%s/p%d", srv.URL, i), nil); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if maxInFlight.Load() != 1 {
		t.Fatalf("%d requests in flight at once to one host, want 1", maxInFlight.Load())
	}
	if got := ua.Load().(string); !strings.HasPrefix(got, "citecrawl/") || !strings.Contains(got, "+https://") {
		t.Fatalf("User-Agent %q does not name the project and a contact URL", got)
	}
}

func TestFetchRejectsBadURL(t *testing.T) {
	_, err := NewFetcher(testFetchConfig(), zerolog.Nop()).Get(context.Background(), "ftp://example.org/x", nil)
	if !retry.IsPermanent(err) || !strings.Contains(err.Error(), "ftp://example.org/x") {
		t.Fatalf("err = %v", err)
	}
}

// concurrencySite counts the requests in flight per Host header and keeps
// each open until want of that host are in, or a second has passed, so
// that a gate letting too many through is seen.
type concurrencySite struct {
	mu       sync.Mutex
	inFlight map[string]int
	max      map[string]int
	starts   map[string][]time.Time
	want     map[string]int
}

func newConcurrencySite(want map[string]int) *concurrencySite {
	s := &concurrencySite{inFlight: map[string]int{}, max: map[string]int{}, starts: map[string][]time.Time{}, want: want}
	return s
}

func (s *concurrencySite) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/robots.txt" {
		http.NotFound(w, r)
		return
	}
	host := strings.Split(r.Host, ":")[0]
	s.mu.Lock()
	s.inFlight[host]++
	s.max[host] = max(s.max[host], s.inFlight[host])
	s.starts[host] = append(s.starts[host], time.Now())
	deadline := time.Now().Add(250 * time.Millisecond)
	for s.inFlight[host] < s.want[host] && time.Now().Before(deadline) {
		s.mu.Unlock()
		time.Sleep(time.Millisecond)
		s.mu.Lock()
	}
	s.inFlight[host]--
	s.mu.Unlock()
	fmt.Fprint(w, "ok")
}

// fetchAll fetches n pages of base at once.
func fetchAll(t *testing.T, f *Fetcher, base string, n int) {
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			if _, err := f.Get(context.Background(), fmt.Sprintf("%s/p%d", base, i), nil); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
}

// fetch.host_concurrency lets N requests at once to a host that lists it,
// and still one to any other host.
func TestFetchHostConcurrency(t *testing.T) {
	site := newConcurrencySite(map[string]int{"127.0.0.1": 4, "localhost": 4})
	srv := httptest.NewServer(site)
	defer srv.Close()
	cfg := testFetchConfig()
	cfg.HostConcurrency = map[string]int{"127.0.0.1": 4}
	f := NewFetcher(cfg, zerolog.Nop())
	fetchAll(t, f, srv.URL, 12)                                              // 127.0.0.1: listed
	fetchAll(t, f, strings.Replace(srv.URL, "127.0.0.1", "localhost", 1), 3) // same server, another host name: not listed
	site.mu.Lock()
	defer site.mu.Unlock()
	if got := site.max["127.0.0.1"]; got != 4 {
		t.Errorf("%d requests in flight at once to a host with host_concurrency 4, want 4", got)
	}
	if got := site.max["localhost"]; got != 1 {
		t.Errorf("%d requests in flight at once to a host not listed, want 1", got)
	}
}

// The host's delay still spaces the requests of a host with several slots.
func TestFetchHostConcurrencyKeepsDelay(t *testing.T) {
	site := newConcurrencySite(nil)
	srv := httptest.NewServer(site)
	defer srv.Close()
	cfg := testFetchConfig()
	cfg.HostConcurrency = map[string]int{"127.0.0.1": 4}
	cfg.HostDelays = map[string]time.Duration{"127.0.0.1": 40 * time.Millisecond}
	fetchAll(t, NewFetcher(cfg, zerolog.Nop()), srv.URL, 6)
	site.mu.Lock()
	defer site.mu.Unlock()
	starts := site.starts["127.0.0.1"]
	if len(starts) != 6 {
		t.Fatalf("%d requests, want 6", len(starts))
	}
	for i := 1; i < len(starts); i++ {
		// Correctness, not speed: never sooner than the delay (less a
		// margin for when the server reads each request).
		if gap := starts[i].Sub(starts[i-1]); gap < 35*time.Millisecond {
			t.Errorf("request %d started %v after the previous one, sooner than the host's delay of 40ms", i, gap)
		}
	}
}

// A fetcher with n requests at once to a host keeps about n connections
// to it, whatever the bodies (of an announced length, chunked, longer than
// a read buffer): each body is read to its end and its connection reused,
// not dialled anew for each request.
func TestFetcherReusesItsConnections(t *testing.T) {
	var dials atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/robots.txt":
			http.NotFound(w, r)
		case "/chunked":
			w.(http.Flusher).Flush() // no Content-Length: chunked
			fmt.Fprint(w, strings.Repeat("c", 3000))
		case "/large":
			fmt.Fprint(w, strings.Repeat("l", 100<<10))
		default:
			fmt.Fprint(w, `{"title":"a small page of an announced length"}`)
		}
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			dials.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	const n = 4
	cfg := testFetchConfig()
	cfg.HostConcurrency = map[string]int{"127.0.0.1": n}
	f := NewFetcher(cfg, zerolog.Nop())
	var wg sync.WaitGroup
	paths := []string{"/small", "/chunked", "/large"}
	for w := range n {
		wg.Go(func() {
			for i := range 30 {
				p := paths[(w+i)%len(paths)]
				resp, err := f.Get(context.Background(), srv.URL+p, nil)
				if err != nil {
					t.Error(err)
					return
				}
				if p == "/large" && len(resp.Body) != 100<<10 {
					t.Errorf("%s: %d bytes", p, len(resp.Body))
				}
			}
		})
	}
	wg.Wait()
	// Without reuse each of the 120 requests dials. With it, n and one for
	// robots.txt, and under load a few more: the transport dials while it
	// waits for an idle connection and keeps the dial if it wins (6 seen
	// at load 8, which n+1 failed on).
	if got := dials.Load(); got > 2*n+1 {
		t.Fatalf("%d connections for %d requests at once: bodies not read to their end, or idle connections not kept", got, n)
	}
}
