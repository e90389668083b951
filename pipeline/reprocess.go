package pipeline

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
	"golang.org/x/sync/errgroup"

	"github.com/citecrawl/citecrawl/classify"
	"github.com/citecrawl/citecrawl/record"
	"github.com/citecrawl/citecrawl/sink"
)

// ReprocessOptions say what to re-tag and where to.
type ReprocessOptions struct {
	// From is "stream" (the raw-record stream) or output written by the
	// sink (a sink.out value that can be read back, such as a folder).
	From string
	// Out is the output folder. The new generation is built beside it and
	// replaces it only once whole; the old one is kept as Out + ".prev".
	Out string
	// AllowShrink replaces a non-empty output even with an empty or much
	// smaller generation (fewer than half its records); without it that
	// is refused with ErrShrink, since it most likely means the input
	// (--data, --from) is not the one the output was built from.
	AllowShrink bool
	Classifier  *classify.Classifier
	Workers     int
	// Batch is how many records are tagged and sealed between checkpoints
	// (16,384 if zero): what an interrupted reprocess does again. A batch's
	// segments are sealed together, each hub folder's records added to its
	// index in one transaction (up to 1,024), which reads and writes again
	// every index page they land on: record ids are random, so the more
	// records a transaction adds, the fewer pages a record. At a million
	// records over 20 hubs a hub gets 820 records a batch (410 with 8,192),
	// and adding one allocates 4.4 kB instead of 5.3 (sink's
	// BenchmarkIndexSeal), which is what the collector pays for.
	Batch int
	// Progress is called now and then with records done and the total
	// (0 when unknown).
	Progress func(done, total int64)
	Log      zerolog.Logger
	// MinConfidence: count the re-tagged records' tags less confident
	// than this (ReprocessResult.Under); nothing is dropped.
	MinConfidence float64
}

// ReprocessResult says what a reprocess did.
type ReprocessResult struct {
	Records int64 `json:"records"`
	Resumed bool  `json:"resumed"`
	// Changes counts label changes per tag ("role", "polarity",
	// "pluralism"), keyed "old -> new".
	Changes map[string]map[string]int `json:"changes"`
	// Changed is how many records had at least one label changed.
	Changed      int64  `json:"changed"`
	RulesVersion string `json:"rules_version"`
	// Under counts, per tag, the records tagged in this run whose tag is
	// less confident than ReprocessOptions.MinConfidence.
	Under map[string]int `json:"under_min_confidence,omitempty"`
	// Gone counts the raw records that left the stream (its age or size
	// limit) after the reprocess began and before it read them: they are
	// not in the new generation.
	Gone uint64 `json:"gone_from_stream,omitempty"`
}

// position is how far a reprocess got.
type position struct {
	Done uint64 `json:"done"` // last raw stream sequence, or records read from a folder
	// Tagged is the last tagged stream sequence of the self-tagged records
	// (selfTagged), read from the stream after the raw ones.
	Tagged uint64 `json:"tagged,omitempty"`
}

// checkpoint is written into the unfinished generation after every sealed
// batch, so an interrupted reprocess resumes instead of starting over.
type checkpoint struct {
	Format int    `json:"format"` // checkpointFormat; another is not resumed
	From   string `json:"from"`
	Rules  string `json:"rules_version"`
	position
	// The label logs as sealed with those records (see labelLog).
	New labelLogState `json:"new_labels"`
	Old labelLogState `json:"old_labels"`
}

const (
	checkpointFile = ".reprocess-checkpoint.json"
	// checkpointFormat 2 added the label logs, 3 the position in the
	// self-tagged records (position.Tagged): an older build resuming a
	// format-3 checkpoint would read those again after newer raw versions.
	// 4: the new generation's index is built from sorted runs at Close;
	// one an older build left may hold part of a segment it does not
	// cover, unmarked, so its generation is started over. 5: the label
	// logs' parts hold ids' hashes and numbered labels (reprocess_labels.go).
	checkpointFormat = 5
	// labelsDir, in the unfinished generation, holds the label logs.
	labelsDir = ".reprocess-labels"
	// chunkSize is how many records a worker tags at a time: a few
	// milliseconds of work, and few records in memory.
	chunkSize = 256
	// writeBatch is about how many tagged records are given to the sink at
	// once: each write costs the sink a pass over its hubs, so a few
	// chunks go in one.
	writeBatch = 1024
)

// ErrShrink is returned by Reprocess when the new generation would
// replace a non-empty output with an empty or much smaller one and
// ReprocessOptions.AllowShrink is not set. Nothing was replaced.
var ErrShrink = errors.New("reprocess would shrink the output")

// shrinks says whether a generation of n records is much smaller than an
// output of old records: fewer than half of them.
func shrinks(old, n int64) bool { return old > 0 && 2*n < old }

