package pipeline

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/citecrawl/citecrawl/ingest/snapshot"
	"github.com/citecrawl/citecrawl/metrics"
)

// scrape reads a text exposition into "name{labels}" -> value.
func scrape(t *testing.T, url string) map[string]float64 {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("metric line %q: %v", line, err)
		}
		out[line[:i]] = v
	}
	return out
}

func status(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// A run with --metrics-listen: /metrics, /healthz and /readyz answer while
// it works (scraped with the first hub page held back, so the fetch
// consumer has it in flight), and at the end the counters match what was
// written.
func TestMetricsDuringRun(t *testing.T) {
	site := snapshot.Default()
	web, release := startHeldHubSite(t, site)
	defer release()
	cfg := testConfig(t, t.TempDir(), site.HubURLs(web.URL))
	bus := openBus(t, cfg)
	defer bus.Close()
	reg := prometheus.NewRegistry()
	bus.Instrument(metrics.New(reg), cfg)
	srv, err := metrics.Serve("127.0.0.1:0", reg, Ready(bus, cfg, AllStages, true))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	base := "http://" + srv.Addr()

	if code, _ := status(t, base+"/healthz"); code != http.StatusOK {
		t.Fatalf("/healthz: %d", code)
	}
	if code, body := status(t, base+"/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "consumer") {
		t.Fatalf("/readyz before the stages bound their consumers: %d %s", code, body)
	}

	env := testEnv()
	type result struct {
		res *Result
		err error
	}
	done := make(chan result, 1)
	go func() {
		res, err := Run(context.Background(), bus, cfg, env)
		done <- result{res, err}
	}()

	// During the run: the hub tasks are delivered and held by the fetch
	// workers, so the fetch consumer shows them ack-pending.
	inFlight := `citecrawl_consumer_ack_pending_messages{consumer="fetch",stream="CITECRAWL_TASKS"}`
	deadline := time.Now().Add(30 * time.Second)
	for {
		m := scrape(t, base+"/metrics")
		if m[inFlight] >= 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the held hub task never showed as ack-pending; scraped %d series", len(m))
		}
		time.Sleep(20 * time.Millisecond)
	}
	if code, body := status(t, base+"/readyz"); code != http.StatusOK {
		t.Fatalf("/readyz during the run: %d %s", code, body)
	}
	release()
	r := <-done
	if r.err != nil {
		t.Fatal(r.err)
	}

	m := scrape(t, base+"/metrics")
	recs := readOut(t, cfg.Sink.Out)
	assertEachOnce(t, recs, site.DistinctPapers())
	var segs, bytes float64
	for _, h := range site.Hubs() {
		// The files on disk, counted apart from the sink's own reader.
		files, err := filepath.Glob(filepath.Join(cfg.Sink.Out, h.ID, "seg-*.jsonl"))
		if err != nil {
			t.Fatal(err)
		}
		segs += float64(len(files))
		for _, f := range files {
			st, err := os.Stat(f)
			if err != nil {
				t.Fatal(err)
			}
			bytes += float64(st.Size())
		}
	}
	for name, want := range map[string]float64{
		`citecrawl_stage_messages_processed_total{stage="sink"}`:     float64(len(recs)),
		`citecrawl_stage_messages_processed_total{stage="classify"}`: float64(env.Stats.RecordsTagged.Load()),
		`citecrawl_sink_segments_total`:                              segs,
		`citecrawl_sink_bytes_total`:                                 bytes,
		inFlight:                                                     0,
		`citecrawl_consumer_pending_messages{consumer="sink",stream="CITECRAWL_TAGGED"}`: 0,
	} {
		if got := m[name]; got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	if got := m[`citecrawl_stage_messages_processed_total{stage="fetch"}`]; got < float64(len(site.Hubs())+1) {
		t.Errorf("fetch processed %v tasks, want at least the hubs and one paper", got)
	}
	host := strings.TrimPrefix(web.URL, "http://")
	var requests float64
	for k, v := range m {
		if strings.HasPrefix(k, `citecrawl_fetch_requests_total{host="`+host+`"`) {
			requests += v
		}
	}
	if requests < float64(r.res.Pages) || m[`citecrawl_fetch_request_duration_seconds_count{host="`+host+`",status="200"}`] == 0 {
		t.Errorf("fetch requests to %s: %v, want at least the %d pages fetched, timed", host, requests, r.res.Pages)
	}
	for k, v := range m {
		if (strings.HasPrefix(k, "citecrawl_stage_messages_dead_lettered_total") || strings.HasPrefix(k, "citecrawl_stage_messages_failed_total")) && v != 0 {
			t.Errorf("%s = %v on a run without failures", k, v)
		}
	}
	if _, ok := m["citecrawl_publish_duration_seconds_count"]; !ok || m["citecrawl_publish_duration_seconds_count"] == 0 {
		t.Error("no publish latency observed")
	}
}

// Failures are counted per stage: a hub answering 404 fails once and is
// dead-lettered at once; one answering 500 is redelivered first.
func TestMetricsCountFailures(t *testing.T) {
	web := startSite(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.Contains(r.URL.Path, "/citations/5") {
			http.Error(w, "down", http.StatusInternalServerError)
			return
		}
		http.NotFound(w, r)
	}))
	hubs := []string{web.URL + "/citations/4a000000-0000-0000-0000-000000000404", web.URL + "/citations/5a000000-0000-0000-0000-000000000500"}
	cfg := testConfig(t, t.TempDir(), hubs)
	bus := openBus(t, cfg)
	defer bus.Close()
	reg := prometheus.NewRegistry()
	bus.Instrument(metrics.New(reg), cfg)
	srv, err := metrics.Serve("127.0.0.1:0", reg, Ready(bus, cfg, AllStages, true))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	res, err := Run(context.Background(), bus, cfg, testEnv())
	if err != nil {
		t.Fatal(err)
	}
	m := scrape(t, "http://"+srv.Addr()+"/metrics")
	host := strings.TrimPrefix(web.URL, "http://")
	for name, want := range map[string]float64{
		`citecrawl_stage_messages_dead_lettered_total{stage="fetch"}`:      float64(len(res.DeadLetters)),
		`citecrawl_stage_messages_failed_total{stage="fetch"}`:             float64(1 + cfg.Stages.MaxDeliver),
		`citecrawl_stage_messages_redelivered_total{stage="fetch"}`:        float64(cfg.Stages.MaxDeliver - 1),
		`citecrawl_fetch_requests_total{host="` + host + `",status="404"}`: 2, // robots.txt, the hub
	} {
		if got := m[name]; got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	if len(res.DeadLetters) != 2 {
		t.Errorf("%d dead letters, want 2", len(res.DeadLetters))
	}
}

