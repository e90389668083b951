package pipeline

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/citecrawl/citecrawl/classify"
	"github.com/citecrawl/citecrawl/ingest"
	"github.com/citecrawl/citecrawl/sink"
)

// Stage names, as given to `citecrawl worker --stage`.
const (
	StageFetch    = "fetch"
	StageClassify = "classify"
	StageSink     = "sink"
)

// AllStages is every stage, in pipeline order.
var AllStages = []string{StageFetch, StageClassify, StageSink}

// fetchBatch is how many tasks a fetch worker pulls at once: one, since a
// papers task already shares its pull, publishes and ack among its
// pages; a worker holding more would hold their pages back
// from the others at the end of a crawl, and from the sink.
const fetchBatch = 1

// Env is what the stages get from the caller besides the config.
type Env struct {
	Log   zerolog.Logger
	Stats *Stats
	// Stdout receives the records when the sink's out is "-".
	Stdout io.Writer
	// Now is the clock records are stamped with (time.Now if nil).
	Now func() time.Time
	// Idle is how long a pull waits for a message before the stage looks
	// around (flushes the sink, checks for shutdown); 500ms if zero.
	Idle time.Duration

	hubs *hubWatch // Run's configured hubs, to end it when none can be reached
}

func (e *Env) defaults() {
	if e.Stats == nil {
		e.Stats = &Stats{}
	}
	if e.Now == nil {
		e.Now = time.Now
	}
	if e.Idle == 0 {
		e.Idle = 500 * time.Millisecond
	}
}

// Workers are running stages.
type Workers struct {
	cancel  context.CancelFunc
	unwatch []func()
	wg      sync.WaitGroup
	mu      sync.Mutex
	err     error
	failed  chan struct{} // closed when a stage stops with an error
	hold    *hold         // the stages wait on it while the sink's output is unavailable
	own     *ownLines     // tagged records' lines, from the stages that tag to the sink stage (nil: not both here)
}

// StartStages starts the named stages on bus. Stop them with Stop.
func StartStages(ctx context.Context, bus *Bus, cfg Config, names []string, env Env) (*Workers, error) {
	env.defaults()
	ctx, cancel := context.WithCancel(ctx)
	w := &Workers{cancel: cancel, failed: make(chan struct{}), hold: &hold{}}
	if slices.Contains(names, StageSink) && slices.Contains(names, StageClassify) {
		w.own = newOwnLines()
	}
	// Rules are loaded once per process. When the classify stage runs here
	// too, the fetch stage tags its records itself (see fetchHandler.tagger).
	var cl *classify.Classifier
	if slices.Contains(names, StageClassify) {
		var err error
		if cl, err = classify.Load(cfg.Rules); err != nil {
			cancel()
			return nil, err
		}
	}
	var starters []func()
	for _, name := range names {
		start, err := w.build(ctx, bus, cfg, name, env, cl)
		if err != nil {
			_ = w.Stop()
			return nil, err
		}
		starters = append(starters, start)
	}
	for _, start := range starters {
		w.wg.Go(start)
	}
	return w, nil
}

