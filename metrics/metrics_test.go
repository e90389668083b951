package metrics

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// A nil *Metrics records nothing and does not panic: the pipeline calls it
// whether or not metrics are served.
func TestNilMetrics(t *testing.T) {
	var m *Metrics
	m.Processed("fetch", 3)
	m.Failed("fetch", true)
	m.DeadLettered("fetch")
	m.Published(time.Second)
	m.SinkSealed(1, 10)
	m.LeaseHeld("crawl", true)
	m.WatchConsumers(nil)
	if rt := m.Transport(http.DefaultTransport); rt != http.DefaultTransport {
		t.Fatal("a nil Metrics wrapped the transport")
	}
}

// The transport counts each request by host and status, "error" when no
// response came.
func TestTransportCounts(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/missing" {
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	m := New(prometheus.NewRegistry())
	c := &http.Client{Transport: m.Transport(http.DefaultTransport)}
	for _, p := range []string{"/", "/", "/missing"} {
		resp, err := c.Get(srv.URL + p)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	failing := &http.Client{Transport: m.Transport(roundTripFunc(func(*http.Request) (*http.Response, error) {
		return nil, errors.New("refused")
	}))}
	if _, err := failing.Get("http://example.invalid/"); err == nil {
		t.Fatal("no error")
	}
	host := strings.TrimPrefix(srv.URL, "http://")
	for _, tc := range []struct {
		host, status string
		want         float64
	}{{host, "200", 2}, {host, "404", 1}, {"example.invalid", "error", 1}} {
		if got := testutil.ToFloat64(m.fetches.WithLabelValues(tc.host, tc.status)); got != tc.want {
			t.Errorf("%s %s: %v, want %v", tc.host, tc.status, got, tc.want)
		}
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// /readyz answers 503 with the reason until ready says yes; /healthz 200.
func TestServerHealth(t *testing.T) {
	var ready atomic.Bool
	s, err := Serve("127.0.0.1:0", prometheus.NewRegistry(), func(context.Context) error {
		if !ready.Load() {
			return errors.New("not connected to NATS")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	get := func(path string) (int, string) {
		resp, err := http.Get("http://" + s.Addr() + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, _ := get("/healthz"); code != 200 {
		t.Errorf("/healthz: %d", code)
	}
	if code, body := get("/readyz"); code != 503 || !strings.Contains(body, "not connected to NATS") {
		t.Errorf("/readyz: %d %s", code, body)
	}
	ready.Store(true)
	if code, _ := get("/readyz"); code != 200 {
		t.Errorf("/readyz when ready: %d", code)
	}
	if _, err := Serve("nowhere", prometheus.NewRegistry(), nil); err == nil || !strings.Contains(err.Error(), "metrics.listen") {
		t.Errorf("bad address: %v", err)
	}
}
