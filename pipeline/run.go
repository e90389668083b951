package pipeline

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

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
}

// StartStages starts the named stages on bus. Stop them with Stop.
func StartStages(ctx context.Context, bus *Bus, cfg Config, names []string, env Env) (*Workers, error) {
	env.defaults()
	ctx, cancel := context.WithCancel(ctx)
	w := &Workers{cancel: cancel, failed: make(chan struct{}), hold: &hold{}}
	var starters []func()
	for _, name := range names {
		start, err := w.build(ctx, bus, cfg, name, env)
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
func (w *Workers) build(ctx context.Context, bus *Bus, cfg Config, name string, env Env) (func(), error) {
	log := env.Log.With().Str("stage", name).Logger()
	consumer := func(stream, durable string) (jetstream.Consumer, error) {
		c, err := bus.Consumer(ctx, stream, durable, "", cfg.Stages)
		if err != nil {
			return nil, err
		}
		return c, w.watch(bus, name, stream, durable, log, env.Stats)
	}
	switch name {
	case StageFetch:
		c, err := consumer(StreamTasks, ConsumerFetch)
		if err != nil {
			return nil, err
		}
		sp, err := ingest.NewSplitter() // once per process: loading the model is the slow part
		if err != nil {
			return nil, err
		}
		cr, err := newCrawler(cfg, ingest.NewFetcher(cfg.Fetch, log, ingest.WithTransport(bus.metrics.Transport)), sp, bus.cache, env, log)
		if err != nil {
			return nil, err
		}
		h := &fetchHandler{crawler: cr, stats: env.Stats}
		s := &stage{name: name, consumer: c, handle: h.handle, workers: cfg.Stages.FetchWorkers, batch: 1,
			idle: env.Idle, bus: bus, cfg: cfg.Stages, log: log, stats: env.Stats, hold: w.hold}
		return func() { s.run(ctx) }, nil
	case StageClassify:
		cl, err := classify.Load(cfg.Rules)
		if err != nil {
			return nil, err
		}
		c, err := consumer(StreamRaw, ConsumerClassify)
		if err != nil {
			return nil, err
		}
		h := &classifyHandler{c: cl, stats: env.Stats}
		s := &stage{name: name, consumer: c, handle: h.handle, workers: cfg.Stages.ClassifyWorkers, batch: cfg.Stages.Batch,
			idle: env.Idle, bus: bus, cfg: cfg.Stages, log: log, stats: env.Stats, hold: w.hold}
		return func() { s.run(ctx) }, nil
	case StageSink:
		out, err := sink.Open(ctx, cfg.Sink, sink.WithLogger(log), sink.WithStdout(env.Stdout))
		if err != nil {
			return nil, err
		}
		c, err := consumer(StreamTagged, cfg.Stages.SinkDurable)
		if err != nil {
			return nil, err
		}
		s := &sinkStage{consumer: c, sink: out, batch: cfg.Stages.Batch, idle: env.Idle, bus: bus, cfg: cfg.Stages,
			timeout: cfg.Sink.UnavailableTimeout, log: log, stats: env.Stats, hold: w.hold}
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
	RunID       string       `json:"run_id"`
	Started     time.Time    `json:"started"`
	Duration    Duration     `json:"duration"`
	Hubs        []string     `json:"hubs"`
	Pages       int64        `json:"pages_fetched"`
	NotModified int64        `json:"not_modified"`
	New         int64        `json:"new"`
	Changed     int64        `json:"changed"`
	Gone        int64        `json:"gone"`
	Written     int64        `json:"written"`
	Duplicates  int64        `json:"already_written"`
	Errors      int          `json:"errors"`
	DeadLetters []DeadLetter `json:"dead_letters,omitempty"`
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
	Stage      string `json:"stage"`
	Subject    string `json:"subject"`
	Error      string `json:"error"`
	Deliveries string `json:"deliveries"`
	Data       []byte `json:"-"`
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
	deadBefore, err := lastSeq(ctx, bus, StreamDead)
	if err != nil {
		return nil, err
	}
	rawBefore, err := lastSeq(ctx, bus, StreamRaw)
	if err != nil {
		return nil, err
	}
	w, err := StartStages(ctx, bus, cfg, AllStages, env)
	if err != nil {
		return nil, err
	}
	outs := make([]Out, 0, len(cfg.Hubs))
	for _, h := range cfg.Hubs {
		o, err := HubTask(res.RunID, h, 0, cfg.FullText.ArxivBase)
		if err != nil {
			_ = w.Stop()
			return nil, fmt.Errorf("hub %q: %w", h, err)
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
	if counts, err := countChanges(ctx, bus, rawBefore, res.RunID); err == nil {
		// Every worker's records, not only this process's.
		res.New, res.Changed, res.Gone = counts[ChangeNew], counts[ChangeChanged], counts[ChangeGone]
	} else {
		env.Log.Warn().Err(err).Msg("counting the run's records from the stream; the report counts this process only")
	}
	res.Written, res.Duplicates = st.RecordsWritten.Load(), st.Duplicates.Load()
	if err := errors.Join(waitErr, stopErr); err != nil {
		return res, err
	}
	if res.DeadLetters, err = ReadDeadLetters(ctx, bus, deadBefore); err != nil {
		return res, err
	}
	res.Errors = len(res.DeadLetters)
	return res, publishReport(ctx, bus, cfg, res)
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
	dir := filepath.Join(out, "runs")
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
	cons, err := bus.JS.Consumer(ctx, stream, consumer)
	if err != nil {
		return nil, fmt.Errorf("consumer %s: %w", consumer, err)
	}
	info, err := cons.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("consumer %s: %w", consumer, err)
	}
	return info, nil
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
	s, err := bus.JS.Stream(ctx, stream)
	if err != nil {
		return false, err
	}
	sinfo, err := s.Info(ctx)
	if err != nil {
		return false, err
	}
	return sinfo.State.Msgs > 0, nil
}

// rideOut calls f until it succeeds, ctx ends or electionGrace has passed,
// for the requests a run makes once (where its streams stand, its dead
// letters), which must not fail because a leader is being elected.
func rideOut(ctx context.Context, f func(ctx context.Context) error) error {
	deadline := time.Now().Add(electionGrace)
	for {
		rctx, cancel := context.WithTimeout(ctx, apiTimeout)
		err := f(rctx)
		cancel()
		if err == nil || ctx.Err() != nil || time.Now().After(deadline) {
			return err
		}
		pause(ctx, 250*time.Millisecond)
	}
}

// countChanges counts, by their Citecrawl-Change header, the raw records
// that run published after sequence after (reading headers only).
func countChanges(ctx context.Context, bus *Bus, after uint64, runID string) (map[string]int64, error) {
	counts := map[string]int64{}
	last, err := lastSeq(ctx, bus, StreamRaw)
	if err != nil || last <= after {
		return counts, err
	}
	cons, err := bus.JS.OrderedConsumer(ctx, StreamRaw, jetstream.OrderedConsumerConfig{
		DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: after + 1, HeadersOnly: true,
	})
	if err != nil {
		return nil, err
	}
	it, err := cons.Messages()
	if err != nil {
		return nil, err
	}
	defer it.Stop()
	for {
		m, err := it.Next(jetstream.NextMaxWait(apiTimeout))
		if err != nil {
			return nil, err
		}
		if m.Headers().Get(HeaderRun) == runID {
			counts[m.Headers().Get(HeaderChange)]++
		}
		meta, err := m.Metadata()
		if err != nil {
			return nil, err
		}
		if meta.Sequence.Stream >= last {
			return counts, nil
		}
	}
}

func lastSeq(ctx context.Context, bus *Bus, stream string) (last uint64, err error) {
	err = rideOut(ctx, func(ctx context.Context) error {
		s, err := bus.JS.Stream(ctx, stream)
		if err != nil {
			return err
		}
		info, err := s.Info(ctx)
		if err != nil {
			return err
		}
		last = info.State.LastSeq
		return nil
	})
	return last, err
}

// ReadDeadLetters returns the dead letters stored after sequence after.
func ReadDeadLetters(ctx context.Context, bus *Bus, after uint64) ([]DeadLetter, error) {
	last, err := lastSeq(ctx, bus, StreamDead)
	if err != nil {
		return nil, err
	}
	var s jetstream.Stream
	if err := rideOut(ctx, func(ctx context.Context) (err error) { s, err = bus.JS.Stream(ctx, StreamDead); return err }); err != nil {
		return nil, err
	}
	var out []DeadLetter
	for seq := after + 1; seq <= last; seq++ {
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
			continue
		}
		out = append(out, DeadLetter{
			Stage: m.Header.Get(HeaderStage), Subject: m.Header.Get(HeaderSubject),
			Error: m.Header.Get(HeaderError), Deliveries: m.Header.Get(HeaderDeliveries), Data: m.Data,
		})
	}
	return out, nil
}
