package sink

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/rs/zerolog"
	bolt "go.etcd.io/bbolt"

	"github.com/citecrawl/citecrawl/internal/testkit"
	"github.com/citecrawl/citecrawl/record"
)

// generationBatches are the batches of a new generation with versions
// sealed again and again: 400 versions (two of each of 100 records in
// each of two hubs) drawn at random into 60 seals of 40, then a first
// seal again whole. Each hub folder gets more than runFanIn seals.
func generationBatches() [][]*record.Record {
	base := testRecords(100, "hub-a", "hub-b")
	pool := base
	for _, r := range base {
		c := *r
		c.Role = record.RoleFuture
		pool = append(pool, &c)
	}
	rng := rand.New(rand.NewPCG(4, 5))
	var batches [][]*record.Record
	for range 60 {
		var b []*record.Record
		for range 40 {
			b = append(b, pool[rng.IntN(len(pool))])
		}
		batches = append(batches, b)
	}
	return append(batches, batches[0])
}

// The ends of writeGeneration.
const (
	closes = iota // Close
	stays         // neither Close nor stop: the caller closes
	stops         // stop without closing, the indexes closed as a dying process's are
)

// writeSealed writes each batch to j and seals it before the next, as
// reprocess's checkpoints do.
func writeSealed(t *testing.T, j *jsonl, batches [][]*record.Record) {
	t.Helper()
	ctx := context.Background()
	for _, b := range batches {
		if _, err := j.Write(ctx, b); err != nil {
			t.Fatal(err)
		}
		if err := j.StartFlush(ctx)(); err != nil {
			t.Fatal(err)
		}
	}
}

// writeGeneration writes batches as reprocess does, a seal after each,
// and ends as end says.
func writeGeneration(t *testing.T, dir string, log *testkit.LogBuffer, batches [][]*record.Record, end int, opts ...Option) *jsonl {
	t.Helper()
	ctx := context.Background()
	cfg := testConfig()
	cfg.Out = dir
	if log != nil {
		opts = append(opts, WithLogger(zerolog.New(log)))
	}
	s, err := Open(ctx, cfg, append(opts, WithDedupeAtSeal(), WithSummaryOnClose())...)
	if err != nil {
		t.Fatal(err)
	}
	j := s.(*jsonl)
	writeSealed(t, j, batches)
	switch end {
	case stays:
		return j
	case stops:
		j.closeIndexes()
		return j
	}
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
	return j
}

// folderState is what a generation holds: per hub, its segments' lines
// in order, the line count of each segment, its summary.json, and the
// latest tags of every record as EachLatest gives them.
type folderState struct {
	lines    map[string]string
	segments map[string][]int
	summary  map[string]string
	latest   map[string]Tags
}

func readState(t *testing.T, dir string) folderState {
	t.Helper()
	st := folderState{lines: map[string]string{}, segments: map[string][]int{}, summary: map[string]string{}, latest: map[string]Tags{}}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		hub := e.Name()
		if !e.IsDir() || strings.HasPrefix(hub, ".") {
			continue
		}
		files, err := segmentFiles(filepath.Join(dir, hub))
		if err != nil {
			t.Fatal(err)
		}
		var all []byte
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			all = append(all, b...)
			st.segments[hub] = append(st.segments[hub], bytes.Count(b, []byte("\n")))
		}
		st.lines[hub] = string(all)
		sum, err := os.ReadFile(filepath.Join(dir, hub, SummaryFile))
		if err != nil {
			t.Fatal(err)
		}
		st.summary[hub] = string(sum)
	}
	rd, err := OpenReader(context.Background(), Config{Out: dir})
	if err != nil {
		t.Fatal(err)
	}
	if err := rd.EachLatest(context.Background(), func(id string, tags Tags) { st.latest[id] = tags }); err != nil {
		t.Fatal(err)
	}
	return st
}

// assertSameGeneration checks a generation against the one written with
// every seal indexed as it is sealed, and that its index holds every
// version (a writer given them all again writes none).
func assertSameGeneration(t *testing.T, got, want string) {
	t.Helper()
	assertGeneration(t, got, want, true)
}

