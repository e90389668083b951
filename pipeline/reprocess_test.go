package pipeline

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/citecrawl/citecrawl/classify"
	"github.com/citecrawl/citecrawl/ingest/snapshot"
	"github.com/citecrawl/citecrawl/record"
	"github.com/citecrawl/citecrawl/sink"
)

// crawled runs the snapshot (or a generated hub) through the pipeline and
// returns the config and an open bus.
func crawled(t *testing.T, site *snapshot.Site) (Config, *Bus) {
	t.Helper()
	web := startSite(t, site)
	cfg := testConfig(t, t.TempDir(), site.HubURLs(web.URL))
	bus := openBus(t, cfg)
	if _, err := Run(context.Background(), bus, cfg, testEnv()); err != nil {
		t.Fatal(err)
	}
	return cfg, bus
}

// changedRules copies configs/rules with a new version and edit applied
// to one file.
func changedRules(t *testing.T, file string, edit func(string) string) *classify.Classifier {
	t.Helper()
	dir := t.TempDir()
	src := filepath.Join("..", "configs", "rules")
	entries, _ := os.ReadDir(src)
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		s := string(b)
		if e.Name() == "rules.yaml" {
			s = strings.Replace(s, "version: \"", "version: \"test-", 1)
		}
		if e.Name() == file {
			s = edit(s)
		}
		os.WriteFile(filepath.Join(dir, e.Name()), []byte(s), 0o644)
	}
	r, err := classify.LoadRules(dir)
	if err != nil {
		t.Fatal(err)
	}
	return classify.New(r)
}

// After a rule change that makes background overwhelming, exactly the
// records that were not background change role, and nothing else changes.
func TestReprocessFromStreamChangesExactlyTheExpectedLabels(t *testing.T) {
	cfg, bus := crawled(t, snapshot.Default())
	defer bus.Close()
	before := readOut(t, cfg.Sink.Out)
	wantChanged := map[string]int{}
	for _, r := range before {
		if r.Role != record.RoleBackground {
			wantChanged[r.Role+" -> background"]++
		}
	}
	c := changedRules(t, "roles.yaml", func(s string) string {
		return regexp.MustCompile(`(?m)^prior:\n  background: [0-9.]+`).ReplaceAllString(s, "prior:\n  background: 100")
	})
	res, err := Reprocess(context.Background(), bus, ReprocessOptions{From: "stream", Out: cfg.Sink.Out, Classifier: c, Log: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	if len(wantChanged) == 0 {
		t.Fatal("test needs records that were not background")
	}
	if len(res.Changes["polarity"]) != 0 || len(res.Changes["pluralism"]) != 0 {
		t.Errorf("labels changed that the rule change does not touch: %v", res.Changes)
	}
	if len(res.Changes["role"]) != len(wantChanged) {
		t.Errorf("role changes %v, want %v", res.Changes["role"], wantChanged)
	}
	for k, n := range wantChanged {
		if res.Changes["role"][k] != n {
			t.Errorf("role change %q: %d, want %d", k, res.Changes["role"][k], n)
		}
	}
	after := readOut(t, cfg.Sink.Out)
	assertEachOnce(t, after, len(before))
	for _, r := range after {
		if r.Role != record.RoleBackground || !strings.HasPrefix(r.RulesVersion, "test-") {
			t.Fatalf("new generation has %s with rules %s", r.Role, r.RulesVersion)
		}
	}
	// The previous generation is kept whole.
	assertEachOnce(t, readOut(t, cfg.Sink.Out+".prev"), len(before))
}

// Interrupted after its first batch, the old output is still whole; run
// again, it resumes and the new output has every record once.
func TestReprocessResumesAfterInterruption(t *testing.T) {
	const n = 300
	cfg, bus := crawled(t, snapshot.New(snapshot.StyleCards, snapshot.Generated(n)))
	defer bus.Close()
	c := changedRules(t, "polarity.yaml", func(s string) string { return s })
	ctx, cancel := context.WithCancel(context.Background())
	opts := ReprocessOptions{From: "stream", Out: cfg.Sink.Out, Classifier: c, Batch: 64, Log: zerolog.Nop(),
		Progress: func(done, total int64) { cancel() }}
	if _, err := Reprocess(ctx, bus, opts); err == nil {
		t.Fatal("an interrupted reprocess reported success")
	}
	resumeAndCheck(t, bus, opts, n)
}

func TestReprocessFromFolder(t *testing.T) {
	cfg, bus := crawled(t, snapshot.Default())
	bus.Close()
	out := filepath.Join(t.TempDir(), "again")
	c := changedRules(t, "pluralism.yaml", func(s string) string {
		return strings.Replace(s, "\nprior:\n", "\nprior: {none: 1000}\nold_prior:\n", 1)
	})
	res, err := Reprocess(context.Background(), nil, ReprocessOptions{From: cfg.Sink.Out, Out: out, Classifier: c, Log: zerolog.Nop(), MinConfidence: 0.999})
	if err != nil {
		t.Fatal(err)
	}
	recs := readOut(t, out)
	assertEachOnce(t, recs, snapshot.Default().DistinctPapers())
	for _, r := range recs {
		if r.Pluralism.Primary != record.PluralismNone {
			t.Fatalf("pluralism %s with an unreachable bar", r.Pluralism.Primary)
		}
	}
	if len(res.Changes["pluralism"]) == 0 || len(res.Changes["role"]) != 0 {
		t.Fatalf("changes %v", res.Changes)
	}
	// The tags counted under the minimum are those of the records written.
	under := map[string]int{}
	for _, r := range recs {
		for _, tag := range r.Under(0.999) {
			under[tag]++
		}
	}
	for _, tag := range []string{"role", "polarity", "pluralism"} {
		if res.Under["role"] == 0 || res.Under[tag] != under[tag] {
			t.Fatalf("tags under 0.999: counted %v, in the output %v", res.Under, under)
		}
	}
	if _, err := Reprocess(context.Background(), nil, ReprocessOptions{From: t.TempDir(), Out: out, Classifier: c, Log: zerolog.Nop()}); err == nil ||
		!strings.Contains(err.Error(), "no records to re-tag") {
		t.Fatalf("empty input folder: err = %v", err)
	}
}

// Re-tagged with the rules they were tagged with, the records come out as
// they were, from the folder and from the stream (where the crawl's fetch
// stage stored them self-tagged, decoded without their evidence and
// scores, which tagging gives again).
func TestReprocessWithTheSameRulesWritesTheSameRecords(t *testing.T) {
	cfg, bus := crawled(t, snapshot.Default())
	defer bus.Close()
	c, err := classify.Load(cfg.Rules)
	if err != nil {
		t.Fatal(err)
	}
	lines := func(recs []record.Record) map[string]string {
		m := map[string]string{}
		for _, r := range recs {
			b, err := record.Marshal(&r)
			if err != nil {
				t.Fatal(err)
			}
			m[r.ID] = string(b)
		}
		return m
	}
	before := lines(readOut(t, cfg.Sink.Out))
	for _, from := range []string{cfg.Sink.Out, "stream"} {
		t.Run(filepath.Base(from), func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "again")
			if _, err := Reprocess(context.Background(), bus, ReprocessOptions{From: from, Out: out, Classifier: c, Log: zerolog.Nop()}); err != nil {
				t.Fatal(err)
			}
			after := lines(readOut(t, out))
			evidence := 0
			for id, b := range before {
				if after[id] != b {
					t.Fatalf("record %s was\n%s\nis\n%s", id, b, after[id])
				}
				evidence += strings.Count(b, `"evidence":[{`)
			}
			if len(after) != len(before) || evidence == 0 {
				t.Fatalf("%d records, %d before, %d lists of evidence", len(after), len(before), evidence)
			}
		})
	}
}