// build prepares one stage: its durable consumer (watched for messages
// that run out of deliveries), its handler, and the function running it.
// cl is the classifier when the classify stage runs in this process.
func (w *Workers) build(ctx context.Context, bus *Bus, cfg Config, name string, env Env, cl *classify.Classifier) (func(), error) {
	log := env.Log.With().Str("stage", name).Logger()
	consumer := func(stream, durable, filter string) (jetstream.Consumer, error) {
		c, err := bus.Consumer(ctx, stream, durable, filter, cfg.Stages)
		if err != nil {
			return nil, err
		}
		return c, w.watch(bus, name, stream, durable, log, env.Stats)
	}
	switch name {
	case StageFetch:
		c, err := consumer(StreamTasks, ConsumerFetch, "")
		if err != nil {
			return nil, err
		}
		fetcher := ingest.NewFetcher(cfg.Fetch, log, ingest.WithTransport(bus.metrics.Transport), ingest.WithRequestCount(&env.Stats.Requests))
		// The crawler loads the sentence model itself, and only when full
		// text is read: without it a run's start is 15 ms of CPU shorter.
		cr, err := newCrawler(cfg, fetcher, bus.cache, env, log)
		if err != nil {
			return nil, err
		}
		h := &fetchHandler{crawler: cr, stats: env.Stats, hubs: env.hubs, maxPayload: bus.NC.MaxPayload(), bus: bus, tagger: cl, own: w.own, hold: w.hold,
			spaced: fetcher.Spaced, arxivBase: cfg.FullText.ArxivBase, workers: cfg.Stages.FetchWorkers, policy: cfg.Stages.Policy(), now: env.Now, log: log}
		s := &stage{name: name, consumer: c, handle: h.handle, workers: cfg.Stages.FetchWorkers, batch: fetchBatch,
			idle: env.Idle, bus: bus, cfg: cfg.Stages, log: log, stats: env.Stats, hold: w.hold}
		return func() { s.run(ctx) }, nil
	case StageClassify:
		c, err := consumer(StreamRaw, ConsumerClassify, rawToClassify)
		if err != nil {
			return nil, err
		}
		h := &classifyHandler{c: cl, stats: env.Stats, own: w.own}
		s := &stage{name: name, consumer: c, handle: h.handle, workers: cfg.Stages.ClassifyWorkers, batch: cfg.Stages.Batch,
			idle: env.Idle, bus: bus, cfg: cfg.Stages, log: log, stats: env.Stats, hold: w.hold}
		return func() { s.run(ctx) }, nil
	case StageSink:
		// Records already written are left out when their segment is
		// sealed, not looked up batch by batch: most of what a crawl
		// delivers is new (an unchanged page gives no record), and a
		// look-up opens the hub's index, once for every pulled batch
		// (6 to 8 % of a run's CPU); a record delivered again costs a
		// rewrite of its segment instead. The stage counts what was
		// written from what the sink sealed (sink.SealCounter).
		out, err := sink.Open(ctx, cfg.Sink, sink.WithLogger(log), sink.WithStdout(env.Stdout), sink.WithDedupeAtSeal())
		if err != nil {
			return nil, err
		}
		c, err := consumer(StreamTagged, cfg.Stages.SinkDurable, "")
		if err != nil {
			return nil, err
		}
		s := &sinkStage{consumer: c, sink: out, batch: cfg.Stages.Batch, idle: env.Idle, bus: bus, cfg: cfg.Stages,
			timeout: cfg.Sink.UnavailableTimeout, log: log, stats: env.Stats, hold: w.hold, own: w.own}
		return func() {
			if err := s.run(ctx); err != nil {
				w.fail(fmt.Errorf("sink stage: %w", err))
			}
		}, nil
	default:
		return nil, fmt.Errorf("unknown stage %q (want fetch, classify or sink)", name)
	}
}

// watch parks the messages of a stage's consumer that run out of
// deliveries without an answer.
func (w *Workers) watch(bus *Bus, stageName, stream, consumer string, log zerolog.Logger, stats *Stats) error {
	stop, err := parkUnanswered(bus, stageName, stream, consumer, log, stats)
	if err == nil {
		w.unwatch = append(w.unwatch, stop)
	}
	return err
}

func (w *Workers) fail(err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err == nil {
		w.err = err
		close(w.failed)
	}
}

