package sink

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/citecrawl/citecrawl/record"
)

func testRecords(n int, hubs ...string) []*record.Record {
	var out []*record.Record
	for _, hub := range hubs {
		for i := range n {
			r := &record.Record{
				Schema: record.Schema, ID: record.ID(hub, fmt.Sprint(i)),
				Hub:   record.Hub{ID: hub, URL: "https://pith.science/citations/" + hub, Title: "Hub " + hub},
				Paper: record.Paper{Title: fmt.Sprintf("Paper %d", i), Published: fmt.Sprintf("%d-01-01", 2024+i%2)},
				Role:  record.Roles[i%len(record.Roles)], RoleSource: record.RoleSourceSummary,
				Polarity:  record.Polarities[i%3],
				Pluralism: &record.Pluralism{Primary: record.PluralismNone, Labels: []string{record.PluralismNone}},
				FetchedAt: time.Date(2026, 1, 1, 0, 0, i, 0, time.UTC),
			}
			out = append(out, r)
		}
	}
	return out
}

// openKind opens the sink of one registered kind on a fresh target; the
// returned function reads back what is visible: through the kind's
// Reader, or from standard output for a sink that cannot be read back.
func openKind(t *testing.T, name string) (open func() Sink, visible func() []record.Record, reader func() Reader) {
	dir := t.TempDir()
	cfg := testConfig()
	cfg.Out = name + "://" + dir
	var stdout bytes.Buffer
	ctx := context.Background()
	open = func() Sink {
		s, err := Open(ctx, cfg, WithStdout(&stdout), WithLogger(zerolog.Nop()))
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	visible = func() []record.Record {
		var out []record.Record
		if kinds[name].read == nil {
			sc := bufio.NewScanner(bytes.NewReader(stdout.Bytes()))
			for sc.Scan() {
				var r record.Record
				if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
					t.Fatalf("output line %q: %v", sc.Text(), err)
				}
				out = append(out, r)
			}
			return out
		}
		if err := reader().Records(ctx, func(r *record.Record) error { out = append(out, *r); return nil }); err != nil {
			t.Fatal(err)
		}
		return out
	}
	reader = func() Reader {
		rd, err := OpenReader(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		return rd
	}
	return open, visible, reader
}

// writeWays are the two ways records reach a sink: as records (Write),
// and already encoded (WriteLines, given each record's JSON and
// fingerprint as the stages publish them).
var writeWays = map[string]func(ctx context.Context, s Sink, recs []*record.Record) (int, error){
	"records": func(ctx context.Context, s Sink, recs []*record.Record) (int, error) { return s.Write(ctx, recs) },
	"lines": func(ctx context.Context, s Sink, recs []*record.Record) (int, error) {
		lines := make([]Line, len(recs))
		for i, r := range recs {
			b, fp, err := record.MarshalLine(r)
			if err != nil {
				return 0, err
			}
			if lines[i], err = ParseLine(b[:len(b)-1], fp); err != nil {
				return 0, err
			}
		}
		return s.WriteLines(ctx, lines)
	},
}

// TestSinkConformance is the contract every kind of sink passes, given
// records either way: nothing visible before Flush, each record once
// after, a redelivered record not written again, and for a sink that can
// be read back, not after a reopen either, and its latest versions read
// back.
func TestSinkConformance(t *testing.T) {
	for _, name := range kindNames() {
		for way, write := range writeWays {
			t.Run(name+"/"+way, func(t *testing.T) { conform(t, name, write) })
		}
	}
}

func conform(t *testing.T, name string, write func(ctx context.Context, s Sink, recs []*record.Record) (int, error)) {
	ctx := context.Background()
	open, visible, reader := openKind(t, name)
	recs := testRecords(50, "hub-a", "hub-b")
	s := open()
	if b := s.Batching(); b == (Batching{}) {
		t.Error("Batching sets no limit: the stage would hold records until its input goes quiet")
	}
	if n, err := write(ctx, s, recs[:1]); err != nil || n != 1 {
		t.Fatalf("Write(one record) = %d, %v", n, err)
	}
	// The same content fetched again later is the same version,
	// in a later batch or in the same one.
	again := *recs[0]
	again.FetchedAt = again.FetchedAt.Add(time.Hour)
	if n, err := write(ctx, s, append([]*record.Record{&again}, recs[1:]...)); err != nil || n != len(recs)-1 {
		t.Fatalf("Write(%d records, one written before) = %d, %v", len(recs), n, err)
	}
	if n, err := write(ctx, s, []*record.Record{recs[5], recs[5]}); err != nil || n != 0 {
		t.Fatalf("duplicate Write = %d, %v; want both skipped", n, err)
	}
	if got := visible(); len(got) != 0 {
		t.Fatalf("%d records visible before Flush", len(got))
	}
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	assertEachOnce(t, visible(), recs)

	// A changed record is a new version and is written.
	changed := *recs[0]
	changed.Role = record.RoleFuture
	if n, _ := write(ctx, s, []*record.Record{&changed}); n != 1 {
		t.Fatal("a changed record was taken for a duplicate")
	}
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if n := len(visible()); n != len(recs)+1 {
		t.Fatalf("%d lines after a changed version, want %d", n, len(recs)+1)
	}
	if kinds[name].read == nil {
		return
	}
	s2 := open()
	if n, err := write(ctx, s2, recs); err != nil || n != 0 {
		t.Fatalf("reopened sink rewrote %d records (%v)", n, err)
	}
	if err := s2.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if n := len(visible()); n != len(recs)+1 {
		t.Fatalf("%d lines after a second run, want %d", n, len(recs)+1)
	}
	latest := map[string]Tags{}
	if err := reader().EachLatest(ctx, func(id string, tg Tags) { latest[id] = tg }); err != nil {
		t.Fatal(err)
	}
	if len(latest) != len(recs) || latest[recs[0].ID].Role != record.RoleFuture || latest[recs[1].ID] != TagsOf(recs[1]) {
		t.Fatalf("EachLatest: %d records, %s's role %q; want %d, the latest version's", len(latest), recs[0].ID, latest[recs[0].ID].Role, len(recs))
	}
	var hubA int
	if err := reader().Records(ctx, func(r *record.Record) error { hubA++; return nil }, OfHub("hub-a")); err != nil {
		t.Fatal(err)
	}
	if hubA != 51 {
		t.Fatalf("OfHub(hub-a) read %d records, want 51", hubA)
	}
}

func assertEachOnce(t *testing.T, got []record.Record, want []*record.Record) {
	t.Helper()
	count := map[string]int{}
	for _, r := range got {
		count[r.ID]++
	}
	for _, r := range want {
		if count[r.ID] != 1 {
			t.Errorf("record %s appears %d times, want once", r.ID, count[r.ID])
		}
	}
	if len(got) != len(want) {
		t.Errorf("%d records visible, want %d", len(got), len(want))
	}
}

// The folder sink asks for a flush at its segment limits, the stdout sink
// every 256 records; Due applies whichever limit comes first.
func TestBatchingDue(t *testing.T) {
	cfg := testConfig()
	cfg.Out = t.TempDir()
	cfg.SegmentMaxBytes, cfg.SegmentMaxAge = 2000, time.Minute
	s, err := Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	b := s.Batching()
	if b != (Batching{Bytes: 2000, Age: time.Minute}) {
		t.Fatalf("jsonl batching %+v, want its segment limits", b)
	}
	for _, c := range []struct {
		records int
		bytes   int64
		age     time.Duration
		due     bool
	}{
		{0, 0, time.Hour, false}, // nothing held
		{1, 100, time.Second, false},
		{10, 2000, time.Second, true},
		{1, 100, time.Minute, true},
	} {
		if got := b.Due(c.records, c.bytes, c.age); got != c.due {
			t.Errorf("Due(%d, %d, %s) = %v, want %v", c.records, c.bytes, c.age, got, c.due)
		}
	}
	var stdout bytes.Buffer
	lines, err := Open(context.Background(), Config{Out: "-"}, WithStdout(&stdout))
	if err != nil {
		t.Fatal(err)
	}
	if lb := lines.Batching(); lb.Due(255, 1<<30, time.Hour) || !lb.Due(256, 0, 0) {
		t.Errorf("stdout batching %+v, want a flush every 256 records", lb)
	}
}

// sink.out picks the kind: "-" is stdout, a path or jsonl://PATH a folder,
// an unknown NAME:// an error naming it.
func TestOpenPicksTheKindFromOut(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct{ out, kind, err string }{
		{"-", "stdout", ""},
		{"stdout://", "stdout", ""},
		{dir, "jsonl", ""},
		{"jsonl://" + dir, "jsonl", ""},
		{"./out", "jsonl", ""},
		{"postgres://db/records", "", `no sink of kind "postgres" (known: jsonl, stdout)`},
		{"jsonl://", "", "the jsonl sink needs a folder"},
		{"", "", "the jsonl sink needs a folder"},
	} {
		name, _, _, err := Config{Out: c.out}.resolve()
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) || !strings.Contains(err.Error(), c.out) {
				t.Errorf("%q: err = %v, want one naming it and %q", c.out, err, c.err)
			}
			if Config.Validate(Config{Out: c.out}) == nil {
				t.Errorf("%q: Validate accepts it", c.out)
			}
			continue
		}
		if err != nil || name != c.kind {
			t.Errorf("%q: kind %q (%v), want %q", c.out, name, err, c.kind)
		}
	}
	if f, ok := (Config{Out: "jsonl://" + dir}).Folder(); !ok || f != dir {
		t.Errorf("Folder() = %q, %v", f, ok)
	}
	if _, ok := (Config{Out: "-"}).Folder(); ok {
		t.Error("stdout has a folder")
	}
	if _, err := Open(context.Background(), Config{Out: "-"}); err == nil {
		t.Error("stdout sink opened with no standard output given")
	}
	if _, err := OpenReader(context.Background(), Config{Out: "-"}); err == nil || !strings.Contains(err.Error(), "cannot be read back") {
		t.Errorf("reading back stdout: err = %v", err)
	}
	if _, err := OpenReader(context.Background(), Config{Out: filepath.Join(dir, "none")}); !errors.Is(err, ErrNoOutput) {
		t.Errorf("reading a folder never written: err = %v, want ErrNoOutput", err)
	}
}