// A hub whose records were all re-tagged before an interruption still
// gets its summary in the new generation, counting every record.
func TestReprocessResumedKeepsEveryHubsSummary(t *testing.T) {
	site := snapshot.Default()
	cfg, bus := crawled(t, site)
	defer bus.Close()
	c := changedRules(t, "polarity.yaml", func(s string) string { return s })
	ctx, cancel := context.WithCancel(context.Background())
	batches := 0
	opts := ReprocessOptions{From: "stream", Out: cfg.Sink.Out, Classifier: c, Batch: 4, Log: zerolog.Nop(),
		Progress: func(done, total int64) {
			if batches++; batches == 4 {
				cancel()
			}
		}}
	if _, err := Reprocess(ctx, bus, opts); err == nil {
		t.Fatal("an interrupted reprocess reported success")
	}
	opts.Progress = nil
	if _, err := Reprocess(context.Background(), bus, opts); err != nil {
		t.Fatal(err)
	}
	perHub := map[string]map[string]bool{}
	for _, r := range readOut(t, cfg.Sink.Out) {
		if perHub[r.Hub.ID] == nil {
			perHub[r.Hub.ID] = map[string]bool{}
		}
		perHub[r.Hub.ID][r.ID] = true
	}
	if len(perHub) != len(site.Hubs()) {
		t.Fatalf("%d hubs in the output, want %d", len(perHub), len(site.Hubs()))
	}
	for hub, ids := range perHub {
		path := filepath.Join(cfg.Sink.Out, hub, sink.SummaryFile)
		if _, err := os.Stat(path); err != nil {
			t.Errorf("hub %s: %v", hub, err)
			continue
		}
		var sum sink.Summary
		readJSON(t, path, &sum)
		if sum.Records+sum.Gone != len(ids) {
			t.Errorf("hub %s summary counts %d records, the output has %d", hub, sum.Records+sum.Gone, len(ids))
		}
	}
}

// reprocess does not replace a non-empty output with an empty generation
// (a --data with nothing in it) or a much smaller one (fewer than half the
// records), twice in a row either; with AllowShrink it does. Every new
// generation carries the output's run reports forward.
func TestReprocessRefusesToShrinkTheOutput(t *testing.T) {
	site := snapshot.Default()
	cfg, bus := crawled(t, site)
	bus.Close()
	n := site.DistinctPapers()
	runs, _ := filepath.Glob(filepath.Join(cfg.Sink.Out, "runs", "*.json"))
	if len(runs) != 1 {
		t.Fatalf("run reports %v, want the crawl's", runs)
	}
	c := changedRules(t, "polarity.yaml", func(s string) string { return s })
	ctx := context.Background()
	unchanged := func(what string) {
		t.Helper()
		assertEachOnce(t, readOut(t, cfg.Sink.Out), n)
		for _, gone := range []string{cfg.Sink.Out + ".prev", cfg.Sink.Out + ".next"} {
			if _, err := os.Stat(gone); !os.IsNotExist(err) {
				t.Fatalf("%s: %s exists (%v)", what, gone, err)
			}
		}
	}

	empty := cfg
	empty.NATS.DataDir = t.TempDir() // a wrong --data: no stream at all
	ebus := openBus(t, empty)
	defer ebus.Close()
	for i := range 2 {
		_, err := Reprocess(ctx, ebus, ReprocessOptions{From: "stream", Out: cfg.Sink.Out, Classifier: c, Log: zerolog.Nop()})
		if !errors.Is(err, ErrShrink) || !strings.Contains(err.Error(), "--allow-shrink") || !strings.Contains(err.Error(), cfg.Sink.Out) {
			t.Fatalf("reprocess %d from an empty stream: %v; want ErrShrink naming the output and --allow-shrink", i+1, err)
		}
		unchanged("empty generation")
	}

	// A folder with 3 of the records: much smaller.
	small := filepath.Join(t.TempDir(), "small")
	s, err := sink.Open(ctx, sink.Config{Out: small, JSONLConfig: cfg.Sink.JSONLConfig})
	if err != nil {
		t.Fatal(err)
	}
	var few []*record.Record
	for _, r := range readOut(t, cfg.Sink.Out)[:3] {
		few = append(few, &r)
	}
	if _, err := s.Write(ctx, few); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
	opts := ReprocessOptions{From: small, Out: cfg.Sink.Out, Classifier: c, Log: zerolog.Nop()}
	if _, err := Reprocess(ctx, nil, opts); !errors.Is(err, ErrShrink) {
		t.Fatalf("reprocess of 3 records over %d: %v; want ErrShrink", n, err)
	}
	unchanged("much smaller generation")

	opts.AllowShrink = true
	if _, err := Reprocess(ctx, nil, opts); err != nil {
		t.Fatal(err)
	}
	assertEachOnce(t, readOut(t, cfg.Sink.Out), 3)
	assertEachOnce(t, readOut(t, cfg.Sink.Out+".prev"), n)
	for _, gen := range []string{cfg.Sink.Out, cfg.Sink.Out + ".prev"} {
		if got, _ := filepath.Glob(filepath.Join(gen, "runs", "*.json")); len(got) != 1 || filepath.Base(got[0]) != filepath.Base(runs[0]) {
			t.Errorf("%s: run reports %v, want %s carried forward", gen, got, filepath.Base(runs[0]))
		}
	}
}

