package pipeline

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
)

// Stats are the counters a run shows on its progress line.
type Stats struct {
	PagesFetched     atomic.Int64
	Requests         atomic.Int64 // HTTP requests sent
	RecordsPublished atomic.Int64
	RecordsTagged    atomic.Int64
	RecordsWritten   atomic.Int64
	Duplicates       atomic.Int64
	NotModified      atomic.Int64
	New              atomic.Int64 // citing papers seen for the first time
	Changed          atomic.Int64 // known papers published again because a source changed
	Gone             atomic.Int64 // papers a hub stopped listing
	Retries          atomic.Int64
	DeadLetters      atomic.Int64
	OutputProbes     atomic.Int64 // tries of an unavailable output that found it still so
}

// Handler turns one message into the messages it leads to. Its errors
// speak package retry: a permanent error, or any error on the last
// delivery stages.max_deliver allows, parks the message on the dead-letter
// subject; any other error is retried after the stage policy's backoff, or
// the error's Retry-After when that is longer.
type Handler func(ctx context.Context, msg jetstream.Msg) (Outcome, error)

// Outcome is what handling a message produced: messages to publish, and
// messages and steps to take only once they are stored (such as
// remembering a page's ETag, which must not be kept if its record never
// got out).
type Outcome struct {
	Outs []Out
	// After are published once Outs are stored, all together. One that
	// fails costs what it remembers, as a failed Commit would: a record
	// whose pages were not kept is rebuilt by the next run, and counted
	// there as new.
	After  []Out
	Commit []func(context.Context) error
}

// stage runs workers that pull batches from a durable consumer, handle
// each message, publish what the handlers return and only then ack.
type stage struct {
	name     string
	consumer jetstream.Consumer
	handle   Handler
	workers  int
	batch    int
	idle     time.Duration // how long one pull waits for a message
	bus      *Bus
	cfg      StageConfig
	log      zerolog.Logger
	stats    *Stats
	hold     *hold // paused while the process's sink output is unavailable
}

func (s *stage) run(ctx context.Context) {
	var wg sync.WaitGroup
	for range s.workers {
		wg.Go(func() { s.worker(ctx) })
	}
	wg.Wait()
}

func (s *stage) worker(ctx context.Context) {
	for ctx.Err() == nil {
		if s.hold.wait(ctx); ctx.Err() != nil {
			return // stopped while paused: take no more work
		}
		if msgs := pull(ctx, s.consumer, s.batch, s.idle, s.log); len(msgs) > 0 {
			s.process(ctx, msgs)
		}
	}
}

// process handles a batch. Outputs of the whole batch are published
// together (asynchronously) and the inputs are acked once all are stored.
func (s *stage) process(ctx context.Context, msgs []jetstream.Msg) {
	stop := heartbeat(msgs, s.cfg.AckWait)
	defer stop()
	var outs, after []Out
	var commits []func(context.Context) error
	done := make([]jetstream.Msg, 0, len(msgs))
	for _, m := range msgs {
		o, err := s.handle(ctx, m)
		var early notDue
		if errors.As(err, &early) {
			_ = m.NakWithDelay(early.wait)
			continue
		}
		if err != nil {
			s.fail(ctx, m, err)
			continue
		}
		outs = append(outs, o.Outs...)
		after = append(after, o.After...)
		commits = append(commits, o.Commit...)
		done = append(done, m)
	}
	published := time.Now()
	if err := s.bus.PublishAll(ctx, outs); err != nil {
		for _, m := range done {
			s.fail(ctx, m, fmt.Errorf("publishing results: %w", err))
		}
		return
	}
	if len(outs) > 0 {
		s.bus.metrics.Published(time.Since(published))
	}
	if err := s.bus.PublishAll(ctx, after); err != nil {
		s.log.Warn().Err(err).Msg("after-publish messages failed")
	}
	for _, c := range commits {
		if err := c(ctx); err != nil {
			s.log.Warn().Err(err).Msg("after-publish step failed")
		}
	}
	for _, m := range done {
		if err := m.Ack(); err != nil {
			s.log.Warn().Err(err).Msg("ack failed; the message will be redelivered and deduplicated")
		}
	}
	s.bus.metrics.Processed(s.name, len(done))
}

// fail retries a message after a backoff, or parks it as a dead letter
// when retrying cannot help or its deliveries are used up.
func (s *stage) fail(ctx context.Context, m jetstream.Msg, err error) {
	failMsg(ctx, s.bus, s.name, s.cfg, m, err, s.log, s.stats)
}

