package pipeline

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
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
// steps to take only once they are stored (such as remembering a page's
// ETag, which must not be kept if its record never got out).
type Outcome struct {
	Outs   []Out
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
	p, err := newPuller(s.bus.NC, s.consumer, s.log)
	if err != nil {
		s.log.Error().Err(err).Msg("worker not started")
		return
	}
	defer p.close()
	for ctx.Err() == nil {
		if s.hold.wait(ctx); ctx.Err() != nil {
			return // stopped while paused: take no more work
		}
		if msgs := p.pull(ctx, s.batch, s.idle); len(msgs) > 0 {
			s.process(ctx, msgs)
		}
	}
}

// process handles a batch. Outputs of the whole batch are published
// together (asynchronously) and the inputs are acked once all are stored.
func (s *stage) process(ctx context.Context, msgs []jetstream.Msg) {
	stop := heartbeat(msgs, s.cfg.AckWait)
	defer stop()
	var outs []Out
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

// puller pulls a stage worker's batches from its durable consumer, one
// request a pull: "up to batch messages, as soon as there are any, or
// none after idle" (no_wait and expires together, which the server
// answers as soon as it has messages). nats.go's Fetch cannot ask that,
// so a worker caught up made three pulls a cycle (an empty FetchNoWait, a
// waiting Fetch of one, then FetchNoWait again), each on a subscription,
// a goroutine and a timer of its own; the puller's replies come to one
// subscription for the worker's life. Its messages are acked and
// redelivered as any pulled message: only the pull is its own.
//
// Each pull has a reply subject of its own under the subscription's
// (inbox.1, inbox.2, ...): a message is the consumer's whichever pull it
// answers, but a status ends only the pull it names, so the end of a pull
// answered after its worker gave up waiting (a cluster holds both until
// its nodes agree) does not end the next one while the server still
// serves it.
type puller struct {
	nc    *nats.Conn
	next  string // the consumer's pull subject
	inbox string // the replies' prefix
	sub   *nats.Subscription
	ch    chan *nats.Msg // sub's messages
	pulls uint64         // pulls sent
	reply string         // the reply subject of the last pull
	// noAck: the consumer takes no acks (reprocess's reader), so messages
	// left at close are not given back one by one.
	noAck bool
	log   zerolog.Logger
}

// pullGrace is how long after a pull's expiry its end is waited for:
// an answer the server never sent (a reconnect) ends the pull then.
const pullGrace = time.Second

// The headers of the server's status messages, which end a pull.
const (
	statusHeader      = "Status"
	descriptionHeader = "Description"
)

// isStatus says whether m is the server's word on a pull rather than
// one of the consumer's messages.
func isStatus(m *nats.Msg) bool { return m.Header.Get(statusHeader) != "" && len(m.Data) == 0 }

// maxPullBatch is the most messages one pull asks for: the puller's
// channel holds that many and the statuses of a few pulls. A synchronous
// subscription's own channel would hold 65,536 messages, half a megabyte
// a worker that the collector scans at every cycle.
const maxPullBatch = 4096

func newPuller(nc *nats.Conn, c jetstream.Consumer, log zerolog.Logger) (*puller, error) {
	info := c.CachedInfo()
	inbox := nc.NewInbox()
	ch := make(chan *nats.Msg, maxPullBatch+64)
	sub, err := nc.QueueSubscribeSyncWithChan(inbox+".*", "", ch)
	if err != nil {
		return nil, fmt.Errorf("consumer %s: %w", info.Name, err)
	}
	// The bus's JetStream has the default API prefix (jetstream.New: no
	// domain), so its pulls go there too.
	return &puller{nc: nc, next: jetstream.DefaultAPIPrefix + "CONSUMER.MSG.NEXT." + info.Stream + "." + info.Name, inbox: inbox, sub: sub, ch: ch,
		noAck: info.Config.AckPolicy == jetstream.AckNonePolicy, log: log}, nil
}

// pull is nextBatch for the stage loops: a failed pull is logged and waited
// out briefly, and gives no messages.
func (p *puller) pull(ctx context.Context, batch int, idle time.Duration) []jetstream.Msg {
	msgs, err := p.nextBatch(batch, idle)
	if err != nil {
		p.log.Warn().Err(err).Msg("pull failed; retrying")
		pause(ctx, time.Second)
	}
	return msgs
}

// nextBatch returns the messages available now (up to batch, and to
// maxPullBatch), or waits up to idle for one when there are none. It never
// waits for a batch to fill.
// A pull is not cut short when the stage stops: what it brings is handled
// (or handed back) rather than left to its ack wait.
func (p *puller) nextBatch(batch int, idle time.Duration) ([]jetstream.Msg, error) {
	batch = min(batch, maxPullBatch)
	msgs, status, err := p.request(fmt.Appendf(nil, `{"batch":%d,"expires":%d,"no_wait":true}`, batch, idle.Nanoseconds()), batch, idle)
	if status == "408" && len(msgs) == 0 && err == nil {
		// "Requests Pending": the waiting pulls of other workers ask for
		// more than there is now, so this one waits its turn for one
		// message, as they do.
		msgs, _, err = p.request(fmt.Appendf(nil, `{"batch":1,"expires":%d}`, idle.Nanoseconds()), 1, idle)
	}
	return msgs, err
}

// request sends one pull and reads its answer: the messages, until
// batch came or the server ends the pull with a status. It gives the
// status that ended a pull refused at once (none when it expired).
func (p *puller) request(req []byte, batch int, idle time.Duration) (msgs []jetstream.Msg, refused string, err error) {
	if msgs = p.late(batch); len(msgs) > 0 {
		return msgs, "", nil
	}
	p.pulls++
	p.reply = p.inbox + "." + strconv.FormatUint(p.pulls, 10)
	if err := p.nc.PublishRequest(p.next, p.reply, req); err != nil {
		return nil, "", err
	}
	deadline := time.Now().Add(idle + pullGrace)
	for len(msgs) < batch {
		m, err := p.sub.NextMsg(time.Until(deadline))
		if errors.Is(err, nats.ErrTimeout) {
			return msgs, "", nil
		}
		if err != nil {
			return msgs, "", err
		}
		if !isStatus(m) {
			msgs = append(msgs, pulledMsg{m})
			continue
		}
		if m.Subject != p.reply {
			continue // the end of a pull given up before
		}
		switch status := m.Header.Get(statusHeader); {
		case status == "408" && strings.Contains(m.Header.Get(descriptionHeader), "Timeout"):
			return msgs, "", nil // expired
		case status == "404", status == "408":
			return msgs, status, nil
		case status == "100": // a heartbeat, never asked for
		default: // 409: the consumer was deleted, its leader changed, ...
			if len(msgs) > 0 {
				return msgs, "", nil
			}
			return nil, "", fmt.Errorf("pull from %s: %s %s", p.next, status, m.Header.Get(descriptionHeader))
		}
	}
	return msgs, "", nil
}

// late takes up to batch messages that came after the pull that asked
// for them had given up waiting (a slow answer), before asking for more;
// the end of such a pull is passed over.
func (p *puller) late(batch int) []jetstream.Msg {
	var msgs []jetstream.Msg
	for len(msgs) < batch {
		if len(p.ch) == 0 {
			break
		}
		m, err := p.sub.NextMsg(0)
		if err != nil {
			break
		}
		if !isStatus(m) {
			msgs = append(msgs, pulledMsg{m})
		}
	}
	return msgs
}

// close ends the subscription, handing back any message that came after
// the last pull ended (a late answer), so that it is not held back for
// its ack wait (a consumer that takes no acks holds nothing back).
func (p *puller) close() {
	for !p.noAck {
		m, err := p.sub.NextMsg(time.Millisecond)
		if err != nil {
			break
		}
		if !isStatus(m) {
			nakNow(p.nc, pulledMsg{m})
		}
	}
	_ = p.sub.Unsubscribe()
}

// pulledMsg is a message a puller brought: a jetstream.Msg, acked
// through the conn's JetStream message methods.
type pulledMsg struct{ m *nats.Msg }

func (p pulledMsg) Metadata() (*jetstream.MsgMetadata, error) {
	md, err := p.m.Metadata()
	if err != nil {
		return nil, err
	}
	meta := &jetstream.MsgMetadata{NumDelivered: md.NumDelivered, NumPending: md.NumPending, Timestamp: md.Timestamp,
		Stream: md.Stream, Consumer: md.Consumer, Domain: md.Domain}
	meta.Sequence.Stream, meta.Sequence.Consumer = md.Sequence.Stream, md.Sequence.Consumer
	return meta, nil
}
func (p pulledMsg) Data() []byte                           { return p.m.Data }
func (p pulledMsg) Headers() nats.Header                   { return p.m.Header }
func (p pulledMsg) Subject() string                        { return p.m.Subject }
func (p pulledMsg) Reply() string                          { return p.m.Reply }
func (p pulledMsg) Ack() error                             { return p.m.Ack() }
func (p pulledMsg) DoubleAck(ctx context.Context) error    { return p.m.AckSync(nats.Context(ctx)) }
func (p pulledMsg) Nak() error                             { return p.m.Nak() }
func (p pulledMsg) NakWithDelay(delay time.Duration) error { return p.m.NakWithDelay(delay) }
func (p pulledMsg) InProgress() error                      { return p.m.InProgress() }
func (p pulledMsg) Term() error                            { return p.m.Term() }

// storedAt is where and when a delivered message was stored: its stream
// sequence and the time it was stored, in nanoseconds since the epoch.
type storedAt struct {
	seq uint64
	ns  int64
}

// storedAtOf is m's storedAt, read from its reply subject without the
// rest of its metadata (Metadata allocates every field: 6 % of what
// reprocess allocated and 1.3 % of its CPU, a million times over); a
// reply of another shape is read by Metadata.
func storedAtOf(m jetstream.Msg) (storedAt, error) {
	if at, ok := parseAckReply(m.Reply()); ok {
		return at, nil
	}
	md, err := m.Metadata()
	if err != nil {
		return storedAt{}, err
	}
	return storedAt{seq: md.Sequence.Stream, ns: md.Timestamp.UnixNano()}, nil
}

// parseAckReply reads a storedAt from a JetStream reply subject, in
// either of its shapes: $JS.ACK.stream.consumer.delivered.sseq.cseq.tm.pending,
// or with a domain and an account hash before the stream (and maybe more
// tokens after pending).
func parseAckReply(reply string) (storedAt, bool) {
	rest, ok := strings.CutPrefix(reply, "$JS.ACK.")
	if !ok {
		return storedAt{}, false
	}
	var tok [10]string // the last one holds whatever follows
	n := 0
	for ; n < len(tok)-1; n++ {
		i := strings.IndexByte(rest, '.')
		if i < 0 {
			break
		}
		tok[n], rest = rest[:i], rest[i+1:]
	}
	tok[n] = rest
	n++
	var sseq, tm string
	switch {
	case n == 7:
		sseq, tm = tok[3], tok[5]
	case n >= 9:
		sseq, tm = tok[5], tok[7]
	default:
		return storedAt{}, false
	}
	seq, err := strconv.ParseUint(sseq, 10, 64)
	if err != nil {
		return storedAt{}, false
	}
	ns, err := strconv.ParseUint(tm, 10, 63) // digits only, as nats.go reads it
	if err != nil {
		return storedAt{}, false
	}
	return storedAt{seq: seq, ns: int64(ns)}, true
}

// TermWithReason is Term with the reason the server puts in its
// advisory (nats.Msg has no such call).
func (p pulledMsg) TermWithReason(reason string) error {
	return p.m.Respond([]byte("+TERM " + reason))
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
