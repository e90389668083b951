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
	bus, cfg, cons := fetchConsumer(t)
	ctx := context.Background()
	p := startPuller(t, bus, cons)
	queue := func(n int) { t.Helper(); queueTasks(t, bus, cfg, someHubTasks(t, n)) }
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
	got := pullInBackground(t, p, 10, time.Hour)
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
	got = pullInBackground(t, p, 10, time.Hour)
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
		pulls[i] = startPuller(t, bus, limited)
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
	var waited []<-chan []jetstream.Msg
	for i, p := range pulls[1:] {
		waited = append(waited, pullInBackground(t, p, 5, 5*time.Second))
		checkFor(t, 20*time.Second, waiting(i+1))
	}
	ack(first)
	var n int
	for _, got := range waited {
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
	bus, cfg, cons := fetchConsumer(t)
	ctx := context.Background()
	p := startPuller(t, bus, cons)
	if msgs, err := p.nextBatch(10, 100*time.Millisecond); err != nil || len(msgs) != 0 {
		t.Fatalf("empty queue: %d messages, %v", len(msgs), err)
	}
	before := p.reply
	got := pullInBackground(t, p, 10, time.Hour)
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
	queueTasks(t, bus, cfg, someHubTasks(t, 1))
	select {
	case msgs := <-got:
		if len(msgs) != 1 {
			t.Fatalf("the waiting pull gave %d messages, want the task queued while it waited", len(msgs))
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the waiting pull gave nothing")
	}
}

// fetchConsumer opens a bus, closed when the test ends, and the fetch
// stage's consumer of its tasks.
func fetchConsumer(t *testing.T) (*Bus, Config, jetstream.Consumer) {
	t.Helper()
	cfg := testConfig(t, t.TempDir(), nil)
	bus := openBus(t, cfg)
	t.Cleanup(bus.Close)
	cons, err := bus.Consumer(context.Background(), StreamTasks, ConsumerFetch, "", cfg.Stages)
	if err != nil {
		t.Fatal(err)
	}
	return bus, cfg, cons
}

// startPuller is a puller of c, closed when the test ends (before the bus).
func startPuller(t *testing.T, bus *Bus, c jetstream.Consumer) *puller {
	t.Helper()
	p, err := newPuller(bus.NC, c, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.close)
	return p
}

// pullInBackground pulls once with p and gives what the pull brought.
func pullInBackground(t *testing.T, p *puller, batch int, idle time.Duration) <-chan []jetstream.Msg {
	got := make(chan []jetstream.Msg, 1)
	go func() {
		msgs, err := p.nextBatch(batch, idle)
		if err != nil {
			t.Error(err)
		}
		got <- msgs
	}()
	return got
}

// someHubTasks are n hub tasks, of runs of their own.
func someHubTasks(t *testing.T, n int) []Out {
	t.Helper()
	var outs []Out
	for range n {
		o, err := HubTask(fmt.Sprint("run-", time.Now().UnixNano()), "https://pith.science/citations/0000aaaa-0000", 0, "")
		if err != nil {
			t.Fatal(err)
		}
		outs = append(outs, o)
	}
	return outs
}

// parseAckReply reads the stream sequence and time nats.go's Metadata
// reads, from replies of both shapes, and leaves other replies to it.
func TestParseAckReplyIsMetadata(t *testing.T) {
	replies := []string{
		"$JS.ACK.RAW.reader.1.42.7.1764600000123456789.3",                                 // without a domain
		"$JS.ACK._.ACCHASH.RAW.reader.1.18446744073709551615.7.1764600000123456789.0.rNd", // with one
		"$JS.ACK.hub.ACCHASH.RAW.reader.2.5.7.1.0",                                        // no random token
		"$JS.ACK.hub.ACCHASH.RAW.reader.2.5.7.1.0.rNd.more",                               // tokens after
	}
	for _, reply := range replies {
		md, err := (&nats.Msg{Reply: reply, Sub: &nats.Subscription{}}).Metadata() // bound, as Metadata wants
		if err != nil {
			t.Fatalf("%s: %v", reply, err)
		}
		got, ok := parseAckReply(reply)
		if want := (storedAt{seq: md.Sequence.Stream, ns: md.Timestamp.UnixNano()}); !ok || got != want {
			t.Errorf("%s: %+v, %v; Metadata gives %+v", reply, got, ok, want)
		}
	}
	for _, reply := range []string{"", "_INBOX.x", "$JS.ACK.RAW.reader.1.42", "$JS.ACK.RAW.reader.1.x.7.1.3", "$JS.ACK.RAW.reader.1.4.7.y.3",
		"$JS.ACK.RAW.reader.1.42.7.+5.3", "$JS.ACK.RAW.reader.1.42.7.-5.3"} { // nats.go reads digits only
		if got, ok := parseAckReply(reply); ok {
			t.Errorf("%q read as %+v", reply, got)
		}
	}
}

// A delivered message's storedAt is its stream sequence and time.
func TestStoredAtOfDeliveredMessages(t *testing.T) {
	bus := openBus(t, testConfig(t, t.TempDir(), nil))
	defer bus.Close()
	ctx := context.Background()
	var outs []Out
	for i := range 5 {
		outs = append(outs, Out{Subject: RawSubject("hub"), Data: []byte(fmt.Sprint(i))})
	}
	if err := bus.PublishAll(ctx, outs); err != nil {
		t.Fatal(err)
	}
	c, err := bus.JS.CreateConsumer(ctx, StreamRaw, jetstream.ConsumerConfig{AckPolicy: jetstream.AckNonePolicy})
	if err != nil {
		t.Fatal(err)
	}
	batch, err := c.FetchNoWait(5)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for m := range batch.Messages() {
		n++
		md, err := m.Metadata()
		if err != nil {
			t.Fatal(err)
		}
		at, err := storedAtOf(m)
		if err != nil || at.seq != md.Sequence.Stream || at.ns != md.Timestamp.UnixNano() || at.seq != uint64(n) {
			t.Errorf("message %d: %+v, %v; metadata %d at %v", n, at, err, md.Sequence.Stream, md.Timestamp)
		}
		if _, ok := parseAckReply(m.Reply()); !ok { // not by Metadata, the slow way
			t.Errorf("message %d: the server's reply %q is not read", n, m.Reply())
		}
	}
	if n != 5 {
		t.Fatalf("%d messages fetched, want 5", n)
	}
}