// Reprocess re-tags everything already crawled with the current rules,
// with no network. bus may be nil when reading from a folder.
func Reprocess(ctx context.Context, bus *Bus, o ReprocessOptions) (*ReprocessResult, error) {
	if o.Workers < 1 {
		o.Workers = 2
	}
	if o.Batch < 1 {
		o.Batch = 16384
	}
	unlock, err := lockOutput(o.Out)
	if err != nil {
		return nil, err
	}
	defer unlock()
	r, res, err := openGeneration(ctx, o)
	if err != nil {
		return nil, err
	}
	closed := false
	defer func() {
		if !closed {
			// Interrupted: seal what was written, with the summaries of
			// its hubs, for the resumed run to build on.
			_ = r.out.Close(context.Background())
		}
	}()
	next, state, out := r.next, r.state, r.out
	if o.From == "stream" {
		err = r.fromStream(ctx, bus)
		res.Gone = r.gone
	} else {
		err = r.fromFolder(ctx, o.From)
	}
	if err == nil {
		err = ctx.Err() // interrupted after the last record
	}
	if err != nil {
		return res, err
	}
	closed = true
	// Compare the new generation's labels with the old output's while the
	// sink builds the generation's indexes at Close: neither needs the
	// other, and each alone keeps a core idle for a second or more at a
	// million records. Then swap the generation in.
	var before int64 // records in the old output
	var g errgroup.Group
	g.Go(func() error { return out.Close(ctx) })
	g.Go(func() (err error) {
		if o.From == "stream" {
			// The old labels are the output's; from a folder, they were
			// taken from the records read.
			if err := eachLatest(ctx, o.Out, r.oldL.add); err != nil {
				return err
			}
			if err := r.oldL.flush(); err != nil {
				return err
			}
		}
		res.Changes, res.Changed, res.Records, before, err = labelChanges(r.oldL, r.newL)
		return err
	})
	if err := g.Wait(); err != nil {
		return res, err
	}
	current := before // records in what the new generation replaces
	if filepath.Clean(oldSource(o)) != filepath.Clean(o.Out) {
		current = 0
		err := eachLatest(ctx, o.Out, func(string, labels) error { current++; return nil })
		if err != nil {
			return res, err
		}
	}
	if shrinks(current, res.Records) && !o.AllowShrink {
		// Dropped, not kept to resume: its checkpoint is of the wrong input.
		_ = os.RemoveAll(next)
		return res, fmt.Errorf("%w: %s holds %d records, the new generation from %s only %d; nothing was replaced (is --data or --from the input this output was built from? --allow-shrink replaces it anyway)",
			ErrShrink, o.Out, current, o.From, res.Records)
	}
	if o.MinConfidence > 0 {
		res.Under = r.under
	}
	if err := os.RemoveAll(state); err != nil {
		return res, err
	}
	if err := os.Remove(filepath.Join(next, checkpointFile)); err != nil {
		return res, err
	}
	if err := carryRuns(o.Out, next); err != nil {
		return res, err
	}
	return res, sink.PublishGeneration(next, o.Out, filepath.Clean(o.Out)+".prev")
}

// ErrOutputBusy is returned by Reprocess when another reprocess is
// writing the same output.
var ErrOutputBusy = errors.New("another reprocess is writing this output")

// lockOutput takes the lock of reprocess on out, OUT.lock beside it, for
// as long as the run lasts: a second reprocess of the same output would
// take the first one's unfinished generation, before its first
// checkpoint, for one left by a crash and remove it, and both would
// fail. The file stays (removing a lock file another process may be
// opening would let two hold it).
func lockOutput(out string) (unlock func(), err error) {
	path := filepath.Clean(out) + ".lock"
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("reprocess %s: %w", out, err)
	}
	f, ok, err := tryLock(path)
	if err != nil {
		return nil, fmt.Errorf("reprocess %s: %w", out, err)
	}
	if !ok {
		return nil, fmt.Errorf("%w: %s (the process holding %s); run again once it has ended", ErrOutputBusy, out, path)
	}
	return func() { f.Close() }, nil
}

