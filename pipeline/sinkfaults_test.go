package pipeline

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/citecrawl/citecrawl/ingest/snapshot"
	"github.com/citecrawl/citecrawl/internal/testkit"
	"github.com/citecrawl/citecrawl/record"
)

// tempFiles lists the temporary segments under an output folder.
func tempFiles(t testing.TB, out string) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(out, "*", ".*.tmp"))
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// A segment whose seal fails because its hub folder was removed under the
// live sink: the record in it (the one that opened the segment) is
// redelivered and written, once, not acked unwritten.
func TestSinkStageRedeliversARecordWhoseSealFailed(t *testing.T) {
	cfg := testConfig(t, t.TempDir(), nil)
	cfg.Sink.SegmentMaxAge = 2 * time.Second
	bus := openBus(t, cfg)
	defer bus.Close()
	env := testEnv()
	env.Idle = 3 * time.Second // the segment stays open while the folder goes
	w := startStages(t, bus, cfg, env, StageSink)
	defer w.Stop()
	rec := taggedRecord("hub-x", 0, record.RoleUses)
	publishTagged(t, bus, rec)
	checkFor(t, 10*time.Second, func() error {
		if tmp := tempFiles(t, cfg.Sink.Out); len(tmp) != 1 {
			return fmt.Errorf("temporary segments %v, want the one holding the record", tmp)
		}
		return nil
	})
	if err := os.RemoveAll(filepath.Join(cfg.Sink.Out, "hub-x")); err != nil {
		t.Fatal(err)
	}
	checkFor(t, 30*time.Second, func() error {
		if n := len(readOut(t, cfg.Sink.Out)); n != 1 {
			return fmt.Errorf("%d records visible, want the redelivered one", n)
		}
		return nil
	})
	if err := w.Stop(); err != nil {
		t.Fatal(err)
	}
	assertEachOnce(t, readOut(t, cfg.Sink.Out), 1)
	if dl, err := ReadDeadLetters(context.Background(), bus, 0); err != nil || len(dl) != 0 {
		t.Fatalf("dead letters %+v (%v), want none", dl, err)
	}
	if r := env.Stats.Retries.Load(); r < 1 {
		t.Errorf("%d retries: the record was never redelivered", r)
	}
	t.Logf("removed hub folder: 1 record, written %d, duplicates 0, lost 0, retries %d", len(readOut(t, cfg.Sink.Out)), env.Stats.Retries.Load())
}

// A hub folder made read-only under the live sink (a read-only bind
// mount, as root) is a condition: the sink holds the records, warns
// naming the output, dead-letters nothing, and writes them once the folder
// is writable again.
func TestSinkStageHoldsRecordsWhileTheOutputIsReadOnly(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("a read-only folder that root cannot write needs a bind mount: run as root to test it")
	}
	cfg := testConfig(t, t.TempDir(), nil)
	cfg.Sink.SegmentMaxAge = 200 * time.Millisecond
	cfg.Sink.UnavailableTimeout = time.Minute
	bus := openBus(t, cfg)
	defer bus.Close()
	var logs testkit.LogBuffer
	env := testEnv()
	env.Log = zerolog.New(&logs)
	w := startStages(t, bus, cfg, env, StageSink)
	defer w.Stop()
	publishTagged(t, bus, taggedRecord("hub-x", 0, record.RoleUses))
	checkFor(t, 10*time.Second, func() error {
		if n := len(readOut(t, cfg.Sink.Out)); n != 1 {
			return fmt.Errorf("%d records visible", n)
		}
		return nil
	})
	hub := filepath.Join(cfg.Sink.Out, "hub-x")
	writable := testkit.ReadOnly(t, hub)
	var recs []record.Record
	for i := 1; i <= 20; i++ {
		recs = append(recs, taggedRecord("hub-x", i, record.RoleUses))
	}
	publishTagged(t, bus, recs...)
	checkFor(t, 10*time.Second, func() error {
		if logs.Count("warn", "output disk read-only: "+cfg.Sink.Out) == 0 {
			return errors.New("no warning naming the read-only output")
		}
		return nil
	})
	checkFor(t, 10*time.Second, func() error { // a probe fails meanwhile; its warning must wait a minute
		if n := env.Stats.OutputProbes.Load(); n < 1 {
			return errors.New("no probe of the read-only output has failed yet")
		}
		return nil
	})
	writable()
	checkFor(t, 20*time.Second, func() error {
		if n := len(readOut(t, cfg.Sink.Out)); n != 21 {
			return fmt.Errorf("%d records visible, want 21", n)
		}
		return nil
	})
	if err := w.Stop(); err != nil {
		t.Fatal(err)
	}
	assertEachOnce(t, readOut(t, cfg.Sink.Out), 21)
	if dl, err := ReadDeadLetters(context.Background(), bus, 0); err != nil || len(dl) != 0 {
		t.Fatalf("dead letters %+v (%v), want none", dl, err)
	}
	if n := logs.Count("warn", "output disk read-only"); n != 1 {
		t.Errorf("%d warnings in a few seconds, want 1 (once a minute)", n)
	}
	t.Logf("read-only hub folder: 21 records, %d lines, dead letters 0, retries %d", len(readOut(t, cfg.Sink.Out)), env.Stats.Retries.Load())
}