// Stop asks every stage to finish its in-flight work and waits for it.
func (w *Workers) Stop() error {
	w.cancel()
	w.wg.Wait()
	for _, stop := range w.unwatch {
		stop()
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

// Failed is closed when a stage stopped with an error.
func (w *Workers) Failed() <-chan struct{} { return w.failed }

// Result is what a run did; its report is also written beside the output
// and published on citecrawl.runs.<run id>.
type Result struct {
	RunID       string    `json:"run_id"`
	Started     time.Time `json:"started"`
	Duration    Duration  `json:"duration"`
	Hubs        []string  `json:"hubs"`
	Pages       int64     `json:"pages_fetched"`
	NotModified int64     `json:"not_modified"`
	New         int64     `json:"new"`
	Changed     int64     `json:"changed"`
	Gone        int64     `json:"gone"`
	Written     int64     `json:"written"`
	Duplicates  int64     `json:"already_written"`
	Errors      int       `json:"errors"`
	// DeadLetters lists the first reportListMax of the run's Errors dead
	// letters; `citecrawl dead list` shows them all.
	DeadLetters []DeadLetter `json:"dead_letters,omitempty"`
	NotListed   int          `json:"dead_letters_not_listed,omitempty"`

	// Requests are the HTTP requests sent (retries, redirects and
	// robots.txt included); RequestsPerRecord divides them by the records
	// built (new and changed).
	Requests          int64   `json:"requests"`
	RequestsPerRecord float64 `json:"requests_per_record"`
}

// reportListMax and reportErrorMax keep a run report well under the
// broker's message size limit however many messages failed.
const (
	reportListMax  = 100
	reportErrorMax = 500
)

func (r *Result) setDeadLetters(dead []DeadLetter) {
	r.Errors = len(dead)
	r.DeadLetters = dead[:min(len(dead), reportListMax)]
	r.NotListed = len(dead) - len(r.DeadLetters)
	for i := range r.DeadLetters {
		r.DeadLetters[i].Error = truncate(r.DeadLetters[i].Error, reportErrorMax)
	}
}

// Duration marshals as text ("1.5s").
type Duration time.Duration

func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	v, err := time.ParseDuration(s)
	*d = Duration(v)
	return err
}
func (d Duration) String() string { return time.Duration(d).Round(time.Millisecond).String() }

// DeadLetter is a message that failed for good.
type DeadLetter struct {
	Seq        uint64      `json:"seq,omitempty"` // its place in CITECRAWL_DEAD
	Time       time.Time   `json:"time,omitzero"`
	Stage      string      `json:"stage"`
	Subject    string      `json:"subject"`
	Error      string      `json:"error"`
	Deliveries string      `json:"deliveries"`
	Data       []byte      `json:"-"`
	header     nats.Header // as parked: the original headers and why
}

// NewRunID returns a fresh run id.
func NewRunID(now time.Time) string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return now.UTC().Format("20060102T150405Z") + "-" + hex.EncodeToString(b[:])
}