// Interrupted, then resumed, a reprocess from the stream over the output,
// one from a folder into another and one of a folder in place still count
// exactly the expected label changes: the labels sealed before the interruption are kept on
// disk with the checkpoint, not in memory.
func TestReprocessResumedCountsEveryChange(t *testing.T) {
	const n = 300
	cfg, bus := crawled(t, snapshot.New(snapshot.StyleCards, snapshot.Generated(n)))
	defer bus.Close()
	before := readOut(t, cfg.Sink.Out)
	wantChanged := map[string]int{}
	for _, r := range before {
		if r.Role != record.RoleBackground {
			wantChanged[r.Role+" -> background"]++
		}
	}
	if len(wantChanged) == 0 {
		t.Fatal("test needs records that were not background")
	}
	c := changedRules(t, "roles.yaml", func(s string) string {
		return regexp.MustCompile(`(?m)^prior:\n  background: [0-9.]+`).ReplaceAllString(s, "prior:\n  background: 100")
	})
	copied := filepath.Join(t.TempDir(), "copy")
	for _, tc := range []struct{ name, from, out string }{
		{"folder", cfg.Sink.Out, copied},
		{"stream", "stream", cfg.Sink.Out},
		{"in place", cfg.Sink.Out + ".prev", cfg.Sink.Out + ".prev"}, // the crawl's output, kept by the stream case
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			commits := 0
			opts := ReprocessOptions{From: tc.from, Out: tc.out, Classifier: c, Batch: 64, Log: zerolog.Nop(),
				Progress: func(done, total int64) {
					if commits++; commits == 2 {
						cancel()
					}
				}}
			if _, err := Reprocess(ctx, bus, opts); err == nil {
				t.Fatal("an interrupted reprocess reported success")
			}
			opts.Progress = nil
			res, err := Reprocess(context.Background(), bus, opts)
			if err != nil {
				t.Fatal(err)
			}
			if !res.Resumed || res.Records != n {
				t.Fatalf("resumed %v, %d records; want a resumed run of %d", res.Resumed, res.Records, n)
			}
			if len(res.Changes["polarity"]) != 0 || len(res.Changes["pluralism"]) != 0 || len(res.Changes["role"]) != len(wantChanged) {
				t.Fatalf("changes %v, want role %v", res.Changes, wantChanged)
			}
			total := 0
			for k, n := range wantChanged {
				total += n
				if res.Changes["role"][k] != n {
					t.Errorf("role change %q: %d, want %d", k, res.Changes["role"][k], n)
				}
			}
			if res.Changed != int64(total) {
				t.Errorf("%d records changed, want %d", res.Changed, total)
			}
			assertEachOnce(t, readOut(t, tc.out), n)
			if _, err := os.Stat(filepath.Join(tc.out, labelsDir)); !os.IsNotExist(err) {
				t.Errorf("the label logs were published with the output (%v)", err)
			}
		})
	}
}

// A label log gives every id once, in order, with the labels added last,
// across parts and after they were merged into one; a checkpoint's state
// keeps its parts and pruneParts removes those written after it.
func TestLabelLogKeepsTheLatestLabelsOfEachRecord(t *testing.T) {
	dir := t.TempDir()
	g := newLabelLog(dir, "new", labelLogState{})
	g.maxParts = 3
	want := map[string]labels{}
	rnd := rand.New(rand.NewPCG(1, 2))
	for part := range 10 {
		for range 500 {
			id := fmt.Sprint("r", rnd.IntN(2000))
			l := labels{fmt.Sprint("role", rnd.IntN(3)), "", fmt.Sprint("part", part)}
			if err := g.add(id, l); err != nil {
				t.Fatal(err)
			}
			want[id] = l
		}
		if err := g.flush(); err != nil {
			t.Fatal(err)
		}
		if err := g.compact(); err != nil {
			t.Fatal(err)
		}
		g.takeStale()()
		if files, _ := filepath.Glob(filepath.Join(dir, "*"+partSuffix)); len(files) != len(g.parts) || len(files) > g.maxParts+1 {
			t.Fatalf("after part %d: %d files for the parts %v (at most %d)", part, len(files), g.parts, g.maxParts+1)
		}
	}
	got := readLog(t, g)
	if len(got) != len(want) {
		t.Fatalf("%d ids, want %d", len(got), len(want))
	}
	idOf := map[idKey]string{}
	for id := range want {
		idOf[g.key(id)] = id
	}
	for i, e := range got {
		if i > 0 && got[i-1].key.compare(e.key) >= 0 {
			t.Fatalf("keys out of order: %v then %v", got[i-1].key, e.key)
		}
		id, ok := idOf[e.key]
		if !ok {
			t.Fatalf("key %v is none of the ids added", e.key)
		}
		if want[id] != e.l {
			t.Fatalf("%s: labels %v, want the latest %v", id, e.l, want[id])
		}
	}

	// What a checkpoint listed survives; a part written after it goes.
	st := g.state()
	if err := g.add("r1", labels{"uses", "", "after"}); err != nil {
		t.Fatal(err)
	}
	if err := g.flush(); err != nil {
		t.Fatal(err)
	}
	if err := pruneParts(dir, st); err != nil {
		t.Fatal(err)
	}
	if again := readLog(t, newLabelLog(dir, "new", st)); !slices.Equal(again, got) {
		t.Fatalf("after pruning, %d entries differ from the checkpoint's %d", len(again), len(got))
	}

	// Compared with an old log: changes, changed, and both counts.
	old := newLabelLog(t.TempDir(), "old", labelLogState{})
	for _, id := range []string{"r1", "r2", "zz-only-old"} {
		if err := old.add(id, labels{"background", "", "part0"}); err != nil {
			t.Fatal(err)
		}
	}
	if err := old.flush(); err != nil {
		t.Fatal(err)
	}
	changes, changed, records, oldRecords, err := labelChanges(old, newLabelLog(dir, "new", st))
	if err != nil {
		t.Fatal(err)
	}
	wantChanges := map[string]map[string]int{"role": {}, "polarity": {}, "pluralism": {}}
	var wantChanged int64
	for _, id := range []string{"r1", "r2"} {
		l, ok := want[id]
		if !ok || l == (labels{"background", "", "part0"}) {
			continue
		}
		wantChanged++
		if l[0] != "background" {
			wantChanges["role"]["background -> "+l[0]]++
		}
		if l[2] != "part0" {
			wantChanges["pluralism"]["part0 -> "+l[2]]++
		}
	}
	if records != int64(len(want)) || oldRecords != 3 || changed != wantChanged || fmt.Sprint(changes) != fmt.Sprint(wantChanges) {
		t.Fatalf("records %d, old %d, changed %d, changes %v; want %d, 3, %d, %v", records, oldRecords, changed, changes, len(want), wantChanged, wantChanges)
	}
}

