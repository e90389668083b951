package pipeline

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/citecrawl/citecrawl/ingest/snapshot"
	"github.com/citecrawl/citecrawl/record"
)

// withoutValidators serves site without validators (snapshot.WithoutValidators)
// and counts the requests other than robots.txt.
func withoutValidators(site http.Handler, pages *atomic.Int64) http.Handler {
	plain := snapshot.WithoutValidators(site)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/robots.txt" {
			pages.Add(1)
		}
		plain.ServeHTTP(w, r)
	})
}

// A run interrupted mid-crawl leaves its tasks queued; the rerun resumes
// them instead of queueing the hub again, so against a site without
// validators the two runs together fetch about what one clean run does,
// and the rerun's report counts the records it wrote for the earlier run.
func TestRerunResumesQueuedTasksWithoutRefetching(t *testing.T) {
	const n = 200
	site := snapshot.New(snapshot.StyleCards, snapshot.Generated(n))

	var clean atomic.Int64
	web := startSite(t, withoutValidators(site, &clean))
	cfg := testConfig(t, t.TempDir(), site.HubURLs(web.URL))
	bus := openBus(t, cfg)
	if _, err := Run(context.Background(), bus, cfg, testEnv()); err != nil {
		t.Fatal(err)
	}
	bus.Close()

	var pages atomic.Int64
	web = startSite(t, withoutValidators(site, &pages))
	cfg = testConfig(t, t.TempDir(), site.HubURLs(web.URL))
	// Every interruption costs the tasks a worker holds (a batch per
	// fetch worker) one delivery: with the tests' max_deliver of 2, a task
	// held at two of the three interruptions would be parked. The default
	// allows for it.
	cfg.Stages.MaxDeliver = DefaultConfig().Stages.MaxDeliver
	for kill := range 3 {
		bus := openBus(t, cfg)
		env := testEnv()
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { _, err := Run(ctx, bus, cfg, env); done <- err }()
		target := int64(n/5) * int64(kill+1)
		checkFor(t, 60*time.Second, func() error {
			if got := pages.Load(); got < target {
				return fmt.Errorf("only %d pages fetched, waiting for %d", got, target)
			}
			return nil
		})
		cancel()
		if err := <-done; err != nil && ctx.Err() == nil {
			t.Fatal(err)
		}
		bus.Close()
	}
	bus = openBus(t, cfg)
	defer bus.Close()
	res, err := Run(context.Background(), bus, cfg, testEnv())
	if err != nil {
		t.Fatal(err)
	}
	assertEachOnce(t, readOut(t, cfg.Sink.Out), n)
	t.Logf("pages: clean run %d, three interruptions and a rerun %d; the rerun's report: new %d, written %d",
		clean.Load(), pages.Load(), res.New, res.Written)
	if limit := clean.Load() * 3 / 2; pages.Load() > limit {
		t.Fatalf("interrupted runs fetched %d pages; a clean run fetched %d, want at most %d", pages.Load(), clean.Load(), limit)
	}
	if res.New == 0 || res.Written == 0 {
		t.Fatalf("the finishing run wrote records but reports new %d, written %d", res.New, res.Written)
	}
}

