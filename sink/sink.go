// Package sink writes tagged records out and reads them back. Open picks
// the kind of sink from sink.out; every sink buffers what it is given and
// makes it durable and visible only on Flush. The sink stage acks messages
// after a Flush succeeded, so nothing acked can be lost and nothing
// half-written can be seen. OpenReader reads back what a sink wrote, for
// the report and reprocess commands.
package sink

import (
	"context"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/citecrawl/citecrawl/record"
)

// kinds are the sinks Open can make, by the name sink.out gives them
// ("NAME://TARGET"). A new kind of sink is one file with its open (and, if
// it can be read back, read) function and one line here;
// TestSinkConformance runs every kind listed.
var kinds = map[string]kind{
	"jsonl":  {target: "a folder", open: openJSONL, read: openJSONLReader}, // jsonl.go
	"stdout": {open: openLines},                                            // stdout.go
}

// kind is how to open one kind of sink on a target (what follows
// "NAME://" in sink.out).
type kind struct {
	target string // what the target must name; "" when it takes none
	open   func(ctx context.Context, target string, cfg Config, env env) (Sink, error)
	read   func(ctx context.Context, target string, cfg Config) (Reader, error) // nil: cannot be read back
}

// Sealed counts what a sink has made durable and visible so far.
type Sealed struct {
	Segments int64
	Bytes    int64
	Records  int64 // record versions made visible, not counting those another writer had written
}

// SealCounter is implemented by sinks that write files, for the metrics.
type SealCounter interface{ Sealed() Sealed }

// Config says where records go and how each kind of sink is tuned; each
// kind has its own struct. Their defaults are in pipeline.DefaultConfig,
// with every other default of citecrawl.
type Config struct {
	// Out picks the sink: "-" (or stdout://) for JSON lines on standard
	// output, a folder (or jsonl://FOLDER) for a folder per hub of JSON
	// Lines segments, NAME://TARGET for any other kind listed in kinds.
	Out string `yaml:"out"`
	// JSONLConfig tunes the folder sink. It is embedded so that its
	// options stay directly under sink: (sink.segment_max_bytes).
	JSONLConfig `yaml:",inline"`
	// UnavailableTimeout is how long the sink stage waits for a full or
	// read-only output to take records again, holding them, before it
	// gives up and the run ends with an error (the records stay in the
	// stream for the next run).
	UnavailableTimeout time.Duration `yaml:"unavailable_timeout"`
}

// reScheme finds the kind in sink.out: "NAME://".
var reScheme = regexp.MustCompile(`^([a-z][a-z0-9+.-]*)://`)

// resolve names the kind of sink cfg.Out asks for and its target.
func (c Config) resolve() (string, kind, string, error) {
	name, target := "jsonl", c.Out
	switch m := reScheme.FindStringSubmatch(c.Out); {
	case c.Out == "-":
		name, target = "stdout", ""
	case m != nil:
		name, target = m[1], c.Out[len(m[0]):]
	}
	k, ok := kinds[name]
	if !ok {
		return "", kind{}, "", fmt.Errorf("sink.out %q: no sink of kind %q (known: %s)", c.Out, name, strings.Join(kindNames(), ", "))
	}
	if target == "" && k.target != "" {
		return "", kind{}, "", fmt.Errorf("sink.out %q: the %s sink needs %s", c.Out, name, k.target)
	}
	return name, k, target, nil
}