// openGeneration opens the unfinished generation beside o.Out: the one an
// interrupted reprocess left, to resume, when its checkpoint is of the same
// input and rules; else a new one, after saying why the old one goes.
func openGeneration(ctx context.Context, o ReprocessOptions) (*retagger, *ReprocessResult, error) {
	next := filepath.Clean(o.Out) + ".next"
	res := &ReprocessResult{RulesVersion: o.Classifier.Version()}
	cp := checkpoint{Format: checkpointFormat, From: o.From, Rules: o.Classifier.Version()}
	if old, why := readCheckpoint(next, cp); why == "" {
		cp, res.Resumed = old, true
		o.Log.Info().Uint64("done", cp.Done).Msg("resuming an interrupted reprocess")
	} else {
		if _, err := os.Stat(next); err == nil {
			o.Log.Warn().Str("folder", next).Str("reason", why).Msg("starting over: removing the unfinished generation an interrupted reprocess left")
		}
		if err := os.RemoveAll(next); err != nil {
			return nil, nil, err
		}
	}
	state := filepath.Join(next, labelsDir)
	if err := os.MkdirAll(state, 0o755); err != nil {
		return nil, nil, err
	}
	if err := pruneParts(state, cp.New, cp.Old); err != nil {
		return nil, nil, err
	}
	// A batch job: big segments sealed at every checkpoint, summaries
	// written once at the end.
	nextCfg := sink.Config{Out: "jsonl://" + next, JSONLConfig: sink.JSONLConfig{SegmentMaxBytes: 64 << 20, SegmentMaxAge: 24 * time.Hour}}
	// The new generation holds only what this run wrote: a record is
	// seldom there already, so it is not looked up as it is written.
	out, err := sink.Open(ctx, nextCfg, sink.WithLogger(o.Log), sink.WithSummaryOnClose(), sink.WithDedupeAtSeal(), sink.WithOwnFolder())
	if err != nil {
		return nil, nil, err
	}
	flushing, ok := out.(flushingSink)
	if !ok {
		_ = out.Close(ctx)
		return nil, nil, fmt.Errorf("reprocess: the sink of %s cannot seal in the background", next)
	}
	r := &retagger{o: o, out: flushing, next: next, state: state, cp: &cp, under: map[string]int{},
		newL: newLabelLog(state, "new", cp.New), oldL: newLabelLog(state, "old", cp.Old)}
	return r, res, nil
}

// readCheckpoint reads the checkpoint in next and says why it cannot be
// resumed as want ("" if it can).
func readCheckpoint(next string, want checkpoint) (checkpoint, string) {
	var cp checkpoint
	b, err := os.ReadFile(filepath.Join(next, checkpointFile))
	if errors.Is(err, os.ErrNotExist) {
		return cp, "it has no checkpoint"
	}
	if err != nil {
		return cp, fmt.Sprintf("its checkpoint cannot be read: %v", err)
	}
	if err := json.Unmarshal(b, &cp); err != nil {
		return cp, fmt.Sprintf("its checkpoint cannot be read: %v", err)
	}
	switch {
	case cp.Format != want.Format:
		return cp, fmt.Sprintf("its checkpoint is of format %d, not %d", cp.Format, want.Format)
	case cp.From != want.From:
		return cp, fmt.Sprintf("it was re-tagged from %s, not %s", cp.From, want.From)
	case cp.Rules != want.Rules:
		return cp, fmt.Sprintf("it was re-tagged with rules %s, not %s", cp.Rules, want.Rules)
	}
	return cp, ""
}

// runsDir holds the run reports beside the records (see publishReport).
const runsDir = "runs"

// carryRuns copies the run reports of the output into the new generation:
// they are the history of the output, not of one generation of tags.
func carryRuns(out, next string) error {
	reports, err := os.ReadDir(filepath.Join(out, runsDir))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("carrying the run reports forward: %w", err)
	}
	if err := os.MkdirAll(filepath.Join(next, runsDir), 0o755); err != nil {
		return err
	}
	for _, r := range reports {
		if !r.Type().IsRegular() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(out, runsDir, r.Name()))
		if err != nil {
			return fmt.Errorf("carrying the run reports forward: %w", err)
		}
		if err := os.WriteFile(filepath.Join(next, runsDir, r.Name()), b, 0o644); err != nil {
			return fmt.Errorf("carrying the run reports forward: %w", err)
		}
	}
	return nil
}

// oldSource is where the labels before this reprocess are: the input
// folder, or the output being replaced.
func oldSource(o ReprocessOptions) string {
	if o.From != "stream" {
		return o.From
	}
	return o.Out
}

// eachLatest calls fn with the labels of the latest version of every
// record the sink wrote at out (none when nothing was written there). It
// uses the sink's EachLatest, which reads only the tags, not the contexts.
func eachLatest(ctx context.Context, out string, fn func(id string, l labels) error) error {
	rd, err := sink.OpenReader(ctx, sink.Config{Out: out})
	if errors.Is(err, sink.ErrNoOutput) {
		return nil
	}
	if err != nil {
		return err
	}
	var ferr error
	err = rd.EachLatest(ctx, func(id string, t sink.Tags) {
		if ferr == nil {
			ferr = fn(id, labelsOfTags(t))
		}
	})
	return errors.Join(err, ferr)
}

// flushingSink is the new generation's sink: one that seals in the
// background while the next records are tagged and written.
type flushingSink interface {
	sink.Sink
	sink.BackgroundFlusher
}