// Run crawls cfg.Hubs through every stage in this process and returns
// once the crawl is finished and every record is written.
func Run(ctx context.Context, bus *Bus, cfg Config, env Env) (*Result, error) {
	env.defaults()
	start := env.Now()
	res := &Result{RunID: NewRunID(start), Started: start.UTC(), Hubs: cfg.Hubs}
	deadState, err := streamState(ctx, bus, StreamDead)
	if err != nil {
		return nil, err
	}
	deadBefore := deadState.LastSeq
	if deadState.Msgs > 0 {
		env.Log.Warn().Uint64("dead_letters", deadState.Msgs).
			Msg("dead letters from earlier runs are kept: see them with 'citecrawl dead list', redrive them with 'citecrawl dead replay'")
	}
	// Before the streams' marks, and nothing of bus's is in flight: a bus
	// serves one Run at a time (its stages start below and stop before Run
	// returns). A second Run or StartStages beside it on the same bus could
	// straddle the marks and make ownChanges count wrong.
	stored := bus.stored.snapshot()
	rawBefore, err := lastSeq(ctx, bus, StreamRaw)
	if err != nil {
		return nil, err
	}
	taggedBefore, err := lastSeq(ctx, bus, StreamTagged)
	if err != nil {
		return nil, err
	}
	env.hubs = newHubWatch(res.RunID, cfg.Hubs)
	w, err := StartStages(ctx, bus, cfg, AllStages, env)
	if err != nil {
		return nil, err
	}
	// A hub whose tasks an earlier run left queued (it was killed, or is
	// still running elsewhere) is not queued again: its queued tasks are
	// its crawl, and queueing it again would fetch every paper twice.
	runs := map[string]bool{res.RunID: true}
	outs := make([]Out, 0, len(cfg.Hubs))
	// A paper can be listed twice only in a run of several hubs.
	shared := len(cfg.Hubs) > 1 || cfg.Discover.Depth > 0
	for _, h := range cfg.Hubs {
		o, err := hubTask(res.RunID, ingest.HubJob{URL: h, ArxivBase: cfg.FullText.ArxivBase, Shared: shared})
		if err != nil {
			_ = w.Stop()
			return nil, fmt.Errorf("hub %q: %w", h, err)
		}
		q, err := queuedTasks(ctx, bus, o.Subject)
		if err != nil {
			_ = w.Stop()
			return nil, fmt.Errorf("hub %q: reading its queued tasks: %w", h, err)
		}
		if q.tasks > 0 {
			env.Log.Info().Str("hub", h).Uint64("queued", q.tasks).Strs("runs", q.runs).
				Msg("resuming the hub's crawl: its tasks are still queued, so it is not queued again")
			for _, r := range q.runs {
				runs[r] = true
			}
			continue
		}
		outs = append(outs, o)
	}
	if err := bus.PublishAll(ctx, outs); err != nil {
		_ = w.Stop()
		return nil, fmt.Errorf("queueing hubs: %w", err)
	}
	env.Log.Info().Str("run", res.RunID).Int("hubs", len(outs)).Msg("crawl started")
	waitErr := WaitDrained(ctx, bus, cfg, w.Failed(), 100*time.Millisecond)
	stopErr := w.Stop()
	st := env.Stats
	res.Duration = Duration(env.Now().Sub(start))
	res.Pages, res.NotModified = st.PagesFetched.Load(), st.NotModified.Load()
	res.New, res.Changed, res.Gone = st.New.Load(), st.Changed.Load(), st.Gone.Load()
	if counts, err := countChanges(ctx, bus, rawBefore, taggedBefore, runs, stored); err == nil {
		// Every worker's records, not only this process's, and those of
		// the tasks of earlier runs this one finished.
		res.New, res.Changed, res.Gone = counts[ChangeNew], counts[ChangeChanged], counts[ChangeGone]
	} else {
		env.Log.Warn().Err(err).Msg("counting the run's records from the stream; the report counts this process only")
	}
	res.Written, res.Duplicates = st.RecordsWritten.Load(), st.Duplicates.Load()
	res.Requests = st.Requests.Load()
	if built := res.New + res.Changed; built > 0 {
		res.RequestsPerRecord = math.Round(100*float64(res.Requests)/float64(built)) / 100
	}
	if err := errors.Join(waitErr, stopErr); err != nil {
		return res, err
	}
	dead, err := ReadDeadLetters(ctx, bus, deadBefore)
	if err != nil {
		return res, err
	}
	res.setDeadLetters(dead)
	if err := publishReport(ctx, bus, cfg, res); err != nil {
		return res, err
	}
	return res, env.hubs.err() // ErrHubsUnreachable, or nil
}

// publishReport publishes the run report on citecrawl.runs.<id> and writes
// it to <out>/runs/<id>.json.
func publishReport(ctx context.Context, bus *Bus, cfg Config, res *Result) error {
	b, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return err
	}
	if err := bus.PublishAll(ctx, []Out{{Subject: subjectRuns + token(res.RunID), MsgID: "run:" + res.RunID, Data: b}}); err != nil {
		return fmt.Errorf("publishing the run report: %w", err)
	}
	out, ok := cfg.Sink.Folder()
	if !ok {
		return nil
	}
	dir := filepath.Join(out, runsDir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	return sink.WriteFileAtomic(filepath.Join(dir, res.RunID+".json"), append(b, '\n'))
}