func TestJSONLSummaryCountsLatestVersions(t *testing.T) {
	ctx := context.Background()
	cfg := testConfig()
	cfg.Out = t.TempDir()
	s, err := Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	recs := testRecords(12, "hub-a")
	bg := 60
	for _, r := range recs {
		r.Hub.Published = &record.HubCounts{CitingPapers: 12, BackgroundPercent: &bg}
	}
	if _, err := s.Write(ctx, recs); err != nil {
		t.Fatal(err)
	}
	changed := *recs[0] // background -> future
	changed.Role = record.RoleFuture
	s.Write(ctx, []*record.Record{&changed})
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(cfg.Out, "hub-a", SummaryFile))
	if err != nil {
		t.Fatal(err)
	}
	var sum Summary
	if err := json.Unmarshal(b, &sum); err != nil {
		t.Fatal(err)
	}
	if sum.Records != 12 || sum.Roles["background"] != 1 || sum.Roles["future"] != 3 || sum.Years["2024"] != 6 {
		t.Fatalf("summary %+v", sum)
	}
	if sum.Published == nil || sum.Published.CitingPapers != 12 {
		t.Fatalf("hub's own aggregates missing from the summary: %+v", sum.Published)
	}
	leftovers, _ := filepath.Glob(filepath.Join(cfg.Out, "hub-a", ".*.tmp"))
	if len(leftovers) != 0 {
		t.Fatalf("temporary files left: %v", leftovers)
	}
}

