package pipeline

import (
	"context"
	"math"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/citecrawl/citecrawl/ingest"
	"github.com/citecrawl/citecrawl/ingest/snapshot"
)

// hitCounter serves a site and counts the requests for each path.
type hitCounter struct {
	h    http.Handler
	mu   sync.Mutex
	hits map[string]int
}

func (c *hitCounter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c.mu.Lock()
	c.hits[r.URL.Path]++
	c.mu.Unlock()
	c.h.ServeHTTP(w, r)
}

// Each paper costs the requests that give its record and no more, a paper
// listed by two hubs of a run is fetched once, and the run report counts
// the requests sent, as the site counted them.
func TestRunRequestsPerRecord(t *testing.T) {
	gen := snapshot.Generated(10)
	second := snapshot.Hub{ID: "9e4e7a10-0000-4000-8000-0000000000b2", Title: "A second hub", Papers: gen.Papers[:5]}
	site := snapshot.New(snapshot.StyleCards, gen, second)
	counter := &hitCounter{h: site, hits: map[string]int{}}
	web := startSite(t, counter)
	cfg := testConfig(t, t.TempDir(), site.HubURLs(web.URL))
	cfg.FullText.Enabled = false
	// One worker builds the papers in turn, so the second hub's find the
	// first's pages kept; concurrent workers may both fetch a page that
	// neither had kept yet.
	cfg.Stages.FetchWorkers = 1
	bus := openBus(t, cfg)
	res, err := Run(context.Background(), bus, cfg, testEnv())
	bus.Close()
	if err != nil {
		t.Fatal(err)
	}
	if res.Written != 15 || res.New != 15 {
		t.Fatalf("%d records written, %d new; want 15", res.Written, res.New)
	}
	counter.mu.Lock()
	defer counter.mu.Unlock()
	total, graphs := 0, 0
	for path, n := range counter.hits {
		total += n
		isJSON := strings.HasPrefix(path, "/pith/") && strings.HasSuffix(path, ".json")
		isGraph := strings.HasSuffix(path, "/graph.json")
		if (isJSON || isGraph) && n != 1 {
			t.Errorf("%s requested %d times in one run, want once", path, n)
		}
		if isGraph {
			graphs++
		}
	}
	// The first six papers of each hub are cards whose meta line gives
	// what graph.json would (verdict, refs): only the four papers listed
	// in the explorer alone need it.
	if graphs != 4 {
		t.Errorf("graph.json requested for %d papers, want 4 (those the hub lists without their meta line)", graphs)
	}
	// robots.txt, two hubs, ten Pith JSON records, four graphs.
	if total != 17 || res.Requests != int64(total) {
		t.Errorf("the site counted %d requests, the report %d; want 17 both (%v)", total, res.Requests, counter.hits)
	}
	if want := math.Round(100*17.0/15) / 100; res.RequestsPerRecord != want {
		t.Errorf("requests_per_record %v, want %v", res.RequestsPerRecord, want)
	}
}

// A record's pages, kept with their validators in one bucket entry by an
// older version, still read; an entry of a still older version (URLs
// only) too, without them.
func TestRecordPagesKeepValidators(t *testing.T) {
	cfg := testConfig(t, t.TempDir(), nil)
	bus := openBus(t, cfg)
	defer bus.Close()
	ctx := context.Background()
	c := bus.cache
	pages := []ingest.SourcePage{{URL: "https://x/a.json", Validator: ingest.Validator{ETag: `"e1"`}},
		{URL: "https://x/b.json", Validator: ingest.Validator{LastModified: "Mon, 30 Nov 2026 10:00:00 GMT"}}}
	entry, err := pagesHeader("r1", pages) // what the entry held: the same JSON
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.kv.Put(ctx, "record.r1", []byte(entry)); err != nil {
		t.Fatal(err)
	}
	if got := c.RecordPages(ctx, "r1"); !slices.Equal(got, pages) {
		t.Errorf("record pages %+v, want %+v", got, pages)
	}
	if _, err := c.kv.Put(ctx, "record.r0", []byte(`["https://x/a.json"]`)); err != nil {
		t.Fatal(err)
	}
	if got := c.RecordPages(ctx, "r0"); len(got) != 1 || got[0].URL != "https://x/a.json" || got[0].Validator != (ingest.Validator{}) {
		t.Errorf("older entry read as %+v", got)
	}
}