// WaitDrained returns when every stage's consumer has nothing pending and
// nothing unacked. Consumers are read in pipeline order: once the task
// queue is empty nothing new can reach the later streams, so empty later
// consumers then mean the whole pipeline is done. A consumer that cannot be
// read (its leader is being elected, the connection is moving to another
// node) is asked again; only when that lasts electionGrace is it an error.
func WaitDrained(ctx context.Context, bus *Bus, cfg Config, failed <-chan struct{}, every time.Duration) error {
	checks := []struct{ stream, consumer string }{
		{StreamTasks, ConsumerFetch}, {StreamRaw, ConsumerClassify}, {StreamTagged, cfg.Stages.SinkDurable},
	}
	t := time.NewTicker(every)
	defer t.Stop()
	var failingSince time.Time
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-failed:
			return errors.New("a stage failed")
		case <-t.C:
		}
		if bus.NC.IsClosed() {
			// The server this process joined has stopped for good.
			return errors.New("the connection to NATS is closed")
		}
		idle, err := true, error(nil)
		for _, c := range checks {
			var busy bool
			if busy, err = consumerBusy(ctx, bus, c.stream, c.consumer); err != nil || busy {
				idle = false
				break
			}
		}
		switch {
		case err == nil && idle:
			return nil
		case err == nil:
			failingSince = time.Time{}
		case failingSince.IsZero():
			failingSince = time.Now()
			bus.log.Warn().Err(err).Msg("cannot read a consumer's state; asking again")
		case time.Since(failingSince) > electionGrace:
			return err
		}
	}
}

// electionGrace is how long a JetStream request may keep failing before it
// counts: a leader election or a reconnect to another node takes seconds.
// apiTimeout bounds one request, whose answer a failing node can take
// with it, so that it is asked again rather than waited on.
const (
	electionGrace = time.Minute
	apiTimeout    = 5 * time.Second
)

func consumerInfo(ctx context.Context, bus *Bus, stream, consumer string) (*jetstream.ConsumerInfo, error) {
	ctx, cancel := context.WithTimeout(ctx, apiTimeout)
	defer cancel()
	// Looking the consumer up is asking for its info: what it gives is
	// as fresh as a second request's.
	cons, err := bus.JS.Consumer(ctx, stream, consumer)
	if err != nil {
		return nil, fmt.Errorf("consumer %s: %w", consumer, err)
	}
	return cons.CachedInfo(), nil
}

// consumerBusy says whether a stage's consumer still has work. The task
// queue is a work queue, which holds exactly the messages not yet acked,
// so it is asked directly: after a failover its consumer can count an ack
// the old leader took as still pending, and never redeliver it (the
// message is gone), which would keep a run waiting for ever.
func consumerBusy(ctx context.Context, bus *Bus, stream, consumer string) (bool, error) {
	info, err := consumerInfo(ctx, bus, stream, consumer)
	if err != nil {
		return false, err
	}
	if info.NumPending > 0 || info.NumAckPending == 0 || stream != StreamTasks {
		return info.NumPending > 0 || info.NumAckPending > 0, nil
	}
	ctx, cancel := context.WithTimeout(ctx, apiTimeout)
	defer cancel()
	s, err := bus.JS.Stream(ctx, stream) // its info, as consumerInfo's
	if err != nil {
		return false, err
	}
	return s.CachedInfo().State.Msgs > 0, nil
}

// rideOut calls f until it succeeds, fails for good (a refusal, see
// transient), ctx ends or electionGrace has passed, for the requests that
// must not fail because a leader is being elected.
func rideOut(ctx context.Context, f func(ctx context.Context) error) error {
	deadline := time.Now().Add(electionGrace)
	for {
		rctx, cancel := context.WithTimeout(ctx, apiTimeout)
		err := f(rctx)
		cancel()
		if err == nil || !transient(err) || ctx.Err() != nil || time.Now().After(deadline) {
			return err
		}
		pause(ctx, 250*time.Millisecond)
	}
}

// countChanges counts, by their Citecrawl-Change header, the records
// those runs published (reading headers only): the raw records after
// sequence rawAfter of the raw stream, and the self-tagged ones, whose
// only copy is on the tagged stream, after taggedAfter there.
//
// When every message stored on the two streams since was published by
// this bus (stored is what it had stored at the marks), the counts are
// what it stored, and nothing is read back: reading every record's
// headers again cost 2 to 3 % of a crawl's CPU.
func countChanges(ctx context.Context, bus *Bus, rawAfter, taggedAfter uint64, runs map[string]bool, stored *tally) (map[string]int64, error) {
	if counts, ok := ownChanges(ctx, bus, rawAfter, taggedAfter, runs, stored); ok {
		return counts, nil
	}
	counts := map[string]int64{}
	if err := countHeaders(ctx, bus, StreamRaw, "", rawAfter, runs, counts); err != nil {
		return nil, err
	}
	if err := countHeaders(ctx, bus, StreamTagged, selfTagged, taggedAfter, runs, counts); err != nil {
		return nil, err
	}
	return counts, nil
}