// testConfig is a folder sink's configuration with the segment limits of
// the shipped defaults (pipeline.DefaultConfig holds them).
func testConfig() Config {
	return Config{Out: "./out", JSONLConfig: JSONLConfig{SegmentMaxBytes: 8 << 20, SegmentMaxAge: 5 * time.Second}}
}

// TestJSONLDedupeAtSealLeavesOutWhatWasWritten: with WithDedupeAtSeal,
// Write does not look records up, yet a version written in an earlier
// segment (sealed by this writer or another) is left out when its new
// segment is sealed, and one changed is written; so too when the indexes
// are kept open between seals (WithOwnFolder), and another writer then
// finds every version in them.
func TestJSONLDedupeAtSealLeavesOutWhatWasWritten(t *testing.T) {
	t.Run("indexes opened every seal", func(t *testing.T) { dedupeAtSeal(t) })
	t.Run("indexes kept open", func(t *testing.T) { dedupeAtSeal(t, WithOwnFolder()) })
}

func dedupeAtSeal(t *testing.T, opts ...Option) {
	ctx := context.Background()
	cfg := testConfig()
	cfg.Out = t.TempDir()
	recs := testRecords(5, "hub-a", "hub-b")
	first, err := Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := first.Write(ctx, recs[:3]); err != nil {
		t.Fatal(err)
	}
	if err := first.Close(ctx); err != nil {
		t.Fatal(err)
	}
	s, err := Open(ctx, cfg, append(opts, WithDedupeAtSeal())...)
	if err != nil {
		t.Fatal(err)
	}
	n, err := s.Write(ctx, recs)
	if err != nil {
		t.Fatal(err)
	}
	if n != len(recs) {
		t.Fatalf("Write counted %d records new, want all %d (none is looked up)", n, len(recs))
	}
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	changed := *recs[0]
	changed.Role = record.RoleFuture
	if _, err := s.Write(ctx, append(recs[:4:4], &changed)); err != nil { // 4 sealed already
		t.Fatal(err)
	}
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
	rd, err := OpenReader(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	lines := map[string]int{}
	err = rd.Records(ctx, func(r *record.Record) error { lines[r.ID+" "+r.Role]++; return nil })
	if err != nil {
		t.Fatal(err)
	}
	if len(lines) != len(recs)+1 {
		t.Fatalf("%d distinct versions written, want %d: %v", len(lines), len(recs)+1, lines)
	}
	for v, k := range lines {
		if k != 1 {
			t.Fatalf("version %s written %d times", v, k)
		}
	}
	again, err := Open(ctx, cfg) // looks every record up in the indexes
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close(ctx)
	if n, err := again.Write(ctx, append(recs, &changed)); err != nil || n != 0 {
		t.Fatalf("writing every version again: %d new, %v; want none new", n, err)
	}
}

// A segment's tag sets are shared by its versions: a version whose tag
// set the segment has costs no allocation (a Tags moved to the heap at
// every call was a tenth of what reprocess's writer allocated).
func TestSegmentTagsOfAllocatesOnlyANewTagSet(t *testing.T) {
	seg := &segment{tags: map[Tags]*Tags{}}
	r := testRecords(1, "hub-a")[0]
	first := seg.tagsOf(TagsOf(r))
	if allocs := testing.AllocsPerRun(100, func() {
		if seg.tagsOf(TagsOf(r)) != first {
			t.Fatal("the same tag set given twice")
		}
	}); allocs != 0 {
		t.Errorf("tagsOf of a tag set the segment has: %.1f allocations, want none", allocs)
	}
}
