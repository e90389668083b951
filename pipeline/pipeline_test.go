package pipeline

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/citecrawl/citecrawl/classify"
	"github.com/citecrawl/citecrawl/ingest"
	"github.com/citecrawl/citecrawl/ingest/snapshot"
	"github.com/citecrawl/citecrawl/record"
	"github.com/citecrawl/citecrawl/sink"
)

// startSite serves a snapshot site on loopback.
func startSite(t testing.TB, site http.Handler) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(site)
	t.Cleanup(srv.Close)
	return srv
}

// testConfig points a run at hubs with politeness delays off (the site is
// our own, on loopback) and fast retries.
func testConfig(t testing.TB, dataDir string, hubs []string) Config {
	cfg := DefaultConfig()
	cfg.Hubs = hubs
	cfg.NATS.DataDir = dataDir
	cfg.Sink.Out = filepath.Join(t.TempDir(), "out")
	cfg.Sink.SegmentMaxAge = 5 * time.Second
	cfg.Fetch.Delay = 0
	cfg.Fetch.HostDelays = nil
	cfg.Fetch.BackoffBase = 5 * time.Millisecond
	cfg.Fetch.BackoffMax = 20 * time.Millisecond
	cfg.Fetch.Retries = 1
	cfg.Fetch.AllowAddresses = []string{"127.0.0.1"} // the test sites are on loopback
	cfg.Stages.Backoff = []time.Duration{20 * time.Millisecond}
	cfg.Stages.MaxDeliver = 2
	cfg.Rules = filepath.Join("..", "configs", "rules")
	// arXiv is the loopback site too; tests never reach the internet.
	if len(hubs) > 0 {
		if u, err := url.Parse(hubs[0]); err == nil {
			cfg.FullText.ArxivBase = u.Scheme + "://" + u.Host
		}
	}
	return cfg
}

func openBus(t testing.TB, cfg Config) *Bus {
	t.Helper()
	bus, err := Open(context.Background(), cfg.NATS, cfg.Stages.MaxPending, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	return bus
}

// busAndRules opens a bus on a new test config, closed at the test's
// end, and loads the shipped rules.
func busAndRules(t *testing.T) (*Bus, *classify.Classifier) {
	t.Helper()
	cfg := testConfig(t, t.TempDir(), nil)
	bus := openBus(t, cfg)
	t.Cleanup(bus.Close)
	cl, err := classify.Load(cfg.Rules)
	if err != nil {
		t.Fatal(err)
	}
	return bus, cl
}

func testEnv() Env { return Env{Log: zerolog.Nop(), Stats: &Stats{}, Idle: 100 * time.Millisecond} }

// readOut reads every record in the sealed segments under out, through
// the sink's reader.
func readOut(t testing.TB, out string) []record.Record {
	t.Helper()
	var recs []record.Record
	rd, err := sink.OpenReader(context.Background(), sink.Config{Out: out})
	if errors.Is(err, sink.ErrNoOutput) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	if err := rd.Records(context.Background(), func(r *record.Record) error { recs = append(recs, *r); return nil }); err != nil {
		t.Fatal(err)
	}
	return recs
}

func assertEachOnce(t testing.TB, recs []record.Record, want int) {
	t.Helper()
	seen := map[string]int{}
	for _, r := range recs {
		seen[r.ID]++
	}
	for id, n := range seen {
		if n != 1 {
			t.Errorf("record %s written %d times", id, n)
			for _, r := range recs {
				if r.ID == id {
					b, _ := json.Marshal(r)
					t.Logf("%s", b)
				}
			}
		}
	}
	if len(seen) != want || len(recs) != want {
		t.Fatalf("%d lines, %d distinct records; want %d of each", len(recs), len(seen), want)
	}
}

func TestRunOfflineSnapshot(t *testing.T) {
	site := snapshot.Default()
	web := startSite(t, site)
	cfg := testConfig(t, t.TempDir(), site.HubURLs(web.URL))

	bus := openBus(t, cfg)
	res, err := Run(context.Background(), bus, cfg, testEnv())
	bus.Close()
	if err != nil {
		t.Fatal(err)
	}
	if len(res.DeadLetters) != 0 {
		t.Fatalf("dead letters: %+v", res.DeadLetters)
	}
	recs := readOut(t, cfg.Sink.Out)
	assertEachOnce(t, recs, site.DistinctPapers())
	for _, r := range recs {
		if r.Schema != record.Schema || r.Role == "" || r.Polarity == "" || r.Pluralism == nil || r.RulesVersion == "" {
			t.Fatalf("record not fully tagged: %+v", r)
		}
		if r.Paper.Title == "" || len(r.Paper.Authors) == 0 || r.Paper.Arxiv == "" {
			t.Fatalf("record lacks graph metadata: %+v", r.Paper)
		}
	}
	for _, h := range site.Hubs() {
		var sum sink.Summary
		readJSON(t, filepath.Join(cfg.Sink.Out, h.ID, sink.SummaryFile), &sum)
		if sum.Records != len(h.Papers) || sum.Published == nil {
			t.Errorf("hub %s summary: %d records (want %d), published %v", h.ID, sum.Records, len(h.Papers), sum.Published)
		}
	}

	// A second run on the same data dir and output (a restart of the
	// embedded server) writes nothing new.
	before := fingerprintOut(t, cfg.Sink.Out)
	bus = openBus(t, cfg)
	env := testEnv()
	res, err = Run(context.Background(), bus, cfg, env)
	bus.Close()
	if err != nil {
		t.Fatal(err)
	}
	if res.Written != 0 {
		t.Errorf("second run wrote %d records, want 0", res.Written)
	}
	assertEachOnce(t, readOut(t, cfg.Sink.Out), site.DistinctPapers())
	if after := fingerprintOut(t, cfg.Sink.Out); after != before {
		t.Errorf("second run changed the output:\n%s\n---\n%s", before, after)
	}
}

// fingerprintOut lists the ids and content fingerprints in the output.
func fingerprintOut(t testing.TB, out string) string {
	var lines []string
	for _, r := range readOut(t, out) {
		lines = append(lines, r.ID+" "+r.Fingerprint())
	}
	return strings.Join(slices.Sorted(slices.Values(lines)), "\n")
}

// A run cancelled half-way and run again writes each record once. The site
// answers the first paper requests and then holds the rest until the run
// is cancelled, so the cancel is sure to land mid-run.
func TestRunCancelledThenResumedWritesEachRecordOnce(t *testing.T) {
	const n, answered = 300, 150
	site := snapshot.New(snapshot.StyleCards, snapshot.Generated(n))
	var paperRequests atomic.Int32
	release := make(chan struct{})
	web := startSite(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/robots.txt" && !strings.HasPrefix(r.URL.Path, "/citations/") && paperRequests.Add(1) > answered {
			select {
			case <-release:
			case <-r.Context().Done():
				return
			}
		}
		site.ServeHTTP(w, r)
	}))
	cfg := testConfig(t, t.TempDir(), site.HubURLs(web.URL))

	bus := openBus(t, cfg)
	env := testEnv()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { _, err := Run(ctx, bus, cfg, env); done <- err }()
	checkFor(t, 30*time.Second, func() error {
		if env.Stats.RecordsTagged.Load() < 20 {
			return fmt.Errorf("only %d records tagged", env.Stats.RecordsTagged.Load())
		}
		return nil
	})
	cancel()
	if err := <-done; err != nil && ctx.Err() == nil {
		t.Fatal(err)
	}
	bus.Close()
	tagged, partial := env.Stats.RecordsTagged.Load(), len(readOut(t, cfg.Sink.Out))
	if tagged >= n || partial >= n {
		t.Fatalf("the run was not interrupted: %d records tagged and %d visible of %d at the cancel", tagged, partial, n)
	}
	t.Logf("cancelled after %d of %d records were tagged, %d visible", tagged, n, partial)

	close(release)
	bus = openBus(t, cfg)
	defer bus.Close()
	if _, err := Run(context.Background(), bus, cfg, testEnv()); err != nil {
		t.Fatal(err)
	}
	assertEachOnce(t, readOut(t, cfg.Sink.Out), n)
}