// failMsg is every stage's fail path: what the stage policy (StageConfig.
// Policy) decides about the delivery that just failed.
func failMsg(ctx context.Context, bus *Bus, stageName string, cfg StageConfig, m jetstream.Msg, err error, log zerolog.Logger, stats *Stats) {
	if ctx.Err() != nil {
		// Shutting down: hand the message back untouched for another worker.
		nakNow(bus.NC, m)
		return
	}
	letter := deadLetter{stage: stageName, subject: m.Subject(), data: m.Data(), header: m.Headers(), deliveries: 1, reason: err.Error()}
	if meta, merr := m.Metadata(); merr == nil {
		letter.deliveries, letter.stream, letter.seq = meta.NumDelivered, meta.Stream, meta.Sequence.Stream
	}
	policy := cfg.Policy()
	next := policy.Next(int(letter.deliveries), err)
	bus.metrics.Failed(stageName, next.Retry)
	if next.Retry {
		stats.Retries.Add(1)
		log.Info().Err(err).Str("subject", m.Subject()).Uint64("delivery", letter.deliveries).Dur("retry_in", next.Wait).Msg("will retry")
		_ = m.NakWithDelay(next.Wait)
		return
	}
	if derr := bus.park(ctx, letter); derr != nil {
		log.Error().Err(derr).Msg("could not park a dead letter; the message will be redelivered")
		_ = m.NakWithDelay(policy.Delay(1))
		return
	}
	stats.DeadLetters.Add(1)
	bus.metrics.DeadLettered(stageName)
	log.Warn().Err(err).Str("subject", m.Subject()).Uint64("deliveries", letter.deliveries).Str("why", next.Why).Msg("parked as a dead letter")
	_ = m.TermWithReason(truncate(err.Error(), 200))
}

// nakNow hands a message back at shutdown and waits for the server to
// confirm. The nak carries a delay because only a delayed nak rewrites the
// delivery time the server stores: after a plain nak, a server restarted
// meanwhile would hold the message back for the whole ack wait.
func nakNow(nc *nats.Conn, m jetstream.Msg) {
	if _, err := nc.Request(m.Reply(), []byte(`-NAK {"delay": 1000000}`), 2*time.Second); err != nil {
		_ = m.NakWithDelay(time.Millisecond)
	}
}

// deadLetter is a message that failed for good, with why.
type deadLetter struct {
	stage, subject string
	data           []byte
	header         nats.Header
	stream         string // "" when the message's place in its stream is unknown
	seq            uint64
	deliveries     uint64
	reason         string
	// id names a letter that is not a whole message of a stream (a paper
	// of a papers task): its message id is then dead:<stage>:<id>.
	id string
}

// park publishes a dead letter on its stage's dead-letter subject: the
// original body and headers, and why it failed in the Citecrawl-* headers.
// Its message id is its place in its stream, so a message parked by its
// handler and by the max-deliveries watcher is stored once.
func (b *Bus) park(ctx context.Context, d deadLetter) error {
	return b.PublishAll(ctx, []Out{d.out()})
}

// out is the dead letter's message (see park).
func (d deadLetter) out() Out {
	h := nats.Header{}
	for k, v := range d.header {
		if k != jetstream.MsgIDHeader {
			h[k] = v
		}
	}
	h.Set(HeaderError, d.reason)
	h.Set(HeaderStage, d.stage)
	h.Set(HeaderSubject, d.subject)
	h.Set(HeaderDeliveries, strconv.FormatUint(d.deliveries, 10))
	id := fmt.Sprintf("dead:%s:%s", d.stage, d.subject)
	if d.stream != "" {
		id = fmt.Sprintf("dead:%s:%s:%d", d.stage, d.stream, d.seq)
	}
	if d.id != "" {
		id = "dead:" + d.stage + ":" + d.id
	}
	return Out{Subject: DeadSubject(d.stage), MsgID: id, Data: d.data, Header: h}
}

// pull is nextBatch for the stage loops: a failed pull is logged and
// waited out briefly, and gives no messages.
func pull(ctx context.Context, c jetstream.Consumer, batch int, idle time.Duration, log zerolog.Logger) []jetstream.Msg {
	msgs, err := nextBatch(ctx, c, batch, idle)
	if err != nil {
		log.Warn().Err(err).Msg("pull failed; retrying")
		pause(ctx, time.Second)
	}
	return msgs
}

// nextBatch returns the messages available now (up to batch), or waits up
// to idle for one when there are none. It never waits for a batch to fill.
func nextBatch(ctx context.Context, c jetstream.Consumer, batch int, idle time.Duration) ([]jetstream.Msg, error) {
	b, err := c.FetchNoWait(batch)
	if err != nil {
		return nil, err
	}
	msgs := collect(b)
	if len(msgs) > 0 || ctx.Err() != nil {
		return msgs, nil
	}
	b, err = c.Fetch(1, jetstream.FetchMaxWait(idle))
	if err != nil {
		return nil, err
	}
	return collect(b), nil
}

// collect drains a batch. A batch that ended early (a timeout, a
// reconnect) still yields what it got; the next pull asks again.
func collect(b jetstream.MessageBatch) []jetstream.Msg {
	var msgs []jetstream.Msg
	for m := range b.Messages() {
		msgs = append(msgs, m)
	}
	return msgs
}

// heartbeat tells the server the messages are still being worked on, so a
// slow fetch (a polite host delay, a Retry-After) is not redelivered to
// another worker meanwhile.
func heartbeat(msgs []jetstream.Msg, ackWait time.Duration) (stop func()) {
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(max(ackWait/3, 100*time.Millisecond))
		defer t.Stop()
		for {
			select {
			case <-t.C:
				for _, m := range msgs {
					_ = m.InProgress()
				}
			case <-done:
				return
			}
		}
	}()
	return func() { close(done) }
}

// pause waits d or until ctx is done.
func pause(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