// retagger re-tags the input in three stages that overlap: a reader cuts
// the input into chunks, workers decode and tag whole chunks on every
// core, and a writer writes them to the sink in input order, adds their
// labels to the label logs and checkpoints every Batch records. The
// chunks in flight are bounded, so memory does not grow with the input.
type retagger struct {
	o          ReprocessOptions
	out        flushingSink
	pending    *pendingCommit // begun, not waited for yet
	next       string         // the unfinished generation
	state      string         // its label logs
	cp         *checkpoint
	newL, oldL *labelLog      // labels of the records written, and from a folder their labels before
	under      map[string]int // tags under MinConfidence, counted as written
	// Progress: records done before this run's first and the total.
	done, total int64
	// free holds chunks written, for the reader to fill again (nil: none
	// are kept): records and their chunks are a good part of what
	// reprocess allocates, which the collector pays for at its memory limit.
	free chan *chunk
	gone uint64 // raw records that left the stream before they were read
}

// chunk is consecutive records of the input, tagged by one worker.
type chunk struct {
	items []item
	recs  []record.Record // what the items read from the stream are decoded into
	pos   position        // the checkpoint after it
	done  chan struct{}   // closed once tagged
	err   error
}

// newChunk is an empty chunk with the checkpoint pos: one written before
// (see free) or a new one.
func (r *retagger) newChunk(pos position) *chunk {
	select {
	case c := <-r.free:
		c.pos, c.err = pos, nil
		return c
	default:
		return &chunk{items: make([]item, 0, r.chunkSize()), pos: pos}
	}
}

// recycle gives a written chunk to the reader to fill again, when there is
// room for it among those kept. The worker that tagged it is done with it;
// the sink may still hold slices and maps of its records (a segment's hub),
// which is why tag zeroes a record before decoding into it.
func (r *retagger) recycle(c *chunk) {
	clear(c.items) // holds no message or record of the folder's reader
	// Nor what its records were decoded into, kept from the collector
	// until they are decoded into again otherwise.
	clear(c.recs)
	c.items, c.done = c.items[:0], nil
	select {
	case r.free <- c:
	default:
	}
}

// item is one record to re-tag: raw JSON from the stream, or decoded from
// a folder with its labels before.
type item struct {
	raw    []byte
	seq    uint64 // stream sequence of raw
	tagged bool   // raw is a self-tagged record, not a raw one
	rec    *record.Record
	old    labels
}

// fromStream reads every record crawled up to now: the raw stream from
// after the checkpoint up to its last message at the start, and the
// records their fetcher tagged itself, whose only copy is on the tagged
// stream (selfTagged; tagging one again gives what tagging its raw record
// would). The two are read in the order they were stored (mergeParts), so
// the latest version of a record is still written last.
func (r *retagger) fromStream(ctx context.Context, bus *Bus) error {
	if bus == nil {
		return errors.New("reprocess --from stream needs NATS")
	}
	parts := []streamPart{{stream: StreamRaw, start: r.cp.Done + 1}, {stream: StreamTagged, filter: selfTagged, start: r.cp.Tagged + 1, tagged: true}}
	var todo []streamPart
	for _, p := range parts {
		from := p.start
		done, total, err := p.find(ctx, bus)
		if err != nil {
			return err
		}
		if p.filter == "" && from > 1 && p.start > from {
			// Resumed after records past the checkpoint left the stream.
			r.left(p.stream, p.start-from)
		}
		r.done, r.total = r.done+done, r.total+total
		if p.start <= p.last {
			todo = append(todo, p)
		}
	}
	if len(todo) == 0 {
		return r.commit(ctx, r.cp.position, false)
	}
	return r.run(ctx, func(ctx context.Context, emit func(*chunk) error) error {
		return r.mergeParts(ctx, bus, todo, emit)
	})
}

// streamPart is a stretch of a stream fromStream reads: from start up to
// last, the messages matching filter ("": all).
type streamPart struct {
	stream, filter string
	start, last    uint64
	tagged         bool // its sequences are the checkpoint's Tagged, not its Done
}

// find sets p.last, the last message there is now (and, for the whole
// stream, moves p.start past its first); it returns how many of its
// messages were done before and how many there are in all, for progress.
func (p *streamPart) find(ctx context.Context, bus *Bus) (done, total int64, err error) {
	if p.filter == "" {
		st, err := streamState(ctx, bus, p.stream)
		if err != nil {
			return 0, 0, err
		}
		if st.Msgs == 0 {
			return 0, 0, nil
		}
		p.start, p.last = max(p.start, st.FirstSeq), st.LastSeq
		return int64(min(p.start, p.last+1) - st.FirstSeq), int64(p.last - st.FirstSeq + 1), nil
	}
	if p.last, err = lastSeqOf(ctx, bus, p.stream, p.filter); err != nil || p.last < p.start {
		return 0, 0, err // none after the checkpoint
	}
	// How many there are after the checkpoint, from a consumer's count (a
	// stream's per-subject counts would list every record of versions that
	// gave a self-tagged record a subject of its own).
	c, err := bus.JS.CreateConsumer(ctx, p.stream, jetstream.ConsumerConfig{
		FilterSubject: p.filter, DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: p.start,
		AckPolicy: jetstream.AckNonePolicy, InactiveThreshold: time.Minute,
	})
	if err != nil {
		return 0, 0, err
	}
	info := c.CachedInfo()
	_ = bus.JS.DeleteConsumer(ctx, p.stream, info.Name)
	// Those a resumed run did before are not counted: the progress of
	// this part is of what is left.
	return 0, int64(info.NumPending), nil
}