// Sink stages sharing one output folder, on two durable consumers (each
// gets every record) and two workers on one of them: every record is
// written once, no temporary file is lost or left, nothing fails.
func TestSinkStagesShareAnOutputFolder(t *testing.T) {
	cfg := testConfig(t, t.TempDir(), nil)
	cfg.Sink.SegmentMaxAge = 100 * time.Millisecond
	cfg.Stages.Batch = 32
	bus := openBus(t, cfg)
	defer bus.Close()
	second := cfg
	second.Stages.SinkDurable = "sink-b"
	var workers []*Workers
	var stats []*Stats
	for _, c := range []Config{cfg, cfg, second} {
		env := testEnv()
		w := startStages(t, bus, c, env, StageSink)
		defer w.Stop()
		workers, stats = append(workers, w), append(stats, env.Stats)
	}
	const perHub = 500
	var recs []record.Record
	for _, hub := range []string{"hub-a", "hub-b", "hub-c"} {
		for i := range perHub {
			recs = append(recs, taggedRecord(hub, i, record.RoleUses))
		}
	}
	for lo := 0; lo < len(recs); lo += 100 {
		publishTagged(t, bus, recs[lo:lo+100]...)
	}
	ctx := context.Background()
	checkFor(t, 60*time.Second, func() error {
		for _, durable := range []string{"sink", "sink-b"} {
			if busy, err := consumerBusy(ctx, bus, StreamTagged, durable); err != nil || busy {
				return fmt.Errorf("consumer %s busy (%v)", durable, err)
			}
		}
		return nil
	})
	for _, w := range workers {
		if err := w.Stop(); err != nil {
			t.Error(err)
		}
	}
	out := readOut(t, cfg.Sink.Out)
	assertEachOnce(t, out, len(recs))
	if tmp := tempFiles(t, cfg.Sink.Out); len(tmp) != 0 {
		t.Errorf("temporary files left: %v", tmp)
	}
	if dl, err := ReadDeadLetters(ctx, bus, 0); err != nil || len(dl) != 0 {
		t.Fatalf("dead letters %+v (%v), want none", dl, err)
	}
	var written, dups, retries int64
	for _, s := range stats {
		written, dups, retries = written+s.RecordsWritten.Load(), dups+s.Duplicates.Load(), retries+s.Retries.Load()
	}
	if written != int64(len(recs)) || retries != 0 {
		t.Errorf("the stages count %d written (want %d), %d retries (want 0)", written, len(recs), retries)
	}
	t.Logf("three sinks, one folder: %d records given twice, %d lines, %d written, %d already written, 0 lost",
		len(recs), len(out), written, dups)
}

