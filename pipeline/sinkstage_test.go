package pipeline

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/citecrawl/citecrawl/ingest/snapshot"
	"github.com/citecrawl/citecrawl/record"
	"github.com/citecrawl/citecrawl/sink"
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
	w := startStages(t, bus, cfg, env, StageSink)
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
	w := startStages(t, bus, cfg, env, StageSink)
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

// storedMsg is a stored message's data and headers.
type storedMsg struct {
	data   []byte
	header nats.Header
}

// storedMsgs reads every message of a stream.
func storedMsgs(t testing.TB, bus *Bus, stream string) []storedMsg {
	t.Helper()
	ctx := context.Background()
	st, err := streamState(ctx, bus, stream)
	if err != nil {
		t.Fatal(err)
	}
	cons, err := bus.JS.OrderedConsumer(ctx, stream, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	var out []storedMsg
	for len(out) < int(st.Msgs) {
		b, err := cons.Fetch(int(st.Msgs)-len(out), jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		n := len(out)
		for m := range b.Messages() {
			out = append(out, storedMsg{m.Data(), m.Headers()})
		}
		if len(out) == n {
			t.Fatalf("read %d of the %d messages of %s", n, st.Msgs, stream)
		}
	}
	return out
}

// outLines reads the lines of every sealed segment under out, as written.
func outLines(t testing.TB, out string) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(out, "*", "seg-*.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		lines = append(lines, strings.SplitAfter(string(b), "\n")...)
		if lines[len(lines)-1] == "" {
			lines = lines[:len(lines)-1]
		}
	}
	return lines
}

// The sink writes a tagged record's message as it was published: the
// data the fetch stage publishes is the line encoding that record gives
// (the line the sink wrote when it decoded and encoded every message),
// with the record's fingerprint in HeaderFingerprint, and every record is
// written once, byte for byte that data.
func TestSinkWritesTheTaggedMessageAsPublished(t *testing.T) {
	const n = 40
	site := snapshot.New(snapshot.StyleCards, snapshot.Generated(n))
	web := startSite(t, site)
	cfg := testConfig(t, t.TempDir(), site.HubURLs(web.URL))
	bus := openBus(t, cfg)
	defer bus.Close()
	res, err := Run(context.Background(), bus, cfg, testEnv())
	if err != nil {
		t.Fatal(err)
	}
	if res.Written != n {
		t.Fatalf("%d records written, want %d", res.Written, n)
	}
	published := map[string]int{}
	for _, m := range storedMsgs(t, bus, StreamTagged) {
		var r record.Record
		if err := record.Unmarshal(m.data, &r); err != nil {
			t.Fatal(err)
		}
		line, fp, err := record.MarshalLine(&r)
		if err != nil {
			t.Fatal(err)
		}
		if got := m.header.Get(HeaderFingerprint); got != fp || string(line) != string(m.data)+"\n" {
			t.Fatalf("record %s: header fingerprint %q, data\n%s\nwant %q and the line\n%s", r.ID, got, m.data, fp, line)
		}
		published[string(line)]++
	}
	written := map[string]int{}
	for _, l := range outLines(t, cfg.Sink.Out) {
		written[l]++
	}
	if len(published) != n || !maps.Equal(written, published) {
		t.Fatalf("%d records published, %d lines written (%d distinct); want each published record written once as it is", len(published), len(outLines(t, cfg.Sink.Out)), len(written))
	}
}

// Every kind of tagged message is written once: with HeaderFingerprint
// (written as it came), without it (an older version's: decoded and
// encoded), with it but not one line, or with a header whose fingerprint
// is of the record before it changed (decoded and encoded: its own), and
// a record version published both ways (the same line, once); one with
// the header but no JSON, one whose JSON is not a record's (a field of
// another type), and one without an id (which no index can hold, so every
// seal of its hub would fail), are dead-lettered, and nothing else.
func TestSinkStageWritesEveryKindOfTaggedMessageOnce(t *testing.T) {
	cfg := testConfig(t, t.TempDir(), nil)
	bus := openBus(t, cfg)
	defer bus.Close()
	var outs []Out
	var want []string // the lines, as the sink writes them
	for i := range 7 {
		r := taggedRecord("hub-k", i, record.RoleUses)
		o, err := taggedOut(&r, nil)
		if err != nil {
			t.Fatal(err)
		}
		if i == 6 { // changed after its header was set
			r.Role = record.RoleCompares
			if o.Data, err = record.Marshal(&r); err != nil {
				t.Fatal(err)
			}
		}
		want = append(want, string(o.Data)+"\n")
		switch i {
		case 0, 1, 2: // as this version publishes them
		case 3: // an older version's, also published as this version's
			outs = append(outs, o)
			o = Out{Subject: o.Subject, MsgID: r.ID + ":old", Data: slices.Clone(o.Data)}
		case 4: // an older version's
			o.Header = nil
		case 5: // not one line, though the header says it is
			o.Data, _ = json.MarshalIndent(r, "", "  ")
		}
		outs = append(outs, o)
	}
	for _, bad := range []string{`{"id":"bad",`, `{"schema":"citecrawl.record/v1","id":"typed","hub":{"id":"hub-k","url":""},"paper":{"authors":"x"}}`,
		`{"schema":"citecrawl.record/v1","id":"","hub":{"id":"hub-k","url":""}}`} {
		outs = append(outs, Out{Subject: TaggedSubject("hub-k"), MsgID: bad, Data: []byte(bad),
			Header: nats.Header{HeaderFingerprint: {"0123456789abcdef01234567"}}})
	}
	if err := bus.PublishAll(context.Background(), outs); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	env := testEnv()
	w := startStages(t, bus, cfg, env, StageSink)
	defer w.Stop()
	checkFor(t, 20*time.Second, func() error {
		dl, err := ReadDeadLetters(ctx, bus, 0)
		if err != nil {
			return err
		}
		why := map[string]int{}
		for _, d := range dl {
			for _, w := range []string{"not valid JSON", "without an id"} {
				if d.Stage == StageSink && strings.Contains(d.Error, w) {
					why[w]++
				}
			}
		}
		if len(dl) != 3 || why["not valid JSON"] != 2 || why["without an id"] != 1 {
			return fmt.Errorf("dead letters %+v, want the two that are not a record's JSON and the one without an id", dl)
		}
		if w, d := env.Stats.RecordsWritten.Load(), env.Stats.Duplicates.Load(); w != 7 || d != 1 {
			return fmt.Errorf("stats: %d written, %d already written; want 7 and 1", w, d)
		}
		return nil
	})
	if got := outLines(t, cfg.Sink.Out); !slices.Equal(slices.Sorted(slices.Values(got)), slices.Sorted(slices.Values(want))) {
		t.Fatalf("lines written:\n%s\nwant:\n%s", strings.Join(got, ""), strings.Join(want, ""))
	}
}

// A second run into the same output on a fresh broker delivers every
// record to the sink again (no message id remembers them): the sink,
// which leaves out records already written when it seals a segment rather
// than looking each batch up, writes none of them twice and counts them
// as duplicates; records written before delivered in one segment with a
// new one leave that one alone written.
func TestRunIntoTheSameOutputWritesEachRecordOnce(t *testing.T) {
	const n = 40
	site := snapshot.New(snapshot.StyleCards, snapshot.Generated(n))
	web := startSite(t, site)
	out := filepath.Join(t.TempDir(), "out")
	run := func() (*Result, Env) {
		t.Helper()
		cfg := testConfig(t, t.TempDir(), site.HubURLs(web.URL))
		cfg.Sink.Out = out
		bus := openBus(t, cfg)
		defer bus.Close()
		env := testEnv()
		res, err := Run(context.Background(), bus, cfg, env)
		if err != nil {
			t.Fatal(err)
		}
		return res, env
	}
	if res, _ := run(); res.Written != n {
		t.Fatalf("first run wrote %d records, want %d", res.Written, n)
	}
	before := outLines(t, out)
	res, env := run()
	if res.Written != 0 || env.Stats.Duplicates.Load() != n {
		t.Errorf("second run: %d written, %d duplicates; want 0 and %d", res.Written, env.Stats.Duplicates.Load(), n)
	}
	if after := outLines(t, out); !slices.Equal(slices.Sorted(slices.Values(after)), slices.Sorted(slices.Values(before))) {
		t.Fatalf("second run changed the output: %d lines, were %d", len(after), len(before))
	}

	// Three records written before and a new one, in one batch.
	cfg := testConfig(t, t.TempDir(), nil)
	cfg.Sink.Out = out
	bus := openBus(t, cfg)
	defer bus.Close()
	recs := readOut(t, out)[:4]
	recs[3].Role = record.RoleFuture // a new version
	var outs []Out
	for i := range recs {
		o, err := taggedOut(&recs[i], nil)
		if err != nil {
			t.Fatal(err)
		}
		outs = append(outs, o)
	}
	if err := bus.PublishAll(context.Background(), outs); err != nil {
		t.Fatal(err)
	}
	env = testEnv()
	w := startStages(t, bus, cfg, env, StageSink)
	defer w.Stop()
	checkFor(t, 20*time.Second, func() error {
		if w, d := env.Stats.RecordsWritten.Load(), env.Stats.Duplicates.Load(); w != 1 || d != 3 {
			return fmt.Errorf("stats: %d written, %d already written; want 1 and 3", w, d)
		}
		return nil
	})
	if got := len(outLines(t, out)); got != n+1 {
		t.Fatalf("%d lines written, want %d", got, n+1)
	}
}

// The sink stage of a process that tags takes the lines its tagging
// stages kept (ownLines) as they are, without decoding them again, for
// the messages whose data is that line: here a kept line that says
// "background" where its JSON says "uses" shows in the hub's summary as
// background. A message whose data is not the kept line (the same message
// id, another version of the record) is decoded as any other and counted
// with its own tags; every line kept is taken once.
func TestSinkTakesTheLinesItsProcessKept(t *testing.T) {
	cfg := testConfig(t, t.TempDir(), nil)
	bus := openBus(t, cfg)
	defer bus.Close()
	env := testEnv()
	w := startStages(t, bus, cfg, env, StageClassify, StageSink)
	defer w.Stop()
	if w.own == nil {
		t.Fatal("no lines kept for the sink stage of a process that tags")
	}
	var outs []Out
	for i := range 4 {
		r := taggedRecord("hub-o", i, record.RoleUses)
		o, err := taggedOut(&r, nil)
		if err != nil {
			t.Fatal(err)
		}
		switch i {
		case 0: // kept as its stage would not: the line that is written tells
			told := r
			told.Role = record.RoleBackground
			w.own.keep(&o, &told)
		case 1: // kept, then another version published under its id
			w.own.keep(&o, &r)
			r.Role = record.RoleCompares
			other, err := taggedOut(&r, nil)
			if err != nil {
				t.Fatal(err)
			}
			o.Data, o.Header = other.Data, other.Header
		default:
			w.own.keep(&o, &r)
		}
		outs = append(outs, o)
	}
	if err := bus.PublishAll(context.Background(), outs); err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, o := range outs {
		want = append(want, string(o.Data)+"\n")
	}
	roles := map[string]int{record.RoleBackground: 1, record.RoleCompares: 1, record.RoleUses: 2}
	checkFor(t, 20*time.Second, func() error {
		if got := outLines(t, cfg.Sink.Out); !slices.Equal(slices.Sorted(slices.Values(got)), slices.Sorted(slices.Values(want))) {
			return fmt.Errorf("lines written:\n%s\nwant:\n%s", strings.Join(got, ""), strings.Join(want, ""))
		}
		// The summary is written just after the segments.
		b, err := os.ReadFile(filepath.Join(cfg.Sink.Out, "hub-o", sink.SummaryFile))
		if err != nil {
			return err
		}
		var sum sink.Summary
		if err := json.Unmarshal(b, &sum); err != nil {
			return err
		}
		if !maps.Equal(sum.Roles, roles) {
			return fmt.Errorf("roles counted %v, want %v", sum.Roles, roles)
		}
		return nil
	})
	w.own.mu.Lock()
	defer w.own.mu.Unlock()
	if len(w.own.lines) != 0 {
		t.Errorf("%d kept lines not taken", len(w.own.lines))
	}
}

// ownLines keeps only the lines the sink would make the same of their
// JSON, gives each once and only for its own bytes and fingerprint, and
// keeps the latest ownLinesMax.
func TestOwnLinesKeepsWhatParseLineWouldFind(t *testing.T) {
	o := newOwnLines()
	out := func(r *record.Record) Out {
		t.Helper()
		m, err := taggedOut(r, nil)
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	r := taggedRecord("hub-l", 0, record.RoleUses)
	m := out(&r)
	o.keep(&m, &r)
	fp := m.Header.Get(HeaderFingerprint)
	if _, ok := o.take(m.MsgID, append(slices.Clone(m.Data), ' '), fp); ok {
		t.Error("taken for other bytes")
	}
	o.keep(&m, &r)
	if _, ok := o.take(m.MsgID, m.Data, "0123456789abcdef01234567"); ok {
		t.Error("taken under another fingerprint")
	}
	o.keep(&m, &r)
	l, ok := o.take(m.MsgID, slices.Clone(m.Data), fp)
	want, err := sink.ParseLine(m.Data, fp)
	if err != nil {
		t.Fatal(err)
	}
	if !ok || l.ID != want.ID || l.Hub.ID != want.Hub.ID || l.Tags != want.Tags || l.Fingerprint != want.Fingerprint || string(l.JSON) != string(want.JSON) {
		t.Fatalf("taken %v %+v, want %+v", ok, l, want)
	}
	if _, ok := o.take(m.MsgID, m.Data, fp); ok {
		t.Error("taken twice")
	}
	for name, r := range map[string]record.Record{
		"a hub id that is not UTF-8": {Schema: record.Schema, ID: "x", Hub: record.Hub{ID: "hub-\xff"}},
		"a role that is not UTF-8":   {Schema: record.Schema, ID: "x", Hub: record.Hub{ID: "hub-l"}, Role: "us\xffes"},
		"a facet that is not UTF-8": {Schema: record.Schema, ID: "x", Hub: record.Hub{ID: "hub-l",
			Published: &record.HubCounts{Facets: map[string]map[string]int{"years\xff": {"2026": 1}, "years\xfe": {"2025": 1}}}}},
		"no id":          {Schema: record.Schema, Hub: record.Hub{ID: "hub-l"}},
		"another schema": {Schema: "other", ID: "x", Hub: record.Hub{ID: "hub-l"}},
	} {
		m := out(&r)
		o.keep(&m, &r)
		if _, ok := o.take(m.MsgID, m.Data, m.Header.Get(HeaderFingerprint)); ok {
			t.Errorf("%s: kept", name)
		}
	}
	var ms []Out
	for i := range ownLinesMax + 1 {
		r := taggedRecord("hub-l", i, record.RoleUses)
		ms = append(ms, out(&r))
		o.keep(&ms[i], &r)
	}
	if _, ok := o.take(ms[0].MsgID, ms[0].Data, ms[0].Header.Get(HeaderFingerprint)); ok {
		t.Error("the oldest line still kept beyond ownLinesMax")
	}
	if _, ok := o.take(ms[1].MsgID, ms[1].Data, ms[1].Header.Get(HeaderFingerprint)); !ok {
		t.Error("a line within ownLinesMax not kept")
	}
	if len(o.lines) > ownLinesMax {
		t.Errorf("%d lines kept, at most %d", len(o.lines), ownLinesMax)
	}
	// Big lines: no more than ownLinesMaxBytes are kept.
	ms = ms[:0]
	for i := range 9 {
		r := taggedRecord("hub-l", 10_000+i, record.RoleUses)
		r.Paper.Title = strings.Repeat("x", 1<<20)
		ms = append(ms, out(&r))
		o.keep(&ms[i], &r)
	}
	if o.bytes > ownLinesMaxBytes {
		t.Errorf("%d bytes of lines kept, at most %d", o.bytes, ownLinesMaxBytes)
	}
	if _, ok := o.take(ms[0].MsgID, ms[0].Data, ms[0].Header.Get(HeaderFingerprint)); ok {
		t.Error("the oldest big line still kept beyond ownLinesMaxBytes")
	}
	if _, ok := o.take(ms[8].MsgID, ms[8].Data, ms[8].Header.Get(HeaderFingerprint)); !ok {
		t.Error("the latest big line not kept")
	}
}
