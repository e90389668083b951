package pipeline

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/rs/zerolog"

	"github.com/citecrawl/citecrawl/ingest"
	"github.com/citecrawl/citecrawl/ingest/snapshot"
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
	res, err := Run(context.Background(), bus, cfg, testEnv())
	if err != nil {
		t.Fatal(err)
	}
	assertEachOnce(t, readOut(t, cfg.Sink.Out), n-1)
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
	tasks, err := paperTasks("run-1", c.Papers, bus.NC.MaxPayload())
	if err != nil || len(tasks) != 1 {
		t.Fatalf("%d tasks (%v), want one papers task", len(tasks), err)
	}
	if err := bus.PublishAll(ctx, tasks); err != nil {
		t.Fatal(err)
	}
	cons, err := bus.Consumer(ctx, StreamTasks, ConsumerFetch, "", cfg.Stages)
	if err != nil {
		t.Fatal(err)
	}
	msgs, err := nextBatch(ctx, cons, 1, 5*time.Second)
	if err != nil || len(msgs) != 1 {
		t.Fatalf("%d tasks pulled (%v)", len(msgs), err)
	}
	h := &fetchHandler{crawler: cr, stats: env.Stats, bus: bus, hold: paused, maxPayload: bus.NC.MaxPayload()}
	out, err := h.handle(ctx, msgs[0])
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
	if err != nil || !reflect.DeepEqual(jobs, c.Papers[1:]) {
		t.Fatalf("the rest queued as %+v (%v), want the %d papers not built yet", jobs, err, len(c.Papers)-1)
	}
}