// A part cut short, or naming a label it does not list, is an error that
// names the part, not labels made up or a pair dropped.
func TestLabelLogDamagedPartIsAnError(t *testing.T) {
	for name, damage := range map[string]func([]byte) []byte{
		"cut in a pair":       func(b []byte) []byte { return b[:len(b)-5] },
		"cut in its names":    func(b []byte) []byte { return b[:3] },
		"a label not in them": func(b []byte) []byte { return append(b[:len(b)-1], 9) },
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			g := newLabelLog(dir, "new", labelLogState{})
			for i := range 3 {
				if err := g.add(fmt.Sprint("r", i), labels{"uses", "neutral", "none"}); err != nil {
					t.Fatal(err)
				}
			}
			if err := g.flush(); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(dir, g.parts[0])
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, damage(b), 0o644); err != nil {
				t.Fatal(err)
			}
			_, _, _, _, err = labelChanges(newLabelLog(t.TempDir(), "old", labelLogState{}), g)
			if err == nil || !strings.Contains(err.Error(), g.parts[0]) {
				t.Fatalf("labelChanges over the damaged part: %v, want an error naming %s", err, g.parts[0])
			}
		})
	}
}

// Label logs resumed by several processes, each numbering the labels in
// its own order and compacting parts of the others, give the change
// summary a map of every record's last labels gives, for label names of
// any bytes and length (a resumed compaction lists the names of the parts
// it merges, which this process may not have seen).
func TestLabelLogResumedAndCompactedCountsEveryChange(t *testing.T) {
	odd := []string{"", "\x00", "\xff\xfe", "a\nb", "uses", "neutral", "none", strings.Repeat("z", 300), "é", "\x80", strings.Repeat("r", 1<<20+1)}
	for seed := range uint64(12) {
		rng := rand.New(rand.NewPCG(seed, 99))
		dir := t.TempDir()
		want := map[string]map[string]labels{"new": {}, "old": {}}
		st := map[string]labelLogState{}
		for range 4 { // processes, each resuming the last one's checkpoint
			logs := map[string]*labelLog{}
			for _, name := range []string{"new", "old"} {
				logs[name] = newLabelLog(dir, name, st[name])
				logs[name].maxParts = 1 + rng.IntN(3)
			}
			perm := rng.Perm(len(odd))
			for range 1 + rng.IntN(4) { // commits
				for _, name := range []string{"new", "old"} {
					g := logs[name]
					for range rng.IntN(60) {
						id := fmt.Sprint("id", rng.IntN(80))
						l := labels{odd[perm[rng.IntN(len(odd))]], odd[perm[rng.IntN(3)]], odd[rng.IntN(len(odd))]}
						if err := g.add(id, l); err != nil {
							t.Fatal(err)
						}
						want[name][id] = l
					}
					if err := g.flush(); err != nil {
						t.Fatal(err)
					}
					if err := g.compact(); err != nil {
						t.Fatal(err)
					}
					g.takeStale()()
				}
			}
			for _, name := range []string{"new", "old"} {
				st[name] = logs[name].state()
			}
			if err := pruneParts(dir, st["new"], st["old"]); err != nil {
				t.Fatal(err)
			}
		}
		changes, changed, records, oldRecords, err := labelChanges(newLabelLog(dir, "old", st["old"]), newLabelLog(dir, "new", st["new"]))
		if err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
		wantChanges := map[string]map[string]int{"role": {}, "polarity": {}, "pluralism": {}}
		var wantChanged int64
		for id, n := range want["new"] {
			o, ok := want["old"][id]
			if !ok || o == n {
				continue
			}
			wantChanged++
			for i, tag := range []string{"role", "polarity", "pluralism"} {
				if o[i] != n[i] {
					wantChanges[tag][label(o[i])+" -> "+label(n[i])]++
				}
			}
		}
		if fmt.Sprint(changes) != fmt.Sprint(wantChanges) || changed != wantChanged || records != int64(len(want["new"])) || oldRecords != int64(len(want["old"])) {
			t.Fatalf("seed %d: changes %v, changed %d, records %d and %d; want %v, %d, %d and %d", seed,
				changes, changed, records, oldRecords, wantChanges, wantChanged, len(want["new"]), len(want["old"]))
		}
	}
}

func readLog(t *testing.T, g *labelLog) []labelEntry {
	t.Helper()
	m, err := g.merge()
	if err != nil {
		t.Fatal(err)
	}
	defer m.close()
	var out []labelEntry
	for {
		e, ok, err := m.next()
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			return out
		}
		out = append(out, e)
	}
}

// cancelAtCtx cancels a run at an exact point of the writer, by a count
// instead of a clock: its at-th Done call, which the writer makes right
// before it waits for a chunk, cancels, then hands the workers every
// chunk left (which they see cancelled) and waits for them. The calls
// before it hand the workers the next chunk, so the writer never waits
// for a chunk nobody has.
type cancelAtCtx struct {
	context.Context
	calls, at int
	cancel    context.CancelFunc
	feed      func(rest bool)
}

