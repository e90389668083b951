package sink

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	bolt "go.etcd.io/bbolt"

	"github.com/citecrawl/citecrawl/internal/testkit"
	"github.com/citecrawl/citecrawl/record"
)

func openLogged(t *testing.T, dir string, log *testkit.LogBuffer) Sink {
	t.Helper()
	cfg := testConfig()
	cfg.Out = dir
	cfg.SegmentMaxBytes = 256 << 10 // many segments
	s, err := Open(context.Background(), cfg, WithLogger(zerolog.New(log)))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// writeAll writes records in batches, flushing at the sink's size limit
// as the sink stage does, and returns how many were new.
func writeAll(t *testing.T, s Sink, recs []*record.Record) int {
	t.Helper()
	ctx := context.Background()
	n, bytes := 0, 0
	for lo := 0; lo < len(recs); lo += 256 {
		batch := recs[lo:min(lo+256, len(recs))]
		k, err := s.Write(ctx, batch)
		if err != nil {
			t.Fatal(err)
		}
		n += k
		bytes += 600 * k
		if s.Batching().Due(k, int64(bytes), 0) {
			if err := s.Flush(ctx); err != nil {
				t.Fatal(err)
			}
			bytes = 0
		}
	}
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
	return n
}

// assertSummary checks a hub's summary.json against the summary of the
// latest of the given record versions (later ones win).
func assertSummary(t *testing.T, dir, hub string, versions []*record.Record) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, hub, SummaryFile))
	if err != nil {
		t.Fatal(err)
	}
	var got Summary
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	latest := map[string]Tags{}
	for _, r := range versions {
		latest[r.ID] = TagsOf(r)
	}
	want := Summarise(versions[len(versions)-1].Hub, latest)
	wb, _ := json.Marshal(want)
	gb, _ := json.Marshal(got)
	if !bytes.Equal(wb, gb) {
		t.Fatalf("summary.json\n%s\nwant\n%s", gb, wb)
	}
}