// assertGeneration is assertSameGeneration, where the lines may be cut
// into other segments unless sameSegments.
func assertGeneration(t *testing.T, got, want string, sameSegments bool) {
	t.Helper()
	g, w := readState(t, got), readState(t, want)
	for hub := range w.lines {
		if g.lines[hub] != w.lines[hub] {
			t.Errorf("%s: %d lines, want %d, or not the same", hub, strings.Count(g.lines[hub], "\n"), strings.Count(w.lines[hub], "\n"))
		}
		if sameSegments && fmt.Sprint(g.segments[hub]) != fmt.Sprint(w.segments[hub]) {
			t.Errorf("%s: segments of %v lines, want %v", hub, g.segments[hub], w.segments[hub])
		}
		if g.summary[hub] != w.summary[hub] {
			t.Errorf("%s: summary\n%s\nwant\n%s", hub, g.summary[hub], w.summary[hub])
		}
	}
	if !maps.Equal(g.latest, w.latest) {
		t.Errorf("EachLatest gives %d records, want %d, or other tags", len(g.latest), len(w.latest))
	}
	var all []*record.Record
	for _, b := range generationBatches() {
		all = append(all, b...)
	}
	again := openFolder(t, got)
	if n, err := again.Write(context.Background(), all); err != nil || n != 0 {
		t.Errorf("writing every version again: %d new, %v; want none new", n, err)
	}
	if err := again.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, hub := range []string{"hub-a", "hub-b"} {
		if runs, _ := filepath.Glob(filepath.Join(got, hub, runsDir, "*")); len(runs) > 0 {
			t.Errorf("%s: runs left after Close: %v", hub, runs)
		}
	}
}

// reference writes the generation with each seal indexed as it is sealed.
func reference(t *testing.T) string {
	dir := t.TempDir()
	writeGeneration(t, dir, nil, generationBatches(), closes)
	return dir
}

// TestOwnFolderIndexedAtCloseWritesWhatEachSealWould: the folder's only
// writer indexes its seals at Close, from runs, merged in levels; a
// version it sealed twice (in two seals, whole seals too) is written once,
// as when each seal is indexed as it is sealed: the same lines in the same
// segments, the same summary and latest tags.
func TestOwnFolderIndexedAtCloseWritesWhatEachSealWould(t *testing.T) {
	want := reference(t)
	got := t.TempDir()
	var log testkit.LogBuffer
	j := writeGeneration(t, got, &log, generationBatches(), closes, WithOwnFolder())
	if !j.deferIndex {
		t.Fatal("the writer does not index at Close")
	}
	assertSameGeneration(t, got, want)
	if strings.Contains(log.String(), "segments") {
		t.Errorf("the index was built from the segments: %s", log.String())
	}
	if s, w := j.Sealed(), readState(t, want); s.Records != int64(strings.Count(w.lines["hub-a"]+w.lines["hub-b"], "\n")) {
		t.Errorf("Sealed counts %d records, the folder holds %d lines", s.Records, strings.Count(w.lines["hub-a"]+w.lines["hub-b"], "\n"))
	}
}

// TestOwnFolderDamagedRunIsNotTrusted: a run cut short is found at Close,
// and the index is built from the segments instead, dropping the same
// lines.
func TestOwnFolderDamagedRunIsNotTrusted(t *testing.T) {
	want := reference(t)
	got := t.TempDir()
	var log testkit.LogBuffer
	j := writeGeneration(t, got, &log, generationBatches(), stays, WithOwnFolder())
	runs, _ := filepath.Glob(filepath.Join(got, "hub-a", runsDir, "*.run"))
	if len(runs) < 2 {
		t.Fatalf("runs %v: want several", runs)
	}
	info, err := os.Stat(runs[len(runs)-1])
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(runs[len(runs)-1], info.Size()/2); err != nil {
		t.Fatal(err)
	}
	if err := j.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if want := "could not be built from its runs"; !strings.Contains(log.String(), want) {
		t.Errorf("log %q does not say %q", log.String(), want)
	}
	assertSameGeneration(t, got, want)
}

// TestOwnFolderRunsOfALevelShareAFile: the runs of a level are written
// one after another into one file (a file a run cost more CPU than the
// run), and read back from it as they were written: the generation is
// the reference.
func TestOwnFolderRunsOfALevelShareAFile(t *testing.T) {
	want := reference(t)
	got := t.TempDir()
	j := writeGeneration(t, got, nil, generationBatches(), stays, WithOwnFolder())
	h := j.hubs["hub-a"]
	if h.runs == nil || len(h.runs.segs) <= runFanIn {
		t.Fatalf("hub-a: runs %v: want more than %d seals in them", h.runs, runFanIn)
	}
	files, _ := filepath.Glob(filepath.Join(got, "hub-a", runsDir, "*"))
	levels := 0
	for _, lv := range h.runs.levels {
		if len(lv.spans) > 0 {
			levels++
		}
	}
	if len(files) != levels || levels < 2 {
		t.Errorf("%d seals: %d run files %v for %d levels, want a file per level and more than one level", len(h.runs.segs), len(files), files, levels)
	}
	if err := j.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	assertSameGeneration(t, got, want)
}

