package pipeline

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/citecrawl/citecrawl/classify"
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

// BenchmarkReprocess is the batch figure: 200,000 raw records in the
// stream re-tagged into a new JSON Lines generation. It reports records/s
// and the peak Go heap in use during the reprocess (the embedded NATS
// server shares the process and is included).
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
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(200 << 20))
	runtime.GC()
	var peak atomic.Uint64
	var total time.Duration
	for b.Loop() {
		out := filepath.Join(b.TempDir(), "out")
		done := make(chan struct{})
		go func() {
			var ms runtime.MemStats
			t := time.NewTicker(20 * time.Millisecond)
			defer t.Stop()
			for {
				runtime.ReadMemStats(&ms)
				if ms.HeapInuse > peak.Load() {
					peak.Store(ms.HeapInuse)
				}
				select {
				case <-t.C:
				case <-done:
					return
				}
			}
		}()
		start := time.Now()
		res, err := Reprocess(ctx, bus, ReprocessOptions{From: "stream", Out: out, Classifier: classify.New(rules), Log: zerolog.Nop()})
		total += time.Since(start)
		close(done)
		if err != nil {
			b.Fatal(err)
		}
		if res.Records != n {
			b.Fatalf("%d records, want %d", res.Records, n)
		}
	}
	b.ReportMetric(float64(n*b.N)/total.Seconds(), "records/s")
	b.ReportMetric(float64(peak.Load())/(1<<20), "peak-heap-MB")
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
		before := cpuTime(b)
		b.StartTimer()
		res, err := Run(context.Background(), bus, cfg, testEnv())
		b.StopTimer()
		cpu += cpuTime(b) - before
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

// cpuTime is the CPU time (user and system) this process has used.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