// streamReader reads one streamPart, a message ahead, through a consumer
// of its own that the sink stage's puller pulls (readPull messages a pull,
// the next pull sent while the reader takes the last one's messages, on a
// goroutine of its own). nats.go's ordered consumer read a million
// records at about 75,000 a second and 12 CPU-seconds, and starved the
// taggers; these pulls read them at about 145,000 a second in 6.5.
type streamReader struct {
	streamPart
	batches <-chan pulledBatch
	batch   pulledBatch // being read
	head    jetstream.Msg
	at      storedAt // head's
	gone    uint64   // messages of the part that left the stream before they were read
}

// readPull is how many messages a pull of a streamReader asks for: a few
// chunks, so a pull's round trip (several goroutines of the server and
// the client, each waiting for a core while the workers tag) is paid once
// for thousands of records. Two pulls' messages are held at most.
const readPull = 8 * chunkSize

// readIdle bounds how long a pull waits for a message when there is none:
// the part's last message is there, so an empty pull means the messages
// left before it were dropped from the stream (its age or size limit).
const readIdle = time.Second

// readLateTries is how many empty pulls a reader waits for messages its
// consumer sent that have not come, before it gives up with an error.
const readLateTries = 30

// pulledBatch is what one pull brought, with its messages' metadata; a
// pull that failed has err.
type pulledBatch struct {
	msgs []jetstream.Msg
	at   []storedAt
	err  error
}

// startReading creates the part's consumer and starts pulling it on a
// goroutine that ends with ctx or when the part is read; stop deletes the
// consumer once the goroutine is done.
func (pr *streamReader) startReading(ctx context.Context, bus *Bus, log zerolog.Logger) (stop func(), err error) {
	c, err := bus.JS.CreateConsumer(ctx, pr.stream, jetstream.ConsumerConfig{
		FilterSubject: pr.filter, DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: pr.start,
		AckPolicy: jetstream.AckNonePolicy, MemoryStorage: true,
		// Removed by the server if this process dies without deleting it.
		InactiveThreshold: 10 * time.Minute,
	})
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", pr.stream, err)
	}
	p, err := newPuller(bus.NC, c, log)
	if err != nil {
		_ = bus.JS.DeleteConsumer(context.Background(), pr.stream, c.CachedInfo().Name)
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	batches := make(chan pulledBatch) // the next pull is sent once the reader took the last
	pr.batches = batches
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer close(batches)
		pr.pull(ctx, c, p, batches)
	}()
	return func() {
		cancel()
		<-done
		p.close()
		_ = bus.JS.DeleteConsumer(context.Background(), pr.stream, c.CachedInfo().Name)
	}, nil
}

// pull sends the part's messages to batches, a pull at a time, up to its
// last message or, when the messages before that one are gone from the
// stream, up to the last there is.
func (pr *streamReader) pull(ctx context.Context, c jetstream.Consumer, p *puller, batches chan<- pulledBatch) {
	send := func(b pulledBatch) bool {
		select {
		case batches <- b:
			return true
		case <-ctx.Done():
			return false
		}
	}
	seen := pr.start - 1 // the stream sequence of the last message received
	late := 0
	for ctx.Err() == nil {
		msgs, err := p.nextBatch(readPull, readIdle)
		if err != nil {
			send(pulledBatch{err: fmt.Errorf("reading %s: %w", pr.stream, err)})
			return
		}
		if len(msgs) == 0 {
			// Nothing came: the rest of the part may be gone, or the
			// server slow. Its consumer knows which.
			info, err := c.Info(ctx)
			if err != nil {
				send(pulledBatch{err: fmt.Errorf("reading %s: %w", pr.stream, err)})
				return
			}
			if info.NumPending == 0 && info.Delivered.Stream <= seen {
				return
			}
			// Sent but not here yet (a slow link, a paused process; the
			// consumer sends nothing twice): the next pull takes them.
			if info.NumPending == 0 {
				if late++; late > readLateTries {
					send(pulledBatch{err: fmt.Errorf("reading %s: messages up to sequence %d were sent but did not come in %d pulls; run again to resume", pr.stream, info.Delivered.Stream, readLateTries)})
					return
				}
			}
			continue
		}
		late = 0
		b := pulledBatch{msgs: msgs, at: make([]storedAt, len(msgs))}
		for i, m := range msgs {
			if b.at[i], err = storedAtOf(m); err != nil {
				send(pulledBatch{err: fmt.Errorf("reading %s: %w", pr.stream, err)})
				return
			}
		}
		seen = b.at[len(msgs)-1].seq
		end := seen >= pr.last // b is the reader's once sent
		if !send(b) || end {
			return
		}
	}
}