// garble overwrites every segment of a hub folder with lines that are not
// records, keeping their names and sizes: a writer that read them would fail.
func garble(t *testing.T, hubDir string) {
	t.Helper()
	files, err := segmentFiles(hubDir)
	if err != nil || len(files) < 2 {
		t.Fatalf("segments %v (%v), want several", files, err)
	}
	for _, f := range files {
		info, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(f, bytes.Repeat([]byte("not json\n"), int(info.Size())/9+1), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// A reopened writer tells what was written from the index alone: with
// every segment's content made unreadable (names kept), it writes none of
// the 6,000 records again, writes a new version and new records once,
// and counts the summary from the index.
func TestJSONLIndexAnswersWithoutReadingSegments(t *testing.T) {
	dir := t.TempDir()
	var log testkit.LogBuffer
	recs := testRecords(3000, "hub-a", "hub-b")
	if n := writeAll(t, openLogged(t, dir, &log), recs); n != len(recs) {
		t.Fatalf("first writer: %d new, want %d", n, len(recs))
	}
	for _, hub := range []string{"hub-a", "hub-b"} {
		if _, err := os.Stat(filepath.Join(dir, hub, indexFile)); err != nil {
			t.Fatalf("no index in %s: %v", hub, err)
		}
		garble(t, filepath.Join(dir, hub))
	}
	// The reader takes the 6,000 records from the index alone, 1,024 at a
	// time, each once with its tags.
	rd, err := OpenReader(context.Background(), Config{Out: dir})
	if err != nil {
		t.Fatal(err)
	}
	given, tags := map[string]int{}, map[string]Tags{}
	err = rd.EachLatest(context.Background(), func(id string, tg Tags) { given[id]++; tags[id] = tg })
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		if given[r.ID] != 1 || tags[r.ID] != TagsOf(r) {
			t.Fatalf("EachLatest gave %s %d times, tags %+v; want once, %+v", r.ID, given[r.ID], tags[r.ID], TagsOf(r))
		}
	}
	if len(given) != len(recs) {
		t.Fatalf("EachLatest gave %d records, want %d", len(given), len(recs))
	}
	changed := *recs[0] // hub-a, role background -> future
	changed.Role = record.RoleFuture
	more := testRecords(3200, "hub-a")[3000:]
	s := openLogged(t, dir, &log)
	again := append(append(append([]*record.Record{}, recs...), &changed), more...)
	if n := writeAll(t, s, again); n != 1+len(more) {
		t.Fatalf("reopened writer: %d new, want %d (a new version and %d new records)", n, 1+len(more), len(more))
	}
	assertSummary(t, dir, "hub-a", append(append(recs[:3000:3000], &changed), more...))
	if strings.Contains(log.String(), "building") {
		t.Fatalf("the index was built again: %s", log.String())
	}
}

// Deleting an index, or damaging it, makes the next writer build it again
// from the segments, saying so, with the same answers: nothing written
// twice, the summary the same. One record's title ends in half a rune: its
// line holds the escape of U+FFFD, which decodes to a rune encoded
// otherwise, so the rebuild must take its fingerprint from the line, as
// the writer did, not from the record decoded.
func TestJSONLIndexIsRebuiltFromTheSegments(t *testing.T) {
	for _, damage := range []string{"deleted", "corrupt", "unsynced"} {
		t.Run(damage, func(t *testing.T) {
			dir := t.TempDir()
			var log testkit.LogBuffer
			recs := testRecords(2000, "hub-a")
			recs[7].Paper.Title = "A title cut in a rune \xe2\x80"
			if n := writeAll(t, openLogged(t, dir, &log), recs); n != len(recs) {
				t.Fatalf("first writer: %d new", n)
			}
			index := filepath.Join(dir, "hub-a", indexFile)
			switch damage {
			case "deleted":
				if err := os.Remove(index); err != nil {
					t.Fatal(err)
				}
			case "corrupt":
				if err := os.WriteFile(index, bytes.Repeat([]byte{0xde, 0xad}, 8192), 0o644); err != nil {
					t.Fatal(err)
				}
			case "unsynced": // written without fsyncs during a boot that has ended
				if bootID() == "" {
					t.Skip("no boot id on this system: every commit of the index is fsynced")
				}
				db, err := bolt.Open(index, 0o644, nil)
				if err != nil {
					t.Fatal(err)
				}
				err = db.Update(func(tx *bolt.Tx) error {
					return tx.Bucket([]byte(bucketMeta)).Put([]byte(metaState), []byte("dirty 00000000-0000-0000-0000-000000000000"))
				})
				db.Close()
				if err != nil {
					t.Fatal(err)
				}
			}
			// A reader does not take a damaged index at its word either.
			rd, err := OpenReader(context.Background(), Config{Out: dir})
			if err != nil {
				t.Fatal(err)
			}
			n := 0
			if err := rd.EachLatest(context.Background(), func(string, Tags) { n++ }); err != nil || n != len(recs) {
				t.Fatalf("EachLatest with the index %s: %d records (%v), want %d", damage, n, err, len(recs))
			}
			more := testRecords(2100, "hub-a")[2000:]
			if n := writeAll(t, openLogged(t, dir, &log), append(append([]*record.Record{}, recs...), more...)); n != len(more) {
				t.Fatalf("after the index was %s: %d new, want the %d new records only", damage, n, len(more))
			}
			assertEachOnce(t, readFolder(t, dir), append(recs, more...))
			wantLine := map[string]string{"deleted": "building the index of the hub folder from its segments",
				"corrupt":  "the index of the hub folder is unreadable: building it again from the segments",
				"unsynced": "the index of the hub folder was being written when the machine stopped: building it again from the segments"}[damage]
			if !strings.Contains(log.String(), wantLine) {
				t.Errorf("log %q does not say %q", log.String(), wantLine)
			}
			// Deleted once more: the summary built from the rebuilt index
			// is the one written as the records came.
			if err := os.Remove(index); err != nil {
				t.Fatal(err)
			}
			s := openLogged(t, dir, &log)
			if n, err := s.Write(context.Background(), recs[:1]); err != nil || n != 0 {
				t.Fatalf("Write after a second rebuild = %d, %v", n, err)
			}
			if err := s.Close(context.Background()); err != nil {
				t.Fatal(err)
			}
			assertSummary(t, dir, "hub-a", append(recs, more...))
		})
	}
}

// A segment published but not indexed (its writer stopped in between) is
// indexed by the next writer, which says so; one removed by hand makes
// the index not match, and it is built again: the removed records are
// written again, the others not.
func TestJSONLIndexFollowsTheSegments(t *testing.T) {
	dir := t.TempDir()
	var log testkit.LogBuffer
	recs := testRecords(1500, "hub-a")
	if n := writeAll(t, openLogged(t, dir, &log), recs[:1000]); n != 1000 {
		t.Fatalf("first writer: %d new", n)
	}
	// Records 1000-1499 published by a writer that stopped before indexing:
	// a segment named after the last one, not in the index.
	var lines []byte
	for _, r := range recs[1000:] {
		b, _ := json.Marshal(r)
		lines = append(append(lines, b...), '\n')
	}
	unindexed := filepath.Join(dir, "hub-a", segmentName(time.Now().Add(time.Second)))
	if err := os.WriteFile(unindexed, lines, 0o644); err != nil {
		t.Fatal(err)
	}
	if n := writeAll(t, openLogged(t, dir, &log), recs); n != 0 {
		t.Fatalf("%d records written again beside a segment not yet indexed", n)
	}
	if !strings.Contains(log.String(), "indexing segments published without being indexed") {
		t.Errorf("log %q does not say the segment was indexed", log.String())
	}
	if err := os.Remove(unindexed); err != nil {
		t.Fatal(err)
	}
	if n := writeAll(t, openLogged(t, dir, &log), recs); n != 500 {
		t.Fatalf("after a segment was removed by hand: %d new, want its 500 records", n)
	}
	if !strings.Contains(log.String(), "does not match its segments") {
		t.Errorf("log %q does not say the index was built again", log.String())
	}
	assertEachOnce(t, readFolder(t, dir), recs)
}

// BenchmarkJSONLWrite is the folder sink's write rate: 100,000 records of
// about 600 bytes over 20 hubs, written in batches of 256 and sealed at
// the shipped 8 MiB segment limit, into a fresh folder; then the same
// records given again to a new writer (all already written).
func BenchmarkJSONLWrite(b *testing.B) {
	const n = 100_000
	var recs []*record.Record
	for h := range 20 {
		recs = append(recs, testRecords(n/20, fmt.Sprint("hub-", h))...)
	}
	ctx := context.Background()
	var fresh, again time.Duration
	for b.Loop() {
		cfg := testConfig()
		cfg.Out = b.TempDir()
		for pass, took := range []*time.Duration{&fresh, &again} {
			start := time.Now()
			s, err := Open(ctx, cfg)
			if err != nil {
				b.Fatal(err)
			}
			var bytes int64
			written := 0
			for lo := 0; lo < len(recs); lo += 256 {
				k, err := s.Write(ctx, recs[lo:min(lo+256, len(recs))])
				if err != nil {
					b.Fatal(err)
				}
				written += k
				if bytes += 600 * int64(k); s.Batching().Due(k, bytes, 0) {
					if err := s.Flush(ctx); err != nil {
						b.Fatal(err)
					}
					bytes = 0
				}
			}
			if err := s.Close(ctx); err != nil {
				b.Fatal(err)
			}
			if want := map[int]int{0: n, 1: 0}[pass]; written != want {
				b.Fatalf("pass %d wrote %d, want %d", pass, written, want)
			}
			*took += time.Since(start)
		}
	}
	b.ReportMetric(float64(n*b.N)/fresh.Seconds(), "records/s")
	b.ReportMetric(float64(n*b.N)/again.Seconds(), "dups/s")
}

// damageFrom overwrites n bytes of an index file from offset on: a page
// header so overwritten makes bbolt panic when it reaches the page.
func damageFrom(t *testing.T, index string, offset int64, n int) {
	t.Helper()
	f, err := os.OpenFile(index, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(bytes.Repeat([]byte{0xde, 0xad}, n/2), offset); err != nil {
		t.Fatal(err)
	}
}

// leafPages lists the leaf pages of an index from page 4 on, and its page
// size.
func leafPages(t *testing.T, index string) (pages []int, size int) {
	t.Helper()
	db, err := bolt.Open(index, 0o644, nil) // for update: tx.Page wants the free pages
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.View(func(tx *bolt.Tx) error {
		size = db.Info().PageSize
		for id := 4; id < int(tx.Size())/size; id++ {
			p, err := tx.Page(id)
			if err != nil {
				return err
			}
			if p != nil && p.Type == "leaf" {
				pages = append(pages, id)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return pages, size
}

// An index that opens but has a damaged page (bbolt panics on reaching
// it) is built again from the segments by the next writer, saying so:
// the seal succeeds, nothing is written twice, the summary is exact. A
// reader falls back to the segments, giving each record once even when
// the damage is found after it gave some from the index.
func TestJSONLIndexWithADamagedPageIsRebuilt(t *testing.T) {
	for _, damage := range []string{"tail", "leaf"} {
		t.Run(damage, func(t *testing.T) {
			dir := t.TempDir()
			var log testkit.LogBuffer
			recs := testRecords(3000, "hub-a")
			if n := writeAll(t, openLogged(t, dir, &log), recs); n != len(recs) {
				t.Fatalf("first writer: %d new", n)
			}
			index := filepath.Join(dir, "hub-a", indexFile)
			leaves, size := leafPages(t, index)
			if len(leaves) < 4 {
				t.Fatalf("the index has %d leaf pages, want several", len(leaves))
			}
			switch damage {
			case "tail": // every page from the fifth on
				info, err := os.Stat(index)
				if err != nil {
					t.Fatal(err)
				}
				damageFrom(t, index, 4*int64(size), int(info.Size())-4*size)
			case "leaf": // one page of records, found after the first chunk
				orig, err := os.ReadFile(index)
				if err != nil {
					t.Fatal(err)
				}
				found := false
				for i := len(leaves) - 1; i >= 0 && !found; i-- {
					damageFrom(t, index, int64(leaves[i]*size), 16)
					ok, after, err := eachLatest(filepath.Join(dir, "hub-a"), func(string, Tags) {})
					if found = err == nil && !ok && after != nil; !found {
						if err := os.WriteFile(index, orig, 0o644); err != nil {
							t.Fatal(err)
						}
					}
				}
				if !found {
					t.Fatal("no leaf page is reached after the first chunk")
				}
			}
			count := map[string]int{}
			rd, err := OpenReader(context.Background(), Config{Out: dir})
			if err != nil {
				t.Fatal(err)
			}
			if err := rd.EachLatest(context.Background(), func(id string, _ Tags) { count[id]++ }); err != nil {
				t.Fatal(err)
			}
			for _, r := range recs {
				if count[r.ID] != 1 {
					t.Fatalf("EachLatest gave %s %d times, want once (%d ids)", r.ID, count[r.ID], len(count))
				}
			}
			if len(count) != len(recs) {
				t.Fatalf("EachLatest gave %d ids, want %d", len(count), len(recs))
			}
			more := testRecords(3100, "hub-a")[3000:]
			if n := writeAll(t, openLogged(t, dir, &log), append(append([]*record.Record{}, recs...), more...)); n != len(more) {
				t.Fatalf("with a damaged page in the index: %d new, want the %d new records only", n, len(more))
			}
			if want := "the index of the hub folder is unreadable: building it again from the segments"; !strings.Contains(log.String(), want) {
				t.Errorf("log %q does not say %q", log.String(), want)
			}
			assertEachOnce(t, readFolder(t, dir), append(recs, more...))
			assertSummary(t, dir, "hub-a", append(recs, more...))
		})
	}
}

// A writer holding the index open finds a page damaged meanwhile when its
// look-up reaches it (publish): the index is built again once, and the
// look-up answers from it.
func TestHubIndexRebuildsWhenAPageIsFoundDamaged(t *testing.T) {
	dir := t.TempDir()
	var log testkit.LogBuffer
	recs := testRecords(3000, "hub-a")
	writeAll(t, openLogged(t, dir, &log), recs)
	hubDir := filepath.Join(dir, "hub-a")
	leaves, size := leafPages(t, filepath.Join(hubDir, indexFile))
	ix, err := openHubIndex(hubDir, zerolog.New(&log))
	if err != nil {
		t.Fatal(err)
	}
	defer ix.Close()
	damageFrom(t, filepath.Join(hubDir, indexFile), int64(leaves[len(leaves)/2]*size), 16)
	versions := make([]version, len(recs))
	for i, r := range recs {
		versions[i] = versionOf(r, r.Fingerprint())
	}
	if _, err := ix.has(versions); !errors.Is(err, errIndexCorrupt) {
		t.Fatalf("has over a damaged page: %v, want %v", err, errIndexCorrupt)
	}
	var found []bool
	if err := ix.orRebuild(func() (err error) { found, err = ix.has(versions); return err }); err != nil {
		t.Fatal(err)
	}
	if i := slices.Index(found, false); i >= 0 {
		t.Fatalf("after the rebuild, %s is not found", versions[i].id)
	}
	if want := "the index of the hub folder is unreadable: building it again from the segments"; !strings.Contains(log.String(), want) {
		t.Errorf("log %q does not say %q", log.String(), want)
	}
}

// benchVersions are n versions of records with random ids (record.ID's)
// of one hub, as the index benchmarks add them.
func benchVersions(n int) []version {
	versions := make([]version, n)
	for i := range versions {
		versions[i] = version{id: record.ID("bench-hub", fmt.Sprint(i)), tags: &Tags{Role: record.Roles[i%len(record.Roles)], Year: "2024"}}
		copy(versions[i].fp[:], versions[i].id[4:])
	}
	return versions
}

// BenchmarkIndexSeal is what the seals of reprocess do to one hub folder's
// index at a million records over 20 hubs: 50,000 record versions with
// random ids, each seal looking its versions up and adding them, the
// index opened for it; 410 a seal (checkpoints of 8,192 records over 20
// hubs) or 820 (16,384). B/op, the memory allocated, is what the
// collector pays for, and does not move with the load of the machine.
func BenchmarkIndexSeal(b *testing.B) {
	versions := benchVersions(50_000)
	hub := &record.Hub{ID: "bench-hub"}
	for _, perSeal := range []int{410, 820} {
		b.Run(fmt.Sprint("seal=", perSeal), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				dir := b.TempDir()
				for lo := 0; lo < len(versions); lo += perSeal {
					ix, err := openHubIndex(dir, zerolog.Nop())
					if err != nil {
						b.Fatal(err)
					}
					batch := versions[lo:min(lo+perSeal, len(versions))]
					if _, err := ix.has(batch); err != nil {
						b.Fatal(err)
					}
					// The segment is there, or the next open finds the index
					// does not match the folder and empties it.
					name := fmt.Sprintf("seg-%08d.jsonl", lo)
					if err := os.WriteFile(filepath.Join(dir, name), nil, 0o644); err != nil {
						b.Fatal(err)
					}
					if err := ix.add(name, batch, hub); err != nil {
						b.Fatal(err)
					}
					if err := ix.Close(); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}

// BenchmarkIndexBuild adds 50,000 versions in id order to an empty index
// as runs.build does at Close (bulkChunk a transaction, the file opened
// again between them): a hub folder's index at a million records. Then,
// as a later build over the same folder, a second version of each.
func BenchmarkIndexBuild(b *testing.B) {
	versions := benchVersions(50_000)
	slices.SortFunc(versions, func(a, b version) int { return strings.Compare(a.id, b.id) })
	again := slices.Clone(versions)
	for i := range again {
		again[i].fp[0]++
	}
	build := func(ix *hubIndex, versions []version) {
		for lo := 0; lo < len(versions); lo += bulkChunk {
			if err := ix.apply(versions[lo:min(lo+bulkChunk, len(versions))], nil); err != nil {
				b.Fatal(err)
			}
			if err := ix.reopen(); err != nil {
				b.Fatal(err)
			}
		}
	}
	for _, over := range []bool{false, true} {
		b.Run(fmt.Sprint("over=", over), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				b.StopTimer()
				dir := b.TempDir()
				ix, err := openHubIndex(dir, zerolog.Nop())
				if err != nil {
					b.Fatal(err)
				}
				if over {
					build(ix, versions)
				}
				b.StartTimer()
				build(ix, map[bool][]version{false: versions, true: again}[over])
				if err := ix.Close(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestIndexOfOtherPageSizeIsKept: an index made with the system's 4 kB
// pages, before new ones had indexPageSize, is used as it is: written to,
// looked up in, never built again.
func TestIndexOfOtherPageSizeIsKept(t *testing.T) {
	dir := t.TempDir()
	recs := testRecords(3000, "hub-a")
	var log testkit.LogBuffer
	if n := writeAll(t, openLogged(t, dir, &log), recs[:1500]); n != 1500 {
		t.Fatalf("wrote %d, want 1500", n)
	}
	// The same index again, made with 4 kB pages (bbolt takes a file's page
	// size from the file; the option only sizes a new one).
	hubDir := filepath.Join(dir, safeName("hub-a"))
	if err := os.Remove(filepath.Join(hubDir, indexFile)); err != nil {
		t.Fatal(err)
	}
	db, err := bolt.Open(filepath.Join(hubDir, indexFile), 0o644, &bolt.Options{PageSize: 4096})
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	ix, err := openHubIndex(hubDir, zerolog.Nop()) // indexes the segments into it
	if err != nil {
		t.Fatal(err)
	}
	ix.Close()
	log = testkit.LogBuffer{}
	if n := writeAll(t, openLogged(t, dir, &log), recs); n != 1500 {
		t.Errorf("wrote %d of 3,000 records, 1,500 of them written before; want 1,500", n)
	}
	if strings.Contains(log.String(), "building") {
		t.Errorf("the index was built again: %s", log.String())
	}
	db, err = bolt.Open(filepath.Join(hubDir, indexFile), 0o644, &bolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if got := db.Info().PageSize; got != 4096 {
		t.Errorf("page size %d, want the 4,096 it was made with", got)
	}
	assertSummary(t, dir, "hub-a", recs)
}

// BenchmarkGenerationSeal writes a new generation as reprocess does
// (look-ups at the seal, a background seal every 4,096 records, which
// gives each of 5 hub folders the 820 records a seal that each of 20 gets
// at reprocess's 16,384), 50,000 records a hub folder: the size of a hub's
// index at a million records. Its indexes opened every seal, or kept open
// (WithOwnFolder).
func BenchmarkGenerationSeal(b *testing.B) {
	const hubs, perHub, perSeal = 5, 50_000, 4096
	var recs []*record.Record
	for h := range hubs {
		recs = append(recs, testRecords(perHub, fmt.Sprint("hub-", h))...)
	}
	rand.New(rand.NewPCG(1, 2)).Shuffle(len(recs), func(i, j int) { recs[i], recs[j] = recs[j], recs[i] })
	ctx := context.Background()
	for _, kept := range []bool{false, true} {
		b.Run(fmt.Sprint("kept-open=", kept), func(b *testing.B) {
			b.ReportAllocs()
			opts := []Option{WithDedupeAtSeal(), WithSummaryOnClose()}
			if kept {
				opts = append(opts, WithOwnFolder())
			}
			cpu := testkit.CPUTime(b)
			for b.Loop() {
				cfg := testConfig()
				cfg.Out = b.TempDir()
				cfg.SegmentMaxBytes, cfg.SegmentMaxAge = 64<<20, time.Hour
				s, err := Open(ctx, cfg, opts...)
				if err != nil {
					b.Fatal(err)
				}
				bf := s.(BackgroundFlusher)
				for lo := 0; lo < len(recs); lo += perSeal {
					if _, err := s.Write(ctx, recs[lo:min(lo+perSeal, len(recs))]); err != nil {
						b.Fatal(err)
					}
					bf.StartFlush(ctx)
				}
				if err := s.Close(ctx); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(testkit.CPUTime(b)-cpu)/float64(b.N)/1e6, "cpu-ms/op")
		})
	}
}

// Transactions that begin at the bucket's last key (a version of its last
// record) or after it, with a record's versions repeated within one, keep
// every version: only what comes after the last key is appended without
// looking it up (the review's; with >= for > there, versions were lost).
func TestHubIndexAppendingKeepsEveryVersionAtTheLastKey(t *testing.T) {
	ix, err := openHubIndex(t.TempDir(), zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer ix.Close()
	v := func(id string, fp byte) version {
		x := version{id: id, tags: &Tags{Role: "uses", Year: "2024"}}
		x.fp[0] = fp
		return x
	}
	var all []version
	for _, tx := range [][]version{
		{v("a", 1), v("m", 1)},
		{v("m", 2)},            // the last key's record again
		{v("m", 3), v("z", 1)}, // the last key's first, then after it
		{v("zz", 1), v("zz", 2), v("zz", 1), v("zzz", 1)}, // after it, repeated
		{v("zzz", 2)},
	} {
		if err := ix.apply(tx, nil); err != nil {
			t.Fatal(err)
		}
		all = append(all, tx...)
	}
	found, err := ix.has(all)
	if err != nil {
		t.Fatal(err)
	}
	for i, f := range found {
		if !f {
			t.Errorf("version %d of %s lost", all[i].fp[0], all[i].id)
		}
	}
}
