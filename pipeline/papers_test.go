package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/citecrawl/citecrawl/classify"
	"github.com/citecrawl/citecrawl/ingest"
	"github.com/citecrawl/citecrawl/ingest/snapshot"
	"github.com/citecrawl/citecrawl/record"
)

// A paper of a papers task that fails does not fail the others: one whose
// Pith JSON answers 503 until its task's tries are spent is queued again
// on its own and written, one whose record is over the broker's message
// limit is parked on its own with its reason, and every other paper is
// fetched once and written once.
func TestPapersTaskFailsOnlyItsFailingPapers(t *testing.T) {
	const n = 2*papersPerTask + 4
	ns := startServer(t, &server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(),
		MaxPayload: 16 << 10, NoSigs: true})
	hub := snapshot.Generated(n)
	site := snapshot.New(snapshot.StyleCards, hub)
	flaky := "/pith/" + hub.Papers[2].PithID() + ".json"              // in the first task
	huge := "/pith/" + hub.Papers[papersPerTask+1].PithID() + ".json" // in the second
	var mu sync.Mutex
	asked := map[string]int{}
	web := startSite(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		asked[r.URL.Path]++
		tries := asked[r.URL.Path]
		mu.Unlock()
		switch {
		case r.URL.Path == flaky && tries <= 2: // both tries of the papers task (fetch.retries is 1)
			http.Error(w, "busy", http.StatusServiceUnavailable)
		case r.URL.Path == huge:
			rec := httptest.NewRecorder()
			site.ServeHTTP(rec, r)
			var doc map[string]any
			if err := json.Unmarshal(rec.Body.Bytes(), &doc); err != nil {
				t.Error(err)
			}
			doc["paper"].(map[string]any)["abstract_excerpt"] = strings.Repeat("A very long abstract. ", 1500)
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(doc)
		default:
			site.ServeHTTP(w, r)
		}
	}))
	cfg := testConfig(t, "", site.HubURLs(web.URL))
	cfg.NATS.URL = ns.ClientURL()
	cfg.FullText.Enabled, cfg.FetchGraph = false, false
	bus := openBus(t, cfg)
	defer bus.Close()
	env := testEnv()
	res, err := Run(context.Background(), bus, cfg, env)
	if err != nil {
		t.Fatal(err)
	}
	assertEachOnce(t, readOut(t, cfg.Sink.Out), n-1)
	if r, d, p := env.Stats.Retries.Load(), env.Stats.DeadLetters.Load(), env.Stats.RecordsPublished.Load(); r != 1 || d != 1 || p != n-1 {
		t.Errorf("counted %d retries, %d dead letters, %d records published; want 1, 1, %d", r, d, p, n-1)
	}
	if res.Errors != 1 || len(res.DeadLetters) != 1 {
		t.Fatalf("%d dead letters %+v, want the paper over the limit", res.Errors, res.DeadLetters)
	}
	d := res.DeadLetters[0]
	task, err := DecodeTask(d.Data)
	if err != nil {
		t.Fatal(err)
	}
	if d.Stage != StageFetch || d.Subject != PaperTaskSubject(hub.ID) || !strings.Contains(d.Error, "over the broker's message limit") ||
		task.Kind != TaskPaper || task.Paper == nil || task.Paper.PithID != hub.Papers[papersPerTask+1].PithID() {
		t.Fatalf("dead letter %+v of task %+v: want the paper over the limit alone, as a paper task, with its reason", d, task)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, p := range hub.Papers {
		path := "/pith/" + p.PithID() + ".json"
		want := 1
		if path == flaky {
			want = 3 // two in its papers task, one in its own task
		}
		if asked[path] != want {
			t.Errorf("%s asked %d times, want %d: a papers task was done again", path, asked[path], want)
		}
	}
}

