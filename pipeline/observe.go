package pipeline

import (
	"context"
	"fmt"
	"os"
	"slices"

	"github.com/citecrawl/citecrawl/metrics"
)

// Instrument makes the stages on b count what they do in m: messages per
// stage, fetches, publish times, sealed segments, the lease; and reports
// the stage consumers' pending messages at every scrape.
func (b *Bus) Instrument(m *metrics.Metrics, cfg Config) {
	b.metrics = m
	m.WatchConsumers(func(ctx context.Context) ([]metrics.ConsumerState, error) {
		var out []metrics.ConsumerState
		for _, c := range stageConsumers(cfg, AllStages) {
			info, err := consumerInfo(ctx, b, c.stream, c.consumer)
			if err != nil {
				continue // not created yet, or being elected: left out of this scrape
			}
			out = append(out, metrics.ConsumerState{Stream: c.stream, Consumer: c.consumer,
				Pending: info.NumPending, AckPending: info.NumAckPending})
		}
		return out, nil
	})
}

type stageConsumer struct{ stage, stream, consumer string }

// stageConsumers are the durable consumers of the named stages.
func stageConsumers(cfg Config, stages []string) []stageConsumer {
	var out []stageConsumer
	for _, c := range []stageConsumer{
		{StageFetch, StreamTasks, ConsumerFetch},
		{StageClassify, StreamRaw, ConsumerClassify},
		{StageSink, StreamTagged, cfg.Stages.SinkDurable},
	} {
		if slices.Contains(stages, c.stage) {
			out = append(out, c)
		}
	}
	return out
}

// Ready is the readiness check of a process: connected to NATS, the
// consumers of the stages it runs exist on the server, and, when it writes
// output here, the output folder takes a new file. (A scheduler between
// runs has no stages running: it passes none.)
func Ready(bus *Bus, cfg Config, stages []string, writesOutput bool) func(ctx context.Context) error {
	return func(ctx context.Context) error {
		if !bus.NC.IsConnected() {
			return fmt.Errorf("not connected to NATS (%s)", bus.NC.Status())
		}
		for _, c := range stageConsumers(cfg, stages) {
			if _, err := consumerInfo(ctx, bus, c.stream, c.consumer); err != nil {
				return fmt.Errorf("stage %s: %w", c.stage, err)
			}
		}
		if writesOutput && bus.metrics.SinkIsUnavailable() {
			return fmt.Errorf("output %s is full or read-only: records are held until it takes them", cfg.Sink.Out)
		}
		if writesOutput && cfg.Sink.Out != "-" {
			if err := writable(cfg.Sink.Out); err != nil {
				return err
			}
		}
		return nil
	}
}

// writable tries a file in dir, making dir as the sink would.
func writable(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("output folder %s cannot be made: %w", dir, err)
	}
	f, err := os.CreateTemp(dir, ".readyz-*")
	if err != nil {
		return fmt.Errorf("output folder %s is not writable: %w", dir, err)
	}
	name := f.Name()
	f.Close()
	return os.Remove(name)
}
