package pipeline

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/citecrawl/citecrawl/record"
)

// publishTagged publishes recs as tagged records, every other one as its
// fetch stage would have.
func publishTagged(t *testing.T, bus *Bus, recs ...record.Record) {
	t.Helper()
	var outs []Out
	for i, r := range recs {
		b, _ := json.Marshal(r)
		// Both kinds: tagged by the classify stage, and by the fetch stage.
		subject := TaggedSubject(r.Hub.ID)
		if i%2 == 1 {
			subject = SelfTaggedSubject(r.Hub.ID)
		}
		outs = append(outs, Out{Subject: subject, MsgID: r.ID + ":" + r.Fingerprint(), Data: b})
	}
	if err := bus.PublishAll(context.Background(), outs); err != nil {
		t.Fatal(err)
	}
}

func taggedRecord(hub string, i int, role string) record.Record {
	return record.Record{Schema: record.Schema, ID: fmt.Sprintf("%s-%d", hub, i), Hub: record.Hub{ID: hub},
		Paper: record.Paper{Title: fmt.Sprint("paper ", i)}, Role: role, Polarity: record.PolarityNeutral,
		Pluralism: &record.Pluralism{Primary: record.PluralismNone}}
}

// tailer runs Tail in the background and collects what it prints.
type tailer struct {
	mu   sync.Mutex
	ids  []string
	done chan error
	stop context.CancelFunc
}

func startTail(t *testing.T, bus *Bus, o TailOptions) *tailer {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	tl := &tailer{done: make(chan error, 1), stop: cancel}
	ready := make(chan struct{})
	o.Ready = func() { close(ready) }
	go func() {
		tl.done <- Tail(ctx, bus, o, func(r *record.Record) error {
			tl.mu.Lock()
			tl.ids = append(tl.ids, r.ID)
			tl.mu.Unlock()
			return nil
		})
	}()
	select {
	case <-ready:
	case err := <-tl.done:
		t.Fatal(err)
	}
	return tl
}

func (tl *tailer) waitFor(t *testing.T, n int) []string {
	t.Helper()
	checkFor(t, 10*time.Second, func() error {
		tl.mu.Lock()
		defer tl.mu.Unlock()
		if len(tl.ids) < n {
			return fmt.Errorf("%d of %d records", len(tl.ids), n)
		}
		return nil
	})
	tl.stop()
	if err := <-tl.done; err != nil {
		t.Fatal(err)
	}
	return tl.ids
}

func TestTailSeesNewRecordsWithFilters(t *testing.T) {
	cfg := testConfig(t, t.TempDir(), nil)
	bus := openBus(t, cfg)
	defer bus.Close()
	publishTagged(t, bus, taggedRecord("h1", 0, record.RoleUses)) // before the tail: not shown
	tl := startTail(t, bus, TailOptions{Hub: "h1", Role: record.RoleUses})
	publishTagged(t, bus,
		taggedRecord("h1", 1, record.RoleUses), taggedRecord("h1", 2, record.RoleBackground),
		taggedRecord("h2", 3, record.RoleUses), taggedRecord("h1", 4, record.RoleUses))
	ids := tl.waitFor(t, 2)
	if fmt.Sprint(ids) != "[h1-1 h1-4]" {
		t.Fatalf("tail printed %v, want [h1-1 h1-4]", ids)
	}
}

func TestTailDurableResumes(t *testing.T) {
	cfg := testConfig(t, t.TempDir(), nil)
	bus := openBus(t, cfg)
	defer bus.Close()
	// Published together, so both subject kinds are among them.
	publishTagged(t, bus, taggedRecord("h", 0, record.RoleUses), taggedRecord("h", 1, record.RoleUses),
		taggedRecord("h", 2, record.RoleUses), taggedRecord("h", 3, record.RoleUses), taggedRecord("h", 4, record.RoleUses))
	first := startTail(t, bus, TailOptions{All: true, Durable: "reader"}).waitFor(t, 5)
	publishTagged(t, bus, taggedRecord("h", 5, record.RoleUses), taggedRecord("h", 6, record.RoleUses), taggedRecord("h", 7, record.RoleUses))
	second := startTail(t, bus, TailOptions{All: true, Durable: "reader"}).waitFor(t, 3)
	if fmt.Sprint(first) != "[h-0 h-1 h-2 h-3 h-4]" || fmt.Sprint(second) != "[h-5 h-6 h-7]" {
		t.Fatalf("first %v, second %v: a durable tail must neither repeat nor skip", first, second)
	}
}

// A durable tail of one hub made by a version before self-tagged records
// (its one filter citecrawl.tagged.<hub>) gets them too once tailed again.
func TestTailDurableOfAnOlderVersionGetsSelfTaggedRecords(t *testing.T) {
	cfg := testConfig(t, t.TempDir(), nil)
	bus := openBus(t, cfg)
	defer bus.Close()
	if _, err := bus.JS.CreateConsumer(context.Background(), StreamTagged, jetstream.ConsumerConfig{
		Durable: "old", FilterSubject: TaggedSubject("h1"), AckPolicy: jetstream.AckExplicitPolicy,
	}); err != nil {
		t.Fatal(err)
	}
	tl := startTail(t, bus, TailOptions{Hub: "h1", All: true, Durable: "old"})
	publishTagged(t, bus, taggedRecord("h1", 1, record.RoleUses), taggedRecord("h1", 2, record.RoleUses)) // the second self-tagged
	if ids := tl.waitFor(t, 2); fmt.Sprint(ids) != "[h1-1 h1-2]" {
		t.Fatalf("tail printed %v", ids)
	}
}

func TestTailSince(t *testing.T) {
	cfg := testConfig(t, t.TempDir(), nil)
	bus := openBus(t, cfg)
	defer bus.Close()
	publishTagged(t, bus, taggedRecord("h", 0, record.RoleUses))
	since := time.Now() // records stored from now on
	publishTagged(t, bus, taggedRecord("h", 1, record.RoleUses))
	ids := startTail(t, bus, TailOptions{Since: since}).waitFor(t, 1)
	if fmt.Sprint(ids) != "[h-1]" {
		t.Fatalf("since: %v", ids)
	}
}

func TestTailMinConfidence(t *testing.T) {
	sure := record.Record{Role: record.RoleUses, RoleConfidence: 0.9, Polarity: record.PolarityNeutral, PolarityConfidence: 0.8}
	unsure := sure
	unsure.PolarityConfidence = 0.4
	o := TailOptions{MinConfidence: 0.5}
	if !o.match(&sure) || o.match(&unsure) {
		t.Fatalf("--min-confidence 0.5: sure %v, unsure %v", o.match(&sure), o.match(&unsure))
	}
}
