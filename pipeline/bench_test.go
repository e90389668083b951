package pipeline

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/citecrawl/citecrawl/classify"
	"github.com/citecrawl/citecrawl/internal/testkit"
	"github.com/citecrawl/citecrawl/record"

	"github.com/citecrawl/citecrawl/ingest/snapshot"
)

// BenchmarkRunGeneratedHub is the end-to-end figure: one hub of 5,000
// citing papers served on loopback (per-host delay off), crawled, tagged
// and written through the embedded NATS server. Each paper costs a Pith
// JSON request, a graph.json request unless its hub card gave what the
// graph has, and a full-text request; requests/record is the run report's.
func BenchmarkRunGeneratedHub(b *testing.B) {
	const n = 5000
	site := snapshot.New(snapshot.StyleCards, snapshot.Generated(n))
	web := startSite(b, site)
	var records, requests int64
	var elapsed time.Duration
	for b.Loop() {
		b.StopTimer()
		cfg := testConfig(b, b.TempDir(), site.HubURLs(web.URL))
		bus := openBus(b, cfg)
		env := testEnv()
		b.StartTimer()
		start := time.Now()
		res, err := Run(context.Background(), bus, cfg, env)
		elapsed += time.Since(start)
		b.StopTimer()
		bus.Close()
		if err != nil {
			b.Fatal(err)
		}
		if res.Written != n {
			b.Fatalf("%d records written, want %d", res.Written, n)
		}
		records += res.Written
		requests += res.Requests
		b.StartTimer()
	}
	b.ReportMetric(float64(records)/elapsed.Seconds(), "records/s")
	b.ReportMetric(float64(requests)/float64(records), "requests/record")
}

// BenchmarkReprocess is the batch figure: 200,000 raw records re-tagged
// into a new JSON Lines generation, from the stream and from a folder (the
// output of a first reprocess). Each reports records/s and the peak Go heap
// in use during the reprocess (the embedded NATS server shares the process
// and is included).
func BenchmarkReprocess(b *testing.B) {
	const n = 200_000
	cfg := testConfig(b, b.TempDir(), nil)
	bus := openBus(b, cfg)
	defer bus.Close()
	hub := snapshot.Generated(50)
	ctx := context.Background()
	outs := make([]Out, 0, 5000)
	for i := range n {
		p := hub.Papers[i%len(hub.Papers)]
		r := record.Record{Schema: record.Schema, ID: record.ID(fmt.Sprint("hub-", i%20), fmt.Sprint(i)),
			Hub:      record.Hub{ID: fmt.Sprint("hub-", i%20), Title: hub.Title, CitedWorkIDs: []string{}},
			Paper:    record.Paper{Title: p.Title, Summary: p.Summary, Published: p.Date, Categories: []string{p.Cat}},
			Contexts: []record.Context{}, SourceURLs: []string{}, Missing: []string{}}
		data, _ := json.Marshal(&r)
		outs = append(outs, Out{Subject: RawSubject(r.Hub.ID), MsgID: r.ID, Data: data})
		if len(outs) == cap(outs) {
			if err := bus.PublishAll(ctx, outs); err != nil {
				b.Fatal(err)
			}
			outs = outs[:0]
		}
	}
	rules, err := classify.LoadRules(cfg.Rules)
	if err != nil {
		b.Fatal(err)
	}
	// As `citecrawl reprocess` does (cmd/citecrawl/reprocess.go).
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(100 << 20))
	folder := filepath.Join(b.TempDir(), "from")
	reprocess := func(b *testing.B, from, out string) {
		res, err := Reprocess(ctx, bus, ReprocessOptions{From: from, Out: out, Classifier: classify.New(rules), Log: zerolog.Nop()})
		if err != nil {
			b.Fatal(err)
		}
		if res.Records != n {
			b.Fatalf("%d records, want %d", res.Records, n)
		}
	}
	reprocess(b, "stream", folder)
	for _, from := range []string{"stream", folder} {
		name := "from=stream"
		if from != "stream" {
			name = "from=folder"
		}
		b.Run(name, func(b *testing.B) {
			runtime.GC()
			var total time.Duration
			var peak uint64
			for b.Loop() {
				out := filepath.Join(b.TempDir(), "out")
				start := time.Now()
				peak = max(peak, peakHeap(func() { reprocess(b, from, out) }))
				total += time.Since(start)
			}
			b.ReportMetric(float64(n*b.N)/total.Seconds(), "records/s")
			b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MB")
		})
	}
}