// TestOwnFolderRunSharingAFileDamagedIsNotTrusted: a run whose count was
// changed, first in its level's file, is found when the level is merged;
// a level's file that is not the size its runs make (a write of the
// writer's went astray) is not appended to. Either way the runs are
// given up and the index is built from the segments, dropping the same
// lines.
func TestOwnFolderRunSharingAFileDamagedIsNotTrusted(t *testing.T) {
	want := reference(t)
	batches := generationBatches()
	// count and size are damage found when a run is appended; truncated,
	// a file cut short after the last append, is found when its runs are
	// read at Close.
	for _, damage := range []string{"count", "size", "truncated"} {
		t.Run(damage, func(t *testing.T) {
			got := t.TempDir()
			var log testkit.LogBuffer
			j := writeGeneration(t, got, &log, batches[:20], stays, WithOwnFolder())
			lv := j.hubs["hub-a"].runs.levels[0]
			if len(lv.spans) < 2 {
				t.Fatalf("level 0 holds %d runs, want several", len(lv.spans))
			}
			if damage != "truncated" {
				f, err := os.OpenFile(lv.path, os.O_RDWR, 0)
				if err != nil {
					t.Fatal(err)
				}
				if damage == "count" { // the first run's, at its end
					sp := lv.spans[0]
					_, err = f.WriteAt([]byte{0, 0, 0, 0, 0, 0, 0, 1}, sp.off+sp.size-8)
				} else {
					_, err = f.WriteAt([]byte("x"), lv.end)
				}
				if cerr := f.Close(); err == nil {
					err = cerr
				}
				if err != nil {
					t.Fatal(err)
				}
			}
			writeSealed(t, j, batches[20:])
			msg := errBadRun.Error()
			switch damage {
			case "size":
				msg = fmt.Sprintf("%s: %s: %d bytes, its runs %d", lv.path, msg, lv.end+1, lv.end)
			case "truncated":
				lv = j.hubs["hub-a"].runs.levels[0]
				if len(lv.spans) == 0 {
					t.Fatal("level 0 holds no run at Close")
				}
				if err := os.Truncate(lv.path, lv.end-1); err != nil {
					t.Fatal(err)
				}
				last := lv.spans[len(lv.spans)-1]
				msg = fmt.Sprintf("%s@%d: %s: %d bytes from %d, the file %d", lv.path, last.off, msg, last.size, last.off, lv.end-1)
			}
			if err := j.Close(context.Background()); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(log.String(), msg) {
				t.Errorf("log %q does not say %q", log.String(), msg)
			}
			assertSameGeneration(t, got, want)
		})
	}
}

// TestOwnFolderWriterThatStoppedIsCaughtUp: a writer that stops without
// closing leaves its seals out of the index and its runs behind; the
// next writer drops the runs, indexes the seals from the segments
// (dropping the lines of versions sealed twice) and goes on.
func TestOwnFolderWriterThatStoppedIsCaughtUp(t *testing.T) {
	want := reference(t)
	batches := generationBatches()
	got := t.TempDir()
	writeGeneration(t, got, nil, batches[:30], stops, WithOwnFolder())
	if runs, _ := filepath.Glob(filepath.Join(got, "hub-a", runsDir, "*.run")); len(runs) == 0 {
		t.Fatal("no runs left by the writer that stopped")
	}
	writeGeneration(t, got, nil, batches[30:], closes, WithOwnFolder())
	assertSameGeneration(t, got, want)
}

