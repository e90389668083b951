// Command rssbench measures the peak RSS (whole process, the wait4 rusage
// of the child) of `citecrawl worker --stage sink` and `citecrawl run` at
// several record counts, to show that the sink's state does not grow with
// the records written (issue 11, item 1). For each count N:
//
//   - worker: N tagged records (about 1 kB each, 20 hubs) are published
//     with async publishes onto the CITECRAWL_TAGGED stream of a NATS
//     server that runs in this program (its data folder is a temporary
//     one); then `citecrawl worker --stage sink --nats URL --out DIR`
//     writes them all to an empty output folder and is stopped (SIGTERM)
//     once its consumer has nothing pending or unacked. The server runs
//     here and not embedded in the worker, so the figure is the worker's
//     own (consumer, tagging-free sink stage, output folder state), not
//     JetStream's.
//   - run: the output folder is first filled, through the sink package as
//     a sink worker would, with N records of the generated hub's folder
//     (so the state that scales with the records written is there to be
//     loaded); then `citecrawl run` crawls a generated hub of 200 citing
//     papers served here on loopback (fetch.delay 0s, no full text, no
//     graph.json, a fresh embedded NATS data folder) and writes its 200
//     new records into that folder beside the N.
//
// It prints a table: N, the worker's peak RSS, run's peak RSS, and the
// spread of each column (largest minus smallest).
//
// Each program is started through a fresh copy of this program
// ("rssbench measure CMD..."), which starts it and reports its rusage: a
// child started straight from this process, big after publishing and
// filling, would count this process's peak in its own (Linux carries the
// peak RSS of the memory a process had over exec, and Go starts children
// sharing it until they exec).
//
//	go build -o /tmp/citecrawl ./cmd/citecrawl
//	go run ./scripts/rssbench -citecrawl /tmp/citecrawl            # 10k, 100k, 1M
//	go run ./scripts/rssbench -citecrawl /tmp/citecrawl -quick     # 10k, 100k
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/rs/zerolog"

	"github.com/citecrawl/citecrawl/ingest/snapshot"
	"github.com/citecrawl/citecrawl/pipeline"
	"github.com/citecrawl/citecrawl/record"
	"github.com/citecrawl/citecrawl/sink"
)

func main() {
	if len(os.Args) > 2 && os.Args[1] == "measure" {
		os.Exit(measureChild(os.Args[2:]))
	}
	bin := flag.String("citecrawl", "", "the citecrawl binary to measure (required)")
	quick := flag.Bool("quick", false, "10,000 and 100,000 records only")
	counts := flag.String("counts", "", "comma-separated record counts (default 10000,100000,1000000)")
	keep := flag.Bool("keep", false, "keep the temporary folders")
	flag.Parse()
	if *bin == "" {
		fmt.Fprintln(os.Stderr, "rssbench: -citecrawl is required")
		os.Exit(2)
	}
	ns := []int{10_000, 100_000, 1_000_000}
	if *quick {
		ns = ns[:2]
	}
	if *counts != "" {
		ns = nil
		for _, c := range strings.Split(*counts, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(c))
			if err != nil || n < 1 {
				fmt.Fprintf(os.Stderr, "rssbench: -counts %q: %q is not a positive count\n", *counts, c)
				os.Exit(2)
			}
			ns = append(ns, n)
		}
	}
	if err := measure(*bin, ns, *keep); err != nil {
		fmt.Fprintln(os.Stderr, "rssbench:", err)
		os.Exit(1)
	}
}

func measure(bin string, ns []int, keep bool) error {
	fmt.Printf("%10s  %18s  %18s\n", "records", "worker sink (MiB)", "run (MiB)")
	var worker, run []float64
	for _, n := range ns {
		dir, err := os.MkdirTemp("", "rssbench")
		if err != nil {
			return err
		}
		if !keep {
			defer os.RemoveAll(dir)
		}
		w, err := sinkWorker(bin, filepath.Join(dir, "worker"), n)
		if err != nil {
			return fmt.Errorf("worker at %d records: %w", n, err)
		}
		r, err := runOnFilledOutput(bin, filepath.Join(dir, "run"), n)
		if err != nil {
			return fmt.Errorf("run at %d records: %w", n, err)
		}
		worker, run = append(worker, w.rssMiB), append(run, r.rssMiB)
		fmt.Printf("%10d  %12.1f (%4.0fs)  %12.1f (%4.0fs)\n", n, w.rssMiB, w.wall, r.rssMiB, r.wall)
		if !keep {
			_ = os.RemoveAll(dir)
		}
	}
	fmt.Printf("%10s  %18.1f  %18.1f\n", "spread", spread(worker), spread(run))
	return nil
}

func spread(xs []float64) float64 {
	lo, hi := xs[0], xs[0]
	for _, x := range xs {
		lo, hi = min(lo, x), max(hi, x)
	}
	return hi - lo
}