// peakHeap runs f and returns the most Go heap in use while it ran,
// sampled every 20 ms.
func peakHeap(f func()) uint64 {
	var peak atomic.Uint64
	done := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		var ms runtime.MemStats
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for {
			runtime.ReadMemStats(&ms)
			peak.Store(max(peak.Load(), ms.HeapInuse))
			select {
			case <-t.C:
			case <-done:
				return
			}
		}
	}()
	f()
	close(done)
	<-sampled
	return peak.Load()
}

// BenchmarkIngestGeneratedHub is the run scripts/ingestbench measures as a
// whole process (fetch.delay 0, no full text, no graph.json, 8 fetch
// workers and 8 requests at once to the loopback host), in process so that
// it can be profiled: go test -bench IngestGeneratedHub -cpuprofile.
func BenchmarkIngestGeneratedHub(b *testing.B) {
	const n = 5000
	site := snapshot.New(snapshot.StyleCards, snapshot.Generated(n))
	web := startSite(b, site)
	var cpu time.Duration
	for b.Loop() {
		b.StopTimer()
		cfg := testConfig(b, b.TempDir(), site.HubURLs(web.URL))
		cfg.FullText.Enabled, cfg.FetchGraph = false, false
		cfg.Stages.FetchWorkers = 8
		cfg.Fetch.HostConcurrency = map[string]int{"127.0.0.1": 8}
		bus := openBus(b, cfg)
		before := testkit.CPUTime(b)
		b.StartTimer()
		res, err := Run(context.Background(), bus, cfg, testEnv())
		b.StopTimer()
		cpu += testkit.CPUTime(b) - before
		bus.Close()
		if err != nil {
			b.Fatal(err)
		}
		if res.Written != n {
			b.Fatalf("%d records written, want %d", res.Written, n)
		}
		b.ReportMetric(float64(res.Pages), "pages")
		b.StartTimer()
	}
	// The process's CPU time, the site's share included.
	b.ReportMetric(cpu.Seconds()/float64(b.N), "cpu-s/run")
}

// BenchmarkLabelLog is what reprocess's label logs cost a record from a
// folder: its new and its old labels each added to a log, flushed every
// 16,384 records (a checkpoint), the logs merged and compared at the end.
func BenchmarkLabelLog(b *testing.B) {
	roles := []string{"background", "uses", "extends", "compares", "motivation", "future"}
	plural := []string{"none", "overton", "steerable", "distributional", "jury_pluralistic"}
	const batch, n = 16384, 200_000
	ids := make([]string, n)
	for i := range ids {
		ids[i] = record.ID("bench-hub", fmt.Sprint(i))
	}
	b.ReportAllocs()
	for b.Loop() {
		dir := b.TempDir()
		newL, oldL := newLabelLog(dir, "new", labelLogState{}), newLabelLog(dir, "old", labelLogState{})
		for i, id := range ids {
			l := labels{roles[i%len(roles)], "neutral", plural[i%len(plural)]}
			if err := newL.add(id, l); err != nil {
				b.Fatal(err)
			}
			if err := oldL.add(id, l); err != nil {
				b.Fatal(err)
			}
			if i%batch == batch-1 || i == n-1 {
				for _, g := range []*labelLog{newL, oldL} {
					if err := g.flush(); err != nil {
						b.Fatal(err)
					}
					if err := g.compact(); err != nil {
						b.Fatal(err)
					}
					g.takeStale()()
				}
			}
		}
		if _, changed, records, _, err := labelChanges(oldL, newL); err != nil || changed != 0 || records != n {
			b.Fatalf("changed %d, records %d, %v", changed, records, err)
		}
	}
}
