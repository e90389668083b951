package pipeline

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/citecrawl/citecrawl/ingest/snapshot"
)

// A Retry-After longer than the fetcher waits out is honoured by the
// stage: the task comes back no sooner than the server asked, not after
// the stage's short backoff, and then succeeds.
func TestStageHonoursRetryAfter(t *testing.T) {
	site := snapshot.Default()
	hubPath := "/citations/" + site.Hubs()[0].ID
	var mu sync.Mutex
	var hubHits []time.Time
	web := startSite(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == hubPath {
			mu.Lock()
			hubHits = append(hubHits, time.Now())
			first := len(hubHits) == 1
			mu.Unlock()
			if first {
				w.Header().Set("Retry-After", "1")
				http.Error(w, "busy", http.StatusServiceUnavailable)
				return
			}
		}
		site.ServeHTTP(w, r)
	}))
	cfg := testConfig(t, t.TempDir(), []string{web.URL + hubPath})
	cfg.Fetch.Retries = 0
	cfg.Fetch.MaxRetryAfter = 10 * time.Millisecond // the fetcher gives the wait to the stage
	cfg.FullText.Enabled = false
	bus := openBus(t, cfg)
	defer bus.Close()
	res, err := Run(context.Background(), bus, cfg, testEnv())
	if err != nil {
		t.Fatal(err)
	}
	if len(res.DeadLetters) != 0 || res.Written != int64(len(site.Hubs()[0].Papers)) {
		t.Fatalf("%d written, dead letters %+v", res.Written, res.DeadLetters)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(hubHits) != 2 {
		t.Fatalf("hub requested %d times, want 2", len(hubHits))
	}
	if gap := hubHits[1].Sub(hubHits[0]); gap < time.Second {
		t.Fatalf("redelivered after %s, before the Retry-After of 1s (stage backoff %s)", gap, cfg.Stages.Backoff[0])
	}
}