// ownChanges are the runs' counts from what bus stored since before (see
// countChanges), if the raw and tagged streams' last sequences moved by
// exactly what it stored on them since the marks rawAfter and
// taggedAfter: then no other publisher stored anything there.
func ownChanges(ctx context.Context, bus *Bus, rawAfter, taggedAfter uint64, runs map[string]bool, before *tally) (map[string]int64, bool) {
	now := bus.stored.snapshot()
	for stream, after := range map[string]uint64{StreamRaw: rawAfter, StreamTagged: taggedAfter} {
		last, err := lastSeq(ctx, bus, stream)
		if err != nil || last-after != now.streams[stream]-before.streams[stream] {
			return nil, false
		}
	}
	counts := map[string]int64{}
	for k, n := range now.changes {
		if runs[k.run] {
			counts[k.change] += n - before.changes[k]
		}
	}
	return counts, true
}

// countHeaders adds to counts the Citecrawl-Change headers of runs'
// messages on stream (those matching filter, when not "") after sequence
// after.
func countHeaders(ctx context.Context, bus *Bus, stream, filter string, after uint64, runs map[string]bool, counts map[string]int64) error {
	var s jetstream.Stream
	err := rideOut(ctx, func(ctx context.Context) (err error) {
		s, err = bus.JS.Stream(ctx, stream)
		return err
	})
	if err != nil {
		return err
	}
	_, err = readHeaders(ctx, bus, s, filter, after, func(m jetstream.Msg, _ *jetstream.MsgMetadata) error {
		if runs[m.Headers().Get(HeaderRun)] {
			counts[m.Headers().Get(HeaderChange)]++
		}
		return nil
	})
	return err
}

// readHeaders hands each message on stream s (those matching filter,
// when not "") stored after sequence after, headers only, to each, in
// order, with its metadata. It returns the sequence it read up to: the
// last there was when it began (or the last left, should that one have
// aged out meanwhile), or after when there was nothing new.
func readHeaders(ctx context.Context, bus *Bus, s jetstream.Stream, filter string, after uint64, each func(jetstream.Msg, *jetstream.MsgMetadata) error) (uint64, error) {
	last, err := lastSeqIn(ctx, s, filter)
	if err != nil || last <= after {
		return after, err
	}
	stream := s.CachedInfo().Config.Name
	cc := jetstream.OrderedConsumerConfig{
		DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: after + 1, HeadersOnly: true,
		InactiveThreshold: apiTimeout, // should the delete below not be heard
	}
	if filter != "" {
		cc.FilterSubjects = []string{filter}
	}
	cons, err := s.OrderedConsumer(ctx, cc)
	if err != nil {
		return after, err
	}
	it, err := cons.Messages()
	if err != nil {
		return after, err
	}
	defer func() {
		it.Stop()
		// A hub's crawl reads this way: its consumers are not left for the
		// server to drop after their inactive threshold.
		_ = bus.JS.DeleteConsumer(context.WithoutCancel(ctx), stream, cons.CachedInfo().Name)
	}()
	for {
		m, err := it.Next(jetstream.NextMaxWait(apiTimeout))
		if err != nil {
			return after, err
		}
		meta, err := m.Metadata()
		if err != nil {
			return after, err
		}
		if err := each(m, meta); err != nil {
			return after, err
		}
		if meta.Sequence.Stream >= last || meta.NumPending == 0 {
			return max(meta.Sequence.Stream, after), nil
		}
	}
}

// queued is what of one hub's crawl is still on the task queue.
type queued struct {
	tasks uint64
	runs  []string // the runs that queued them
}