func TestRunParksPersistentFailuresAsDeadLetters(t *testing.T) {
	var hits atomic.Int32
	web := startSite(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/robots.txt":
			http.NotFound(w, r)
		case strings.Contains(r.URL.Path, "aaaa"):
			hits.Add(1)
			http.Error(w, "down for maintenance", http.StatusInternalServerError)
		default:
			fmt.Fprint(w, "<html><body><h1>Just a blog</h1></body></html>")
		}
	}))
	cfg := testConfig(t, t.TempDir(), []string{
		web.URL + "/citations/aaaaaaaa-0000-0000-0000-000000000000",
		web.URL + "/citations/bbbbbbbb-0000-0000-0000-000000000000",
	})
	bus := openBus(t, cfg)
	defer bus.Close()
	res, err := Run(context.Background(), bus, cfg, testEnv())
	if err != nil {
		t.Fatal(err)
	}
	if len(res.DeadLetters) != 2 {
		t.Fatalf("%d dead letters, want 2: %+v", len(res.DeadLetters), res.DeadLetters)
	}
	reasons := res.DeadLetters[0].Error + " | " + res.DeadLetters[1].Error
	if !strings.Contains(reasons, "HTTP 500") || !strings.Contains(reasons, "not a pith.science citation hub") {
		t.Fatalf("reasons %q do not say what failed", reasons)
	}
	// The 500 was retried within the fetcher and across deliveries.
	want := int32((cfg.Fetch.Retries + 1) * cfg.Stages.MaxDeliver)
	if hits.Load() != want {
		t.Fatalf("the failing hub was requested %d times, want %d", hits.Load(), want)
	}
	for _, d := range res.DeadLetters {
		if d.Stage != StageFetch || !strings.HasPrefix(d.Subject, SubjectHubTask) || len(d.Data) == 0 {
			t.Fatalf("dead letter lacks its origin: %+v", d)
		}
	}
}