func (c *cancelAtCtx) Done() <-chan struct{} {
	c.calls++
	switch {
	case c.calls < c.at:
		c.feed(false)
	case c.calls == c.at:
		c.cancel()
		c.feed(true)
	}
	return c.Context.Done()
}

// A run cancelled while the writer waits for a chunk the workers then skip
// writes nothing untagged, at any point, from the stream (it used to crash
// there) or a folder: every record in the unfinished generation has the
// new rules, and a run resumed from it has every record once with the new
// tags. (Go's select takes either of two ready cases, so without the fix
// about half of the runs wrote a chunk as read.)
func TestReprocessCancelledNeverWritesUntaggedRecords(t *testing.T) {
	const n = 120
	cfg, bus := crawled(t, snapshot.New(snapshot.StyleCards, snapshot.Generated(n)))
	defer bus.Close()
	c := changedRules(t, "polarity.yaml", func(s string) string { return s })
	ctx := context.Background()
	// The input as the readers give it: position after each item, and the
	// item (fresh: tagging changes it).
	folder := func() (pos []position, items []item) {
		recs := readOut(t, cfg.Sink.Out)
		for i := range recs {
			pos, items = append(pos, position{Done: uint64(i + 1)}), append(items, item{rec: &recs[i]})
		}
		return pos, items
	}
	// The run tagged its records in its fetch stage: they are on the
	// tagged stream alone (selfTagged).
	s, err := bus.JS.Stream(ctx, StreamTagged)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var raws []item
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if err != nil {
			t.Fatal(err)
		}
		raws = append(raws, item{raw: m.Data, seq: seq, tagged: true})
	}
	stream := func() (pos []position, items []item) {
		for _, it := range raws {
			pos, items = append(pos, position{Tagged: it.seq}), append(items, it)
		}
		return pos, items
	}
	for _, tc := range []struct {
		name, from, out string
		input           func() ([]position, []item)
	}{
		{"folder", cfg.Sink.Out, filepath.Join(t.TempDir(), "again"), folder},
		{"stream", "stream", cfg.Sink.Out, stream},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// A chunk is a batch: each one written is checkpointed at once.
			opts := ReprocessOptions{From: tc.from, Out: tc.out, Classifier: c, Batch: 4, Log: zerolog.Nop()}
			for run := 0; ; run++ {
				r, _, err := openGeneration(ctx, opts)
				if err != nil {
					t.Fatal(err)
				}
				// The chunks after the checkpoint, as the readers cut them.
				var chunks []*chunk
				pos, items := tc.input()
				for i := range items {
					if pos[i].Done <= r.cp.Done && pos[i].Tagged <= r.cp.Tagged {
						continue
					}
					if len(chunks) == 0 || len(chunks[len(chunks)-1].items) == r.chunkSize() {
						chunks = append(chunks, &chunk{done: make(chan struct{})})
					}
					last := chunks[len(chunks)-1]
					last.items, last.pos = append(last.items, items[i]), pos[i]
				}
				if len(chunks) == 0 {
					r.out.Close(ctx)
					break
				}
				inOrder, work := make(chan *chunk, len(chunks)), make(chan *chunk, len(chunks))
				for _, ch := range chunks {
					inOrder <- ch
				}
				close(inOrder)
				inner, cancel := context.WithCancel(ctx)
				worker := make(chan struct{})
				go func() { defer close(worker); r.work(inner, work) }()
				fed := 0
				feed := func(rest bool) {
					for fed < len(chunks) {
						work <- chunks[fed]
						if fed++; !rest {
							return
						}
					}
					close(work)
					<-worker
				}
				// Cancelled before the 1st to the 4th chunk, in turn.
				wctx := &cancelAtCtx{Context: inner, at: 1 + run%4, cancel: cancel, feed: feed}
				err = r.write(wctx, inOrder)
				cancel()
				if fed < len(chunks) {
					feed(true)
				}
				if err == nil && wctx.calls >= wctx.at {
					t.Fatalf("run %d: cancelled, the writer reported success", run)
				}
				if err := r.out.Close(ctx); err != nil {
					t.Fatal(err)
				}
				for _, rec := range readOut(t, r.next) {
					if rec.RulesVersion != c.Version() {
						t.Fatalf("run %d, cancelled before chunk %d: %s written with rules %q, not the new %q", run, wctx.at, rec.ID, rec.RulesVersion, c.Version())
					}
				}
				if run > 4*len(items) {
					t.Fatalf("%d runs and still not done: at %d", run, r.cp.Done)
				}
			}
			res, err := Reprocess(ctx, bus, opts)
			if err != nil {
				t.Fatal(err)
			}
			if !res.Resumed || res.Records != n {
				t.Fatalf("resumed %v, %d records; want a resumed run of %d", res.Resumed, res.Records, n)
			}
			after := readOut(t, tc.out)
			assertEachOnce(t, after, n)
			for _, rec := range after {
				if rec.RulesVersion != c.Version() {
					t.Fatalf("%s has rules %q after the resumed run, not %q", rec.ID, rec.RulesVersion, c.Version())
				}
			}
		})
	}
}