// TestOwnFolderInterruptedBuildIsDoneAgain: an index build from runs that
// stopped half-way (metaBulk, part of the versions added) is not taken
// for versions indexed before: the next writer builds the index again
// from the segments, and drops no line of them.
func TestOwnFolderInterruptedBuildIsDoneAgain(t *testing.T) {
	want := reference(t)
	batches := generationBatches()
	got := t.TempDir()
	writeGeneration(t, got, nil, batches[:30], stops, WithOwnFolder())
	// Half a build: the versions of the last segment, and the mark.
	hubDir := filepath.Join(got, "hub-a")
	files, err := segmentFiles(hubDir)
	if err != nil || len(files) == 0 {
		t.Fatal(files, err)
	}
	var versions []version
	err = readVersions(files[len(files)-1], func(v version, _ record.Hub) error {
		versions = append(versions, v)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	db, err := openIndex(hubDir, true)
	if err != nil {
		t.Fatal(err)
	}
	ix := &hubIndex{db: db, dir: hubDir, log: zerolog.Nop()}
	if err := ix.apply(versions, nil); err != nil {
		t.Fatal(err)
	}
	err = ix.update(func(tx *bolt.Tx) error {
		m, err := tx.CreateBucketIfNotExists([]byte(bucketMeta))
		if err != nil {
			return err
		}
		return m.Put([]byte(metaBulk), []byte(filepath.Base(files[len(files)-1])))
	})
	if err != nil {
		t.Fatal(err)
	}
	ix.Close()
	var log testkit.LogBuffer
	writeGeneration(t, got, &log, batches[30:], closes, WithOwnFolder())
	if want := "was being built when its writer stopped"; !strings.Contains(log.String(), want) {
		t.Errorf("log %q does not say %q", log.String(), want)
	}
	assertSameGeneration(t, got, want)
}

// TestOwnFolderKilledWriterLosesAndRepeatsNothing: a writer killed with
// SIGKILL while it seals, or while it builds the index at Close, leaves a
// folder that the next writer, given every record again as reprocess's
// resume gives those after its checkpoint, completes with each version
// written once, in the order first written, the summary and latest tags
// those of a writer never killed.
func TestOwnFolderKilledWriterLosesAndRepeatsNothing(t *testing.T) {
	want := reference(t)
	for _, kill := range []string{"sealed 20", "sealed 45", "closing"} {
		t.Run(kill, func(t *testing.T) {
			got := t.TempDir()
			child := exec.Command(os.Args[0], "-test.run=^TestOwnFolderGenerationChild$")
			child.Env = append(os.Environ(), "SINK_GENERATION_CHILD="+got)
			out, err := child.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			var stderr testkit.LogBuffer
			child.Stderr = &stderr
			if err := child.Start(); err != nil {
				t.Fatal(err)
			}
			sc := bufio.NewScanner(out)
			for sc.Scan() && sc.Text() != kill {
			}
			if err := child.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			_ = child.Wait()
			if sc.Text() != kill {
				t.Fatalf("the child ended before %q: %s", kill, stderr.String())
			}
			writeGeneration(t, got, nil, generationBatches(), closes, WithOwnFolder())
			assertGeneration(t, got, want, false)
		})
	}
}

// TestOwnFolderKilledWritersOtherHubsAreCompleted: a hub folder the next
// writer does not write to is brought up to date at its Close all the
// same: every version once, the summary written, the index covering it.
func TestOwnFolderKilledWritersOtherHubsAreCompleted(t *testing.T) {
	const stop = 45
	batches := generationBatches()
	var hubA, hubB [][]*record.Record
	for i, b := range batches {
		var a, bb []*record.Record
		for _, r := range b {
			if r.Hub.ID == "hub-a" {
				a = append(a, r)
			} else {
				bb = append(bb, r)
			}
		}
		if i < stop {
			hubA = append(hubA, a)
		}
		hubB = append(hubB, bb)
	}
	want := t.TempDir()
	writeGeneration(t, want, nil, hubA, closes)
	got := t.TempDir()
	child := exec.Command(os.Args[0], "-test.run=^TestOwnFolderGenerationChild$")
	child.Env = append(os.Environ(), "SINK_GENERATION_CHILD="+got, fmt.Sprint("SINK_GENERATION_STOP=", stop))
	out, err := child.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(out)
	for sc.Scan() && sc.Text() != fmt.Sprint("sealed ", stop) {
	}
	if err := child.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = child.Wait()
	writeGeneration(t, got, nil, hubB, closes, WithOwnFolder())
	g, w := readState(t, got), readState(t, want)
	if g.lines["hub-a"] != w.lines["hub-a"] {
		t.Errorf("hub-a: %d lines, want %d, or not the same", strings.Count(g.lines["hub-a"], "\n"), strings.Count(w.lines["hub-a"], "\n"))
	}
	if g.summary["hub-a"] != w.summary["hub-a"] {
		t.Errorf("hub-a: summary\n%s\nwant\n%s", g.summary["hub-a"], w.summary["hub-a"])
	}
	var all []*record.Record
	for _, b := range hubA {
		all = append(all, b...)
	}
	again := openFolder(t, got)
	defer again.Close(context.Background())
	if n, err := again.Write(context.Background(), all); err != nil || n != 0 {
		t.Errorf("writing hub-a's versions again: %d new, %v; want none new", n, err)
	}
}

// TestOwnFolderGenerationChild is the writer TestOwnFolderKilledWriter...
// kills: it writes the generation into $SINK_GENERATION_CHILD, saying on
// stdout what it has done.
func TestOwnFolderGenerationChild(t *testing.T) {
	dir := os.Getenv("SINK_GENERATION_CHILD")
	if dir == "" {
		t.Skip("run by TestOwnFolderKilledWriterLosesAndRepeatsNothing")
	}
	ctx := context.Background()
	cfg := testConfig()
	cfg.Out = dir
	s, err := Open(ctx, cfg, WithDedupeAtSeal(), WithSummaryOnClose(), WithOwnFolder())
	if err != nil {
		t.Fatal(err)
	}
	stop, _ := strconv.Atoi(os.Getenv("SINK_GENERATION_STOP"))
	for i, b := range generationBatches() {
		if _, err := s.Write(ctx, b); err != nil {
			t.Fatal(err)
		}
		if err := s.(BackgroundFlusher).StartFlush(ctx)(); err != nil {
			t.Fatal(err)
		}
		fmt.Printf("sealed %d\n", i+1)
		if i+1 == stop {
			select {} // until killed
		}
	}
	fmt.Println("closing")
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
	fmt.Println("closed")
}

// TestOwnFolderVersionSealedTwiceIsWrittenOnce: the same versions in two
// seals of the folder's only writer, which looks them up only in what
// was indexed before it opened the folder, are one line each; the second
// seal keeps only its new version, and the index knows every version.
func TestOwnFolderVersionSealedTwiceIsWrittenOnce(t *testing.T) {
	recs := testRecords(4, "hub-a")
	dir := t.TempDir()
	writeGeneration(t, dir, nil, [][]*record.Record{recs[:3], recs}, closes, WithOwnFolder())
	st := readState(t, dir)
	if got := fmt.Sprint(st.segments["hub-a"]); got != "[3 1]" {
		t.Errorf("segments of %s lines, want [3 1]", got)
	}
	again := openFolder(t, dir)
	defer again.Close(context.Background())
	if n, err := again.Write(context.Background(), recs); err != nil || n != 0 {
		t.Errorf("writing the versions again: %d new, %v; want none new", n, err)
	}
}

// A segment added to the index in several transactions by a writer that
// was killed between two of them leaves the index holding part of its
// versions without covering it. The folder's next only writer must not
// take those for repeats of an earlier segment and drop the segment's
// lines, the only copy; nor then drop the resumed run's copies at the
// seal. (Without the mark, 1,024 of 3,000 lines were lost.)
func TestOwnFolderResumesAfterAnAddKilledMidway(t *testing.T) {
	recs := testRecords(3000, "hub-a")
	dir := t.TempDir()
	hubDir := filepath.Join(dir, "hub-a")
	// Two seals indexed one by one, as a writer that gave its runs up does.
	writeGeneration(t, dir, nil, [][]*record.Record{recs[:100], recs[100:]}, stops)
	files, err := segmentFiles(hubDir)
	if err != nil || len(files) != 2 {
		t.Fatal(files, err)
	}
	segment := func(f string) (vs []version, hub record.Hub) {
		err := readVersions(f, func(v version, h record.Hub) error {
			vs, hub = append(vs, v), h
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return vs, hub
	}
	// The index as add leaves it killed after its first transaction of the
	// second segment.
	if err := os.Remove(filepath.Join(hubDir, indexFile)); err != nil {
		t.Fatal(err)
	}
	db, err := openIndex(hubDir, true)
	if err != nil {
		t.Fatal(err)
	}
	ix := &hubIndex{db: db, dir: hubDir, log: zerolog.Nop()}
	v1, h1 := segment(files[0])
	v2, _ := segment(files[1])
	if err := ix.add(filepath.Base(files[0]), v1, &h1); err != nil {
		t.Fatal(err)
	}
	if err := ix.apply(v2[:indexChunk], markAdding(filepath.Base(files[1]))); err != nil {
		t.Fatal(err)
	}
	// Written by a process of this boot, as markDirty leaves it.
	err = ix.update(func(tx *bolt.Tx) error {
		return tx.Bucket([]byte(bucketMeta)).Put([]byte(metaState), []byte("dirty "+bootID()))
	})
	if err != nil {
		t.Fatal(err)
	}
	ix.Close()
	// The resumed run sends every record after its checkpoint again.
	writeGeneration(t, dir, nil, [][]*record.Record{recs[100:]}, closes, WithOwnFolder())
	lines := 0
	files, _ = segmentFiles(hubDir)
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		lines += bytes.Count(b, []byte("\n"))
	}
	if lines != len(recs) {
		t.Errorf("%d lines in hub-a, want %d", lines, len(recs))
	}
	assertSummary(t, dir, "hub-a", recs)
}

// An index found marked (an interrupted build) is emptied and built again
// once: emptying it keeps its state, so the next open does not take it
// for one a machine crash left and build it a second time.
func TestOwnFolderInterruptedBuildIsBuiltOnce(t *testing.T) {
	batches := generationBatches()
	dir := t.TempDir()
	writeGeneration(t, dir, nil, batches[:30], stops, WithOwnFolder())
	db, err := openIndex(filepath.Join(dir, "hub-a"), true)
	if err != nil {
		t.Fatal(err)
	}
	ix := &hubIndex{db: db, dir: filepath.Join(dir, "hub-a"), log: zerolog.Nop()}
	err = ix.update(func(tx *bolt.Tx) error {
		m := tx.Bucket([]byte(bucketMeta))
		if err := m.Put([]byte(metaBulk), []byte("x")); err != nil {
			return err
		}
		return m.Put([]byte(metaState), []byte("dirty "+bootID()))
	})
	if err != nil {
		t.Fatal(err)
	}
	ix.Close()
	var log testkit.LogBuffer
	writeGeneration(t, dir, &log, batches[30:], closes, WithOwnFolder())
	if n := strings.Count(log.String(), "machine stopped"); n != 0 {
		t.Errorf("the index was taken for one a machine crash left (%d times):\n%s", n, log.String())
	}
}

// Runs that cannot be written mid-generation (their folder made a file):
// the writer gives them up and indexes its seals one by one, the index
// catching up from the segments (or, were the runs kept, the build at
// Close fails and falls back to the segments); either way the generation
// is the reference, every version once.
func TestOwnFolderRunsFailingMidwayLoseNothing(t *testing.T) {
	want := reference(t)
	batches := generationBatches()
	got := t.TempDir()
	var log testkit.LogBuffer
	j := writeGeneration(t, got, &log, batches[:25], stays, WithOwnFolder())
	rd := filepath.Join(got, "hub-a", runsDir)
	if err := os.RemoveAll(rd); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(rd, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	writeSealed(t, j, batches[25:])
	if err := j.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(log.String(), "not written to the index runs") {
		t.Errorf("the runs' failure was not logged: %s", log.String())
	}
	assertSameGeneration(t, got, want)
}

// BenchmarkRunsAdd adds the versions of 61 segments of 820 records (a hub
// folder's at a million records, as reprocess seals them) to a hub's
// deferred index: each sorted into a run, the runs merged by level.
func BenchmarkRunsAdd(b *testing.B) {
	const segs, perSeg = 61, 820
	versions := make([]version, segs*perSeg)
	var tags []*Tags // shared by the versions that have the same, as a segment's are (segment.tagsOf)
	for _, role := range record.Roles {
		tags = append(tags, &Tags{Role: role, Year: "2024"})
	}
	for i := range versions {
		versions[i] = version{id: record.ID("bench-hub", fmt.Sprint(i)), tags: tags[i%len(tags)]}
		copy(versions[i].fp[:], versions[i].id[4:])
	}
	hub := record.Hub{ID: "bench-hub"}
	b.ReportAllocs()
	for b.Loop() {
		r, err := newRuns(b.TempDir())
		if err != nil {
			b.Fatal(err)
		}
		for s := range segs {
			if err := r.add(fmt.Sprintf("seg-%08d.jsonl", s), versions[s*perSeg:(s+1)*perSeg], hub); err != nil {
				b.Fatal(err)
			}
		}
	}
}