// next reads the part's next message into head, or sets it nil at the end
// (its last message, or the last there is when the messages before that
// one left the stream; those are counted in gone).
func (pr *streamReader) next(ctx context.Context) error {
	prev := pr.start - 1
	if pr.head != nil {
		prev = pr.at.seq
	}
	if len(pr.batch.msgs) == 0 {
		var ok bool
		select {
		case pr.batch, ok = <-pr.batches:
		case <-ctx.Done():
			return ctx.Err()
		}
		if pr.batch.err != nil {
			return pr.batch.err
		}
		if !ok {
			pr.batch = pulledBatch{}
		}
	}
	if len(pr.batch.msgs) == 0 || pr.batch.at[0].seq > pr.last {
		pr.head = nil
		pr.skip(prev, pr.last+1)
		return nil
	}
	pr.head, pr.at = pr.batch.msgs[0], pr.batch.at[0]
	pr.batch.msgs[0] = nil // the chunk holds its data from here
	pr.batch.msgs, pr.batch.at = pr.batch.msgs[1:], pr.batch.at[1:]
	pr.skip(prev, pr.at.seq)
	return nil
}

// skip counts the messages from after prev to before seq as gone, in a
// part of the whole stream (in a filtered one, the others are not its).
func (pr *streamReader) skip(prev, seq uint64) {
	if pr.filter == "" && seq > prev+1 {
		pr.gone += seq - prev - 1
	}
}

// left counts n records that left stream before they were read.
func (r *retagger) left(stream string, n uint64) {
	r.gone += n
	r.o.Log.Warn().Str("stream", stream).Uint64("messages", n).
		Msg("records left the stream (its age or size limit) before they were re-tagged: they are not in the new generation")
}

// mergeParts emits the messages of parts in chunks, the earliest stored
// first, each chunk with the position after it.
func (r *retagger) mergeParts(ctx context.Context, bus *Bus, parts []streamPart, emit func(*chunk) error) error {
	readers := make([]*streamReader, len(parts))
	defer func() {
		for _, pr := range readers {
			if pr != nil && pr.gone > 0 {
				r.left(pr.stream, pr.gone)
			}
		}
	}()
	for i, p := range parts {
		pr := &streamReader{streamPart: p}
		stop, err := pr.startReading(ctx, bus, r.o.Log)
		if err != nil {
			return err
		}
		defer stop()
		readers[i] = pr
		if err := pr.next(ctx); err != nil {
			return err
		}
	}
	c := r.newChunk(r.cp.position)
	for {
		var pr *streamReader // the earliest head
		for _, x := range readers {
			if x.head != nil && (pr == nil || x.at.ns < pr.at.ns) {
				pr = x
			}
		}
		if pr == nil {
			if len(c.items) > 0 {
				return emit(c)
			}
			return nil
		}
		seq := pr.at.seq
		if pr.tagged {
			c.pos.Tagged = seq
		} else {
			c.pos.Done = seq
		}
		c.items = append(c.items, item{raw: pr.head.Data(), seq: seq, tagged: pr.tagged})
		if err := pr.next(ctx); err != nil {
			return err
		}
		if len(c.items) == cap(c.items) {
			if err := emit(c); err != nil {
				return err
			}
			c = r.newChunk(c.pos)
		}
	}
}

// fromFolder reads every record the sink wrote at from, in the reader's
// stable order (for a folder: hub folders, then segments by name, then
// lines), so a checkpoint counts records.
func (r *retagger) fromFolder(ctx context.Context, from string) error {
	rd, err := sink.OpenReader(ctx, sink.Config{Out: from})
	if err != nil {
		return fmt.Errorf("reprocess --from %s: %w", from, err)
	}
	skip := r.cp.Done // read before the writer moves the checkpoint on
	r.done = int64(skip)
	var n uint64
	err = r.run(ctx, func(ctx context.Context, emit func(*chunk) error) error {
		c := r.newChunk(position{})
		err := rd.Records(ctx, func(rec *record.Record) error {
			n++
			if n <= skip {
				return nil
			}
			c.items, c.pos = append(c.items, item{rec: rec}), position{Done: n}
			if len(c.items) < cap(c.items) {
				return nil
			}
			err := emit(c)
			c = r.newChunk(position{})
			return err
		}, sink.ForTagging())
		if err != nil || len(c.items) == 0 {
			return err
		}
		return emit(c)
	})
	if err == nil && n == 0 {
		err = fmt.Errorf("reprocess --from %s: no records to re-tag there", from)
	}
	return err
}

// chunkSize: a chunk is at most a checkpoint's worth of records.
func (r *retagger) chunkSize() int { return min(chunkSize, r.o.Batch) }

