package pipeline

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

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
	// (2,048 if zero).
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
}

// checkpoint is written into the unfinished generation after every sealed
// batch, so an interrupted reprocess resumes instead of starting over.
type checkpoint struct {
	From  string `json:"from"`
	Rules string `json:"rules_version"`
	Done  uint64 `json:"done"` // last stream sequence, or records read from a folder
}

const checkpointFile = ".reprocess-checkpoint.json"

// ErrShrink is returned by Reprocess when the new generation would
// replace a non-empty output with an empty or much smaller one and
// ReprocessOptions.AllowShrink is not set. Nothing was replaced.
var ErrShrink = errors.New("reprocess would shrink the output")

// shrinks says whether a generation of n records is much smaller than an
// output of old records: fewer than half of them.
func shrinks(old, n int) bool { return old > 0 && 2*n < old }

// Reprocess re-tags everything already crawled with the current rules,
// with no network. bus may be nil when reading from a folder.
func Reprocess(ctx context.Context, bus *Bus, o ReprocessOptions) (*ReprocessResult, error) {
	if o.Workers < 1 {
		o.Workers = 2
	}
	if o.Batch < 1 {
		o.Batch = 2048
	}
	next := filepath.Clean(o.Out) + ".next"
	res := &ReprocessResult{RulesVersion: o.Classifier.Version()}
	cp := checkpoint{From: o.From, Rules: o.Classifier.Version()}
	var old checkpoint
	if b, err := os.ReadFile(filepath.Join(next, checkpointFile)); err == nil && json.Unmarshal(b, &old) == nil &&
		old.From == cp.From && old.Rules == cp.Rules {
		cp.Done, res.Resumed = old.Done, true
		o.Log.Info().Uint64("done", cp.Done).Msg("resuming an interrupted reprocess")
	} else if err := os.RemoveAll(next); err != nil {
		return nil, err
	}
	// A batch job: big segments sealed at every checkpoint, summaries
	// written once at the end.
	nextCfg := sink.Config{Out: "jsonl://" + next, JSONLConfig: sink.JSONLConfig{SegmentMaxBytes: 64 << 20, SegmentMaxAge: 24 * time.Hour}}
	out, err := sink.Open(ctx, nextCfg, sink.WithLogger(o.Log), sink.WithSummaryOnClose())
	if err != nil {
		return nil, err
	}
	closed := false
	defer func() {
		if !closed {
			// Interrupted: seal what was written, with the summaries of
			// its hubs, for the resumed run to build on.
			_ = out.Close(context.Background())
		}
	}()
	// Seal, then record how far we got: what is in the checkpoint is on disk.
	commit := func(done uint64) error {
		if err := out.Flush(ctx); err != nil {
			return err
		}
		cp.Done = done
		b, _ := json.Marshal(cp)
		return sink.WriteFileAtomic(filepath.Join(next, checkpointFile), b)
	}
	names := &labelTable{index: map[string]uint16{}}
	t := &tagger{c: o.Classifier, workers: o.Workers, out: out, batchSize: o.Batch, names: names, latest: map[string]labels{}, minConf: o.MinConfidence, under: map[string]int{}}
	if res.Resumed {
		// What the interrupted run sealed counts too.
		if t.latest, err = latestLabels(ctx, nextCfg.Out, names); err != nil {
			return nil, err
		}
	}
	if o.From == "stream" {
		err = reprocessStream(ctx, bus, &cp, t, commit, o.Progress)
	} else {
		err = reprocessSink(ctx, o.From, &cp, t, commit, o.Progress)
	}
	if err != nil {
		return res, err
	}
	closed = true
	if err := out.Close(ctx); err != nil {
		return res, err
	}
	// Compare the new generation with the old output, then swap it in.
	before, err := latestLabels(ctx, oldSource(o), names)
	if err != nil {
		return res, err
	}
	res.Changes, res.Changed, res.Records = compareLabels(before, t.latest, names)
	current := before // what the new generation replaces
	if filepath.Clean(oldSource(o)) != filepath.Clean(o.Out) {
		if current, err = latestLabels(ctx, o.Out, names); err != nil {
			return res, err
		}
	}
	if shrinks(len(current), len(t.latest)) && !o.AllowShrink {
		// Dropped, not kept to resume: its checkpoint is of the wrong input.
		_ = os.RemoveAll(next)
		return res, fmt.Errorf("%w: %s holds %d records, the new generation from %s only %d; nothing was replaced (is --data or --from the input this output was built from? --allow-shrink replaces it anyway)",
			ErrShrink, o.Out, len(current), o.From, len(t.latest))
	}
	if o.MinConfidence > 0 {
		res.Under = t.under
	}
	if err := os.Remove(filepath.Join(next, checkpointFile)); err != nil {
		return res, err
	}
	if err := carryRuns(o.Out, next); err != nil {
		return res, err
	}
	return res, sink.PublishGeneration(next, o.Out, filepath.Clean(o.Out)+".prev")
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

// tagger tags records on several cores and writes them in input order.
type tagger struct {
	c         *classify.Classifier
	workers   int
	batchSize int
	out       sink.Sink
	names     *labelTable
	latest    map[string]labels // of every record written, to compare with the old output
	minConf   float64
	under     map[string]int // tags under minConf, counted as written
}

// item is one record to re-tag: raw JSON (from the stream) or decoded
// (from a folder).
type item struct {
	raw []byte
	rec *record.Record
	err error
}

// batch decodes and tags the items on all workers, then writes them in
// order.
func (t *tagger) batch(ctx context.Context, items []item) error {
	var wg sync.WaitGroup
	chunk := (len(items) + t.workers - 1) / t.workers
	for w := 0; w < t.workers; w++ {
		lo, hi := w*chunk, min((w+1)*chunk, len(items))
		if lo >= hi {
			break
		}
		wg.Go(func() {
			for i := range items[lo:hi] {
				it := &items[lo+i]
				if it.rec == nil {
					it.rec = &record.Record{}
					if it.err = json.Unmarshal(it.raw, it.rec); it.err != nil {
						continue
					}
				}
				t.c.Tag(it.rec) // leaves a gone record as it is
			}
		})
	}
	wg.Wait()
	recs := make([]*record.Record, len(items))
	for i, it := range items {
		if it.err != nil {
			return it.err
		}
		recs[i] = it.rec
		t.latest[it.rec.ID] = t.names.of(sink.TagsOf(it.rec))
		for _, tag := range it.rec.Under(t.minConf) {
			t.under[tag]++
		}
	}
	_, err := t.out.Write(ctx, recs)
	return err
}

// reprocessStream reads the raw stream from after the checkpoint up to its
// last message at the start.
func reprocessStream(ctx context.Context, bus *Bus, cp *checkpoint, t *tagger, commit func(uint64) error, progress func(int64, int64)) error {
	if bus == nil {
		return errors.New("reprocess --from stream needs NATS")
	}
	s, err := bus.JS.Stream(ctx, StreamRaw)
	if err != nil {
		return err
	}
	info, err := s.Info(ctx)
	if err != nil {
		return err
	}
	last, first := info.State.LastSeq, info.State.FirstSeq
	if cp.Done >= last || info.State.Msgs == 0 {
		return commit(cp.Done)
	}
	start := max(cp.Done+1, first)
	cons, err := bus.JS.OrderedConsumer(ctx, StreamRaw, jetstream.OrderedConsumerConfig{
		DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: start,
	})
	if err != nil {
		return err
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(4096))
	if err != nil {
		return err
	}
	defer it.Stop()
	total := int64(last - first + 1)
	done := int64(start - first)
	batch := make([]item, 0, t.batchSize)
	var seq uint64
	for seq < last {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		m, err := it.Next()
		if err != nil {
			return err
		}
		meta, err := m.Metadata()
		if err != nil {
			return err
		}
		seq = meta.Sequence.Stream
		batch = append(batch, item{raw: m.Data()})
		if len(batch) == cap(batch) || seq >= last {
			if err := t.batch(ctx, batch); err != nil {
				return err
			}
			done += int64(len(batch))
			batch = batch[:0]
			if err := commit(seq); err != nil {
				return err
			}
			if progress != nil {
				progress(done, total)
			}
		}
	}
	return nil
}

// reprocessSink reads every record the sink wrote at from, in the
// reader's stable order (for a folder: hub folders, then segments by
// name, then lines), so a checkpoint counts records.
func reprocessSink(ctx context.Context, from string, cp *checkpoint, t *tagger, commit func(uint64) error, progress func(int64, int64)) error {
	rd, err := sink.OpenReader(ctx, sink.Config{Out: from})
	if err != nil {
		return fmt.Errorf("reprocess --from %s: %w", from, err)
	}
	var n uint64
	batch := make([]item, 0, t.batchSize)
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		if err := t.batch(ctx, batch); err != nil {
			return err
		}
		batch = batch[:0]
		if progress != nil {
			progress(int64(n), 0)
		}
		return commit(n)
	}
	err = rd.Records(ctx, func(r *record.Record) error {
		n++
		if n <= cp.Done {
			return nil
		}
		batch = append(batch, item{rec: r})
		if len(batch) == cap(batch) {
			return flush()
		}
		return nil
	})
	if err != nil {
		return err
	}
	if n == 0 {
		return fmt.Errorf("reprocess --from %s: no records to re-tag there", from)
	}
	return flush()
}