// When the stages are paused (the sink's output is unavailable) while a
// papers task is being built, the paper under way is finished and the
// papers not yet built go back on the queue as a papers task of their own.
func TestPausedPapersTaskQueuesTheRest(t *testing.T) {
	hub := snapshot.Generated(papersPerTask)
	site := snapshot.New(snapshot.StyleCards, hub)
	paused := &hold{}
	web := startSite(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/pith/") {
			paused.pause() // the sink finds its output gone while the first paper is built
		}
		site.ServeHTTP(w, r)
	}))
	cfg := testConfig(t, t.TempDir(), site.HubURLs(web.URL))
	cfg.FullText.Enabled, cfg.FetchGraph = false, false
	bus := openBus(t, cfg)
	defer bus.Close()
	ctx := context.Background()
	env := testEnv()
	env.defaults()
	cr, err := newCrawler(cfg, ingest.NewFetcher(cfg.Fetch, zerolog.Nop()), bus.cache, env, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	c, err := cr.CrawlHub(ctx, ingest.HubJob{URL: cfg.Hubs[0], CrawlID: "run-1"})
	if err != nil {
		t.Fatal(err)
	}
	tasks, err := paperTasks("run-1", c.Papers, papersPerTask, bus.NC.MaxPayload())
	if err != nil || len(tasks) != 1 {
		t.Fatalf("%d tasks (%v), want one papers task", len(tasks), err)
	}
	cons := queueTasks(t, bus, cfg, tasks)
	h := &fetchHandler{crawler: cr, stats: env.Stats, bus: bus, hold: paused, maxPayload: bus.NC.MaxPayload()}
	out, err := h.handle(ctx, pullTask(t, bus, cons))
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Outs) != 2 || out.Outs[0].Subject != RawSubject(hub.ID) {
		t.Fatalf("%d messages %+v, want the first paper's raw record and a task of the rest", len(out.Outs), out.Outs)
	}
	rest, err := DecodeTask(out.Outs[1].Data)
	if err != nil {
		t.Fatal(err)
	}
	jobs, err := rest.paperJobs()
	want := slices.Clone(c.Papers[1:])
	for i := range want {
		want[i].ID = "" // a task does not carry it: the worker works it out
	}
	if err != nil || !reflect.DeepEqual(jobs, want) {
		t.Fatalf("the rest queued as %+v (%v), want the %d papers not built yet", jobs, err, len(c.Papers)-1)
	}
}

// A paper that fails inside a papers task is queued again on its own, but
// not tried before the Retry-After its server asked for: handled early, its
// task is handed back for the rest of the wait without a request; once the
// wait is over it is built.
func TestPapersTaskFailedPaperWaitsItsRetryAfter(t *testing.T) {
	hub := snapshot.Generated(papersPerTask)
	site := snapshot.New(snapshot.StyleCards, hub)
	busy := "/pith/" + hub.Papers[1].PithID() + ".json"
	var mu sync.Mutex
	var over bool // the server's wait is over
	asked := 0
	web := startSite(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == busy {
			mu.Lock()
			asked++
			wait := !over
			mu.Unlock()
			if wait {
				w.Header().Set("Retry-After", "30")
				http.Error(w, "busy", http.StatusServiceUnavailable)
				return
			}
		}
		site.ServeHTTP(w, r)
	}))
	cfg := testConfig(t, t.TempDir(), site.HubURLs(web.URL))
	cfg.FullText.Enabled, cfg.FetchGraph = false, false
	cfg.Fetch.MaxRetryAfter = 10 * time.Millisecond // the fetcher gives the wait to the stage
	bus := openBus(t, cfg)
	defer bus.Close()
	ctx := context.Background()
	clock := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	env := testEnv()
	env.Now = func() time.Time { return clock }
	env.defaults()
	h := testFetchHandler(t, cfg, bus, env)
	cr := h.crawler
	c, err := cr.CrawlHub(ctx, ingest.HubJob{URL: cfg.Hubs[0], CrawlID: "run-1"})
	if err != nil {
		t.Fatal(err)
	}
	tasks, err := paperTasks("run-1", c.Papers, papersPerTask, bus.NC.MaxPayload())
	if err != nil {
		t.Fatal(err)
	}
	cons := queueTasks(t, bus, cfg, tasks)
	// handleNext pulls the next task and handles it; what it published is
	// stored and the task acked, as the stage would.
	handleNext := func() (Outcome, error) {
		t.Helper()
		m := pullTask(t, bus, cons)
		out, err := h.handle(ctx, m)
		if err == nil {
			if err := bus.PublishAll(ctx, out.Outs); err != nil {
				t.Fatal(err)
			}
			for _, c := range out.Commit {
				if err := c(ctx); err != nil {
					t.Fatal(err)
				}
			}
			_ = m.Ack()
		} else {
			_ = m.NakWithDelay(time.Millisecond)
		}
		return out, err
	}
	out, err := handleNext()
	if err != nil {
		t.Fatal(err)
	}
	if env.Stats.Retries.Load() != 1 || len(out.Outs) != papersPerTask {
		t.Fatalf("%d retries, %d messages: want the busy paper queued again beside %d records", env.Stats.Retries.Load(), len(out.Outs), papersPerTask-1)
	}
	mu.Lock()
	before := asked
	mu.Unlock()

	clock = clock.Add(10 * time.Second) // the busy paper's own task, 10 s into its 30
	_, err = handleNext()
	var early notDue
	if !errors.As(err, &early) || early.wait < 19*time.Second || early.wait > 20*time.Second {
		t.Fatalf("handled 10 s after it was queued: %v, want it handed back for the 20 s its server still asked for", err)
	}
	mu.Lock()
	if asked != before {
		t.Errorf("the busy page was asked %d times before its Retry-After was over", asked-before)
	}
	over = true
	mu.Unlock()

	clock = clock.Add(21 * time.Second)
	out, err = handleNext()
	if err != nil || len(out.Outs) != 1 || out.Outs[0].Subject != RawSubject(hub.ID) {
		t.Fatalf("after the wait: %+v (%v), want the busy paper's raw record", out.Outs, err)
	}
}

