package pipeline

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/citecrawl/citecrawl/record"
)

// The sink stage flushes when the sink's Batching asks (here a segment
// older than segment_max_age), not only when its input goes quiet: records
// trickling in faster than the idle wait are still sealed, well before the
// input could look quiet.
func TestSinkStageFlushesWhenTheSinkAsks(t *testing.T) {
	cfg := testConfig(t, t.TempDir(), nil)
	cfg.Sink.SegmentMaxAge = 200 * time.Millisecond
	bus := openBus(t, cfg)
	defer bus.Close()
	env := testEnv()
	env.Idle = 30 * time.Second // the input never goes quiet for this long
	w, err := StartStages(context.Background(), bus, cfg, []string{StageSink}, env)
	if err != nil {
		t.Fatal(err)
	}
	// Keep records coming until the stage has stopped, so that no pull
	// waits out the idle time.
	done := make(chan struct{})
	trickled := make(chan struct{})
	go func() {
		defer close(trickled)
		for i := 0; ; i++ {
			select {
			case <-done:
				return
			case <-time.After(20 * time.Millisecond):
			}
			r := taggedRecord("hub-x", i, record.RoleBackground)
			b, _ := json.Marshal(r)
			// An error shows as records never sealed below.
			_ = bus.PublishAll(context.Background(), []Out{{Subject: TaggedSubject(r.Hub.ID), MsgID: r.ID, Data: b}})
		}
	}()
	// Without the sink's limit, nothing would be sealed before 1,024
	// records waited (maxAckPending/2), some 20 s of this trickle.
	checkFor(t, 10*time.Second, func() error {
		if n := len(readOut(t, cfg.Sink.Out)); n == 0 {
			return fmt.Errorf("no record sealed while records keep coming (written %d)", env.Stats.RecordsWritten.Load())
		}
		return nil
	})
	if err := w.Stop(); err != nil {
		t.Error(err)
	}
	close(done)
	<-trickled
}

// A record the sink cannot write (its hub's folder is taken by a file)
// fails alone: the records pulled with it are written, and it is retried
// and then dead-lettered with the reason.
func TestSinkStageFailsOnlyTheRecordItCannotWrite(t *testing.T) {
	cfg := testConfig(t, t.TempDir(), nil)
	bus := openBus(t, cfg)
	defer bus.Close()
	if err := os.MkdirAll(cfg.Sink.Out, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(cfg.Sink.Out, "hub-bad"), []byte("not a folder"), 0o644); err != nil {
		t.Fatal(err)
	}
	var recs []record.Record
	for i := range 3 {
		recs = append(recs, taggedRecord("hub-ok", i, record.RoleUses))
	}
	recs = append(recs, taggedRecord("hub-bad", 0, record.RoleUses))
	publishTagged(t, bus, recs...)
	ctx := context.Background()
	env := testEnv()
	w, err := StartStages(ctx, bus, cfg, []string{StageSink}, env)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	checkFor(t, 20*time.Second, func() error {
		dl, err := ReadDeadLetters(ctx, bus, 0)
		if err != nil {
			return err
		}
		if len(dl) != 1 || !strings.Contains(dl[0].Error, "hub-bad-0") || dl[0].Stage != StageSink {
			return fmt.Errorf("dead letters %+v", dl)
		}
		if n := len(readOut(t, cfg.Sink.Out)); n != 3 {
			return fmt.Errorf("%d records visible, want the 3 of hub-ok", n)
		}
		// Counted once sealed, just after they became visible.
		if w, d := env.Stats.RecordsWritten.Load(), env.Stats.Duplicates.Load(); w != 3 || d != 0 {
			return fmt.Errorf("stats: %d written, %d already written; want 3 and 0", w, d)
		}
		return nil
	})
	assertEachOnce(t, readOut(t, cfg.Sink.Out), 3)
}