// run tags what read emits on o.Workers goroutines and writes it in order
// as the chunks are done, a few chunks ahead of the writer at most.
func (r *retagger) run(ctx context.Context, read func(context.Context, func(*chunk) error) error) error {
	g, ctx := errgroup.WithContext(ctx)
	// Enough chunks in flight for the writer to write a batch of them
	// while every worker tags the next ones, and no more: they are the
	// memory reprocess holds (4,096 records ahead and pulls of 2 MiB were
	// measured: 2 to 20 % less CPU a record, but 20 to 25 MiB more peak
	// RSS at a million records, against issue 11's flat-memory line).
	// With room for one chunk a worker and one more, the reader stopped
	// while the writer wrote its 1,024 records, and the workers with it:
	// idle 7.3 to 8.7 s of a million records, against 1.7 to 2.7 s with
	// room for a write's worth more.
	perWrite := writeBatch / r.chunkSize()
	work := make(chan *chunk, r.o.Workers)
	inOrder := make(chan *chunk, r.o.Workers+1+perWrite)
	// As many as can be in flight: in the channels, with the workers and
	// the reader, and held by the writer for one write.
	r.free = make(chan *chunk, cap(work)+cap(inOrder)+r.o.Workers+1+perWrite)
	g.Go(func() error {
		defer close(inOrder)
		defer close(work)
		return read(ctx, func(c *chunk) error {
			c.done = make(chan struct{})
			for _, ch := range []chan *chunk{inOrder, work} {
				select {
				case ch <- c:
				case <-ctx.Done():
					return ctx.Err()
				}
			}
			return nil
		})
	})
	for range r.o.Workers {
		g.Go(func() error { r.work(ctx, work); return nil })
	}
	g.Go(func() error { return r.write(ctx, inOrder) })
	return g.Wait()
}

// work tags the chunks of work until it is closed. Once ctx is cancelled
// it only marks them so: the writer must not write a chunk left as read.
func (r *retagger) work(ctx context.Context, work <-chan *chunk) {
	var buf []byte // record.UnmarshalUntagged's
	for c := range work {
		if err := ctx.Err(); err != nil {
			c.err = err
		} else {
			buf = r.tag(c, buf)
		}
		close(c.done)
	}
}

// tag decodes (from the stream) and tags the records of a chunk. A
// self-tagged record is decoded without what tagging replaces, its
// evidence and scores (buf is record.UnmarshalUntagged's, returned for the
// next chunk); a raw record, which has none of it, whole.
func (r *retagger) tag(c *chunk, buf []byte) []byte {
	for i := range c.items {
		it := &c.items[i]
		if it.raw != nil {
			if len(c.recs) < len(c.items) { // a folder's chunks never need them
				c.recs = make([]record.Record, len(c.items))
			}
			it.rec = &c.recs[i]
			// Zeroed, not decoded over: decoding leaves the fields it does
			// not find as they were, and would write into slices and maps
			// the sink may still hold (a segment's hub).
			*it.rec = record.Record{}
			var err error
			if it.tagged {
				buf, err = record.UnmarshalUntagged(it.raw, it.rec, buf)
			} else {
				err = record.Unmarshal(it.raw, it.rec)
			}
			if err != nil {
				stream := StreamRaw
				if it.tagged {
					stream = StreamTagged
				}
				c.err = fmt.Errorf("the record at %s sequence %d: %w", stream, it.seq, err)
				return buf
			}
			it.raw = nil
		} else {
			it.old = labelsOf(it.rec)
		}
		r.o.Classifier.Tag(it.rec) // leaves a gone record as it is
		if i%16 == 15 {
			// Lets the reader's pulls through (the server's and the
			// client's goroutines) every few hundred microseconds rather
			// than when the scheduler preempts a worker, every 10 ms: with
			// both workers tagging, each hop of a pull waited for that, and
			// the workers then waited for records (a million records at
			// load 5: workers idle 50 of 142 s).
			runtime.Gosched()
		}
	}
	return buf
}

