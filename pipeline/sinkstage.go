package pipeline

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/citecrawl/citecrawl/record"
	"github.com/citecrawl/citecrawl/retry"
	"github.com/citecrawl/citecrawl/sink"
)

// sinkStage writes tagged records to a sink. Unlike the other stages it
// acks a message only after the sink has made its record durable and
// visible (a sealed segment), so a crash loses nothing and shows nothing
// half-written.
//
// A full or read-only output (sink.ErrUnavailable) is a condition of the
// output, not of the records: the stage keeps the messages it holds
// (telling the server they are in progress, so they are not redelivered
// and no delivery is counted against them), pulls nothing more, says so
// at warn level once a minute, and gives the records to the sink again
// now and then. When the output comes back they are written and acked;
// after sink.unavailable_timeout the stage hands them back to the stream
// and stops with an error, so the run ends non-zero with every record
// still in the stream.
type sinkStage struct {
	consumer jetstream.Consumer
	sink     sink.Sink
	batch    int
	idle     time.Duration
	bus      *Bus
	cfg      StageConfig
	timeout  time.Duration // sink.unavailable_timeout
	log      zerolog.Logger
	stats    *Stats
	// The messages given to the sink since the last flush, and their
	// records' lines, given again when the output comes back.
	pending []jetstream.Msg
	lines   []sink.Line
	news    int // how many of them the sink took as new
	// What was written since the last flush, for the sink's Batching.
	held      int
	heldBytes int64
	heldSince time.Time
	sealed    sink.Sealed // what the sink had sealed at the last flush, for the metrics
	down      *outage     // set while the output is unavailable
	hold      *hold       // the other stages of the process, paused meanwhile
	own       *ownLines   // the lines this process's other stages encoded (nil: none)
}

// hold pauses the other stages of a process while its sink's output is
// unavailable (back-pressure): what they would crawl and tag could not be
// written, and the run is going to end with it queued anyway.
type hold struct {
	mu      sync.Mutex
	resumed chan struct{} // non-nil while held; closed when released
}

