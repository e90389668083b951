package pipeline

import (
	"context"
	"encoding/json"
	"fmt"
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
type sinkStage struct {
	consumer jetstream.Consumer
	sink     sink.Sink
	batch    int
	idle     time.Duration
	bus      *Bus
	cfg      StageConfig
	log      zerolog.Logger
	stats    *Stats
	pending  []jetstream.Msg
	// What was written since the last flush, for the sink's Batching.
	held      int
	heldBytes int64
	heldSince time.Time
	sealed    sink.Sealed // what the sink had sealed at the last flush, for the metrics
}

func (s *sinkStage) run(ctx context.Context) error {
	batching := s.sink.Batching()
	for ctx.Err() == nil {
		msgs := pull(ctx, s.consumer, s.batch, s.idle, s.log)
		s.write(ctx, msgs)
		// Flush when the sink asks for it (a full or old segment), when
		// the consumer nears its limit of unacked messages, or when the
		// stream has gone quiet, so that a run ends with everything visible.
		if len(s.pending) > 0 && (len(msgs) == 0 || len(s.pending) >= s.cfg.maxAckPending()/2 ||
			batching.Due(s.held, s.heldBytes, time.Since(s.heldSince))) {
			s.flush(ctx, false)
		}
	}
	// Shutting down: seal what was written and wait for the acks to be
	// confirmed, so it is not redone on the next start.
	s.flush(context.Background(), true)
	return s.sink.Close(context.Background())
}

// write decodes a batch of messages and hands their records to the sink
// at once. If the sink fails, the records are given one by one so that
// only the failing ones are retried.
func (s *sinkStage) write(ctx context.Context, msgs []jetstream.Msg) {
	var recs []*record.Record
	var decoded []jetstream.Msg
	for _, m := range msgs {
		r := &record.Record{}
		if err := json.Unmarshal(m.Data(), r); err != nil {
			failMsg(ctx, s.bus, "sink", s.cfg, m, retry.Permanentf("tagged record on %s is not valid JSON: %w", m.Subject(), err), s.log, s.stats)
			continue
		}
		recs, decoded = append(recs, r), append(decoded, m)
	}
	if len(recs) == 0 {
		return
	}
	n, err := s.sink.Write(ctx, recs)
	if err == nil {
		s.written(n, decoded)
		return
	}
	// Those written before the error come back as already written.
	var taken []jetstream.Msg
	for i, r := range recs {
		one, err := s.sink.Write(ctx, recs[i:i+1])
		if err != nil {
			failMsg(ctx, s.bus, "sink", s.cfg, decoded[i], fmt.Errorf("record %s: %w", r.ID, err), s.log, s.stats)
			continue
		}
		n += one
		taken = append(taken, decoded[i])
	}
	s.written(n, taken)
}

// written counts what the sink took: n new records out of msgs, which are
// acked at the next flush.
func (s *sinkStage) written(n int, msgs []jetstream.Msg) {
	s.stats.RecordsWritten.Add(int64(n))
	s.stats.Duplicates.Add(int64(len(msgs) - n))
	if n > 0 && s.held == 0 {
		s.heldSince = time.Now()
	}
	s.held += n
	for _, m := range msgs {
		s.heldBytes += int64(len(m.Data()))
	}
	s.pending = append(s.pending, msgs...)
}

func (s *sinkStage) flush(ctx context.Context, confirm bool) {
	if len(s.pending) == 0 {
		return
	}
	s.held, s.heldBytes = 0, 0
	if err := s.sink.Flush(ctx); err != nil {
		s.log.Error().Err(err).Int("records", len(s.pending)).Msg("sink flush failed; records will be redelivered")
		for _, m := range s.pending {
			_ = m.NakWithDelay(s.cfg.Policy().Delay(1))
		}
	} else {
		if sc, ok := s.sink.(sink.SealCounter); ok {
			now := sc.Sealed()
			s.bus.metrics.SinkSealed(int(now.Segments-s.sealed.Segments), now.Bytes-s.sealed.Bytes)
			s.sealed = now
		}
		s.bus.metrics.Processed(StageSink, len(s.pending))
		for _, m := range s.pending {
			if confirm {
				_ = m.DoubleAck(ctx)
			} else {
				_ = m.Ack()
			}
		}
	}
	s.pending = s.pending[:0]
}