// An unfinished generation that cannot be resumed is removed with a
// warning that names it and says why; one that can is resumed.
func TestReprocessWarnsWhenItDropsAnUnfinishedGeneration(t *testing.T) {
	c := changedRules(t, "polarity.yaml", func(s string) string { return s })
	from := t.TempDir()
	out := filepath.Join(t.TempDir(), "out")
	next := out + ".next"
	same := checkpoint{Format: checkpointFormat, From: from, Rules: c.Version()}
	for _, tc := range []struct {
		name, checkpoint, reason string
		edit                     func(*checkpoint)
	}{
		{name: "unreadable", checkpoint: "{not json", reason: "cannot be read"},
		{name: "missing", reason: "no checkpoint"},
		{name: "format", edit: func(cp *checkpoint) { cp.Format = 1 }, reason: "format 1"},
		{name: "format 2", edit: func(cp *checkpoint) { cp.Format = 2 }, reason: "format 2"}, // no position in the self-tagged records
		{name: "from", edit: func(cp *checkpoint) { cp.From = "stream" }, reason: "from stream"},
		{name: "rules", edit: func(cp *checkpoint) { cp.Rules = "v0" }, reason: "rules v0"},
		{name: "resumable", edit: func(*checkpoint) {}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			os.RemoveAll(next)
			if err := os.MkdirAll(next, 0o755); err != nil {
				t.Fatal(err)
			}
			marker := filepath.Join(next, "written-before")
			os.WriteFile(marker, nil, 0o644)
			if tc.edit != nil {
				cp := same
				tc.edit(&cp)
				b, _ := json.Marshal(cp)
				tc.checkpoint = string(b)
			}
			if tc.checkpoint != "" {
				os.WriteFile(filepath.Join(next, checkpointFile), []byte(tc.checkpoint), 0o644)
			}
			var logs bytes.Buffer
			r, res, err := openGeneration(context.Background(), ReprocessOptions{From: from, Out: out, Classifier: c, Batch: 4, Log: zerolog.New(&logs)})
			if err != nil {
				t.Fatal(err)
			}
			r.out.Close(context.Background())
			_, kept := os.Stat(marker)
			if tc.reason == "" {
				if !res.Resumed || kept != nil || strings.Contains(logs.String(), `"warn"`) {
					t.Fatalf("resumed %v, kept %v, log %s; want it resumed", res.Resumed, kept, logs.String())
				}
				return
			}
			var line struct{ Level, Folder, Reason string }
			json.Unmarshal(logs.Bytes(), &line)
			if line.Level != "warn" || line.Folder != next || !strings.Contains(line.Reason, tc.reason) {
				t.Errorf("log %q; want a warning naming %s and %q", logs.String(), next, tc.reason)
			}
			if res.Resumed || !os.IsNotExist(kept) {
				t.Errorf("resumed %v, the old generation's file: %v; want it removed", res.Resumed, kept)
			}
		})
	}
	// No unfinished generation: nothing to warn about.
	os.RemoveAll(next)
	var logs bytes.Buffer
	r, _, err := openGeneration(context.Background(), ReprocessOptions{From: from, Out: out, Classifier: c, Log: zerolog.New(&logs)})
	if err != nil {
		t.Fatal(err)
	}
	r.out.Close(context.Background())
	if strings.Contains(logs.String(), "warn") {
		t.Errorf("warned with no unfinished generation: %s", logs.String())
	}
}

