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
	// From is "stream" (the raw-record stream) or a folder of JSON Lines
	// output written by the sink.
	From string
	// Out is the output folder. The new generation is built beside it and
	// replaces it only once whole; the old one is kept as Out + ".prev".
	Out        string
	Classifier *classify.Classifier
	Workers    int
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
	out, err := sink.NewJSONL(sink.Config{Out: next, SegmentMaxBytes: 64 << 20, SegmentMaxAge: 24 * time.Hour, SummaryOnClose: true}, o.Log)
	if err != nil {
		return nil, err
	}
	// Seal, then record how far we got: what is in the checkpoint is on disk.
	commit := func(done uint64) error {
		if err := out.Flush(); err != nil {
			return err
		}
		cp.Done = done
		b, _ := json.Marshal(cp)
		return sink.WriteFileAtomic(filepath.Join(next, checkpointFile), b)
	}
	t := &tagger{c: o.Classifier, workers: o.Workers, out: out, batchSize: o.Batch, minConf: o.MinConfidence, under: map[string]int{}}
	if res.Resumed {
		// What the interrupted run sealed counts too.
		if err := out.LoadExisting(); err != nil {
			return nil, err
		}
	}
	if o.From == "stream" {
		err = reprocessStream(ctx, bus, &cp, t, commit, o.Progress)
	} else {
		err = reprocessDir(ctx, o.From, &cp, t, commit, o.Progress)
	}
	if err != nil {
		return res, err
	}
	if err := out.Close(); err != nil {
		return res, err
	}
	// Compare the new generation with the old output, then swap it in.
	oldTags, err := latestTags(oldSource(o))
	if err != nil {
		return res, err
	}
	res.Changes, res.Changed, res.Records = compareTags(oldTags, out)
	if o.MinConfidence > 0 {
		res.Under = t.under
	}
	if err := os.Remove(filepath.Join(next, checkpointFile)); err != nil {
		return res, err
	}
	return res, sink.PublishGeneration(next, o.Out, filepath.Clean(o.Out)+".prev")
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
	out       *sink.JSONL
	minConf   float64
	under     map[string]int // tags under minConf, counted as written
}

// item is one record to re-tag: raw JSON (from the stream) or decoded
// (from a folder).
type item struct {
	raw []byte
	rec *record.Record
	enc sink.Encoded
	err error
}

// batch decodes, tags and encodes the items on all workers, then writes
// them in order: only the write is sequential.
func (t *tagger) batch(items []item) error {
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
				if !it.rec.Gone {
					t.c.Tag(it.rec)
				}
				it.enc, it.err = sink.Encode(it.rec)
			}
		})
	}
	wg.Wait()
	for _, it := range items {
		if it.err != nil {
			return it.err
		}
		for _, tag := range it.rec.Under(t.minConf) {
			t.under[tag]++
		}
		if _, err := t.out.WriteEncoded(it.enc); err != nil {
			return err
		}
	}
	return nil
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
			if err := t.batch(batch); err != nil {
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

// reprocessDir reads every record of a sink output folder, in a stable
// order (hub folders, then segments by name, then lines).
func reprocessDir(ctx context.Context, dir string, cp *checkpoint, t *tagger, commit func(uint64) error, progress func(int64, int64)) error {
	files, err := outputSegments(dir)
	if err != nil {
		return err
	}
	if len(files) == 0 {
		return fmt.Errorf("reprocess --from %s: no segment files (seg-*.jsonl) under it", dir)
	}
	var n uint64
	batch := make([]item, 0, t.batchSize)
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		if err := t.batch(batch); err != nil {
			return err
		}
		batch = batch[:0]
		if progress != nil {
			progress(int64(n), 0)
		}
		return commit(n)
	}
	for _, f := range files {
		err := sink.ReadSegment(f, func(r *record.Record) error {
			if ctx.Err() != nil {
				return ctx.Err()
			}
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
	}
	return flush()
}

func outputSegments(dir string) ([]string, error) {
	hubs, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("reading output %s: %w", dir, err)
	}
	var files []string
	for _, h := range hubs {
		if !h.IsDir() {
			continue
		}
		fs, err := sink.SegmentFiles(filepath.Join(dir, h.Name()))
		if err != nil {
			return nil, err
		}
		files = append(files, fs...)
	}
	return files, nil
}

// latestTags reads the tags of the latest version of every record in an
// output folder (none when it does not exist).
func latestTags(dir string) (map[string]sink.Tags, error) {
	tags := map[string]sink.Tags{}
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		return tags, nil
	}
	files, err := outputSegments(dir)
	if err != nil {
		return nil, err
	}
	for _, f := range files {
		if err := sink.ReadTags(f, func(id string, t sink.Tags) { tags[id] = t }); err != nil {
			return nil, err
		}
	}
	return tags, nil
}

// compareTags counts label changes between the old tags and the latest
// version of every record in the new output.
func compareTags(old map[string]sink.Tags, cur *sink.JSONL) (map[string]map[string]int, int64, int64) {
	changes := map[string]map[string]int{"role": {}, "polarity": {}, "pluralism": {}}
	var changed, records int64
	cur.EachLatest(func(id string, n sink.Tags) {
		records++
		o, ok := old[id]
		if !ok {
			return
		}
		any := false
		for _, c := range []struct{ tag, from, to string }{
			{"role", o.Role, n.Role}, {"polarity", o.Polarity, n.Polarity}, {"pluralism", o.Pluralism, n.Pluralism},
		} {
			if c.from != c.to {
				changes[c.tag][label(c.from)+" -> "+label(c.to)]++
				any = true
			}
		}
		if any {
			changed++
		}
	})
	return changes, changed, records
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
