package pipeline

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/citecrawl/citecrawl/record"
)

// TailOptions choose which tagged records Tail delivers.
type TailOptions struct {
	Hub       string    // hub id; empty: all hubs
	Role      string    // only records with this role
	Polarity  string    // ... this polarity
	Pluralism string    // ... this primary pluralism category
	Since     time.Time // start at records stored from this time
	All       bool      // start at the first record stored
	// Durable names a consumer that remembers where it stopped: tailing
	// again with the same name resumes there, neither repeating nor
	// skipping. Without it, tail starts at new records (or Since / All).
	Durable string
	// Ready is called once the consumer exists: records published after it
	// are delivered.
	Ready func()
	// MinConfidence: only records whose role, polarity and pluralism are
	// each at least this confident.
	MinConfidence float64
}

func (o TailOptions) match(r *record.Record) bool {
	if o.Role != "" && r.Role != o.Role || o.Polarity != "" && r.Polarity != o.Polarity {
		return false
	}
	if o.Pluralism != "" && (r.Pluralism == nil || r.Pluralism.Primary != o.Pluralism) {
		return false
	}
	return len(r.Under(o.MinConfidence)) == 0
}

func (o TailOptions) deliver() (jetstream.DeliverPolicy, *time.Time) {
	switch {
	case !o.Since.IsZero():
		t := o.Since
		return jetstream.DeliverByStartTimePolicy, &t
	case o.All:
		return jetstream.DeliverAllPolicy, nil
	default:
		return jetstream.DeliverNewPolicy, nil
	}
}

// Tail calls fn for every tagged record as it arrives, until ctx ends.
func Tail(ctx context.Context, bus *Bus, o TailOptions, fn func(*record.Record) error) error {
	filters := []string{subjectTagged + ">"}
	if o.Hub != "" {
		filters = hubTagged(o.Hub)
	}
	policy, start := o.deliver()
	var cons jetstream.Consumer
	var err error
	if o.Durable != "" {
		cons, err = bus.JS.Consumer(ctx, StreamTagged, o.Durable)
		if err == nil {
			cons, err = refilter(ctx, bus, cons, filters)
		}
		if errors.Is(err, jetstream.ErrConsumerNotFound) {
			cons, err = bus.JS.CreateConsumer(ctx, StreamTagged, jetstream.ConsumerConfig{
				Durable: o.Durable, FilterSubjects: filters, DeliverPolicy: policy, OptStartTime: start,
				AckPolicy: jetstream.AckExplicitPolicy, Description: "citecrawl tail",
			})
		}
	} else {
		cons, err = bus.JS.OrderedConsumer(ctx, StreamTagged, jetstream.OrderedConsumerConfig{
			FilterSubjects: filters, DeliverPolicy: policy, OptStartTime: start,
		})
	}
	if err != nil {
		return fmt.Errorf("tail consumer: %w", err)
	}
	it, err := cons.Messages()
	if err != nil {
		return fmt.Errorf("tail: %w", err)
	}
	defer it.Stop()
	stop := context.AfterFunc(ctx, it.Stop)
	defer stop()
	if o.Ready != nil {
		o.Ready()
	}
	for {
		m, err := it.Next()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, jetstream.ErrMsgIteratorClosed) {
				return nil
			}
			return fmt.Errorf("tail: %w", err)
		}
		var r record.Record
		if err := record.Unmarshal(m.Data(), &r); err != nil {
			return fmt.Errorf("tail: record on %s is not valid JSON: %w", m.Subject(), err)
		}
		if o.match(&r) {
			if err := fn(&r); err != nil {
				return err
			}
		}
		if o.Durable != "" {
			// Confirmed, so a tail stopped right after does not see it again.
			if err := m.DoubleAck(ctx); err != nil && ctx.Err() == nil {
				return fmt.Errorf("tail: ack: %w", err)
			}
		}
	}
}

// refilter gives an existing durable the filters this tail asks for. A
// durable made before self-tagged records existed follows only
// citecrawl.tagged.<hub> and would miss the hub's .self.* subjects; the
// filters can change, the position is kept.
func refilter(ctx context.Context, bus *Bus, cons jetstream.Consumer, filters []string) (jetstream.Consumer, error) {
	cfg := cons.CachedInfo().Config
	have := cfg.FilterSubjects
	if cfg.FilterSubject != "" {
		have = []string{cfg.FilterSubject}
	}
	if slices.Equal(have, filters) {
		return cons, nil
	}
	cfg.FilterSubject, cfg.FilterSubjects = "", filters
	updated, err := bus.JS.UpdateConsumer(ctx, StreamTagged, cfg)
	if err != nil {
		return nil, fmt.Errorf("durable %s: its filters %v, not %v: %w", cfg.Durable, have, filters, err)
	}
	return updated, nil
}
