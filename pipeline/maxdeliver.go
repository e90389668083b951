package pipeline

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"
)

// maxDeliveriesAdvisory is what the server publishes when a message has
// been delivered max_deliver times without an answer: its last worker died
// or timed out, so no handler could park it.
type maxDeliveriesAdvisory struct {
	Stream     string `json:"stream"`
	Consumer   string `json:"consumer"`
	StreamSeq  uint64 `json:"stream_seq"`
	Deliveries uint64 `json:"deliveries"`
}

// parkUnanswered listens for the consumer's max-deliveries advisories and
// parks each such message on the stage's dead-letter subject, so nothing
// is lost silently even when the worker holding it was killed. Several
// workers may do this at once: the dead letter's message id is the same
// as failMsg's, so it is stored once.
func parkUnanswered(bus *Bus, stageName, stream, consumer string, log zerolog.Logger, stats *Stats) (func(), error) {
	subject := "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES." + stream + "." + consumer
	sub, err := bus.NC.Subscribe(subject, func(m *nats.Msg) {
		var a maxDeliveriesAdvisory
		if err := json.Unmarshal(m.Data, &a); err != nil {
			log.Warn().Err(err).Msg("unreadable max-deliveries advisory")
			return
		}
		ctx := context.Background()
		if err := bus.parkBySeq(ctx, stageName, a); err != nil {
			log.Error().Err(err).Uint64("seq", a.StreamSeq).Msg("could not park an unanswered message")
			return
		}
		stats.DeadLetters.Add(1)
		bus.metrics.DeadLettered(stageName)
		log.Warn().Str("stream", a.Stream).Uint64("seq", a.StreamSeq).Uint64("deliveries", a.Deliveries).Msg("parked a message no worker answered")
	})
	if err != nil {
		return nil, fmt.Errorf("watching %s: %w", subject, err)
	}
	return func() { _ = sub.Unsubscribe() }, nil
}

func (b *Bus) parkBySeq(ctx context.Context, stageName string, a maxDeliveriesAdvisory) error {
	s, err := b.JS.Stream(ctx, a.Stream)
	if err != nil {
		return err
	}
	m, err := s.GetMsg(ctx, a.StreamSeq)
	if err != nil {
		return fmt.Errorf("reading %s sequence %d: %w", a.Stream, a.StreamSeq, err)
	}
	return b.park(ctx, deadLetter{
		stage: stageName, subject: m.Subject, data: m.Data, header: m.Header, stream: a.Stream, seq: a.StreamSeq, deliveries: a.Deliveries,
		reason: "delivered " + strconv.FormatUint(a.Deliveries, 10) + " times without an answer (its worker died or timed out)",
	})
}