// testFetchHandler is the fetch stage's handler of a process on bus, as
// the stage would make it, for tests that call it directly.
func testFetchHandler(t *testing.T, cfg Config, bus *Bus, env Env) *fetchHandler {
	t.Helper()
	cr, err := newCrawler(cfg, ingest.NewFetcher(cfg.Fetch, zerolog.Nop()), bus.cache, env, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	return &fetchHandler{crawler: cr, stats: env.Stats, bus: bus, hold: &hold{}, maxPayload: bus.NC.MaxPayload(),
		policy: cfg.Stages.Policy(), now: env.Now, log: zerolog.Nop()}
}

// queueTasks publishes tasks on the task queue and returns the fetch
// stage's consumer of it.
func queueTasks(t *testing.T, bus *Bus, cfg Config, tasks []Out) jetstream.Consumer {
	t.Helper()
	ctx := context.Background()
	if err := bus.PublishAll(ctx, tasks); err != nil {
		t.Fatal(err)
	}
	cons, err := bus.Consumer(ctx, StreamTasks, ConsumerFetch, "", cfg.Stages)
	if err != nil {
		t.Fatal(err)
	}
	return cons
}

// pullTask pulls the next task of cons.
func pullTask(t *testing.T, bus *Bus, cons jetstream.Consumer) jetstream.Msg {
	t.Helper()
	p, err := newPuller(bus.NC, cons, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer p.close()
	msgs, err := p.nextBatch(1, 5*time.Second)
	if err != nil || len(msgs) != 1 {
		t.Fatalf("%d tasks pulled (%v)", len(msgs), err)
	}
	return msgs[0]
}

// A hub's papers go out up to 64 to a task only when no request they may
// make is kept waiting by a delay: the hub's host takes several at once
// (fetch.host_concurrency) and neither it nor arXiv has a delay. Any wait
// keeps tasks of 8, so that a worker holds few polite pages; a small hub's
// tasks are no bigger than spreads it over every fetch worker.
func TestPapersTaskSizeFollowsPoliteness(t *testing.T) {
	const hubURL, arxiv = "http://127.0.0.1:8080/citations/11111111-2222-3333-4444-555555555555", "https://arxiv.org"
	owned := func(change func(*ingest.FetchConfig)) ingest.FetchConfig {
		cfg := DefaultConfig().Fetch
		cfg.Delay, cfg.HostDelays, cfg.HostConcurrency = 0, nil, map[string]int{"127.0.0.1": 8}
		change(&cfg)
		return cfg
	}
	for _, c := range []struct {
		name string
		cfg  ingest.FetchConfig
		job  ingest.HubJob
		n    int // the hub's papers, over 8 fetch workers (5,000 unless set)
		want int
	}{
		{"the defaults", DefaultConfig().Fetch, ingest.HubJob{URL: hubURL}, 0, papersPerTask},
		{"an owned host", owned(func(*ingest.FetchConfig) {}), ingest.HubJob{URL: hubURL}, 0, papersPerOwnedTask},
		{"one request at a time", owned(func(c *ingest.FetchConfig) { c.HostConcurrency = nil }), ingest.HubJob{URL: hubURL}, 0, papersPerTask},
		{"a delay", owned(func(c *ingest.FetchConfig) { c.Delay = time.Millisecond }), ingest.HubJob{URL: hubURL}, 0, papersPerTask},
		{"a delay on the host", owned(func(c *ingest.FetchConfig) { c.HostDelays = map[string]time.Duration{"127.0.0.1": time.Second} }), ingest.HubJob{URL: hubURL}, 0, papersPerTask},
		{"a delay on arXiv", owned(func(c *ingest.FetchConfig) { c.HostDelays = map[string]time.Duration{"arxiv.org": 3 * time.Second} }), ingest.HubJob{URL: hubURL}, 0, papersPerTask},
		{"a delay on the job's arXiv", owned(func(c *ingest.FetchConfig) { c.HostDelays = map[string]time.Duration{"arxiv.example": time.Second} }),
			ingest.HubJob{URL: hubURL, ArxivBase: "https://arxiv.example"}, 0, papersPerTask},
		{"a small hub on an owned host", owned(func(*ingest.FetchConfig) {}), ingest.HubJob{URL: hubURL}, 128, 16},
		{"a tiny hub on an owned host", owned(func(*ingest.FetchConfig) {}), ingest.HubJob{URL: hubURL}, 20, papersPerTask},
	} {
		f := ingest.NewFetcher(c.cfg, zerolog.Nop())
		h := &fetchHandler{spaced: f.Spaced, arxivBase: arxiv, workers: 8}
		if c.n == 0 {
			c.n = 5000
		}
		if got := h.taskSize(c.job, c.n); got != c.want {
			t.Errorf("%s: tasks of %d papers, want %d", c.name, got, c.want)
		}
	}
}

// A run on a host the user owns queues a hub's papers 64 to a task and
// writes every record once.
func TestRunOnAnOwnedHostQueuesLargeTasks(t *testing.T) {
	const n = 2*papersPerOwnedTask + 5
	site := snapshot.New(snapshot.StyleCards, snapshot.Generated(n))
	web := startSite(t, site)
	cfg := testConfig(t, t.TempDir(), site.HubURLs(web.URL))
	cfg.FullText.Enabled, cfg.FetchGraph = false, false
	cfg.Fetch.HostConcurrency = map[string]int{"127.0.0.1": 4}
	cfg.Stages.FetchWorkers = 2 // 67 papers a worker: tasks of 64
	bus := openBus(t, cfg)
	defer bus.Close()
	if _, err := Run(context.Background(), bus, cfg, testEnv()); err != nil {
		t.Fatal(err)
	}
	assertEachOnce(t, readOut(t, cfg.Sink.Out), n)
	// The hub task, then the papers tasks.
	if last, err := lastSeq(context.Background(), bus, StreamTasks); err != nil || last != 1+3 {
		t.Fatalf("%d tasks queued (%v), want the hub's and 3 papers tasks for %d papers", last, err, n)
	}
}

// FetchedRecord gives the messages the fetch stage publishes for a record:
// its raw record, or, tagging itself, its self-tagged record with its pages.
func TestFetchedRecordIsWhatTheFetchStagePublishes(t *testing.T) {
	cl, err := classify.Load("")
	if err != nil {
		t.Fatal(err)
	}
	p := snapshot.Generated(1).Papers[0]
	r := record.Record{Schema: record.Schema, ID: record.ID("hub-a", "paper 1"), Hub: record.Hub{ID: "hub-a", CitedWorkIDs: []string{}},
		Paper:    record.Paper{Title: p.Title, Summary: p.Summary},
		Contexts: []record.Context{{Text: "Unlike [3], we keep every annotator's label."}}, SourceURLs: []string{}, Missing: []string{}}
	pages := []ingest.SourcePage{{URL: "https://pith.science/pith/1", Validator: ingest.Validator{ETag: `"e1"`}}}
	for _, tagger := range []*classify.Classifier{nil, cl} {
		h := &fetchHandler{tagger: tagger}
		outs, err := h.records("run-1", &r, ChangeChanged)
		if err != nil {
			t.Fatal(err)
		}
		want := outs[0]
		if err := h.carryPages(&want, r.ID, pages); err != nil {
			t.Fatal(err)
		}
		got, err := FetchedRecord("run-1", &r, ChangeChanged, tagger, pages)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) || got.Header.Get(HeaderPages) == "" {
			t.Fatalf("tagger %v:\n got %+v\nwant %+v, with its pages", tagger != nil, got, want)
		}
	}
}