// queuedTasks reads what is queued for the hub whose hub task goes to
// hubSubject: its hub task and its paper tasks.
func queuedTasks(ctx context.Context, bus *Bus, hubSubject string) (queued, error) {
	var q queued
	hubID := hubSubject[len(SubjectHubTask)+1:]
	err := rideOut(ctx, func(ctx context.Context) error {
		q = queued{}
		s, err := bus.JS.Stream(ctx, StreamTasks)
		if err != nil {
			return err
		}
		for _, subj := range []string{hubSubject, SubjectPaperTask + "." + hubID} {
			m, err := s.GetLastMsgForSubject(ctx, subj)
			if errors.Is(err, jetstream.ErrMsgNotFound) {
				continue
			}
			if err != nil {
				return err
			}
			if t, err := DecodeTask(m.Data); err == nil && !slices.Contains(q.runs, t.RunID) {
				q.runs = append(q.runs, t.RunID)
			}
			info, err := s.Info(ctx, jetstream.WithSubjectFilter(subj))
			if err != nil {
				return err
			}
			q.tasks += max(info.State.Subjects[subj], 1)
		}
		return nil
	})
	return q, err
}

// streamState is where a stream stands (its messages, its last sequence).
func streamState(ctx context.Context, bus *Bus, stream string) (st jetstream.StreamState, err error) {
	err = rideOut(ctx, func(ctx context.Context) error {
		s, err := bus.JS.Stream(ctx, stream) // its info, as consumerInfo's
		if err != nil {
			return err
		}
		st = s.CachedInfo().State
		return nil
	})
	return st, err
}

// lastSeqOf is the sequence of the last message on stream that matches
// filter (wildcards allowed; "" for any), 0 when there is none.
func lastSeqOf(ctx context.Context, bus *Bus, stream, filter string) (uint64, error) {
	if filter == "" {
		return lastSeq(ctx, bus, stream)
	}
	s, err := bus.JS.Stream(ctx, stream)
	if err != nil {
		return 0, err
	}
	return lastSeqIn(ctx, s, filter)
}

// lastSeqIn is lastSeqOf on the stream s, as its info was looked up.
func lastSeqIn(ctx context.Context, s jetstream.Stream, filter string) (uint64, error) {
	if filter == "" {
		return s.CachedInfo().State.LastSeq, nil
	}
	m, err := s.GetLastMsgForSubject(ctx, filter)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	return m.Sequence, nil
}

func lastSeq(ctx context.Context, bus *Bus, stream string) (uint64, error) {
	st, err := streamState(ctx, bus, stream)
	return st.LastSeq, err
}

// ReadDeadLetters returns the dead letters stored after sequence after.
func ReadDeadLetters(ctx context.Context, bus *Bus, after uint64) ([]DeadLetter, error) {
	var s jetstream.Stream
	var first, last uint64
	err := rideOut(ctx, func(ctx context.Context) error {
		var err error
		if s, err = bus.JS.Stream(ctx, StreamDead); err != nil {
			return err
		}
		st := s.CachedInfo().State // as fresh as streamState's
		first, last = st.FirstSeq, st.LastSeq
		return nil
	})
	if err != nil {
		return nil, err
	}
	var out []DeadLetter
	for seq := max(after+1, first); seq <= last; seq++ {
		var m *jetstream.RawStreamMsg
		err := rideOut(ctx, func(ctx context.Context) (err error) {
			if m, err = s.GetMsg(ctx, seq); errors.Is(err, jetstream.ErrMsgNotFound) {
				return nil
			}
			return err
		})
		if err != nil {
			return out, err
		}
		if m == nil {
			continue // replayed
		}
		out = append(out, DeadLetter{
			Seq: m.Sequence, Time: m.Time, Stage: m.Header.Get(HeaderStage), Subject: m.Header.Get(HeaderSubject),
			Error: m.Header.Get(HeaderError), Deliveries: m.Header.Get(HeaderDeliveries), Data: m.Data, header: m.Header,
		})
	}
	return out, nil
}