// A full output disk (a 2 MiB tmpfs, as root) is a condition, not a
// poison message: the run says "output disk full: PATH" at warn level,
// pauses its other stages, parks nothing, and ends with an error after
// sink.unavailable_timeout with the records still in the stream. Once
// space is freed, a plain run against a site that answers 304 writes them
// all, once.
func TestRunOnAFullDiskKeepsEveryRecord(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("a full disk is a small tmpfs, which only root can mount: run as root to test it")
	}
	disk := testkit.SmallDisk(t, "2m")
	filler := filepath.Join(disk, "filler")
	if err := exec.Command("dd", "if=/dev/zero", "of="+filler, "bs=64k", "count=64").Run(); err == nil {
		t.Fatal("2 MiB of filler fit on a 2 MiB disk")
	}

	const n = 200
	site := snapshot.New(snapshot.StyleCards, snapshot.Generated(n))
	web := startSite(t, slowSite(site, 10*time.Millisecond)) // a crawl that lasts a few seconds
	cfg := testConfig(t, t.TempDir(), site.HubURLs(web.URL))
	cfg.Sink.Out = filepath.Join(disk, "out")
	cfg.Sink.SegmentMaxAge = 500 * time.Millisecond
	cfg.Sink.UnavailableTimeout = 4 * time.Second
	var logs testkit.LogBuffer
	env := testEnv()
	env.Log = zerolog.New(&logs)
	bus := openBus(t, cfg)
	type result struct {
		res *Result
		err error
	}
	done := make(chan result, 1)
	go func() {
		res, err := Run(context.Background(), bus, cfg, env)
		done <- result{res, err}
	}()
	// Once the sink finds the disk full, the other stages pause: pages
	// fetched stop growing but for the fetches already under way.
	checkFor(t, 30*time.Second, func() error {
		if logs.Count("warn", "output disk full: "+cfg.Sink.Out) == 0 {
			return errors.New("no warning naming the full output")
		}
		return nil
	})
	pagesAtWarning := env.Stats.PagesFetched.Load()
	r := <-done
	if r.err == nil || !strings.Contains(r.err.Error(), "output disk full: "+cfg.Sink.Out) {
		t.Fatalf("run on a full disk: %v; want an error naming the full output", r.err)
	}
	pagesAtEnd := env.Stats.PagesFetched.Load()
	// Each fetch worker finishes the batch of tasks it holds (up to
	// fetchBatch papers of at most three pages each); without the pause the
	// crawl would go on through the hub's ~450 remaining pages.
	if grew := pagesAtEnd - pagesAtWarning; grew > int64(3*fetchBatch*cfg.Stages.FetchWorkers) {
		t.Errorf("%d pages fetched after the disk was found full (%d before): the crawl did not pause", grew, pagesAtWarning)
	}
	if n := logs.Count("warn", "output disk full: "+cfg.Sink.Out); n != 1 {
		t.Errorf("%d warnings naming the full disk, want 1 (once a minute)", n)
	}
	dl, derr := ReadDeadLetters(context.Background(), bus, 0)
	if derr != nil || len(dl) != 0 {
		t.Fatalf("dead letters %+v (%v), want none", dl, derr)
	}
	firstWritten := env.Stats.RecordsWritten.Load()
	bus.Close()

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	env = testEnv()
	var logs2 testkit.LogBuffer
	env.Log = zerolog.New(&logs2).Level(zerolog.DebugLevel)
	bus = openBus(t, cfg)
	defer bus.Close()
	res, err := Run(context.Background(), bus, cfg, env)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.DeadLetters) != 0 {
		t.Logf("RUN1:\n%s\nRUN2:\n%s", logs.String(), logs2.String())
		t.Fatalf("dead letters: %+v", res.DeadLetters[0].Error)
	}
	out := readOut(t, cfg.Sink.Out)
	assertEachOnce(t, out, n)
	t.Logf("full disk: first run fetched %d pages (%d when the disk was found full), wrote %d, dead letters 0, exit error %q; "+
		"after freeing space: %d records, %d lines, %d pages fetched (%d not modified), written %d, dead letters 0",
		pagesAtEnd, pagesAtWarning, firstWritten, r.err, n, len(out), res.Pages, res.NotModified, res.Written)
}
