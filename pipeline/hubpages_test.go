package pipeline

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/citecrawl/citecrawl/ingest/snapshot"
)

// A hub crawled by two workers, one that tags its records and one that
// leaves them to the classify stage, is crawled again after one paper
// changed: its crawl hands every other paper the pages its record was
// built from (whichever worker stored it), so each asks them whether they
// changed and only the changed paper is published again. The broker keeps
// a subject per hub for them, not one per record.
func TestRecrawlFindsEveryRecordsPagesOnOneSubjectPerHub(t *testing.T) {
	const n = 60
	hub := snapshot.Generated(n)
	site := snapshot.New(snapshot.StyleCards, hub)
	c := counting(site)
	web := startSite(t, c)
	cfg := testConfig(t, t.TempDir(), site.HubURLs(web.URL))
	cfg.FullText.Enabled = false
	cfg.Stages.FetchWorkers = 1
	bus := openBus(t, cfg)
	defer bus.Close()
	ctx := context.Background()

	crawl := func(runID string) (published, notModified int64) {
		t.Helper()
		a, b := testEnv(), testEnv()
		wa, err := StartStages(ctx, bus, cfg, []string{StageFetch}, a)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = wa.Stop() }()
		wb, err := StartStages(ctx, bus, cfg, []string{StageFetch, StageClassify, StageSink}, b)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = wb.Stop() }()
		o, _ := HubTask(runID, site.HubURLs(web.URL)[0], 0, cfg.FullText.ArxivBase)
		if err := bus.PublishAll(ctx, []Out{o}); err != nil {
			t.Fatal(err)
		}
		checkFor(t, 60*time.Second, func() error {
			if a.Stats.PagesFetched.Load()+b.Stats.PagesFetched.Load() == 0 {
				return fmt.Errorf("the hub task is not taken yet")
			}
			return WaitDrained(ctx, bus, cfg, nil, 50*time.Millisecond)
		})
		if pa, pb := a.Stats.RecordsPublished.Load(), b.Stats.RecordsPublished.Load(); runID == "first" && (pa == 0 || pb == 0) {
			t.Fatalf("workers published %d and %d records: the test needs both kinds", pa, pb)
		}
		return a.Stats.RecordsPublished.Load() + b.Stats.RecordsPublished.Load(), a.Stats.NotModified.Load() + b.Stats.NotModified.Load()
	}
	if published, _ := crawl("first"); published != n {
		t.Fatalf("first crawl published %d records, want %d", published, n)
	}
	for stream, want := range map[string][]string{
		StreamRaw:    {RawSubject(hub.ID)},
		StreamTagged: {TaggedSubject(hub.ID), SelfTaggedSubject(hub.ID)},
	} {
		s, err := bus.JS.Stream(ctx, stream)
		if err != nil {
			t.Fatal(err)
		}
		info, err := s.Info(ctx, jetstream.WithSubjectFilter(">"))
		if err != nil {
			t.Fatal(err)
		}
		if got := slices.Sorted(maps.Keys(info.State.Subjects)); !slices.Equal(got, slices.Sorted(slices.Values(want))) {
			t.Fatalf("%s holds the subjects %v, want %v", stream, got, want)
		}
	}

	// One paper's summary changes: the hub page and its Pith JSON change.
	papers := slices.Clone(hub.Papers)
	papers[0].Summary = "A rewritten summary that now mentions juries of annotators."
	hub.Papers = papers
	site.SetHubs(hub)
	published, notModified := crawl("second")
	if published != 1 {
		t.Fatalf("after one paper of %d changed, the crawl published %d records, want 1", n, published)
	}
	if notModified < n-1 {
		t.Fatalf("%d pages answered 304 Not Modified, want one at least for each of the %d unchanged papers", notModified, n-1)
	}
	if got := len(readOut(t, cfg.Sink.Out)); got != n+1 {
		t.Fatalf("%d lines in the output, want %d: every record and the changed one's new version", got, n+1)
	}

	// The second crawl kept what it read; the third reads that and what
	// was stored since (the changed paper's new version).
	if _, err := bus.cache.hubs.GetInfo(ctx, hubPagesObject(hub.ID)); err != nil {
		t.Fatalf("the pages of the hub were not kept: %v", err)
	}
	papers = slices.Clone(hub.Papers)
	papers[1].Summary = "Another rewritten summary, on an Overton window of answers."
	hub.Papers = papers
	site.SetHubs(hub)
	if published, _ := crawl("third"); published != 1 {
		t.Fatalf("after one more paper changed, the third crawl published %d records, want 1", published)
	}
	if got := len(readOut(t, cfg.Sink.Out)); got != n+2 {
		t.Fatalf("%d lines in the output, want %d", got, n+2)
	}
}

// A hub whose records' pages cannot be read (here the broker connection is
// gone once the hub page is fetched) is crawled all the same: its papers'
// tasks go out without pages, to be looked up one by one or built in full.
func TestHubCrawlGoesOnWhenItsPagesCannotBeRead(t *testing.T) {
	site := snapshot.New(snapshot.StyleCards, snapshot.Generated(5))
	web := startSite(t, site)
	cfg := testConfig(t, t.TempDir(), site.HubURLs(web.URL))
	bus := openBus(t, cfg)
	defer bus.Close()
	env := testEnv()
	env.defaults()
	h := testFetchHandler(t, cfg, bus, env)
	task, err := HubTask("run-1", cfg.Hubs[0], 0, cfg.FullText.ArxivBase)
	if err != nil {
		t.Fatal(err)
	}
	decoded, err := DecodeTask(task.Data)
	if err != nil {
		t.Fatal(err)
	}
	bus.NC.Close()
	out, err := h.hub(context.Background(), decoded)
	if err != nil || len(out.Outs) == 0 {
		t.Fatalf("hub crawl: %d messages (%v), want its papers' tasks", len(out.Outs), err)
	}
}
