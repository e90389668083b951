package pipeline

import (
	"context"
	"encoding/json"
	"fmt"
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