func kindNames() []string {
	names := make([]string, 0, len(kinds))
	for n := range kinds {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// Validate names what is wrong with the configuration, before anything is
// opened.
func (c Config) Validate() error {
	_, _, _, err := c.resolve()
	return err
}

// Folder is the local folder the output is written to, if it is one:
// the run reports go beside the records, and reprocess builds a new
// generation next to it.
func (c Config) Folder() (string, bool) {
	name, _, target, err := c.resolve()
	return target, err == nil && name == "jsonl"
}

// Sink is what the sink stage writes to. The context bounds what a sink
// can cancel (a network request); a file sink finishes a seal it began.
type Sink interface {
	// Write buffers records, in order, and says how many were new: a
	// record already written with the same content (the same id and
	// fingerprint) is skipped. On an error, the count is of those new
	// before it. Given many at once, a sink can encode them on several
	// cores.
	Write(ctx context.Context, records []*record.Record) (int, error)
	// WriteLines is Write given records already encoded: each line's
	// JSON is written as it is.
	WriteLines(ctx context.Context, lines []Line) (int, error)
	// Flush makes everything written so far durable and visible. When it
	// fails, what was written since the last Flush may be lost and must
	// not count as written: the stage has it delivered again.
	Flush(ctx context.Context) error
	// Close flushes and releases the sink.
	Close(ctx context.Context) error
	// Batching says how much the sink wants to be given between flushes.
	Batching() Batching
}

// BackgroundFlusher is implemented by sinks that can make what was written
// durable while more is written (the folder sink): a batch job overlaps
// the wait for the disk with its own work.
type BackgroundFlusher interface {
	// StartFlush begins making everything written so far durable and
	// visible, as Flush does (summaries aside), and returns at once; wait
	// returns its result, each time it is called. What is written
	// meanwhile is not part of it. A flush begun before is waited for
	// first, and Flush and Close wait for the last one (and report its
	// failure if wait has not). ctx is not used by the folder sink: a
	// seal once begun is finished.
	StartFlush(ctx context.Context) (wait func() error)
	// Discard drops what was written since the last flush began, never
	// making it visible: after a flush failed, a job that resumes from
	// before it writes those records again, and they must not be found
	// behind later ones sealed first.
	Discard()
}

// Batching is when a sink wants what it holds flushed: after this many
// records, this many bytes, or this long after the first record since the
// last flush, whichever comes first. A zero field sets no limit. The
// stage that writes to the sink keeps the count (it also flushes when its
// input goes quiet), so a sink need not track it.
type Batching struct {
	Records int
	Bytes   int64
	Age     time.Duration
}

// Due tells whether a batch of records and bytes that began age ago
// should be flushed.
func (b Batching) Due(records int, bytes int64, age time.Duration) bool {
	return records > 0 && (b.Records > 0 && records >= b.Records ||
		b.Bytes > 0 && bytes >= b.Bytes ||
		b.Age > 0 && age >= b.Age)
}

// Option is an optional setting of Open.
type Option func(*env)

// env is what a sink gets from the process besides its config.
type env struct {
	log            zerolog.Logger
	stdout         io.Writer
	summaryOnClose bool
	dedupeAtSeal   bool
	ownFolder      bool
}

// WithLogger logs through log (nothing by default).
func WithLogger(log zerolog.Logger) Option { return func(e *env) { e.log = log } }

// WithStdout is where the stdout sink writes: the command's standard output.
func WithStdout(w io.Writer) Option { return func(e *env) { e.stdout = w } }

// WithSummaryOnClose has a sink that keeps summaries (the folder sink's
// summary.json) write them only on Close rather than at every Flush: for
// a batch job that flushes often and reads them at the end.
func WithSummaryOnClose() Option { return func(e *env) { e.summaryOnClose = true } }

// WithDedupeAtSeal has a sink that tells records already written by an
// index (the folder sink) leave them out only when it seals them, not look
// each one up as Write takes it: Write then counts them as new, and each
// one found at the seal costs a rewrite of its segment. For a writer whose
// output holds few of the records it is given, such as reprocess building
// a new generation, it saves a look-up per record (about a fifth of the
// writer's time at a million records).
func WithDedupeAtSeal() Option { return func(e *env) { e.dedupeAtSeal = true } }

// WithOwnFolder tells a sink that keeps an index per hub folder (the
// folder sink) that no other writer uses its output while it is open, so
// it keeps each index open from one seal to the next rather than opening
// it every seal: a million records into 20 hub folders allocate a quarter
// less in the index (sink's BenchmarkIndexSeal). For reprocess's new
// generation; another writer's look-ups would wait for the index. With
// WithDedupeAtSeal and WithSummaryOnClose too, the versions it seals are
// added to the index only at Close, in id order, from sorted runs (see
// runsDir): a version sealed twice is then dropped from the later
// segment, as the seal would have.
func WithOwnFolder() Option { return func(e *env) { e.ownFolder = true } }

// Open opens the sink cfg.Out names.
func Open(ctx context.Context, cfg Config, opts ...Option) (Sink, error) {
	_, k, target, err := cfg.resolve()
	if err != nil {
		return nil, err
	}
	e := env{log: zerolog.Nop()}
	for _, o := range opts {
		o(&e)
	}
	return k.open(ctx, target, cfg, e)
}

// Reader reads back what a sink wrote.
type Reader interface {
	// Records calls fn with every record version written, oldest first
	// within a hub; with OfHub, those of one hub only.
	Records(ctx context.Context, fn func(*record.Record) error, opts ...ReadOption) error
	// EachLatest calls fn with the tags of the latest version of every
	// record.
	EachLatest(ctx context.Context, fn func(id string, t Tags)) error
}

// ReadOption narrows what a Reader reads.
type ReadOption func(*readOptions)

type readOptions struct {
	hub        string
	forTagging bool
}

// OfHub reads the records of one hub (its id).
func OfHub(id string) ReadOption { return func(o *readOptions) { o.hub = id } }

// ForTagging reads records to be tagged again: without the detail of
// their tags, which tagging replaces (record.UnmarshalUntagged).
func ForTagging() ReadOption { return func(o *readOptions) { o.forTagging = true } }

// ErrNoOutput is returned by OpenReader when nothing was written there yet.
var ErrNoOutput = errors.New("nothing written there")

// OpenReader opens what the sink cfg.Out names wrote, for reading.
func OpenReader(ctx context.Context, cfg Config) (Reader, error) {
	name, k, target, err := cfg.resolve()
	if err != nil {
		return nil, err
	}
	if k.read == nil {
		return nil, fmt.Errorf("sink.out %q: the %s sink cannot be read back", cfg.Out, name)
	}
	return k.read(ctx, target, cfg)
}