// labels are the labels reprocess compares (role, polarity, pluralism)
// as numbers in a labelTable: the map of every record's labels then holds
// nothing but its keys for the garbage collector to scan.
type labels [3]uint16

// labelTable numbers label names.
type labelTable struct {
	names []string
	index map[string]uint16
}

func (lt *labelTable) id(name string) uint16 {
	if i, ok := lt.index[name]; ok {
		return i
	}
	lt.names = append(lt.names, name)
	lt.index[name] = uint16(len(lt.names) - 1)
	return lt.index[name]
}

func (lt *labelTable) of(t sink.Tags) labels {
	return labels{lt.id(t.Role), lt.id(t.Polarity), lt.id(t.Pluralism)}
}

// latestLabels reads the labels of the latest version of every record the
// sink wrote at out (none when nothing was written there).
func latestLabels(ctx context.Context, out string, lt *labelTable) (map[string]labels, error) {
	latest := map[string]labels{}
	rd, err := sink.OpenReader(ctx, sink.Config{Out: out})
	if errors.Is(err, sink.ErrNoOutput) {
		return latest, nil
	}
	if err != nil {
		return nil, err
	}
	err = rd.EachLatest(ctx, func(id string, t sink.Tags) { latest[id] = lt.of(t) })
	return latest, err
}

// compareLabels counts label changes between the old labels and the
// latest version of every record in the new output.
func compareLabels(old, cur map[string]labels, lt *labelTable) (map[string]map[string]int, int64, int64) {
	tags := [3]string{"role", "polarity", "pluralism"}
	changes := map[string]map[string]int{"role": {}, "polarity": {}, "pluralism": {}}
	var changed int64
	for id, n := range cur {
		o, ok := old[id]
		if !ok || o == n {
			continue
		}
		changed++
		for i, tag := range tags {
			if o[i] != n[i] {
				changes[tag][label(lt.names[o[i]])+" -> "+label(lt.names[n[i]])]++
			}
		}
	}
	return changes, changed, int64(len(cur))
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