// write writes the tagged chunks in input order, a few at a time (see
// writeBatch), checkpointing every o.Batch records and at the end.
func (r *retagger) write(ctx context.Context, chunks <-chan *chunk) (err error) {
	defer func() { // a commit still sealing ends before the run does
		if werr := r.waitCommit(); err == nil {
			err = werr
		}
	}()
	pending := 0 // records written since the last checkpoint
	pos := r.cp.position
	var group []*chunk // tagged, not written yet
	held := 0          // records in group
	recs := make([]*record.Record, 0, writeBatch+r.chunkSize())
	flush := func() error {
		recs = recs[:0]
		for _, c := range group {
			for _, it := range c.items {
				recs = append(recs, it.rec)
			}
		}
		if _, err := r.out.Write(ctx, recs); err != nil {
			return err
		}
		for _, c := range group {
			for _, it := range c.items {
				if err := r.newL.add(it.rec.ID, labelsOf(it.rec)); err != nil {
					return err
				}
				if r.o.From != "stream" {
					if err := r.oldL.add(it.rec.ID, it.old); err != nil {
						return err
					}
				}
				for _, tag := range it.rec.Under(r.o.MinConfidence) {
					r.under[tag]++
				}
			}
			pos, pending, r.done = c.pos, pending+len(c.items), r.done+int64(len(c.items))
			r.recycle(c)
		}
		clear(group)
		group, held = group[:0], 0
		if pending >= r.o.Batch {
			// Sealed while the next records are written (startCommit).
			if err := r.startCommit(ctx, pos, true); err != nil {
				return err
			}
			pending = 0
		}
		return nil
	}
	for c := range chunks {
		select {
		case <-c.done:
		case <-ctx.Done():
			return ctx.Err()
		}
		// Both may be ready, and select takes either: a chunk is written
		// only if it was tagged and nothing stopped the run meanwhile.
		if c.err != nil {
			return c.err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		group, held = append(group, c), held+len(c.items)
		if held >= writeBatch || pending+held >= r.o.Batch {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	if held > 0 {
		if err := flush(); err != nil {
			return err
		}
	}
	return r.commit(ctx, pos, pending > 0)
}

// commit seals the records written and their labels, then records how far
// it got (and reports progress, if progress): what the checkpoint lists is
// on disk.
func (r *retagger) commit(ctx context.Context, pos position, progress bool) error {
	if err := r.startCommit(ctx, pos, progress); err != nil {
		return err
	}
	return r.waitCommit()
}

// pendingCommit is a commit startCommit began: its checkpoint, written
// once its records are sealed.
type pendingCommit struct {
	cp   checkpoint
	done chan error
}

// startCommit begins a commit up to pos, after waiting for the one begun
// before: it writes out the label logs, then seals the records written on
// another goroutine (sink.BackgroundFlusher) while the writer goes on with
// the next ones. Only once they are sealed is the checkpoint written (and
// progress reported, if progress), so what it lists is on disk.
func (r *retagger) startCommit(ctx context.Context, pos position, progress bool) error {
	if err := r.waitCommit(); err != nil {
		return err
	}
	for _, g := range []*labelLog{r.newL, r.oldL} {
		if err := g.flush(); err != nil {
			return err
		}
		if err := g.compact(); err != nil {
			return err
		}
	}
	p := &pendingCommit{cp: *r.cp, done: make(chan error, 1)}
	p.cp.position, p.cp.New, p.cp.Old = pos, r.newL.state(), r.oldL.state()
	removeNew, removeOld := r.newL.takeStale(), r.oldL.takeStale()
	done, total := r.done, r.total
	sealed := r.out.StartFlush(ctx)
	r.pending = p
	go func() {
		err := sealed()
		if err == nil {
			// The label-log parts the checkpoint lists must outlive a
			// power loss by name, as the checkpoint will.
			err = sink.SyncDir(r.state)
		}
		if err == nil {
			b, _ := json.Marshal(p.cp)
			err = sink.WriteFileAtomic(filepath.Join(r.next, checkpointFile), b)
		}
		if err == nil {
			removeNew()
			removeOld()
			if progress && r.o.Progress != nil {
				r.o.Progress(done, total)
			}
		}
		p.done <- err
	}()
	return nil
}

// waitCommit waits for the commit startCommit began, if any.
func (r *retagger) waitCommit() error {
	p := r.pending
	if p == nil {
		return nil
	}
	r.pending = nil
	if err := <-p.done; err != nil {
		// What was written since is dropped, not sealed when the run
		// closes its output: the resumed run writes this batch again, and
		// a later version sealed ahead of it would pass for the older one.
		r.out.Discard()
		return err
	}
	*r.cp = p.cp
	return nil
}

func label(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

// WriteChanges prints a change summary, most frequent first.
func (r *ReprocessResult) WriteChanges(w *bufio.Writer) {
	fmt.Fprintf(w, "%d records re-tagged with rules %s; %d changed a label\n", r.Records, r.RulesVersion, r.Changed)
	if r.Gone > 0 {
		fmt.Fprintf(w, "%d records left the stream (its age or size limit) before they were re-tagged and are not in the new generation\n", r.Gone)
	}
	if r.Under != nil {
		fmt.Fprintf(w, "tags under the minimum confidence: role %d, polarity %d, pluralism %d\n", r.Under["role"], r.Under["polarity"], r.Under["pluralism"])
	}
	for _, tag := range []string{"role", "polarity", "pluralism"} {
		type kv struct {
			k string
			n int
		}
		var xs []kv
		for k, n := range r.Changes[tag] {
			xs = append(xs, kv{k, n})
		}
		sort.Slice(xs, func(i, j int) bool { return xs[i].n > xs[j].n || xs[i].n == xs[j].n && xs[i].k < xs[j].k })
		for _, x := range xs {
			fmt.Fprintf(w, "  %-9s %-40s %d\n", tag, x.k, x.n)
		}
	}
	w.Flush()
}
