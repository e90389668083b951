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
	// New records among pending, for the metrics: their bytes, and their
	// hubs (the sink seals a segment per hub folder).
	newBytes int64
	newHubs  map[string]bool
}

func (s *sinkStage) run(ctx context.Context) error {
	for ctx.Err() == nil {
		msgs := pull(ctx, s.consumer, s.batch, s.idle, s.log)
		for _, m := range msgs {
			s.write(ctx, m)
		}
		// Seal when the segment is full or old, or when the stream has
		// gone quiet, so that a run ends with everything visible.
		if len(s.pending) > 0 && (len(msgs) == 0 || len(s.pending) >= s.cfg.maxAckPending()/2 || s.sink.ShouldFlush()) {
			s.flush(ctx, false)
		}
	}
	// Shutting down: seal what was written and wait for the acks to be
	// confirmed, so it is not redone on the next start.
	s.flush(context.Background(), true)
	return s.sink.Close()
}

func (s *sinkStage) write(ctx context.Context, m jetstream.Msg) {
	var r record.Record
	if err := json.Unmarshal(m.Data(), &r); err != nil {
		failMsg(ctx, s.bus, "sink", s.cfg, m, retry.Permanentf("tagged record on %s is not valid JSON: %w", m.Subject(), err), s.log, s.stats)
		return
	}
	wrote, err := s.sink.Write(&r)
	if err != nil {
		failMsg(ctx, s.bus, "sink", s.cfg, m, fmt.Errorf("record %s: %w", r.ID, err), s.log, s.stats)
		return
	}
	if wrote {
		s.stats.RecordsWritten.Add(1)
		s.newBytes += int64(len(m.Data())) + 1 // the record's JSON line
		if s.newHubs == nil {
			s.newHubs = map[string]bool{}
		}
		s.newHubs[r.Hub.ID] = true
	} else {
		s.stats.Duplicates.Add(1)
	}
	s.pending = append(s.pending, m)
}

func (s *sinkStage) flush(ctx context.Context, confirm bool) {
	if len(s.pending) == 0 {
		return
	}
	if err := s.sink.Flush(); err != nil {
		s.log.Error().Err(err).Int("records", len(s.pending)).Msg("sink flush failed; records will be redelivered")
		for _, m := range s.pending {
			_ = m.NakWithDelay(s.cfg.Policy().Delay(1))
		}
	} else {
		s.bus.metrics.SinkSealed(len(s.newHubs), s.newBytes)
		s.bus.metrics.Processed(StageSink, len(s.pending))
		for _, m := range s.pending {
			if confirm {
				_ = m.DoubleAck(ctx)
			} else {
				_ = m.Ack()
			}
		}
	}
	s.pending, s.newBytes = s.pending[:0], 0
	clear(s.newHubs)
}