type figures struct{ rssMiB, wall float64 }

// benchRecord is a tagged record of about 1 kB: a paper, one citing
// sentence with its evidence, the three tags.
func benchRecord(hub string, i int) record.Record {
	refs, novelty := 10+i%30, 5.0
	return record.Record{Schema: record.Schema, ID: record.ID(hub, fmt.Sprint("paper ", i)),
		Hub: record.Hub{ID: hub, URL: "https://pith.science/citations/" + hub, Title: "A hub for the memory benchmark", CitedWorkIDs: []string{}},
		Paper: record.Paper{Title: fmt.Sprintf("Generated citing paper %d on pluralistic alignment", i),
			Summary:    "Aggregates individual annotator ratings with a jury to model disagreement between raters of different backgrounds.",
			Authors:    []string{"A. Rater", "B. Voter"},
			Arxiv:      fmt.Sprintf("26%02d.%05d", 1+i%12, i%100000),
			Categories: []string{"cs.CL"}, Published: fmt.Sprintf("%d-%02d-01", 2020+i%7, 1+i%12), Refs: &refs, Novelty: &novelty},
		Contexts: []record.Context{{Text: fmt.Sprintf("Unlike the parser of [%d], which relies on a lexicon, we use the jury of [3] and obtain results consistent with [4].", i),
			Section: "Related work", CiteSpan: []int{21, 24}, Marker: "linked", Role: record.Roles[i%len(record.Roles)], Polarity: record.Polarities[i%3],
			RoleConfidence: 0.7, PolarityConfidence: 0.6,
			Evidence: []record.Evidence{{Label: record.RoleCompares, Rule: "role.compares.unlike", Cue: "unlike", Weight: 1.5}}}},
		Role: record.Roles[i%len(record.Roles)], RoleSource: record.RoleSourceSummary, Polarity: record.Polarities[i%3],
		Pluralism: &record.Pluralism{Primary: record.PluralismJury, Labels: []string{record.PluralismJury}},
		FetchedAt: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC), SourceURLs: []string{}, Missing: []string{}}
}

// sinkWorker publishes n tagged records over 20 hubs and has a sink worker
// write them.
func sinkWorker(bin, dir string, n int) (figures, error) {
	ns, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, JetStream: true,
		StoreDir: filepath.Join(dir, "nats"), NoSigs: true, NoLog: true})
	if err != nil {
		return figures{}, err
	}
	ns.Start()
	defer ns.Shutdown()
	if !ns.ReadyForConnections(10 * time.Second) {
		return figures{}, errors.New("NATS server not ready")
	}
	ctx := context.Background()
	bus, err := pipeline.Open(ctx, pipeline.BrokerConfig{URL: ns.ClientURL(), Replicas: 1}, 4096, zerolog.Nop())
	if err != nil {
		return figures{}, err
	}
	defer bus.Close()
	outs := make([]pipeline.Out, 0, 4096)
	for i := range n {
		hub := fmt.Sprintf("bench-hub-%02d", i%20)
		r := benchRecord(hub, i)
		b, _ := json.Marshal(&r)
		outs = append(outs, pipeline.Out{Subject: pipeline.TaggedSubject(hub), MsgID: r.ID, Data: b})
		if len(outs) == cap(outs) || i == n-1 {
			if err := bus.PublishAll(ctx, outs); err != nil {
				return figures{}, err
			}
			outs = outs[:0]
		}
	}
	out := filepath.Join(dir, "out")
	cmd, report := measured(dir, bin, "worker", "--stage", "sink", "--nats", ns.ClientURL(), "--out", out, "--log-level", "warn")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return figures{}, err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	// Done when the sink consumer has every record acked.
	for drained := false; !drained; {
		select {
		case err := <-done:
			return figures{}, fmt.Errorf("the worker ended early (%v): %s", err, stderr.String())
		case <-time.After(500 * time.Millisecond):
		}
		c, err := bus.JS.Consumer(ctx, pipeline.StreamTagged, "sink")
		if err != nil {
			continue // not made yet
		}
		info, err := c.Info(ctx)
		drained = err == nil && info.NumPending == 0 && info.NumAckPending == 0 && info.AckFloor.Stream >= uint64(n)
	}
	wall := time.Since(start)
	_ = cmd.Process.Signal(syscall.SIGTERM)
	if err := <-done; err != nil {
		return figures{}, fmt.Errorf("worker: %w: %s", err, stderr.String())
	}
	if got, err := countLines(out); err != nil || got != n {
		return figures{}, fmt.Errorf("the worker wrote %d lines (%v), want %d", got, err, n)
	}
	return childFigures(report, wall)
}