// A reprocess of an output another reprocess is writing (here one stopped
// before its first checkpoint, its lock still held) fails with
// ErrOutputBusy, naming the output, and leaves the other's unfinished
// generation as it is (it was taken for one a crash left, and removed
// under the running process); once the other has ended, it runs.
func TestReprocessRefusesAnOutputAnotherReprocessWrites(t *testing.T) {
	bus, c, _ := rawRecords(t, 50)
	out := filepath.Join(t.TempDir(), "out")
	unlock, err := lockOutput(out)
	if err != nil {
		t.Fatal(err)
	}
	marker := filepath.Join(out+".next", "being-written")
	if err := os.MkdirAll(filepath.Dir(marker), 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(marker, nil, 0o644)
	opts := ReprocessOptions{From: "stream", Out: out, Classifier: c, Log: zerolog.Nop()}
	_, err = Reprocess(context.Background(), bus, opts)
	if !errors.Is(err, ErrOutputBusy) || !strings.Contains(err.Error(), out) {
		t.Fatalf("a second reprocess of %s: %v; want %v naming it", out, err, ErrOutputBusy)
	}
	if _, err := os.Stat(marker); err != nil {
		t.Fatalf("the running reprocess's generation was touched: %v", err)
	}
	unlock()
	res, err := Reprocess(context.Background(), bus, opts)
	if err != nil || res.Records != 50 {
		t.Fatalf("reprocess once the other ended: %+v, %v", res, err)
	}
}

// A batch is sealed in the background while the next one is written
// (startCommit): when that seal fails (here the next batch's temporary
// segments are removed under it), reprocess fails with the error, its
// checkpoint still at the last batch sealed, and run again it resumes and
// writes every record once.
func TestReprocessBackgroundSealFailureResumes(t *testing.T) {
	const n = 300
	cfg, bus := crawled(t, snapshot.New(snapshot.StyleCards, snapshot.Generated(n)))
	defer bus.Close()
	c := changedRules(t, "polarity.yaml", func(s string) string { return s })
	removed := 0
	opts := ReprocessOptions{From: "stream", Out: cfg.Sink.Out, Classifier: c, Batch: 64, Log: zerolog.Nop(),
		Progress: breakNextSeal(cfg.Sink.Out, &removed)}
	if _, err := Reprocess(context.Background(), bus, opts); err == nil || !strings.Contains(err.Error(), "sealing segment") {
		t.Fatalf("reprocess whose background seal failed: %v; want the seal's error", err)
	}
	if removed == 0 {
		t.Fatal("no temporary segment was found to remove")
	}
	resumeAndCheck(t, bus, opts, n)
}

// breakNextSeal is a Progress callback that, called once the first batch
// is sealed while the writer writes the next one, waits for that batch's
// temporary segments and removes them, so its background seal fails. It
// counts what it removed in removed.
func breakNextSeal(out string, removed *int) func(done, total int64) {
	next := filepath.Clean(out) + ".next"
	return func(done, total int64) {
		deadline := time.Now().Add(10 * time.Second)
		for *removed == 0 && time.Now().Before(deadline) {
			temps, _ := filepath.Glob(filepath.Join(next, "*", ".seg-*.tmp"))
			for _, f := range temps {
				if os.Remove(f) == nil {
					*removed++
				}
			}
			time.Sleep(time.Millisecond)
		}
	}
}

// Two versions of every record (A, then B) in two batches: the batch of
// A fails its background seal while the batch of B is written. The run
// ends; B's segments, written after the checkpoint, must not be sealed
// ahead of A's, or the resumed run would leave A as the latest version.
func TestReprocessSealFailureKeepsVersionOrder(t *testing.T) {
	const n = 64
	cfg, bus := crawled(t, snapshot.New(snapshot.StyleCards, snapshot.Generated(n)))
	defer bus.Close()
	ctx := context.Background()
	// The run tagged its records in its fetch stage: they are on the
	// tagged stream alone (selfTagged), A and B after them on the raw one.
	stream, err := bus.JS.Stream(ctx, StreamTagged)
	if err != nil {
		t.Fatal(err)
	}
	info, err := stream.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var crawledRecs []record.Record
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq; seq++ {
		m, err := stream.GetMsg(ctx, seq)
		if err != nil {
			t.Fatal(err)
		}
		var r record.Record
		if err := record.Unmarshal(m.Data, &r); err != nil {
			t.Fatal(err)
		}
		crawledRecs = append(crawledRecs, r)
	}
	for _, v := range []string{"A", "B"} {
		var outs []Out
		for _, r := range crawledRecs {
			r.Paper.Title += " version " + v
			b, err := record.Marshal(&r)
			if err != nil {
				t.Fatal(err)
			}
			outs = append(outs, Out{Subject: RawSubject(r.Hub.ID), MsgID: r.ID + ":" + v, Data: b})
		}
		if err := bus.PublishAll(ctx, outs); err != nil {
			t.Fatal(err)
		}
	}
	removed := 0
	c := changedRules(t, "polarity.yaml", func(s string) string { return s })
	opts := ReprocessOptions{From: "stream", Out: cfg.Sink.Out, Classifier: c, Batch: len(crawledRecs), Log: zerolog.Nop(),
		Progress: breakNextSeal(cfg.Sink.Out, &removed)}
	if _, err := Reprocess(ctx, bus, opts); err == nil || removed == 0 {
		t.Fatalf("reprocess: %v, %d segments removed; want the broken seal's error", err, removed)
	}
	opts.Progress = nil
	if _, err := Reprocess(ctx, bus, opts); err != nil {
		t.Fatal(err)
	}
	latest := map[string]string{}
	for _, r := range readOut(t, cfg.Sink.Out) {
		latest[r.ID] = r.Paper.Title
	}
	older := 0
	for id, title := range latest {
		if !strings.HasSuffix(title, "version B") {
			if older++; older <= 2 {
				t.Errorf("record %s: latest version %q, want version B", id, title)
			}
		}
	}
	if older > 0 || len(latest) != len(crawledRecs) {
		t.Fatalf("%d of %d records have an older version as their latest (%d crawled)", older, len(latest), len(crawledRecs))
	}
}

// resumeAndCheck checks that an interrupted reprocess left the old output
// of n records untouched, then runs it again without its Progress and
// checks that it resumed and wrote every record once.
func resumeAndCheck(t *testing.T, bus *Bus, opts ReprocessOptions, n int) {
	t.Helper()
	assertEachOnce(t, readOut(t, opts.Out), n) // old generation untouched
	opts.Progress = nil
	res, err := Reprocess(context.Background(), bus, opts)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Resumed {
		t.Error("second reprocess started over instead of resuming")
	}
	assertEachOnce(t, readOut(t, opts.Out), n)
}

// Read from the stream, records are decoded into the records of chunks
// written before (retagger.free): each record of the new generation must
// be its own raw record tagged alone, written once, with nothing left
// from the record decoded there before it (a record with citing
// sentences, an abstract or facets is followed by ones without).
func TestReprocessReusedRecordsKeepNothingOfTheOneBefore(t *testing.T) {
	const n = 3000 // a dozen chunks, each filled again several times
	bus, c := busAndRules(t)
	ctx := context.Background()
	papers := snapshot.Generated(50).Papers
	want := map[string][]byte{} // id -> the raw record tagged alone, as JSON
	var outs []Out
	for i := range n {
		hub := fmt.Sprint("hub-", i%7)
		r := generatedRaw(hub, i, papers[i%len(papers)])
		switch i % 5 {
		case 1:
			r.Contexts = []record.Context{{Text: fmt.Sprintf("Unlike [%d], we keep every annotator's label.", i), CiteSpan: []int{7, 7 + len(fmt.Sprint(i)) + 2}}}
		case 2:
			r.Paper.Abstract = "Annotators disagree on subjective tasks; we model each one and aggregate them with a jury."
			r.Paper.Authors = []string{"A. Rater"}
		case 3:
			refs := i
			r.Hub.Published = &record.HubCounts{CitingPapers: i, Facets: map[string]map[string]int{"role": {"uses": i}}}
			r.Paper.Refs = &refs
			r.SourceURLs = []string{fmt.Sprint("https://example.org/", i)}
		}
		data, err := record.Marshal(&r)
		if err != nil {
			t.Fatal(err)
		}
		outs = append(outs, Out{Subject: RawSubject(hub), Data: data})
		alone := record.Record{}
		if err := record.Unmarshal(data, &alone); err != nil {
			t.Fatal(err)
		}
		c.Tag(&alone)
		if want[r.ID], err = record.Marshal(&alone); err != nil {
			t.Fatal(err)
		}
	}
	if err := bus.PublishAll(ctx, outs); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "out")
	res, err := Reprocess(ctx, bus, ReprocessOptions{From: "stream", Out: out, Classifier: c, Batch: 1000, Log: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	if res.Records != n {
		t.Errorf("%d records re-tagged, want %d", res.Records, n)
	}
	got := readOut(t, out)
	assertEachOnce(t, got, n)
	for i := range got {
		b, err := record.Marshal(&got[i])
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(b, want[got[i].ID]) {
			t.Fatalf("%s was written as\n%s\nwant, tagged alone,\n%s", got[i].ID, b, want[got[i].ID])
		}
	}
}

// Raw records that leave the stream (its age or size limit) while a
// reprocess reads it, its last one among them, are counted and left out:
// the run ends with the rest. (It waited forever for the last one.)
func TestReprocessEndsWhenTheStreamDropsItsLastRecords(t *testing.T) {
	const n = 6000 // pulls of 1,024: the first batch is sealed long before the last are read
	ctx := context.Background()
	bus, c, stream := rawRecords(t, n)
	last := stream.CachedInfo().State.LastSeq
	// Once the first batch is sealed, five records in the middle and the
	// last five are gone, as if aged out.
	gone := []uint64{last - 1500, last - 1499, last - 1498, last - 1497, last - 1496, last - 4, last - 3, last - 2, last - 1, last}
	var dropped bool
	opts := ReprocessOptions{From: "stream", Out: filepath.Join(t.TempDir(), "out"), Classifier: c, Batch: 64, Log: zerolog.Nop(),
		Progress: func(done, total int64) {
			if dropped {
				return
			}
			dropped = true
			for _, seq := range gone {
				if err := stream.DeleteMsg(ctx, seq); err != nil {
					t.Error(err)
				}
			}
		}}
	type result struct {
		res *ReprocessResult
		err error
	}
	ended := make(chan result, 1)
	go func() {
		res, err := Reprocess(ctx, bus, opts)
		ended <- result{res, err}
	}()
	var got result
	select {
	case got = <-ended:
	case <-time.After(2 * time.Minute):
		t.Fatal("reprocess did not end once the last records of the stream were gone")
	}
	if got.err != nil {
		t.Fatal(got.err)
	}
	if got.res.Gone != uint64(len(gone)) {
		t.Errorf("%d records reported gone from the stream, want %d", got.res.Gone, len(gone))
	}
	if got.res.Records != n-int64(len(gone)) {
		t.Errorf("%d records re-tagged, want %d", got.res.Records, n-len(gone))
	}
	assertEachOnce(t, readOut(t, opts.Out), n-len(gone))
	var text bytes.Buffer
	w := bufio.NewWriter(&text)
	got.res.WriteChanges(w)
	if !strings.Contains(text.String(), fmt.Sprintf("%d records left the stream", len(gone))) {
		t.Errorf("the summary does not say records were gone:\n%s", text.String())
	}
}

// generatedRaw is the i-th record of hub as the fetch stage publishes it,
// untagged: the title and summary of the generated paper p.
func generatedRaw(hub string, i int, p snapshot.Paper) record.Record {
	return record.Record{Schema: record.Schema, ID: record.ID(hub, fmt.Sprint(i)),
		Hub:      record.Hub{ID: hub, Title: "A hub", CitedWorkIDs: []string{}},
		Paper:    record.Paper{Title: p.Title, Summary: p.Summary, Published: p.Date, Categories: []string{p.Cat}},
		Contexts: []record.Context{}, SourceURLs: []string{}, Missing: []string{}}
}

// rawRecords is a bus whose raw stream holds n records over three hubs,
// each with a citing sentence, and the shipped rules' classifier.
func rawRecords(t *testing.T, n int) (*Bus, *classify.Classifier, jetstream.Stream) {
	t.Helper()
	bus, c := busAndRules(t)
	ctx := context.Background()
	outs := make([]Out, n)
	for i := range outs {
		hub := fmt.Sprint("hub-", i%3)
		r := record.Record{Schema: record.Schema, ID: record.ID(hub, fmt.Sprint(i)), Hub: record.Hub{ID: hub, Title: "A hub"},
			Paper: record.Paper{Title: fmt.Sprint("Paper ", i)}, Contexts: []record.Context{{Text: "We use [1] as is.", CiteSpan: []int{7, 10}}}}
		data, err := record.Marshal(&r)
		if err != nil {
			t.Fatal(err)
		}
		outs[i] = Out{Subject: RawSubject(hub), Data: data}
	}
	if err := bus.PublishAll(ctx, outs); err != nil {
		t.Fatal(err)
	}
	stream, err := bus.JS.Stream(ctx, StreamRaw)
	if err != nil {
		t.Fatal(err)
	}
	return bus, c, stream
}

// The answer to a part's last pull comes after the puller gave up on it
// (its idle wait and grace, 2 s): the consumer has nothing pending then,
// but the messages it sent are on their way and are read, not counted as
// gone from the stream. (They were counted gone, and left out.)
func TestReprocessReaderWaitsForMessagesSentLate(t *testing.T) {
	const n = 2500 // a pull of 2,048, then the tail of 452
	cfg := testConfig(t, t.TempDir(), nil)
	bus := openBus(t, cfg)
	defer bus.Close()
	ctx := context.Background()
	outs := make([]Out, n)
	for i := range outs {
		outs[i] = Out{Subject: RawSubject("hub"), Data: []byte(fmt.Sprintf(`{"i":%d}`, i))}
	}
	if err := bus.PublishAll(ctx, outs); err != nil {
		t.Fatal(err)
	}
	st, err := streamState(ctx, bus, StreamRaw)
	if err != nil {
		t.Fatal(err)
	}
	s, err := readServer(cfg.NATS.DataDir)
	if err != nil {
		t.Fatal(err)
	}
	var slow atomic.Bool
	nc, err := nats.Connect("", nats.InProcessServer(slowServer{bus.server.srv, &slow, 2500 * time.Millisecond}), nats.Token(s.Token))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	pr := &streamReader{streamPart: streamPart{stream: StreamRaw, start: st.FirstSeq, last: st.LastSeq}}
	slow.Store(true)
	stop, err := pr.startReading(ctx, &Bus{NC: nc, JS: js}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	read := 0
	for {
		if err := pr.next(ctx); err != nil {
			t.Fatal(err)
		}
		if pr.head == nil {
			break
		}
		read++
	}
	slow.Store(false)
	stop()
	if read != n || pr.gone != 0 {
		t.Errorf("read %d of %d messages, %d counted gone from the stream (none left it)", read, n, pr.gone)
	}
}

// Records that leave the stream between an interrupted reprocess and its
// resume are counted as gone: each record is in the new generation or
// counted. (They were neither.)
func TestReprocessCountsWhatLeftTheStreamBeforeItResumed(t *testing.T) {
	const n = 6000
	bg := context.Background()
	bus, c, stream := rawRecords(t, n)
	first := stream.CachedInfo().State.FirstSeq
	ctx, cancel := context.WithCancel(bg)
	opts := ReprocessOptions{From: "stream", Out: filepath.Join(t.TempDir(), "out"), Classifier: c, Batch: 64, Log: zerolog.Nop(),
		Progress: func(done, total int64) { cancel() }}
	if _, err := Reprocess(ctx, bus, opts); err == nil {
		t.Fatal("an interrupted reprocess reported success")
	}
	// The first half leaves the stream before the run is resumed.
	if err := stream.Purge(bg, jetstream.WithPurgeSequence(first+n/2)); err != nil {
		t.Fatal(err)
	}
	opts.Progress = nil
	res, err := Reprocess(bg, bus, opts)
	if err != nil {
		t.Fatal(err)
	}
	if got := len(readOut(t, opts.Out)); uint64(got)+res.Gone != n {
		t.Errorf("%d records in the new generation and %d counted gone: %d of %d unaccounted for", got, res.Gone, n-got-int(res.Gone), n)
	}
}
