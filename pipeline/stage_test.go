package pipeline

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
)

// A pull gives what the consumer has at once, up to its batch, without
// waiting for the batch to fill; with nothing there it waits for the
// first message to come, and gives none when none came by its idle time.
// Other workers' waiting pulls that ask for more than there is do not
// make it fail: it waits its turn for one message.
func TestPullTakesWhatThereIsOrWaitsForOne(t *testing.T) {
	cfg := testConfig(t, t.TempDir(), nil)
	bus := openBus(t, cfg)
	defer bus.Close()
	ctx := context.Background()
	cons, err := bus.Consumer(ctx, StreamTasks, ConsumerFetch, "", cfg.Stages)
	if err != nil {
		t.Fatal(err)
	}
	newP := func() *puller {
		p, err := newPuller(bus.NC, cons, zerolog.Nop())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(p.close)
		return p
	}
	p := newP()
	queue := func(n int) {
		t.Helper()
		var outs []Out
		for range n {
			o, err := HubTask(fmt.Sprint("run-", time.Now().UnixNano()), "https://pith.science/citations/0000aaaa-0000", 0, "")
			if err != nil {
				t.Fatal(err)
			}
			outs = append(outs, o)
		}
		if err := bus.PublishAll(ctx, outs); err != nil {
			t.Fatal(err)
		}
	}
	ack := func(msgs []jetstream.Msg) {
		for _, m := range msgs {
			if err := m.DoubleAck(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	if msgs, err := p.nextBatch(10, 100*time.Millisecond); err != nil || len(msgs) != 0 {
		t.Fatalf("empty queue: %d messages, %v", len(msgs), err)
	}
	queue(3)
	// An idle time far longer than the test's deadline: a pull that
	// waited for its batch to fill would be seen waiting.
	got := make(chan []jetstream.Msg, 1)
	go func() {
		msgs, err := p.nextBatch(10, time.Hour)
		if err != nil {
			t.Error(err)
		}
		got <- msgs
	}()
	select {
	case msgs := <-got:
		if len(msgs) != 3 {
			t.Fatalf("%d messages, want the 3 there", len(msgs))
		}
		if meta, err := msgs[0].Metadata(); err != nil || meta.Stream != StreamTasks || meta.NumDelivered != 1 {
			t.Fatalf("metadata %+v, %v", meta, err)
		}
		ack(msgs)
	case <-time.After(20 * time.Second):
		t.Fatal("a pull waited with 3 messages there")
	}
	// Nothing there: the pull waits for the first message.
	go func() {
		msgs, err := p.nextBatch(10, time.Hour)
		if err != nil {
			t.Error(err)
		}
		got <- msgs
	}()
	checkFor(t, 20*time.Second, func() error {
		if info, err := cons.Info(ctx); err != nil || info.NumWaiting == 0 {
			return fmt.Errorf("no pull waiting (%v)", err)
		}
		return nil
	})
	queue(1)
	select {
	case msgs := <-got:
		if len(msgs) != 1 {
			t.Fatalf("%d messages, want the 1 that came", len(msgs))
		}
		ack(msgs)
	case <-time.After(20 * time.Second):
		t.Fatal("a waiting pull did not give the message that came")
	}
	// A consumer at its limit of unacked messages delivers none: a pull
	// that finds other workers' waiting pulls asking for more than there
	// is ("Requests Pending") waits its turn for one message rather than
	// coming back at once, which would make its worker pull again and
	// again until a message is acked.
	if _, err := bus.JS.CreateStream(ctx, jetstream.StreamConfig{Name: "PULLTEST", Subjects: []string{"pulltest.>"}}); err != nil {
		t.Fatal(err)
	}
	limited, err := bus.JS.CreateOrUpdateConsumer(ctx, "PULLTEST", jetstream.ConsumerConfig{Durable: "limited",
		AckPolicy: jetstream.AckExplicitPolicy, MaxAckPending: 1})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		if _, err := bus.JS.Publish(ctx, "pulltest.x", []byte{byte('a' + i)}); err != nil {
			t.Fatal(err)
		}
	}
	pulls := make([]*puller, 3)
	for i := range pulls {
		if pulls[i], err = newPuller(bus.NC, limited, zerolog.Nop()); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(pulls[i].close)
	}
	first, err := pulls[0].nextBatch(1, time.Second)
	if err != nil || len(first) != 1 {
		t.Fatalf("%d messages, %v", len(first), err)
	}
	waiting := func(n int) func() error {
		return func() error {
			if info, err := limited.Info(ctx); err != nil || info.NumWaiting != n {
				return fmt.Errorf("%d pulls waiting, want %d (%v)", info.NumWaiting, n, err)
			}
			return nil
		}
	}
	// The second pull waits as asked (no_wait: it ends once it has had
	// what there is); the third, refused, waits for one. A pull that had
	// a message waits out its idle time here, the consumer being at its
	// limit again.
	for i, p := range pulls[1:] {
		go func() {
			msgs, err := p.nextBatch(5, 5*time.Second)
			if err != nil {
				t.Error(err)
			}
			got <- msgs
		}()
		checkFor(t, 20*time.Second, waiting(i+1))
	}
	ack(first)
	var n int
	for range 2 {
		msgs := <-got
		n += len(msgs)
		ack(msgs)
	}
	if n != 1 {
		t.Fatalf("the waiting pulls took %d messages, want the one freed by the ack", n)
	}
}

// The end of a pull that came after its worker gave up waiting (a
// cluster holds it until its nodes agree) does not end the worker's next
// pull, which the server still serves: a message it then delivers would
// wait in the inbox, unasked for and unheartbeated, past its ack wait.
func TestPullIsNotEndedByTheEndOfAPullBefore(t *testing.T) {
	cfg := testConfig(t, t.TempDir(), nil)
	bus := openBus(t, cfg)
	defer bus.Close()
	ctx := context.Background()
	cons, err := bus.Consumer(ctx, StreamTasks, ConsumerFetch, "", cfg.Stages)
	if err != nil {
		t.Fatal(err)
	}
	p, err := newPuller(bus.NC, cons, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer p.close()
	if msgs, err := p.nextBatch(10, 100*time.Millisecond); err != nil || len(msgs) != 0 {
		t.Fatalf("empty queue: %d messages, %v", len(msgs), err)
	}
	before := p.reply
	got := make(chan []jetstream.Msg, 1)
	go func() {
		msgs, err := p.nextBatch(10, time.Hour)
		if err != nil {
			t.Error(err)
		}
		got <- msgs
	}()
	checkFor(t, 20*time.Second, func() error {
		if info, err := cons.Info(ctx); err != nil || info.NumWaiting != 1 {
			return fmt.Errorf("no pull waiting (%v)", err)
		}
		return nil
	})
	// The first pull's end, late.
	late := nats.NewMsg(before)
	late.Header.Set(statusHeader, "408")
	late.Header.Set(descriptionHeader, "Request Timeout")
	if err := bus.NC.PublishMsg(late); err != nil {
		t.Fatal(err)
	}
	if err := bus.NC.Flush(); err != nil { // the puller's conn: the status has come
		t.Fatal(err)
	}
	o, err := HubTask("run-late", "https://pith.science/citations/0000aaaa-0000", 0, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := bus.PublishAll(ctx, []Out{o}); err != nil {
		t.Fatal(err)
	}
	select {
	case msgs := <-got:
		if len(msgs) != 1 {
			t.Fatalf("the waiting pull gave %d messages, want the task queued while it waited", len(msgs))
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the waiting pull gave nothing")
	}
}