// runOnFilledOutput fills an output folder with n records of the generated
// hub, then has `citecrawl run` crawl 200 more papers of that hub into it.
func runOnFilledOutput(bin, dir string, n int) (figures, error) {
	const papers = 200
	out := filepath.Join(dir, "out")
	if err := fill(out, n); err != nil {
		return figures{}, fmt.Errorf("filling the output: %w", err)
	}
	site := snapshot.New(snapshot.StyleCards, snapshot.Generated(papers))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return figures{}, err
	}
	srv := &http.Server{Handler: site}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	base := "http://" + ln.Addr().String()
	cmd, report := measured(dir, bin, "run", "--progress", "off")
	cmd.Env = append(cmd.Env,
		"CITECRAWL_HUBS="+site.HubURLs(base)[0],
		"CITECRAWL_NATS_DATA_DIR="+filepath.Join(dir, "data"),
		"CITECRAWL_SINK_OUT="+out,
		"CITECRAWL_FETCH_DELAY=0s",
		"CITECRAWL_FETCH_HOST_DELAYS=",
		"CITECRAWL_FULL_TEXT_ENABLED=false",
		"CITECRAWL_FETCH_GRAPH=false",
		"CITECRAWL_FETCH_ALLOW_PRIVATE=true",
		"CITECRAWL_LOG_LEVEL=warn",
	)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	start := time.Now()
	if err := cmd.Run(); err != nil {
		return figures{}, fmt.Errorf("%w: %s", err, stderr.String())
	}
	wall := time.Since(start)
	if got, err := countLines(out); err != nil || got != n+papers {
		return figures{}, fmt.Errorf("%d lines in the output after the run (%v), want %d", got, err, n+papers)
	}
	return childFigures(report, wall)
}

// fill writes n records of the generated hub into the output folder out
// through the folder sink, as a sink worker would have.
func fill(out string, n int) error {
	ctx := context.Background()
	s, err := sink.Open(ctx, sink.Config{Out: out, JSONLConfig: sink.JSONLConfig{SegmentMaxBytes: 8 << 20, SegmentMaxAge: time.Hour}}, sink.WithSummaryOnClose())
	if err != nil {
		return err
	}
	batch := make([]*record.Record, 0, 1024)
	var bytes int
	for i := range n {
		r := benchRecord(snapshot.GeneratedHubID, 1_000_000_000+i) // ids apart from the crawl's
		batch = append(batch, &r)
		bytes += 1000
		if len(batch) == cap(batch) || i == n-1 {
			if _, err := s.Write(ctx, batch); err != nil {
				return err
			}
			batch = batch[:0]
		}
		if bytes >= 8<<20 || i == n-1 {
			if err := s.Flush(ctx); err != nil {
				return err
			}
			bytes = 0
		}
	}
	return s.Close(ctx)
}

// countLines counts the records in the segments of an output folder.
func countLines(out string) (int, error) {
	files, err := filepath.Glob(filepath.Join(out, "*", "seg-*.jsonl"))
	if err != nil {
		return 0, err
	}
	n := 0
	buf := make([]byte, 1<<20)
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			return 0, err
		}
		for {
			k, err := fh.Read(buf)
			for _, c := range buf[:k] {
				if c == '\n' {
					n++
				}
			}
			if err != nil {
				break
			}
		}
		fh.Close()
	}
	return n, nil
}

// measured makes the command that runs bin with args through "rssbench
// measure", which writes the peak RSS of bin's process to the returned file.
func measured(dir, bin string, args ...string) (*exec.Cmd, string) {
	self, err := os.Executable()
	if err != nil {
		self = os.Args[0]
	}
	report := filepath.Join(dir, "maxrss")
	cmd := exec.Command(self, append([]string{"measure", bin}, args...)...)
	cmd.Env = append(os.Environ(), "RSSBENCH_REPORT="+report)
	return cmd, report
}

// measureChild runs a command (forwarding SIGTERM and SIGINT to it),
// writes its peak RSS in KiB to $RSSBENCH_REPORT and returns its exit code.
func measureChild(args []string) int {
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	if err := cmd.Start(); err != nil {
		fmt.Fprintln(os.Stderr, "rssbench measure:", err)
		return 1
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		for s := range sigs {
			_ = cmd.Process.Signal(s)
		}
	}()
	err := cmd.Wait()
	ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	if werr := os.WriteFile(os.Getenv("RSSBENCH_REPORT"), []byte(strconv.FormatInt(ru.Maxrss, 10)), 0o644); werr != nil {
		fmt.Fprintln(os.Stderr, "rssbench measure:", werr)
		return 1
	}
	if err != nil {
		return cmd.ProcessState.ExitCode()
	}
	return 0
}

// childFigures reads what "rssbench measure" reported.
func childFigures(report string, wall time.Duration) (figures, error) {
	b, err := os.ReadFile(report)
	if err != nil {
		return figures{}, err
	}
	kib, err := strconv.ParseInt(string(b), 10, 64)
	if err != nil {
		return figures{}, fmt.Errorf("%s: %w", report, err)
	}
	return figures{rssMiB: float64(kib) / 1024, wall: wall.Seconds()}, nil // Linux reports KiB
}