// citecrawl_lease_held is 1 while a scheduled run holds the crawl lease,
// and 0 once it is released.
func TestMetricsLeaseHeld(t *testing.T) {
	site := snapshot.Default()
	web, release := startHeldHubSite(t, site)
	defer release()
	cfg := testConfig(t, t.TempDir(), site.HubURLs(web.URL)[:1])
	bus := openBus(t, cfg)
	defer bus.Close()
	reg := prometheus.NewRegistry()
	bus.Instrument(metrics.New(reg), cfg)
	srv, err := metrics.Serve("127.0.0.1:0", reg, Ready(bus, cfg, AllStages, true))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	lease, err := NewLease(context.Background(), bus, "crawl", "test", time.Minute, nil)
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := lease.TryAcquire(context.Background()); !ok || err != nil {
		t.Fatalf("lease: %v %v", ok, err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := runHoldingLease(context.Background(), bus, cfg, testEnv(), lease)
		done <- err
	}()
	held := `citecrawl_lease_held{lease="crawl"}`
	deadline := time.Now().Add(30 * time.Second)
	for scrape(t, "http://"+srv.Addr()+"/metrics")[held] != 1 {
		if time.Now().After(deadline) {
			t.Fatal("the lease never showed as held")
		}
		time.Sleep(20 * time.Millisecond)
	}
	release()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if v, ok := scrape(t, "http://"+srv.Addr()+"/metrics")[held]; !ok || v != 0 {
		t.Fatalf("%s = %v (present %v) after the release, want 0", held, v, ok)
	}
}

// startHeldHubSite serves site with every hub page held back until release
// is called (any number of times), so that a run can be observed while its
// fetch consumer has the hub in flight.
func startHeldHubSite(t *testing.T, site http.Handler) (web *httptest.Server, release func()) {
	held := make(chan struct{})
	var once sync.Once
	web = startSite(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/citations/") {
			<-held
		}
		site.ServeHTTP(w, r)
	}))
	return web, func() { once.Do(func() { close(held) }) }
}