func (h *hold) pause() {
	if h == nil {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.resumed == nil {
		h.resumed = make(chan struct{})
	}
}

func (h *hold) release() {
	if h == nil {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.resumed != nil {
		close(h.resumed)
		h.resumed = nil
	}
}

// wait returns once the hold is released (at once when there is none).
func (h *hold) wait(ctx context.Context) {
	if h == nil {
		return
	}
	h.mu.Lock()
	ch := h.resumed
	h.mu.Unlock()
	if ch != nil {
		select {
		case <-ch:
		case <-ctx.Done():
		}
	}
}

// held says whether the stages are paused now.
func (h *hold) held() bool {
	if h == nil {
		return false
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.resumed != nil
}

// outage is a spell of the output being unavailable.
type outage struct {
	err        error // the latest failure
	since      time.Time
	warned     time.Time
	stopBeat   func()
	nextProbe  time.Time
	probeEvery time.Duration
}

func (s *sinkStage) run(ctx context.Context) error {
	batching := s.sink.Batching()
	p, err := newPuller(s.bus.NC, s.consumer, s.log)
	if err != nil {
		return errors.Join(err, s.sink.Close(context.Background()))
	}
	defer p.close()
	for ctx.Err() == nil {
		if s.down != nil {
			if err := s.waitForOutput(ctx); err != nil {
				return errors.Join(err, s.sink.Close(context.Background()))
			}
			continue
		}
		msgs := p.pull(ctx, s.batch, s.idle)
		s.write(ctx, msgs)
		// Flush when the sink asks for it (a full or old segment), when
		// the consumer nears its limit of unacked messages, or when the
		// stream has gone quiet, so that a run ends with everything visible.
		if s.down == nil && len(s.pending) > 0 && (len(msgs) == 0 || len(s.pending) >= s.cfg.maxAckPending()/2 ||
			batching.Due(s.held, s.heldBytes, time.Since(s.heldSince))) {
			s.flush(ctx, false)
		}
	}
	// Shutting down: seal what was written and wait for the acks to be
	// confirmed, so it is not redone on the next start.
	if s.down != nil {
		_ = s.retryOutput(context.Background())
	} else {
		s.flush(context.Background(), true)
	}
	if s.down != nil {
		s.handBack("shutting down")
	}
	return s.sink.Close(context.Background())
}

// write hands a batch of messages' records to the sink at once. If the
// sink fails, the records are given one by one so that only the failing
// ones are retried.
func (s *sinkStage) write(ctx context.Context, msgs []jetstream.Msg) {
	var lines []sink.Line
	var taken []jetstream.Msg
	for _, m := range msgs {
		l, err := s.lineOf(m)
		if err != nil {
			failMsg(ctx, s.bus, "sink", s.cfg, m, retry.Permanentf("tagged record on %s: %w", m.Subject(), err), s.log, s.stats)
			continue
		}
		lines, taken = append(lines, l), append(taken, m)
	}
	if len(lines) == 0 {
		return
	}
	n, err := s.sink.WriteLines(ctx, lines)
	if err == nil {
		s.take(n, taken, lines)
		return
	}
	if errors.Is(err, sink.ErrUnavailable) {
		s.take(0, taken, lines)
		s.outputDown(ctx, err)
		return
	}
	// Those written before the error come back as already written.
	for i, l := range lines {
		one, err := s.sink.WriteLines(ctx, lines[i:i+1])
		if errors.Is(err, sink.ErrUnavailable) {
			s.take(0, taken[i:], lines[i:])
			s.outputDown(ctx, err)
			return
		}
		if err != nil {
			failMsg(ctx, s.bus, "sink", s.cfg, taken[i], fmt.Errorf("record %s: %w", l.ID, err), s.log, s.stats)
			continue
		}
		s.take(one, taken[i:i+1], lines[i:i+1])
	}
}

// lineOf is the line of a tagged record's message: its data as it is
// when its publisher says that is the record's JSON as record.Marshal
// gives it (HeaderFingerprint) and sink.ParseLine finds it so, so it is
// not encoded again; otherwise (a message of an older version, or
// published by hand, or not what the header said) the record decoded and
// encoded.
func (s *sinkStage) lineOf(m jetstream.Msg) (sink.Line, error) {
	if fp := m.Headers().Get(HeaderFingerprint); fp != "" {
		if l, ok := s.own.take(m.Headers().Get(jetstream.MsgIDHeader), m.Data(), fp); ok {
			return l, nil
		}
		if l, err := sink.ParseLine(m.Data(), fp); err == nil {
			return l, nil
		}
	}
	var r record.Record
	if err := record.Unmarshal(m.Data(), &r); err != nil {
		return sink.Line{}, fmt.Errorf("not valid JSON: %w", err)
	}
	return sink.LineOf(&r)
}

// ownLines are the lines of the tagged records this process's fetch or
// classify stage published, kept for its sink stage, which then takes a
// message whose data is exactly such a line as it is: its record was
// encoded here, from a record, as sink.LineOf would, so decoding it again
// to check it (sink.ParseLine, 6 % of a run's CPU) would find what is
// kept. Only the latest ownLinesMax lines, and at most ownLinesMaxBytes,
// are kept: a message whose line is no longer kept, or that another
// process published, is checked as before.
type ownLines struct {
	mu    sync.Mutex
	lines map[string]sink.Line // by message id
	ids   []string             // the ids in the order kept, oldest first (some taken since)
	bytes int                  // the JSON of the lines kept
}

// ownLinesMax and ownLinesMaxBytes bound the lines kept: the sink takes
// them as soon as it pulls their messages, so only a sink far behind its
// fetch stage, or one whose messages another process's sink takes, finds
// one dropped.
const (
	ownLinesMax      = 2048
	ownLinesMaxBytes = 8 << 20
)

func newOwnLines() *ownLines {
	return &ownLines{lines: make(map[string]sink.Line)}
}

// keep keeps the line of r published as message msg (taggedOut's), when
// it is what sink.ParseLine would make of msg's data: a record of this
// schema with an id, with no string that is not valid UTF-8 (the encoder
// writes such bytes as \ufffd, so the record decoded from the line would
// not be r; a string holding that escape as text is passed over too).
func (o *ownLines) keep(msg *Out, r *record.Record) {
	if o == nil || r.ID == "" || r.Schema != record.Schema || bytes.Contains(msg.Data, []byte(`\ufffd`)) {
		return
	}
	l := sink.Line{ID: r.ID, Hub: r.Hub, Tags: sink.TagsOf(r), Fingerprint: msg.Header.Get(HeaderFingerprint), JSON: msg.Data}
	if l.Fingerprint == "" {
		return
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	o.drop(msg.MsgID) // kept before: the newer line
	o.lines[msg.MsgID] = l
	o.bytes += len(l.JSON)
	o.ids = append(o.ids, msg.MsgID)
	for len(o.ids) > ownLinesMax || o.bytes > ownLinesMaxBytes {
		o.drop(o.ids[0]) // the oldest goes
		o.ids = o.ids[1:]
	}
}

// drop forgets the line of message id, if kept. o.mu is held.
func (o *ownLines) drop(id string) {
	if l, ok := o.lines[id]; ok {
		o.bytes -= len(l.JSON)
		delete(o.lines, id)
	}
}

// take gives the kept line of message id once, if data is its JSON and
// fp its fingerprint.
func (o *ownLines) take(id string, data []byte, fp string) (sink.Line, bool) {
	if o == nil || id == "" {
		return sink.Line{}, false
	}
	o.mu.Lock()
	l, ok := o.lines[id]
	o.drop(id)
	o.mu.Unlock()
	if !ok || l.Fingerprint != fp || !bytes.Equal(l.JSON, data) {
		return sink.Line{}, false
	}
	l.JSON = data
	return l, true
}

// take holds messages the sink took (n of them new), to be acked at the
// next flush.
func (s *sinkStage) take(n int, msgs []jetstream.Msg, lines []sink.Line) {
	s.news += n
	if n > 0 && s.held == 0 {
		s.heldSince = time.Now()
	}
	s.held += n
	for _, m := range msgs {
		s.heldBytes += int64(len(m.Data()))
	}
	s.pending = append(s.pending, msgs...)
	s.lines = append(s.lines, lines...)
}

// flush seals what the sink holds and acks its messages. When the seal
// fails, its records are not written: their messages are retried, then
// dead-lettered with the reason, unless the output is unavailable, which
// holds them instead.
func (s *sinkStage) flush(ctx context.Context, confirm bool) {
	if len(s.pending) == 0 {
		return
	}
	s.held, s.heldBytes = 0, 0
	err := s.sink.Flush(ctx)
	switch {
	case errors.Is(err, sink.ErrUnavailable):
		s.outputDown(ctx, err)
	case err != nil:
		s.log.Error().Err(err).Int("records", len(s.pending)).Msg("sink flush failed; records will be redelivered")
		for _, m := range s.pending {
			failMsg(ctx, s.bus, "sink", s.cfg, m, fmt.Errorf("sealing its segment: %w", err), s.log, s.stats)
		}
		s.clear()
	default:
		s.done(ctx, confirm)
	}
}

// done counts and acks the messages of a successful flush.
func (s *sinkStage) done(ctx context.Context, confirm bool) {
	written := int64(s.news)
	if sc, ok := s.sink.(sink.SealCounter); ok {
		// What became visible: a record another writer of the same
		// folder wrote first is not counted twice.
		now := sc.Sealed()
		s.bus.metrics.SinkSealed(int(now.Segments-s.sealed.Segments), now.Bytes-s.sealed.Bytes)
		written = min(now.Records-s.sealed.Records, int64(len(s.pending)))
		s.sealed = now
	}
	s.stats.RecordsWritten.Add(written)
	s.stats.Duplicates.Add(int64(len(s.pending)) - written)
	s.bus.metrics.Processed(StageSink, len(s.pending))
	for _, m := range s.pending {
		if confirm {
			_ = m.DoubleAck(ctx)
		} else {
			_ = m.Ack()
		}
	}
	s.clear()
}

func (s *sinkStage) clear() {
	s.pending, s.lines, s.news = s.pending[:0], s.lines[:0], 0
	s.held, s.heldBytes = 0, 0
}

// outputDown starts (or continues) an outage: the held messages are kept
// in progress until the output comes back or the wait runs out.
func (s *sinkStage) outputDown(ctx context.Context, err error) {
	// Whatever the sink holds unsealed is lost with the broken segment;
	// flushing now drops it (and seals other hubs' segments that can be).
	_ = s.sink.Flush(ctx)
	if s.down != nil {
		s.down.err = err
		return
	}
	every := min(max(s.timeout/10, 100*time.Millisecond), 5*time.Second)
	now := time.Now()
	s.down = &outage{err: err, since: now, probeEvery: every, nextProbe: now.Add(every),
		stopBeat: heartbeat(slices.Clone(s.pending), s.cfg.AckWait)}
	s.bus.metrics.SinkUnavailable(true)
	s.hold.pause()
	s.warn()
}

// warn says the output is unavailable, at most once a minute.
func (s *sinkStage) warn() {
	d := s.down
	if time.Since(d.warned) < time.Minute {
		return
	}
	d.warned = time.Now()
	msg := d.err.Error()
	var u *sink.UnavailableError
	if errors.As(d.err, &u) {
		msg = u.Error()
	}
	s.log.Warn().Int("records_held", len(s.pending)).Dur("waiting", time.Since(d.since).Round(time.Second)).
		Dur("gives_up_after", s.timeout).Msg(msg)
}

// waitForOutput waits for the next probe of an unavailable output and
// tries it; after sink.unavailable_timeout it hands the messages back and
// returns the condition as an error.
func (s *sinkStage) waitForOutput(ctx context.Context) error {
	d := s.down
	if time.Since(d.since) >= s.timeout {
		n := len(s.pending)
		err := fmt.Errorf("%w: still so after %s (sink.unavailable_timeout); the %d records held and any not yet pulled stay in the stream for the next run", d.err, s.timeout, n)
		s.log.Error().Err(d.err).Int("records", n).Dur("waited", s.timeout).Msg("output still unavailable; giving up, the records stay in the stream")
		s.handBack("giving up")
		return err
	}
	pause(ctx, time.Until(d.nextProbe))
	if ctx.Err() != nil {
		return nil
	}
	d.nextProbe = time.Now().Add(d.probeEvery)
	if err := s.retryOutput(ctx); err != nil {
		if errors.Is(err, sink.ErrUnavailable) {
			s.stats.OutputProbes.Add(1)
		}
		s.warn()
	}
	return nil
}

// retryOutput gives the held records to the sink again and flushes them.
// It ends the outage when that works; another kind of failure fails the
// messages as a failed flush would.
func (s *sinkStage) retryOutput(ctx context.Context) error {
	n, err := s.sink.WriteLines(ctx, s.lines)
	if err == nil {
		err = s.sink.Flush(ctx)
	}
	if errors.Is(err, sink.ErrUnavailable) {
		s.outputDown(ctx, err)
		return err
	}
	s.up()
	if err != nil {
		s.log.Error().Err(err).Int("records", len(s.pending)).Msg("sink failed once the output came back; records will be redelivered")
		for _, m := range s.pending {
			failMsg(ctx, s.bus, "sink", s.cfg, m, fmt.Errorf("writing its record: %w", err), s.log, s.stats)
		}
		s.clear()
		return nil
	}
	s.news = n
	s.log.Warn().Int("records", len(s.pending)).Msg("output available again; records written")
	s.done(ctx, false)
	return nil
}

// up ends an outage: the output takes records again.
func (s *sinkStage) up() {
	if s.down == nil {
		return
	}
	s.down.stopBeat()
	s.down = nil
	s.bus.metrics.SinkUnavailable(false)
	s.hold.release()
}

// handBack returns the held messages to the stream, unacked and not
// failed, for the next run (or another sink worker) to write. The other
// stages stay paused: the process is stopping, and work they took up now
// would only be cut off.
func (s *sinkStage) handBack(why string) {
	if s.down != nil {
		s.down.stopBeat()
		s.down = nil
	}
	s.log.Info().Int("records", len(s.pending)).Str("why", why).Msg("handing unwritten records back to the stream")
	for _, m := range s.pending {
		nakNow(s.bus.NC, m)
	}
	s.clear()
}