// A record too big for one message (a huge full text) has its contexts
// and sentences capped and counted, keeps its citation marker, and then
// fits on a real server.
func TestRecordOverPayloadLimitIsCapped(t *testing.T) {
	long := strings.Repeat("word ", 20000) + "[12]" + strings.Repeat(" more", 20000)
	at := strings.Index(long, "[12]")
	r := record.Record{Schema: record.Schema, ID: "cc1-x", Hub: record.Hub{ID: "h"}}
	for range 300 {
		r.Contexts = append(r.Contexts, record.Context{Text: long, CiteSpan: []int{at, at + 4}})
	}
	cfg := testConfig(t, t.TempDir(), nil)
	bus := openBus(t, cfg)
	defer bus.Close()
	big, err := rawRecord("run", &r, ChangeNew, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := bus.PublishAll(context.Background(), []Out{big}); err == nil {
		t.Fatalf("a %d-byte record was accepted; the test needs one over the limit of %d", len(big.Data), bus.NC.MaxPayload())
	}

	capRecord(&r)
	if len(r.Contexts) != maxContexts || r.Truncated == nil || r.Truncated.Contexts != 300-maxContexts || r.Truncated.Sentences != maxContexts {
		t.Fatalf("after capping: %d contexts, truncated %+v", len(r.Contexts), r.Truncated)
	}
	c := r.Contexts[0]
	if got := []rune(c.Text); len(got) != maxSentenceRunes || string(got[c.CiteSpan[0]:c.CiteSpan[1]]) != "[12]" {
		t.Fatalf("capped sentence of %d runes with span %v does not keep the marker", len(got), c.CiteSpan)
	}
	small, err := rawRecord("run", &r, ChangeNew, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := bus.PublishAll(context.Background(), []Out{small}); err != nil {
		t.Fatalf("the capped record (%d bytes) was refused: %v", len(small.Data), err)
	}
	var back record.Record
	if err := json.Unmarshal(small.Data, &back); err != nil || back.Truncated == nil {
		t.Fatalf("the truncated counts do not travel with the record: %v", err)
	}
}

// A hub whose membership list is far over the broker's message limit
// still has it stored, so "gone" detection works: a server with a 16 KiB
// limit crawls a hub of 600 papers, then the same hub listing 590.
func TestHubOverPayloadLimitStillDetectsGone(t *testing.T) {
	ns := startServer(t, &server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(),
		MaxPayload: 16 << 10, NoSigs: true})
	const n, dropped = 600, 10
	site := snapshot.New(snapshot.StyleCards, snapshot.Generated(n))
	web := startSite(t, site)
	cfg := testConfig(t, "", site.HubURLs(web.URL))
	cfg.NATS.URL = ns.ClientURL()
	cfg.FullText.Enabled, cfg.FetchGraph = false, false
	bus := openBus(t, cfg)
	defer bus.Close()
	if _, err := Run(context.Background(), bus, cfg, testEnv()); err != nil {
		t.Fatal(err)
	}
	members := bus.cache.HubMembers(context.Background(), snapshot.GeneratedHubID)
	if b, _ := json.Marshal(members); len(members) != n || int64(len(b)) < bus.NC.MaxPayload() {
		t.Fatalf("stored membership: %d papers in %d bytes; want %d papers, over the %d-byte limit", len(members), len(b), n, bus.NC.MaxPayload())
	}
	site.SetHubs(snapshot.Generated(n - dropped))
	res, err := Run(context.Background(), bus, cfg, testEnv())
	if err != nil {
		t.Fatal(err)
	}
	if res.Gone != dropped {
		t.Fatalf("the hub stopped listing %d papers; the run found %d gone", dropped, res.Gone)
	}
}

// The dead letters of earlier runs are listed and, once replayed, done:
// the replayed hub task is queued again, and the dead letter is gone.
func TestDeadLettersListAndReplay(t *testing.T) {
	site := snapshot.Default()
	var failing atomic.Bool
	failing.Store(true)
	web := startSite(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if failing.Load() && strings.HasPrefix(r.URL.Path, "/citations/") {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		site.ServeHTTP(w, r)
	}))
	hubs := site.HubURLs(web.URL)[:1]
	cfg := testConfig(t, t.TempDir(), hubs)
	bus := openBus(t, cfg)
	defer bus.Close()
	res, err := Run(context.Background(), bus, cfg, testEnv())
	if err != nil {
		t.Fatal(err)
	}
	if res.Errors != 1 {
		t.Fatalf("the run left %d dead letters; want the hub's one", res.Errors)
	}
	dead, err := ListDeadLetters(context.Background(), bus, DeadFilter{Stage: StageFetch, Reason: "503"})
	if err != nil || len(dead) != 1 {
		t.Fatalf("dead list --stage fetch --reason 503: %d letters, %v", len(dead), err)
	}
	if none, _ := ListDeadLetters(context.Background(), bus, DeadFilter{Stage: StageSink}); len(none) != 0 {
		t.Fatalf("--stage sink listed %d letters of another stage", len(none))
	}

	failing.Store(false)
	if n, err := ReplayDeadLetters(context.Background(), bus, DeadFilter{}); err != nil || n != 1 {
		t.Fatalf("replay: %d, %v", n, err)
	}
	if left, _ := ListDeadLetters(context.Background(), bus, DeadFilter{}); len(left) != 0 {
		t.Fatalf("%d dead letters left after the replay", len(left))
	}
	w, err := StartStages(context.Background(), bus, cfg, AllStages, testEnv())
	if err != nil {
		t.Fatal(err)
	}
	if err := WaitDrained(context.Background(), bus, cfg, w.Failed(), 100*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if err := w.Stop(); err != nil {
		t.Fatal(err)
	}
	want := site.Hubs()[0].Papers
	if got := len(readOut(t, cfg.Sink.Out)); got != len(want) {
		t.Fatalf("after the replay %d records were written; the hub lists %d", got, len(want))
	}
}

// The run report stays under the message limit however many letters are
// dead: at most reportListMax are listed, the rest counted.
func TestReportListsAtMostHundredDeadLetters(t *testing.T) {
	var r Result
	dead := make([]DeadLetter, 5000)
	for i := range dead {
		dead[i] = DeadLetter{Stage: StageSink, Subject: "citecrawl.tagged.h", Error: strings.Repeat("disk full ", 200)}
	}
	r.setDeadLetters(dead)
	b, err := json.Marshal(&r)
	if err != nil {
		t.Fatal(err)
	}
	if r.Errors != 5000 || len(r.DeadLetters) != reportListMax || r.NotListed != 5000-reportListMax || len(b) > 256<<10 {
		t.Fatalf("report: errors %d, listed %d, not listed %d, %d bytes", r.Errors, len(r.DeadLetters), r.NotListed, len(b))
	}
}
