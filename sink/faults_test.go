package sink

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/citecrawl/citecrawl/filelock"
	"github.com/citecrawl/citecrawl/internal/testkit"
	"github.com/citecrawl/citecrawl/record"
)

func openFolder(t *testing.T, dir string, opts ...Option) Sink {
	t.Helper()
	cfg := testConfig()
	cfg.Out = dir
	s, err := Open(context.Background(), cfg, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func readFolder(t *testing.T, dir string) []record.Record {
	t.Helper()
	rd, err := OpenReader(context.Background(), Config{Out: dir})
	if err != nil {
		t.Fatal(err)
	}
	var out []record.Record
	if err := rd.Records(context.Background(), func(r *record.Record) error { out = append(out, *r); return nil }); err != nil {
		t.Fatal(err)
	}
	return out
}

func tempFiles(t *testing.T, dir string) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*", ".*.tmp"))
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// A segment whose seal fails (its folder was removed under the sink)
// forgets every record it held, the first one too (the one that opened
// it): given again, they are all written, once.
func TestJSONLFailedSealForgetsEveryRecordOfTheSegment(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := openFolder(t, dir)
	recs := testRecords(3, "hub-a")
	if n, err := s.Write(ctx, recs); err != nil || n != 3 {
		t.Fatalf("Write = %d, %v", n, err)
	}
	if err := os.RemoveAll(filepath.Join(dir, "hub-a")); err != nil {
		t.Fatal(err)
	}
	err := s.Flush(ctx)
	if err == nil {
		t.Fatal("the seal of a segment whose folder was removed succeeded")
	}
	if errors.Is(err, ErrUnavailable) {
		t.Errorf("a removed folder taken for a full disk: %v", err)
	}
	// Redelivered: none of them may count as written.
	if n, err := s.Write(ctx, recs); err != nil || n != 3 {
		t.Fatalf("after the failed seal, Write = %d, %v; want all 3 written again", n, err)
	}
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
	assertEachOnce(t, readFolder(t, dir), recs)
}

// A sealed segment's buffers serve the hub's next segment, emptied: the
// versions it held are not taken for the new segment's (with
// WithDedupeAtSeal only the segment's own lines are looked at as they are
// written), and its lines are not written again.
func TestJSONLSealedSegmentServesTheNextEmptied(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := openFolder(t, dir, WithDedupeAtSeal())
	j := s.(*jsonl)
	recs := testRecords(3, "hub-a")
	if n, err := s.Write(ctx, recs); err != nil || n != 3 {
		t.Fatalf("Write = %d, %v", n, err)
	}
	seg := j.hubs["hub-a"].seg
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	more := testRecords(5, "hub-a")[1:] // two of them written before
	if n, err := s.Write(ctx, more); err != nil || n != len(more) {
		t.Fatalf("after the seal, Write = %d, %v; want all %d taken, the seal leaves out what was written", n, err, len(more))
	}
	if got := j.hubs["hub-a"].seg; got != seg || len(got.versions) != len(more) || len(got.has) != len(more) {
		t.Errorf("the next segment is not the sealed one emptied: %p (%d versions, %d keys), sealed %p", got, len(got.versions), len(got.has), seg)
	}
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
	assertEachOnce(t, readFolder(t, dir), testRecords(5, "hub-a"))
}

// A hub folder made read-only under a live sink is a full-output
// condition (ErrUnavailable, naming the output), not a failure of the
// records; once it is writable again they are written, once.
func TestJSONLReadOnlyFolderIsUnavailable(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := openFolder(t, dir)
	recs := testRecords(5, "hub-a")
	if _, err := s.Write(ctx, recs[:2]); err != nil {
		t.Fatal(err)
	}
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	writable := testkit.ReadOnly(t, filepath.Join(dir, "hub-a"))
	_, err := s.Write(ctx, recs[2:])
	if err == nil {
		err = s.Flush(ctx)
	}
	if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "output disk read-only: "+dir) {
		t.Fatalf("writing to a read-only folder: %v; want ErrUnavailable naming %s", err, dir)
	}
	_ = s.Flush(ctx)
	writable()
	if n, err := s.Write(ctx, recs); err != nil || n != 3 {
		t.Fatalf("once writable, Write = %d, %v; want the 3 not sealed", n, err)
	}
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
	assertEachOnce(t, readFolder(t, dir), recs)
}

// Two writers on one folder, each given every record in its own order,
// flushing at different times: every record is written once, and neither
// removes the other's live temporary file; so too when both leave their
// look-ups to the seal, as sink stages do.
func TestJSONLWritersShareAFolder(t *testing.T) {
	for name, opts := range map[string][]Option{"look-ups at write": nil, "look-ups at seal": {WithDedupeAtSeal()}} {
		t.Run(name, func(t *testing.T) { writersShareAFolder(t, opts) })
	}
}

func writersShareAFolder(t *testing.T, opts []Option) {
	ctx := context.Background()
	dir := t.TempDir()
	recs := testRecords(300, "hub-a", "hub-b")
	a, b := openFolder(t, dir, opts...), openFolder(t, dir, opts...)

	// a has a segment open; b starting on the same hub leaves it alone.
	if _, err := a.Write(ctx, recs[:10]); err != nil {
		t.Fatal(err)
	}
	live := tempFiles(t, dir)
	if len(live) != 1 {
		t.Fatalf("temporary files %v, want a's open segment", live)
	}
	if _, err := b.Write(ctx, recs[:20]); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(live[0]); err != nil {
		t.Fatalf("b removed a's live segment: %v", err)
	}
	if err := b.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if err := a.Flush(ctx); err != nil { // its 10 were written by b meanwhile
		t.Fatal(err)
	}

	var wg sync.WaitGroup
	for i, s := range []Sink{a, b} {
		wg.Go(func() {
			for lo := 0; lo < len(recs); lo += 25 + i*12 {
				j := (lo + i*len(recs)/2) % len(recs) // b starts half-way
				if _, err := s.Write(ctx, recs[j:min(j+25+i*12, len(recs))]); err != nil {
					t.Error(err)
					return
				}
				if lo%(50*(i+1)) == 0 {
					if err := s.Flush(ctx); err != nil {
						t.Error(err)
						return
					}
				}
			}
			if _, err := s.Write(ctx, recs); err != nil {
				t.Error(err)
			}
			if err := s.Close(ctx); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	assertEachOnce(t, readFolder(t, dir), recs)
	if tmp := tempFiles(t, dir); len(tmp) != 0 {
		t.Errorf("temporary files left: %v", tmp)
	}
	sa, sb := a.(SealCounter).Sealed(), b.(SealCounter).Sealed()
	if sa.Records+sb.Records != int64(len(recs)) {
		t.Errorf("the writers count %d + %d records made visible, want %d in all", sa.Records, sb.Records, len(recs))
	}
}

// Temporary segments of a writer that has stopped are removed when the
// hub is next opened; those of a live writer are not.
func TestJSONLRemovesOnlyDeadWritersTemps(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	hub := filepath.Join(dir, "hub-a")
	if err := os.MkdirAll(filepath.Join(dir, writersDir), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(hub, 0o755); err != nil {
		t.Fatal(err)
	}
	liveLock, ok, err := filelock.TryLock(filepath.Join(dir, writersDir, "42-0000000a.lock"))
	if err != nil || !ok {
		t.Fatal(err)
	}
	defer liveLock.Close()
	dead := filepath.Join(hub, ".seg-20260101T000000.000000000Z-00000000.jsonl.41-0000000b.tmp")
	live := filepath.Join(hub, ".seg-20260101T000000.000000000Z-00000001.jsonl.42-0000000a.tmp")
	for _, f := range []string{dead, live} {
		if err := os.WriteFile(f, []byte("{}\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// The dead writer's lock file, left by a kill -9, and the live one's,
	// both older than a minute.
	deadLock, liveLockFile := filepath.Join(dir, writersDir, "41-0000000b.lock"), liveLock.Name()
	if err := os.WriteFile(deadLock, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-2 * time.Minute)
	for _, f := range []string{deadLock, liveLockFile} {
		if err := os.Chtimes(f, old, old); err != nil {
			t.Fatal(err)
		}
	}
	s := openFolder(t, dir)
	if _, err := s.Write(ctx, testRecords(1, "hub-a")); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(deadLock); !os.IsNotExist(err) {
		t.Errorf("a dead writer's lock file was kept (%v)", err)
	}
	if _, err := os.Stat(liveLockFile); err != nil {
		t.Errorf("a live writer's lock file was removed: %v", err)
	}
	if _, err := os.Stat(dead); !os.IsNotExist(err) {
		t.Errorf("a dead writer's temporary segment was kept (%v)", err)
	}
	if _, err := os.Stat(live); err != nil {
		t.Errorf("a live writer's temporary segment was removed: %v", err)
	}
}

// A full disk (a 2 MiB tmpfs, as root) is ErrUnavailable naming the
// output, whether a segment write or its seal hits it; a summary that
// cannot be written does not fail records already sealed; once space is
// freed everything is written, once.
func TestJSONLFullDiskIsUnavailable(t *testing.T) {
	dir := testkit.SmallDisk(t, "2m")
	ctx := context.Background()
	filler := filepath.Join(dir, "filler")
	fill(t, filler)
	s := openFolder(t, filepath.Join(dir, "out"))
	recs := testRecords(200, "hub-a")
	_, err := s.Write(ctx, recs)
	if err == nil {
		err = s.Flush(ctx)
	}
	if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "output disk full: "+filepath.Join(dir, "out")) {
		t.Fatalf("writing on a full disk: %v; want ErrUnavailable naming the output", err)
	}
	_ = s.Flush(ctx) // drops the broken segment
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	if n, err := s.Write(ctx, recs); err != nil || n != len(recs) {
		t.Fatalf("after freeing space, Write = %d, %v", n, err)
	}
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
	assertEachOnce(t, readFolder(t, filepath.Join(dir, "out")), recs)
	if tmp := tempFiles(t, filepath.Join(dir, "out")); len(tmp) != 0 {
		t.Errorf("temporary files left: %v", tmp)
	}
}

// A summary that cannot be written (its name is taken by a folder) does
// not fail the records, which are sealed: Flush succeeds, Close reports it.
func TestJSONLSummaryFailureKeepsTheRecords(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "hub-a", SummaryFile, "taken"), 0o755); err != nil {
		t.Fatal(err)
	}
	s := openFolder(t, dir)
	recs := testRecords(4, "hub-a")
	if _, err := s.Write(ctx, recs); err != nil {
		t.Fatal(err)
	}
	if err := s.Flush(ctx); err != nil {
		t.Fatalf("Flush failed for the summary: %v", err)
	}
	assertEachOnce(t, readFolder(t, dir), recs)
	if err := s.Close(ctx); err == nil || !strings.Contains(err.Error(), SummaryFile) {
		t.Errorf("Close = %v, want the summary's error", err)
	}
}

// fill writes a file until the disk is full.
func fill(t *testing.T, path string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 64<<10)
	for {
		if _, err := f.Write(buf); err != nil {
			if !strings.Contains(err.Error(), "no space") {
				t.Fatal(err)
			}
			break
		}
	}
	// Whatever a few bytes less would still take.
	for n := 4096; n > 0; n /= 2 {
		_, _ = f.Write(buf[:n])
	}
	fmt.Fprint(f, "")
}

// StartFlush seals what was written before it on another goroutine: what
// is written meanwhile goes to new segments, visible only after the next
// flush. A background seal that fails (its temporary files were removed)
// is reported by its wait, counts nothing as written, and the records
// given again are written once.
func TestJSONLStartFlushSealsWhatCameBefore(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := openFolder(t, dir)
	bg := s.(BackgroundFlusher)
	recs := testRecords(4, "hub-a", "hub-b")
	if _, err := s.Write(ctx, recs[:3]); err != nil {
		t.Fatal(err)
	}
	wait := bg.StartFlush(ctx)
	if _, err := s.Write(ctx, recs[3:6]); err != nil {
		t.Fatal(err)
	}
	if err := wait(); err != nil {
		t.Fatal(err)
	}
	assertEachOnce(t, readFolder(t, dir), recs[:3])

	for _, f := range tempFiles(t, dir) { // the segments of recs[3:6]
		if err := os.Remove(f); err != nil {
			t.Fatal(err)
		}
	}
	if err := bg.StartFlush(ctx)(); err == nil {
		t.Fatal("a background seal of removed segments succeeded")
	}
	if n, err := s.Write(ctx, recs[3:]); err != nil || n != len(recs)-3 {
		t.Fatalf("after the failed seal, Write = %d, %v; want all %d written again", n, err, len(recs)-3)
	}
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
	assertEachOnce(t, readFolder(t, dir), recs)
}

// A failed background seal is reported by its wait however the others
// learnt of it first (Flush here), so a checkpoint written on wait's nil
// never lists records that were not sealed; Flush, which learnt of it,
// reports it once. Discard drops what was written unsealed.
func TestJSONLFailedBackgroundSealIsReportedToWait(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := openFolder(t, dir)
	bg := s.(BackgroundFlusher)
	recs := testRecords(2, "hub-a")
	if _, err := s.Write(ctx, recs[:1]); err != nil {
		t.Fatal(err)
	}
	for _, f := range tempFiles(t, dir) {
		if err := os.Remove(f); err != nil {
			t.Fatal(err)
		}
	}
	wait := bg.StartFlush(ctx)
	if err := s.Flush(ctx); err == nil {
		t.Error("Flush after a failed background seal reported nothing")
	}
	if err := wait(); err == nil {
		t.Fatal("wait returned nil for a failed seal that Flush saw first")
	}
	if _, err := s.Write(ctx, recs[1:]); err != nil {
		t.Fatal(err)
	}
	bg.Discard()
	if temps := tempFiles(t, dir); len(temps) != 0 {
		t.Errorf("Discard left %v", temps)
	}
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if got := readFolder(t, dir); len(got) != 0 {
		t.Errorf("%d records visible after Discard, want none", len(got))
	}
}