// Two fetch workers on one consumer split the work: every task is done
// once, by one of them.
func TestWorkersShareTheWork(t *testing.T) {
	const n = 200
	site := snapshot.New(snapshot.StyleCards, snapshot.Generated(n))
	web := startSite(t, site)
	cfg := testConfig(t, t.TempDir(), site.HubURLs(web.URL))
	cfg.Stages.FetchWorkers = 1
	bus := openBus(t, cfg)
	defer bus.Close()

	ctx := context.Background()
	a, b := testEnv(), testEnv()
	wa, err := StartStages(ctx, bus, cfg, []string{StageFetch}, a)
	if err != nil {
		t.Fatal(err)
	}
	wb, err := StartStages(ctx, bus, cfg, []string{StageFetch, StageClassify, StageSink}, b)
	if err != nil {
		t.Fatal(err)
	}
	o, _ := HubTask("share", site.HubURLs(web.URL)[0], 0, cfg.FullText.ArxivBase)
	if err := bus.PublishAll(ctx, []Out{o}); err != nil {
		t.Fatal(err)
	}
	checkFor(t, 60*time.Second, func() error {
		if got := a.Stats.RecordsPublished.Load() + b.Stats.RecordsPublished.Load(); got < n {
			return fmt.Errorf("%d of %d records published", got, n)
		}
		return nil
	})
	if err := WaitDrained(ctx, bus, cfg, nil, 50*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	_ = wa.Stop()
	_ = wb.Stop()
	pa, pb := a.Stats.RecordsPublished.Load(), b.Stats.RecordsPublished.Load()
	if pa+pb != n || pa == 0 || pb == 0 {
		t.Fatalf("workers published %d and %d records; want %d in all, shared", pa, pb, n)
	}
	assertEachOnce(t, readOut(t, cfg.Sink.Out), n)

	// The fetch stage beside a classify stage tagged its records itself and
	// stored only the tagged record; the lone fetch stage's raw records were
	// delivered to classify, which tagged them.
	raw, tagged := headers(t, bus, StreamRaw), headers(t, bus, StreamTagged)
	hub := snapshot.GeneratedHubID
	wantTagged := map[string]bool{}
	for _, m := range raw {
		if m.subject != RawSubject(hub) {
			t.Fatalf("raw record on %s", m.subject)
		}
		id, _, _ := strings.Cut(m.id, ":")
		wantTagged[id] = true
	}
	if int64(len(raw)) != pa {
		t.Fatalf("%d raw records, want the lone fetch stage's %d", len(raw), pa)
	}
	info, err := consumerInfo(ctx, bus, StreamRaw, ConsumerClassify)
	if err != nil {
		t.Fatal(err)
	}
	if got := int64(info.Delivered.Consumer); got != pa {
		t.Fatalf("the classify consumer delivered %d raw records, want the lone fetch stage's %d", got, pa)
	}
	if len(tagged) != n {
		t.Fatalf("%d tagged records, want %d", len(tagged), n)
	}
	var self int64
	for _, m := range tagged {
		switch m.subject {
		case TaggedSubject(hub):
			if id, _, _ := strings.Cut(m.id, ":"); !wantTagged[id] || !strings.HasSuffix(m.id, ":tagged") {
				t.Fatalf("tagged record %s: not of a raw record, or its id does not end in :tagged", m.id)
			}
		case SelfTaggedSubject(hub):
			self++
			if !strings.HasSuffix(m.id, ":tagged") {
				t.Fatalf("self-tagged record %s: its id does not end in :tagged", m.id)
			}
		default:
			t.Fatalf("tagged record on %s", m.subject)
		}
	}
	if self != pb {
		t.Fatalf("%d self-tagged records, want the tagging fetch stage's %d", self, pb)
	}
	// Reprocess from the stream finds every record, of either kind.
	cl, err := classify.Load(cfg.Rules)
	if err != nil {
		t.Fatal(err)
	}
	res, err := Reprocess(ctx, bus, ReprocessOptions{From: "stream", Out: cfg.Sink.Out, Classifier: cl, Log: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	if res.Records != n {
		t.Fatalf("reprocess from the stream re-tagged %d records, want %d", res.Records, n)
	}
	assertEachOnce(t, readOut(t, cfg.Sink.Out), n)
	if got := a.Stats.RecordsTagged.Load() + b.Stats.RecordsTagged.Load(); got != n {
		t.Fatalf("%d records counted as tagged, want %d", got, n)
	}
}

// streamMsg is the subject and message id of a stored message.
type streamMsg struct{ subject, id string }

// headers reads the subject and message id of every message in a stream.
func headers(t testing.TB, bus *Bus, stream string) []streamMsg {
	t.Helper()
	ctx := context.Background()
	st, err := streamState(ctx, bus, stream)
	if err != nil {
		t.Fatal(err)
	}
	cons, err := bus.JS.OrderedConsumer(ctx, stream, jetstream.OrderedConsumerConfig{HeadersOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	var out []streamMsg
	for range st.Msgs {
		b, err := cons.Fetch(1, jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		for m := range b.Messages() {
			out = append(out, streamMsg{m.Subject(), m.Headers().Get(jetstream.MsgIDHeader)})
		}
	}
	if len(out) != int(st.Msgs) {
		t.Fatalf("read %d of the %d messages of %s", len(out), st.Msgs, stream)
	}
	return out
}

// An external NATS server with user and password, reached by URL.
func TestRunAgainstExternalNATS(t *testing.T) {
	opts := &server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(),
		Username: "crawler", Password: "s3cret", NoSigs: true}
	ns := startServer(t, opts)
	site := snapshot.Default()
	web := startSite(t, site)
	cfg := testConfig(t, "", site.HubURLs(web.URL))
	cfg.NATS.URL = ns.ClientURL()

	cfg.NATS.User, cfg.NATS.Password = "crawler", "wrong"
	if _, err := Open(context.Background(), cfg.NATS, 0, zerolog.Nop()); err == nil || !strings.Contains(err.Error(), ns.ClientURL()) {
		t.Fatalf("bad password: err = %v, want an error naming the server", err)
	}
	cfg.NATS.Password = "s3cret"
	bus := openBus(t, cfg)
	defer bus.Close()
	if _, err := Run(context.Background(), bus, cfg, testEnv()); err != nil {
		t.Fatal(err)
	}
	assertEachOnce(t, readOut(t, cfg.Sink.Out), site.DistinctPapers())
}

func TestConfigValidate(t *testing.T) {
	cfg := DefaultConfig()
	if err := cfg.Validate(); err != nil {
		t.Fatalf("defaults invalid: %v", err)
	}
	cfg.Sink.SegmentMaxAge = 10 * time.Minute
	cfg.Stages.MaxDeliver = 0
	err := cfg.Validate()
	if err == nil || !strings.Contains(err.Error(), "segment_max_age") || !strings.Contains(err.Error(), "max_deliver") {
		t.Fatalf("err = %v, want both problems named", err)
	}
}

// With a tiny limit of outstanding async publishes, PublishAll waits for
// acks instead of failing, and every message is stored once.
func TestPublishAllSurvivesStalls(t *testing.T) {
	cfg := testConfig(t, t.TempDir(), nil)
	bus, err := Open(context.Background(), cfg.NATS, 4, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer bus.Close()
	const n = 2000
	outs := make([]Out, 0, n+10)
	for i := range n {
		outs = append(outs, Out{Subject: RawSubject("stall"), MsgID: fmt.Sprint("m", i), Data: []byte("{}")})
	}
	// Re-publishes with the same ids are stored once.
	outs = append(outs, outs[:10]...)
	if err := bus.PublishAll(context.Background(), outs); err != nil {
		t.Fatal(err)
	}
	s, _ := bus.JS.Stream(context.Background(), StreamRaw)
	info, _ := s.Info(context.Background())
	if info.State.Msgs != n {
		t.Fatalf("%d messages stored, want %d", info.State.Msgs, n)
	}
}

// Publishers share the bus's limit of publishes in flight: several
// publishing at once under a limit smaller than their number all finish,
// every message stored once, and a message the server refuses for good
// fails its PublishAll without holding up the others.
func TestPublishAllSharesTheLimit(t *testing.T) {
	cfg := testConfig(t, t.TempDir(), nil)
	bus, err := Open(context.Background(), cfg.NATS, 3, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer bus.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	const publishers, each = 6, 300
	errs := make(chan error, publishers+1)
	var wg sync.WaitGroup
	for g := range publishers {
		wg.Go(func() {
			outs := make([]Out, 0, each)
			for i := range each {
				outs = append(outs, Out{Subject: RawSubject("share"), MsgID: fmt.Sprint("m", g, "-", i), Data: []byte("{}")})
			}
			errs <- bus.PublishAll(ctx, outs)
		})
	}
	wg.Go(func() {
		big := Out{Subject: RawSubject("share"), MsgID: "big", Data: make([]byte, bus.NC.MaxPayload()+1)}
		if err := bus.PublishAll(ctx, []Out{big}); err == nil {
			errs <- errors.New("a message over the size limit was published")
		}
	})
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	s, _ := bus.JS.Stream(ctx, StreamRaw)
	info, _ := s.Info(ctx)
	if info.State.Msgs != publishers*each {
		t.Fatalf("%d messages stored, want %d", info.State.Msgs, publishers*each)
	}
}

// A publish no stream answers yet ("no responders", as while a stream's
// leader is elected) is tried again until its context ends, not failed at
// once, and is stored once the stream is there.
func TestPublishAllWaitsOutNoResponders(t *testing.T) {
	cfg := testConfig(t, t.TempDir(), nil)
	bus := openBus(t, cfg)
	defer bus.Close()
	out := []Out{{Subject: "later.x", MsgID: "a", Data: []byte("{}")}}
	short, cancelShort := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancelShort()
	if err := bus.PublishAll(short, out); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("PublishAll with no stream for its subject: %v; want it to try until its context ends", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := bus.JS.CreateStream(ctx, jetstream.StreamConfig{Name: "LATER", Subjects: []string{"later.>"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := bus.PublishAll(ctx, out); err != nil {
		t.Fatalf("PublishAll once the stream is there: %v", err)
	}
	if info, err := s.Info(ctx); err != nil || info.State.Msgs != 1 {
		t.Fatalf("stream holds %+v (%v), want 1 message", info, err)
	}
}

// A message whose worker dies on its last delivery (never acks, never
// fails) is still parked as a dead letter, from the server's advisory.
func TestUnansweredMessageIsParked(t *testing.T) {
	cfg := testConfig(t, t.TempDir(), nil)
	cfg.Stages.MaxDeliver, cfg.Stages.AckWait = 2, time.Second
	bus := openBus(t, cfg)
	defer bus.Close()
	ctx := context.Background()
	cons, err := bus.Consumer(ctx, StreamTasks, ConsumerFetch, "", cfg.Stages)
	if err != nil {
		t.Fatal(err)
	}
	stop, err := parkUnanswered(bus, StageFetch, StreamTasks, ConsumerFetch, zerolog.Nop(), &Stats{})
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	o, _ := HubTask("dead-worker", "https://pith.science/citations/0000aaaa-0000", 0, "")
	if err := bus.PublishAll(ctx, []Out{o}); err != nil {
		t.Fatal(err)
	}
	p, err := newPuller(bus.NC, cons, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	// A "worker" takes the message twice and dies each time: no ack.
	for i := range 2 {
		msgs, err := p.nextBatch(1, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if n := len(msgs); n != 1 {
			t.Fatalf("delivery %d: got %d messages", i+1, n)
		}
	}
	checkFor(t, 15*time.Second, func() error {
		// Workers keep pulling; a pull is what makes the server notice the
		// delivery limit and say so.
		if msgs, err := p.nextBatch(1, 200*time.Millisecond); err == nil {
			if n := len(msgs); n != 0 {
				return fmt.Errorf("delivered a %dth time", 3)
			}
		}
		dl, err := ReadDeadLetters(ctx, bus, 0)
		if err != nil {
			return err
		}
		if len(dl) != 1 || !strings.Contains(dl[0].Error, "without an answer") || !strings.HasPrefix(dl[0].Subject, SubjectHubTask) {
			return fmt.Errorf("dead letters %+v", dl)
		}
		return nil
	})
}

// A fetch stage that tags in place and dies after its raw record is
// stored but before its tagged one is: the task comes back, and when a
// fetch-only worker takes it, its raw record must still be stored for the
// classify stage (JetStream drops an id it has seen on any subject), and
// the tagged record the classify stage makes is the one the first stage
// would have stored.
func TestSelfTaggedRawRecordDoesNotHideTheRetry(t *testing.T) {
	bus, cl, r := untaggedRecord(t)
	ctx := context.Background()
	self := &fetchHandler{tagger: cl, maxPayload: bus.NC.MaxPayload()}
	first, again := r, r // Tag fills in the record it is given
	crashed, err := self.records("run-1", &first, ChangeNew)
	if err != nil || len(crashed) != 1 || crashed[0].Subject != SelfTaggedSubject("hub-x") {
		t.Fatalf("%+v (%v), want the tagged record alone, on %s", crashed, err, SelfTaggedSubject("hub-x"))
	}
	if err := bus.PublishAll(ctx, crashed); err != nil { // then the worker died before its ack
		t.Fatal(err)
	}
	alone := &fetchHandler{maxPayload: bus.NC.MaxPayload()}
	retried, err := alone.records("run-1", &again, ChangeNew)
	if err != nil || len(retried) != 1 {
		t.Fatalf("%d messages (%v), want the raw record", len(retried), err)
	}
	if err := bus.PublishAll(ctx, retried); err != nil {
		t.Fatal(err)
	}
	raw := headers(t, bus, StreamRaw)
	if len(raw) != 1 || raw[0].subject != RawSubject("hub-x") {
		t.Fatalf("raw stream holds %+v: the fetch-only worker's raw record for the classify stage was dropped", raw)
	}
	// The classify stage tags it as the crashed stage did, with the same
	// message id: the record is stored once more on the tagged stream.
	cons, err := bus.JS.OrderedConsumer(ctx, StreamRaw, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	m, err := cons.Next(jetstream.FetchMaxWait(5 * time.Second))
	if err != nil {
		t.Fatal(err)
	}
	o, err := (&classifyHandler{c: cl, stats: &Stats{}}).handle(ctx, m)
	if err != nil || len(o.Outs) != 1 {
		t.Fatalf("classify: %+v (%v)", o, err)
	}
	if got, want := o.Outs[0].MsgID, crashed[0].MsgID; got != want {
		t.Fatalf("the classify stage tags %s as %s, the crashed stage as %s: the sink would get the record twice", raw[0].id, got, want)
	}
}

// A record keeps the pages it was built from in its own message, raw or
// self-tagged, and the hub's next crawl finds them there (hubPages), the
// later of two versions winning; it reads only what was stored since, and
// keeps only the papers the hub still lists. A later version without
// pages (over the message limit) says the record is to be built in full;
// on the hub's first crawl by this version, that it is to be looked up as
// an older version kept it, in the bucket (RecordPages), as is a record of
// which only an older version's raw record is read, until a version with
// pages is. A stream made again is read from its start.
func TestRecordsCarryTheirPagesToTheHubsNextCrawl(t *testing.T) {
	bus, cl, r := untaggedRecord(t)
	ctx := context.Background()
	page := func(u, etag string) []ingest.SourcePage {
		return []ingest.SourcePage{{URL: u, Validator: ingest.Validator{ETag: etag}}}
	}
	version := 0
	publish := func(h *fetchHandler, id string, pages []ingest.SourcePage) {
		t.Helper()
		rec := r
		rec.ID = id
		version++
		rec.Paper.Title += fmt.Sprint(id, version) // a version of its own: not dropped as a duplicate
		outs, err := h.records("run-1", &rec, ChangeNew)
		if err != nil || len(outs) != 1 {
			t.Fatalf("%+v (%v)", outs, err)
		}
		if pages != nil {
			if err := h.carryPages(&outs[0], id, pages); err != nil {
				t.Fatal(err)
			}
		}
		if err := bus.PublishAll(ctx, outs); err != nil {
			t.Fatal(err)
		}
	}
	etag := func(hp *hubPages, id string) string {
		t.Helper()
		got := hp.known(id)
		if len(got) != 1 {
			t.Fatalf("pages of %s: %+v, want one", id, got)
		}
		return got[0].ETag
	}
	self := &fetchHandler{tagger: cl, maxPayload: bus.NC.MaxPayload(), bus: bus}
	alone := &fetchHandler{maxPayload: bus.NC.MaxPayload(), bus: bus}
	publish(self, "cc1-a", page("https://example.org/a-old", `"1"`))
	publish(alone, "cc1-a", page("https://example.org/a-new", `"2"`)) // later, raw: read first, yet it wins
	publish(self, "cc1-b", page("https://example.org/b", `"3"`))
	publish(self, "cc1-gone", page("https://example.org/gone", `"4"`))
	publish(alone, "cc1-c", nil) // a raw record of an older version, its pages in the bucket
	publish(self, "cc1-e", page("https://example.org/e", `"9"`))
	publish(alone, "cc1-e", nil) // later, without pages
	legacy := Out{Subject: "$KV." + BucketHTTP + ".record.cc1-c", Data: []byte(`[{"url":"https://example.org/c","etag":"\"5\""}]`)}
	// A self-tagged record as versions before 2026-12-02 stored it: on a
	// subject of its own.
	legacySelf := Out{Subject: TaggedSubject("hub-x") + ".self.cc1-d", MsgID: "cc1-d:f0:tagged", Data: []byte("{}"),
		Header: nats.Header{HeaderPages: {`[{"url":"https://example.org/d","etag":"\"7\""}]`}}}
	if err := bus.PublishAll(ctx, []Out{legacy, legacySelf}); err != nil {
		t.Fatal(err)
	}

	hp, err := loadHubPages(ctx, bus, "hub-x", pagesWait)
	if err != nil {
		t.Fatal(err)
	}
	if got := etag(hp, "cc1-a"); got != `"2"` {
		t.Fatalf("pages of cc1-a: ETag %s, want the later version's", got)
	}
	if got := etag(hp, "cc1-b"); got != `"3"` {
		t.Fatalf("pages of cc1-b: ETag %s", got)
	}
	if got := etag(hp, "cc1-d"); got != `"7"` {
		t.Fatalf("pages of cc1-d, self-tagged on a subject of its own: ETag %s", got)
	}
	for _, id := range []string{"cc1-c", "cc1-e", "cc1-f"} { // f: listed, no version read
		if got := hp.known(id); got != nil {
			t.Fatalf("pages of %s on the first crawl: %+v, want them left to RecordPages (nil)", id, got)
		}
	}
	if got := bus.cache.RecordPages(ctx, "cc1-c"); len(got) != 1 || got[0].ETag != `"5"` {
		t.Fatalf("pages of cc1-c in the bucket: %+v", got)
	}
	if err := hp.keep(ctx, bus, "hub-x", []string{"cc1-a", "cc1-b", "cc1-c", "cc1-d", "cc1-e", "cc1-f"}); err != nil {
		t.Fatal(err)
	}

	// The next crawl reads what was kept and what was stored since: a new
	// version of b with pages, one of d without.
	publish(self, "cc1-b", page("https://example.org/b", `"6"`))
	publish(self, "cc1-d", nil)
	again, err := loadHubPages(ctx, bus, "hub-x", pagesWait)
	if err != nil {
		t.Fatal(err)
	}
	if got := etag(again, "cc1-b"); got != `"6"` {
		t.Fatalf("pages of cc1-b at the next crawl: ETag %s, want the version stored since", got)
	}
	if got := etag(again, "cc1-a"); got != `"2"` {
		t.Fatalf("pages of cc1-a at the next crawl: ETag %s, want those kept", got)
	}
	for _, id := range []string{"cc1-d", "cc1-gone", "cc1-g"} { // g: listed now, never read
		if got := again.known(id); got == nil || len(got) != 0 {
			t.Fatalf("pages of %s at the next crawl: %+v, want none (an empty list: built in full, not looked up)", id, got)
		}
	}
	for _, id := range []string{"cc1-c", "cc1-e", "cc1-f"} {
		if got := again.known(id); got != nil {
			t.Fatalf("pages of %s at the next crawl: %+v, want them still looked up (nil) until a version with pages is read", id, got)
		}
	}
	if len(again.Record) != 6 {
		t.Fatalf("%d records kept, want a to f, those the first crawl kept", len(again.Record))
	}
	tagged, err := bus.JS.Stream(ctx, StreamTagged)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := readHeaders(ctx, bus, tagged, hubSelfTagged("hub-x"), again.Tagged.Seq, func(jetstream.Msg, *jetstream.MsgMetadata) error {
		return errors.New("read again")
	}); err != nil {
		t.Fatalf("the next crawl's mark leaves messages unread: %v", err)
	}
	if err := again.keep(ctx, bus, "hub-x", []string{"cc1-a", "cc1-b", "cc1-d"}); err != nil {
		t.Fatal(err)
	}

	// The tagged stream is made again: its sequences start again, under
	// the mark kept.
	if err := bus.JS.DeleteStream(ctx, StreamTagged); err != nil {
		t.Fatal(err)
	}
	if err := bus.ensureStreams(ctx); err != nil {
		t.Fatal(err)
	}
	publish(self, "cc1-b", page("https://example.org/b", `"8"`))
	remade, err := loadHubPages(ctx, bus, "hub-x", pagesWait)
	if err != nil {
		t.Fatal(err)
	}
	if got := etag(remade, "cc1-b"); got != `"8"` {
		t.Fatalf("pages of cc1-b once the stream was made again: ETag %s, want the version stored there", got)
	}
	if err := remade.keep(ctx, bus, "hub-x", []string{"cc1-a", "cc1-b"}); err != nil {
		t.Fatal(err)
	}

	// The kept object's chunks are lost: it is read again from the
	// streams, not waited for, and written anew.
	objects, err := bus.JS.Stream(ctx, "OBJ_"+BucketHubs)
	if err != nil {
		t.Fatal(err)
	}
	if err := objects.Purge(ctx, jetstream.WithPurgeSubject("$O."+BucketHubs+".C.>")); err != nil {
		t.Fatal(err)
	}
	lost, err := loadHubPages(ctx, bus, "hub-x", time.Second)
	if err != nil || !lost.fresh {
		t.Fatalf("an object without its chunks: fresh %v (%v), want it read again from the streams", lost != nil && lost.fresh, err)
	}
	if got := etag(lost, "cc1-b"); got != `"8"` {
		t.Fatalf("pages of cc1-b read again: ETag %s", got)
	}
	if err := lost.keep(ctx, bus, "hub-x", []string{"cc1-a", "cc1-b"}); err != nil {
		t.Fatal(err)
	}
	if mended, err := loadHubPages(ctx, bus, "hub-x", time.Second); err != nil || mended.fresh {
		t.Fatalf("the object written anew: fresh %v (%v), want it read", mended != nil && mended.fresh, err)
	}
}

// A record whose tagged form fits the broker's limit by its bytes but not
// with its headers (run, change, message id) is stored: as its raw record,
// for the classify stage, rather than failing its task's publish.
func TestSelfTaggedRecordNearTheLimitIsStored(t *testing.T) {
	bus, cl, base := untaggedRecord(t)
	limit := bus.NC.MaxPayload()
	h := &fetchHandler{tagger: cl, maxPayload: limit, bus: bus}
	build := func(pad int) (record.Record, []Out) {
		r := base
		r.Paper.URL = "https://example.org/" + strings.Repeat("x", pad)
		for range 5 { // tags of their own: the raw record is well under the tagged one
			r.Contexts = append(r.Contexts, record.Context{Text: "We use the parser of [3].", CiteSpan: []int{21, 24}})
		}
		outs, err := h.records("run-1", &r, ChangeNew)
		if err != nil || len(outs) != 1 {
			t.Fatalf("%d outs (%v)", len(outs), err)
		}
		return r, outs
	}
	// Pad the record until its tagged bytes are 50 under the limit (the
	// tags' confidences move its length a little, so a few rounds).
	pad := 0
	for range 3 {
		_, outs := build(pad)
		if isSelfTagged(outs[0].Subject) {
			pad += int(limit-50) - len(outs[0].Data)
		}
	}
	r, outs := build(pad)
	if isSelfTagged(outs[0].Subject) {
		t.Fatalf("%s of %d bytes (limit %d) was kept self-tagged: its headers take it over the limit", outs[0].Subject, len(outs[0].Data), limit)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := bus.PublishAll(ctx, outs); err != nil {
		t.Fatalf("record %s, whose raw form fits, was not stored: %v", r.ID, err)
	}
}

// A fetch-only worker stored a raw record, with its pages, and died
// before its ack; the classify stage stored it tagged; the task's retry
// on a worker that tags gives the same tagged record: the stream drops it
// as a duplicate, and the hub's next crawl finds the pages on the raw
// record.
func TestPagesOfADuplicateSelfTaggedRecordAreKept(t *testing.T) {
	bus, cl, r := untaggedRecord(t)
	ctx := context.Background()
	first, again := r, r
	pages := []ingest.SourcePage{{URL: "https://example.org/p", Validator: ingest.Validator{ETag: `"1"`}}}
	alone := &fetchHandler{maxPayload: bus.NC.MaxPayload(), bus: bus}
	raw, err := alone.records("run-1", &first, ChangeNew)
	if err != nil {
		t.Fatal(err)
	}
	if err := alone.carryPages(&raw[0], r.ID, pages); err != nil {
		t.Fatal(err)
	}
	if err := bus.PublishAll(ctx, raw); err != nil {
		t.Fatal(err)
	}
	// The classify stage tags the raw record as it was stored.
	var stored record.Record
	if err := record.Unmarshal(raw[0].Data, &stored); err != nil {
		t.Fatal(err)
	}
	cl.Tag(&stored)
	tagged, err := taggedOut(&stored, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := bus.PublishAll(ctx, []Out{tagged}); err != nil {
		t.Fatal(err)
	}
	self := &fetchHandler{tagger: cl, maxPayload: bus.NC.MaxPayload(), bus: bus}
	outs, err := self.records("run-1", &again, ChangeNew)
	if err != nil {
		t.Fatal(err)
	}
	if outs[0].MsgID != tagged.MsgID {
		t.Fatalf("self-tagged id %s, the classify stage's %s: the case needs the same", outs[0].MsgID, tagged.MsgID)
	}
	if err := self.carryPages(&outs[0], r.ID, pages); err != nil {
		t.Fatal(err)
	}
	if err := bus.PublishAll(ctx, outs); err != nil {
		t.Fatal(err)
	}
	hp, err := loadHubPages(ctx, bus, r.Hub.ID, pagesWait)
	if err != nil {
		t.Fatal(err)
	}
	if got := hp.known(r.ID); len(got) != 1 || got[0].ETag != `"1"` {
		t.Fatalf("pages %+v: lost with the duplicate self-tagged message", got)
	}
}

// untaggedRecord opens a bus and loads the rules, for tests of what the
// fetch stage publishes, and gives a record of hub-x as the crawler
// builds one: untagged.
func untaggedRecord(t *testing.T) (*Bus, *classify.Classifier, record.Record) {
	t.Helper()
	bus, cl := busAndRules(t)
	r := taggedRecord("hub-x", 1, "")
	r.Role, r.Polarity, r.Pluralism = "", "", nil
	return bus, cl, r
}

// A line encoded into a buffer sized from the last line is the line
// MarshalLine gives, with its fingerprint, whether the record is larger or
// smaller than the last.
func TestLineSizeGivesMarshalLinesBytes(t *testing.T) {
	small := taggedRecord("hub-x", 1, record.RoleUses)
	large := taggedRecord("hub-x", 2, record.RoleBackground)
	large.Paper.Abstract = strings.Repeat("a long abstract ", 400)
	var sizes lineSize
	for _, r := range []record.Record{small, large, small, large, large} {
		want, wantFP, err := record.MarshalLine(&r)
		if err != nil {
			t.Fatal(err)
		}
		got, fp, err := sizes.marshal(&r)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) || fp != wantFP {
			t.Fatalf("record %s: sized line %q (%s), MarshalLine %q (%s)", r.ID, got, fp, want, wantFP)
		}
	}
}

// A run's counts of new, changed and gone records come from what its bus
// stored when nothing else was stored on the raw and tagged streams (the
// same counts as the records' headers give), and from the headers when
// another publisher stored records there too.
func TestRunCountsFromWhatItStored(t *testing.T) {
	cfg := testConfig(t, t.TempDir(), nil)
	bus := openBus(t, cfg)
	defer bus.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	before := bus.stored.snapshot()
	rawAfter, err := lastSeq(ctx, bus, StreamRaw)
	if err != nil {
		t.Fatal(err)
	}
	taggedAfter, err := lastSeq(ctx, bus, StreamTagged)
	if err != nil {
		t.Fatal(err)
	}
	out := func(subject, id, run, change string) Out {
		return Out{Subject: subject, MsgID: id, Data: []byte("{}"), Header: nats.Header{HeaderRun: {run}, HeaderChange: {change}}}
	}
	outs := []Out{
		out(RawSubject("h"), "a", "run-1", ChangeNew), out(RawSubject("h"), "b", "run-1", ChangeGone),
		out(SelfTaggedSubject("h"), "c", "run-1", ChangeNew), out(SelfTaggedSubject("h"), "d", "run-1", ChangeChanged),
		out(SelfTaggedSubject("h"), "e", "run-0", ChangeNew),          // another run's: not counted
		{Subject: TaggedSubject("h"), MsgID: "f", Data: []byte("{}")}, // tagged by the classify stage: no change of its own
	}
	if err := bus.PublishAll(ctx, outs); err != nil {
		t.Fatal(err)
	}
	if err := bus.PublishAll(ctx, outs[:3]); err != nil { // again: dropped as duplicates, counted once
		t.Fatal(err)
	}
	runs := map[string]bool{"run-1": true}
	want := map[string]int64{ChangeNew: 2, ChangeGone: 1, ChangeChanged: 1}
	own, ok := ownChanges(ctx, bus, rawAfter, taggedAfter, runs, before)
	if !ok || !maps.Equal(own, want) {
		t.Fatalf("counts from what was stored: %v (%v), want %v", own, ok, want)
	}
	read := map[string]int64{}
	if err := countHeaders(ctx, bus, StreamRaw, "", rawAfter, runs, read); err != nil {
		t.Fatal(err)
	}
	if err := countHeaders(ctx, bus, StreamTagged, selfTagged, taggedAfter, runs, read); err != nil {
		t.Fatal(err)
	}
	if !maps.Equal(read, want) {
		t.Fatalf("counts from the headers: %v, want %v", read, want)
	}
	// Another publisher stores a record of the run: the headers are read.
	other, err := Open(ctx, cfg.NATS, cfg.Stages.MaxPending, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if err := other.PublishAll(ctx, []Out{out(RawSubject("h"), "g", "run-1", ChangeNew)}); err != nil {
		t.Fatal(err)
	}
	if _, ok := ownChanges(ctx, bus, rawAfter, taggedAfter, runs, before); ok {
		t.Fatal("another publisher's record was not noticed")
	}
	got, err := countChanges(ctx, bus, rawAfter, taggedAfter, runs, before)
	if err != nil {
		t.Fatal(err)
	}
	if want[ChangeNew]++; !maps.Equal(got, want) {
		t.Fatalf("counts: %v, want %v", got, want)
	}
}
