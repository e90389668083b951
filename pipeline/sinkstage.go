package pipeline

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/citecrawl/citecrawl/ingest"
	"github.com/citecrawl/citecrawl/record"
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
}

func (s *sinkStage) run(ctx context.Context) error {
	batching := s.sink.Batching()
	for ctx.Err() == nil {
		msgs := pull(ctx, s.consumer, s.batch, s.idle, s.log)
		for _, m := range msgs {
			s.write(ctx, m)
		}
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

func (s *sinkStage) write(ctx context.Context, m jetstream.Msg) {
	var r record.Record
	if err := json.Unmarshal(m.Data(), &r); err != nil {
		failMsg(ctx, s.bus, "sink", s.cfg, m, ingest.Permanent(fmt.Errorf("tagged record on %s is not valid JSON: %w", m.Subject(), err)), s.log, s.stats)
		return
	}
	wrote, err := s.sink.Write(ctx, &r)
	if err != nil {
		failMsg(ctx, s.bus, "sink", s.cfg, m, fmt.Errorf("record %s: %w", r.ID, err), s.log, s.stats)
		return
	}
	if wrote {
		s.stats.RecordsWritten.Add(1)
		if s.held == 0 {
			s.heldSince = time.Now()
		}
		s.held++
		s.heldBytes += int64(len(m.Data()))
	} else {
		s.stats.Duplicates.Add(1)
	}
	s.pending = append(s.pending, m)
}

func (s *sinkStage) flush(ctx context.Context, confirm bool) {
	if len(s.pending) == 0 {
		return
	}
	s.held, s.heldBytes = 0, 0
	if err := s.sink.Flush(ctx); err != nil {
		s.log.Error().Err(err).Int("records", len(s.pending)).Msg("sink flush failed; records will be redelivered")
		for _, m := range s.pending {
			_ = m.NakWithDelay(s.cfg.backoff(1))
		}
	} else {
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
