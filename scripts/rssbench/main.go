// Command rssbench measures citecrawl commands as whole processes at several
// record counts: the command's own peak RSS (the largest VmHWM of its
// /proc/PID/status, sampled every 100 ms), wall and CPU time (the wait4
// rusage: the command and its children, such as its broker), records/s,
// the most anonymous (Go heap) and file-backed (mapped files) memory
// resident at once in the command, and, for a command that runs its
// embedded NATS server in a child (`citecrawl broker --child`), that
// child's peak RSS and CPU time as the command logs them when the child
// ends ("embedded broker process stopped", at info level). It shows that the state of the sink and
// of reprocess does not grow with the records written (issue 11, items 1
// and 2). For each count N, for each command chosen with -only:
//
//   - worker: N tagged records (about 1 kB each, 20 hubs) are published
//     onto the CITECRAWL_TAGGED stream of a NATS server that runs in this
//     program (its data folder is a temporary one); then `citecrawl worker
//     --stage sink --nats URL --out DIR` writes them all to an empty output
//     folder and is stopped (SIGTERM) once its consumer has nothing pending
//     or unacked. The server runs here and not embedded in the worker, so
//     the figure is the worker's own (consumer, tagging-free sink stage,
//     output folder state), not JetStream's. Its wall time ends when the
//     last record is acked.
//   - run: the output folder is first filled, through the sink package as
//     a sink worker would, with N records of the generated hub's folder
//     (so the state that scales with the records written is there to be
//     loaded); then `citecrawl run` crawls a generated hub of 200 citing
//     papers served here on loopback (fetch.delay 0s, no full text, no
//     graph.json, a fresh embedded NATS data folder) and writes its 200
//     new records into that folder beside the N. Its records/s counts
//     those 200.
//   - reprocess: N records (20 hubs; each the title and summary of one of
//     50 generated papers) are published once into the streams of a new
//     data folder through the embedded NATS server, which every binary
//     and round then reads once the stream's duplicate window (2 minutes)
//     has passed. They are stored as `citecrawl run` stores them (its
//     fetcher tags each record itself: one subject a hub, with the
//     headers of its run, its fingerprint and its pages), or with -stream
//     raw as a fetch-only worker does (untagged, with its run's headers).
//     Then `citecrawl reprocess` runs three times: from the stream into a
//     new output folder ("stream -> new"), from the stream again over that
//     output ("stream -> over", the usual re-tag after a rule change) and
//     from that output folder into a new one ("folder"). A build that
//     runs the embedded server in a child shows the child's figures
//     apart; "-" for an older build that runs it in-process (the
//     command's figures hold it) and for "folder", which needs no server.
//
// The records reprocess reads carry the message ids the fetch stage gives
// them. The worker's tagged records are published without one: the server
// holds the ids published in the last 2 minutes (the stream's duplicate
// window) in memory, which a sink worker minutes after the crawl does not
// see. The generated records are summary-only: no citing sentences, full
// text or fetch time, so tagging and decoding cost less than a crawl's.
//
// It prints a row per command run; with -rounds R, each binary runs R times
// at each count, the binaries in turn and every other round the other way
// round, and each row's median over the rounds follows (the machine's
// speed moves by a third within the hour: one run decides nothing). Then
// the spread of each command's own peak RSS over the counts and rounds
// (largest minus smallest; the issue asks for less than 50 MB), and of its
// broker's where it has one.
//
// Each program is started through a fresh copy of this program
// ("rssbench measure CMD..."), which starts it, samples its memory and
// reports its rusage: a child started straight from this process, big
// after publishing and filling, would count this process's peak in its
// rusage (Linux carries the peak RSS of the memory a process had over
// exec, and Go starts children sharing it until they exec). The peak RSS
// printed is VmHWM, which starts afresh at exec and is the command's
// alone; the rusage's is the larger of the command's and its children's.
//
//	go build -o /tmp/citecrawl ./cmd/citecrawl
//	go run ./scripts/rssbench -citecrawl /tmp/citecrawl                    # 10k, 100k, 1M
//	go run ./scripts/rssbench -citecrawl /tmp/citecrawl -quick             # 10k, 100k
//	go run ./scripts/rssbench -citecrawl /tmp/citecrawl -only reprocess    # one command
//	go run ./scripts/rssbench -citecrawl /tmp/citecrawl -before /tmp/old   # and an older build in turn
//	go run ./scripts/rssbench -citecrawl /tmp/citecrawl -only reprocess -counts 1000000 -rounds 3   # issue 11, item 2
//	go run ./scripts/rssbench -citecrawl /tmp/citecrawl -only reprocess -stream raw   # a fetch-only worker's raw records
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
	"slices"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/rs/zerolog"

	"github.com/citecrawl/citecrawl/classify"
	"github.com/citecrawl/citecrawl/ingest"
	"github.com/citecrawl/citecrawl/ingest/snapshot"
	"github.com/citecrawl/citecrawl/pipeline"
	"github.com/citecrawl/citecrawl/record"
	"github.com/citecrawl/citecrawl/sink"
)

// commands are the citecrawl commands this program measures, in the order
// it runs them.
var commands = []string{"worker", "run", "reprocess"}

func main() {
	if len(os.Args) > 2 && os.Args[1] == "measure" {
		os.Exit(measureChild(os.Args[2:]))
	}
	bin := flag.String("citecrawl", "", "the citecrawl binary to measure (required)")
	before := flag.String("before", "", "another citecrawl binary (an older build) measured in turn with -citecrawl at each count, for a before-and-after")
	quick := flag.Bool("quick", false, "10,000 and 100,000 records only (no 1,000,000)")
	counts := flag.String("counts", "", "comma-separated record counts (default 10000,100000,1000000; overrides -quick)")
	only := flag.String("only", strings.Join(commands, ","), "comma-separated commands to measure, of "+strings.Join(commands, ", "))
	keep := flag.Bool("keep", false, "keep the temporary folders")
	stored := flag.String("stream", selfTagged, "how the records reprocess reads are stored: "+selfTagged+" (as `citecrawl run` stores them) or "+raw+" (as a fetch-only worker does)")
	rounds := flag.Int("rounds", 1, "runs of each binary at each count, in turn (the order of the binaries alternates); more than 1 also prints each row's median")
	flag.Parse()
	if *stored != selfTagged && *stored != raw {
		fmt.Fprintf(os.Stderr, "rssbench: -stream %q: want %s or %s\n", *stored, selfTagged, raw)
		os.Exit(2)
	}
	if *rounds < 1 {
		fmt.Fprintf(os.Stderr, "rssbench: -rounds %d: want at least 1\n", *rounds)
		os.Exit(2)
	}
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
	var chosen []string
	for _, c := range strings.Split(*only, ",") {
		c = strings.TrimSpace(c)
		if !slices.Contains(commands, c) {
			fmt.Fprintf(os.Stderr, "rssbench: -only %q: %q is not one of %s\n", *only, c, strings.Join(commands, ", "))
			os.Exit(2)
		}
		chosen = append(chosen, c)
	}
	bins := []binary{{path: *bin}}
	if *before != "" {
		bins = append(bins, binary{path: *before, suffix: " (before)"})
	}
	if err := measure(benches(*stored), bins, ns, chosen, *rounds, *keep); err != nil {
		fmt.Fprintln(os.Stderr, "rssbench:", err)
		os.Exit(1)
	}
}

// A bench measures one command at n records. prepare (nil: none) makes in
// the folder shared what every run of every binary reads, so that the
// binaries compared read the same input; run runs bin once in a folder of
// its own, dir, and returns one row per run of the command.
type bench struct {
	prepare func(shared string, n int) error
	run     func(bin, shared, dir string, n int) ([]row, error)
}

// benches are the commands' benches, reprocess reading records stored as
// stored (selfTagged or raw).
func benches(stored string) map[string]bench {
	return map[string]bench{
		"worker":    {run: func(bin, _, dir string, n int) ([]row, error) { return sinkWorker(bin, dir, n) }},
		"run":       {run: func(bin, _, dir string, n int) ([]row, error) { return runOnFilledOutput(bin, dir, n) }},
		"reprocess": {prepare: publishRecords(stored), run: reprocess},
	}
}

// row is one measured run of a command.
type row struct {
	name string // the command, and for reprocess its source and output
	figures
}

// binary is a citecrawl binary to measure, and what its rows' names end
// with.
type binary struct{ path, suffix string }

func measure(benches map[string]bench, bins []binary, ns []int, chosen []string, rounds int, keep bool) error {
	fmt.Println(rowHeader)
	type key struct {
		n    int
		name string
	}
	runs := map[key][]figures{} // each row's runs, over the rounds
	var keys []key              // in the order first seen
	for _, n := range ns {
		dir, err := os.MkdirTemp("", "rssbench")
		if err != nil {
			return err
		}
		fail := func(err error) error {
			if !keep {
				_ = os.RemoveAll(dir)
			}
			return err
		}
		for _, c := range chosen {
			b, shared := benches[c], filepath.Join(dir, c)
			if b.prepare != nil {
				if err := b.prepare(shared, n); err != nil {
					return fail(fmt.Errorf("%s at %d records: %w", c, n, err))
				}
			}
			for round := range rounds {
				for i := range bins {
					if round%2 == 1 {
						i = len(bins) - 1 - i // every other round the other way round
					}
					bin, runDir := bins[i], filepath.Join(dir, fmt.Sprint(c, "-", round, "-", i))
					rows, err := b.run(bin.path, shared, runDir, n)
					if err != nil {
						return fail(fmt.Errorf("%s at %d records: %w", c, n, err))
					}
					for _, r := range rows {
						r.name += bin.suffix
						fmt.Println(formatRow(n, r))
						k := key{n, r.name}
						if _, seen := runs[k]; !seen {
							keys = append(keys, k)
						}
						runs[k] = append(runs[k], r.figures)
					}
					if !keep {
						_ = os.RemoveAll(runDir)
					}
				}
			}
		}
		if keep {
			fmt.Fprintln(os.Stderr, "rssbench: kept", dir)
		} else {
			_ = os.RemoveAll(dir)
		}
	}
	if rounds > 1 {
		fmt.Printf("median of %d rounds (lowest to highest):\n", rounds)
		w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(w, "records\tcommand\trecords/s\tCPU s\tof it broker CPU s\tpeak RSS MiB\tbroker peak RSS MiB")
		rate := func(f figures) float64 { return float64(f.records) / f.wall }
		cpu := func(f figures) float64 { return f.cpu }
		rss := func(f figures) float64 { return f.rssMiB }
		brokerCPU := func(f figures) float64 { return f.broker.cpu }
		brokerRSS := func(f figures) float64 { return f.broker.peakMiB }
		for _, k := range keys {
			served := slices.DeleteFunc(slices.Clone(runs[k]), func(f figures) bool { return !f.served })
			fmt.Fprintf(w, "%d\t%s\t%s\t%s\t%s\t%s\t%s\n", k.n, k.name, median(runs[k], rate, "%.0f"), median(runs[k], cpu, "%.1f"),
				median(served, brokerCPU, "%.1f"), median(runs[k], rss, "%.0f"), median(served, brokerRSS, "%.0f"))
		}
		w.Flush()
	}
	peaks, brokerPeaks := map[string][]float64{}, map[string][]float64{}
	var names []string // in the order first seen
	for _, k := range keys {
		if _, seen := peaks[k.name]; !seen {
			names = append(names, k.name)
		}
		for _, f := range runs[k] {
			peaks[k.name] = append(peaks[k.name], f.rssMiB)
			if f.served {
				brokerPeaks[k.name] = append(brokerPeaks[k.name], f.broker.peakMiB)
			}
		}
	}
	for _, name := range names {
		lo, hi := slices.Min(peaks[name]), slices.Max(peaks[name])
		fmt.Printf("peak RSS spread, %s: %.0f MiB (%.0f to %.0f)\n", name, hi-lo, lo, hi)
		if b := brokerPeaks[name]; len(b) > 0 {
			lo, hi := slices.Min(b), slices.Max(b)
			fmt.Printf("broker peak RSS spread, %s: %.0f MiB (%.0f to %.0f, %d of %d runs had a broker child)\n", name, hi-lo, lo, hi, len(b), len(peaks[name]))
		}
	}
	return nil
}

// rowHeader names the columns of formatRow. CPU s is the command's and
// its broker child's; peak RSS and its anon / file are the command's own.
const rowHeader = "records    command                    wall s  records/s    CPU s  of it broker CPU s  records/CPU-s    peak RSS    of it anon / file  broker peak RSS"

// formatRow is the line of one run at n records; "-" where the command
// had no broker child.
func formatRow(n int, r row) string {
	brokerCPU, brokerRSS := "-", "-"
	if r.served {
		brokerCPU, brokerRSS = fmt.Sprintf("%.1f", r.broker.cpu), fmt.Sprintf("%.0f MiB", r.broker.peakMiB)
	}
	return fmt.Sprintf("%-10d %-24s %8.1f %10.0f %8.1f %19s %14.0f %7.0f MiB %9.0f / %4.0f MiB %16s",
		n, r.name, r.wall, float64(r.records)/r.wall, r.cpu, brokerCPU, float64(r.records)/r.cpu, r.rssMiB, r.anonMiB, r.fileMiB, brokerRSS)
}

// median gives the median of a figure over runs and its range, "median
// (lowest to highest)" in format, or "-" when there are no runs.
func median(runs []figures, of func(figures) float64, format string) string {
	if len(runs) == 0 {
		return "-"
	}
	s := spread(runs, of)
	return fmt.Sprintf(format+" ("+format+" to "+format+")", s[1], s[0], s[2])
}

// spread gives the lowest, the median and the highest of a figure over
// runs (the median of an even count is the mean of the two middle ones).
func spread(runs []figures, of func(figures) float64) [3]float64 {
	v := make([]float64, len(runs))
	for i, f := range runs {
		v[i] = of(f)
	}
	slices.Sort(v)
	mid := v[len(v)/2]
	if len(v)%2 == 0 {
		mid = (v[len(v)/2-1] + mid) / 2
	}
	return [3]float64{v[0], mid, v[len(v)-1]}
}

// benchHub is the hub of the i-th published record: 20 hubs.
func benchHub(i int) string { return fmt.Sprintf("bench-hub-%02d", i%20) }

// taggedRecord is a tagged record of about 1 kB: a paper, one citing
// sentence with its evidence, the three tags.
func taggedRecord(hub string, i int) record.Record {
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

// rawRecord is a record as the fetch stage publishes it, untagged: the
// title and abstract of one of 50 generated papers.
func rawRecord(papers []snapshot.Paper) func(hub string, i int) record.Record {
	return func(hub string, i int) record.Record {
		p := papers[i%len(papers)]
		return record.Record{Schema: record.Schema, ID: record.ID(hub, fmt.Sprint(i)),
			Hub:      record.Hub{ID: hub, Title: "A generated hub", CitedWorkIDs: []string{}},
			Paper:    record.Paper{Title: p.Title, Summary: p.Summary, Published: p.Date, Categories: []string{p.Cat}},
			Contexts: []record.Context{}, SourceURLs: []string{}, Missing: []string{}}
	}
}

// publish puts n messages over 20 hubs onto the bus, in async batches;
// out gives the i-th, a record of hub.
func publish(ctx context.Context, bus *pipeline.Bus, n int, out func(hub string, i int) (pipeline.Out, error)) error {
	outs := make([]pipeline.Out, 0, publishBatch)
	for i := range n {
		o, err := out(benchHub(i), i)
		if err != nil {
			return err
		}
		outs = append(outs, o)
		if len(outs) == cap(outs) || i == n-1 {
			if err := bus.PublishAll(ctx, outs); err != nil {
				return fmt.Errorf("publishing %d records: %w", n, err)
			}
			outs = outs[:0]
		}
	}
	return nil
}

const publishBatch = 4096

// sinkWorker publishes n tagged records over 20 hubs to a NATS server of
// this process and has a sink worker write them.
func sinkWorker(bin, dir string, n int) ([]row, error) {
	ns, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, JetStream: true,
		StoreDir: filepath.Join(dir, "nats"), NoSigs: true, NoLog: true})
	if err != nil {
		return nil, err
	}
	ns.Start()
	defer ns.Shutdown()
	if !ns.ReadyForConnections(10 * time.Second) {
		return nil, errors.New("NATS server not ready")
	}
	ctx := context.Background()
	bus, err := pipeline.Open(ctx, pipeline.BrokerConfig{URL: ns.ClientURL(), Replicas: 1}, publishBatch, zerolog.Nop())
	if err != nil {
		return nil, err
	}
	defer bus.Close()
	tagged := func(hub string, i int) (pipeline.Out, error) {
		r := taggedRecord(hub, i)
		b, err := record.Marshal(&r)
		return pipeline.Out{Subject: pipeline.TaggedSubject(hub), Data: b}, err
	}
	if err := publish(ctx, bus, n, tagged); err != nil {
		return nil, err
	}
	out := filepath.Join(dir, "out")
	c, err := startMeasured(dir, nil, bin, "worker", "--stage", "sink", "--nats", ns.ClientURL(), "--out", out, "--log-level", "warn")
	if err != nil {
		return nil, err
	}
	// Done when the sink consumer has every record acked.
	for drained := false; !drained; {
		select {
		case err := <-c.exited:
			return nil, fmt.Errorf("the worker ended early (%v): %s", err, errorOutput(c.stderr.String()))
		case <-time.After(500 * time.Millisecond):
		}
		con, err := bus.JS.Consumer(ctx, pipeline.StreamTagged, "sink")
		if err != nil {
			continue // not made yet
		}
		info, err := con.Info(ctx)
		drained = err == nil && info.NumPending == 0 && info.NumAckPending == 0 && info.AckFloor.Stream >= uint64(n)
	}
	wall := time.Since(c.start)
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	f, err := c.wait(n)
	if err != nil {
		return nil, err
	}
	f.wall = wall.Seconds()
	if got, err := countLines(out); err != nil || got != n {
		return nil, fmt.Errorf("the worker wrote %d lines (%v), want %d", got, err, n)
	}
	return []row{{"worker sink", f}}, nil
}

// runOnFilledOutput fills an output folder with n records of the generated
// hub, then has `citecrawl run` crawl 200 more papers of that hub into it.
func runOnFilledOutput(bin, dir string, n int) ([]row, error) {
	const papers = 200
	out := filepath.Join(dir, "out")
	if err := fill(out, n); err != nil {
		return nil, fmt.Errorf("filling the output: %w", err)
	}
	site := snapshot.New(snapshot.StyleCards, snapshot.Generated(papers))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	srv := &http.Server{Handler: site}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	base := "http://" + ln.Addr().String()
	env := []string{
		"CITECRAWL_HUBS=" + site.HubURLs(base)[0],
		"CITECRAWL_NATS_DATA_DIR=" + filepath.Join(dir, "data"),
		"CITECRAWL_SINK_OUT=" + out,
		"CITECRAWL_FETCH_DELAY=0s",
		"CITECRAWL_FETCH_HOST_DELAYS=",
		"CITECRAWL_FULL_TEXT_ENABLED=false",
		"CITECRAWL_FETCH_GRAPH=false",
		"CITECRAWL_FETCH_ALLOW_PRIVATE=true",
		"CITECRAWL_LOG_LEVEL=info", // for its broker's figures (brokerStopped)
		"CITECRAWL_LOG_FORMAT=json",
	}
	f, err := runMeasured(dir, env, papers, bin, "run", "--progress", "off")
	if err != nil {
		return nil, err
	}
	if got, err := countLines(out); err != nil || got != n+papers {
		return nil, fmt.Errorf("%d lines in the output after the run (%v), want %d", got, err, n+papers)
	}
	return []row{{"run", f}}, nil
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
		r := taggedRecord(snapshot.GeneratedHubID, 1_000_000_000+i) // ids apart from the crawl's
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

// How the records reprocess reads are stored (-stream).
const (
	// selfTagged: as `citecrawl run` stores them, its fetcher tagging
	// each record itself: tagged, one subject a hub, with the headers
	// of its run, its fingerprint and the pages it was built from.
	selfTagged = "self-tagged"
	// raw: as a fetch-only worker stores them: untagged, one subject a
	// hub, with the headers of its run.
	raw = "raw"
)

// publishRecords publishes n records, stored as stored (selfTagged or
// raw), into the streams of a new data folder in shared, which every run
// of reprocess reads.
func publishRecords(stored string) func(shared string, n int) error {
	return func(shared string, n int) error {
		ctx := context.Background()
		cfg := pipeline.DefaultConfig()
		cfg.NATS.DataDir = filepath.Join(shared, "data")
		bus, err := pipeline.Open(ctx, cfg.NATS, publishBatch, zerolog.Nop())
		if err != nil {
			return err
		}
		defer bus.Close() // frees the data folder for reprocess
		out, err := storedRecord(stored)
		if err != nil {
			return err
		}
		if err := publish(ctx, bus, n, out); err != nil {
			return err
		}
		return waitOutDuplicateWindow(ctx, bus, stored, n)
	}
}

// storedRecord gives the i-th record of a hub as the crawler would have
// stored it (pipeline.FetchedRecord).
func storedRecord(stored string) (func(hub string, i int) (pipeline.Out, error), error) {
	runID := pipeline.NewRunID(time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC))
	rec := rawRecord(snapshot.Generated(50).Papers)
	var cl *classify.Classifier // raw: untagged
	if stored == selfTagged {
		var err error
		if cl, err = classify.Load(""); err != nil { // the rules built in, as the crawl's
			return nil, err
		}
	}
	return func(hub string, i int) (pipeline.Out, error) {
		r := rec(hub, i)
		pages := []ingest.SourcePage{
			{URL: "https://pith.science/pith/" + r.ID, Validator: ingest.Validator{ETag: fmt.Sprintf(`W/"%08x"`, i)}},
			{URL: fmt.Sprintf("https://arxiv.org/abs/26%02d.%05d", 1+i%12, i%100000), Validator: ingest.Validator{LastModified: "Sun, 01 Nov 2026 00:00:00 GMT"}},
		}
		return pipeline.FetchedRecord(runID, &r, pipeline.ChangeNew, cl, pages)
	}, nil
}

// waitOutDuplicateWindow waits until the duplicate window of the stream
// just published to has passed.
func waitOutDuplicateWindow(ctx context.Context, bus *pipeline.Bus, stored string, n int) error {
	published := time.Now()
	name := pipeline.StreamTagged
	if stored == raw {
		name = pipeline.StreamRaw
	}
	st, err := bus.JS.Stream(ctx, name)
	if err != nil {
		return err
	}
	// A server that starts within the stream's duplicate window of its
	// last message reads every message of the window to rebuild the
	// window's ids: 1.3 CPU s at a million records, before reprocess reads
	// the first. A reprocess minutes after a crawl reads only the crawl's
	// last minutes, so the runs start once the window has passed.
	wait := time.Until(published.Add(st.CachedInfo().Config.Duplicates + time.Second))
	fmt.Fprintf(os.Stderr, "rssbench: %d records published (%s); waiting %s for the stream's duplicate window to pass\n", n, stored, wait.Round(time.Second))
	time.Sleep(wait)
	return nil
}

// reprocess runs `citecrawl reprocess` from the stream published in shared
// into a new output in dir, from the stream over that output, and from
// that output into a new one.
func reprocess(bin, shared, dir string, n int) ([]row, error) {
	data, out, again := filepath.Join(shared, "data"), filepath.Join(dir, "out"), filepath.Join(dir, "again")
	runs := []struct {
		name, out string
		args      []string
	}{
		{"stream -> new", out, []string{"--data", data, "--out", out}},
		{"stream -> over", out, []string{"--data", data, "--out", out}},
		{"folder", again, []string{"--from", out, "--out", again}},
	}
	var rows []row
	for _, r := range runs {
		// Info, for the broker's figures (brokerStopped).
		f, err := runMeasured(dir, nil, n, bin, append([]string{"reprocess", "--log-level", "info", "--log-format", "json"}, r.args...)...)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", r.name, err)
		}
		// A speed is worth something only if every record was written.
		if got, err := countLines(r.out); err != nil || got != n {
			return nil, fmt.Errorf("%s: %d lines in the output (%v), want %d", r.name, got, err, n)
		}
		rows = append(rows, row{r.name, f})
	}
	return rows, nil
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

// figures are one measured run of a command.
type figures struct {
	records int     // the records it wrote, for records/s
	wall    float64 // seconds
	cpu     float64 // user+system seconds of the command and its children (its broker)
	rssMiB  float64 // the command's own peak RSS, without its children's
	// The most anonymous memory (the Go heap and stacks) and file-backed
	// memory (mapped files, such as the sink's index) resident at once
	// in the command, sampled every 100 ms from /proc (0 where there is
	// none).
	anonMiB, fileMiB float64
	broker
}

// broker is what a command logs of its broker child when the child ends
// (brokerStopped).
type broker struct {
	served  bool    // it had a broker child: the figures below are its
	peakMiB float64 // the child's peak RSS
	cpu     float64 // the child's user+system seconds, of figures.cpu
}

// report is what "rssbench measure" writes about the command it ran.
type report struct {
	MaxRSSKiB  int64   `json:"max_rss_kib"` // Linux reports KiB; the command's or a child's
	CPUSeconds float64 `json:"cpu_s"`
	HWMMiB     float64 `json:"hwm_mib"` // the command's own peak RSS: VmHWM, the last sample
	AnonMiB    float64 `json:"anon_mib"`
	FileMiB    float64 `json:"file_mib"`
}

// brokerStopped is the message of the line a command logs at info level
// when its broker child has ended, with the child's rusage in
// peak_rss_bytes and cpu_s (cmd/citecrawl/broker.go).
const brokerStopped = "embedded broker process stopped"

// brokerFigures reads a command's standard error (JSON log lines) for its
// broker child's figures: none (served false) when it logged no
// brokerStopped line. Should there be several children, their CPU times
// add up and the larger peak counts, as in a rusage.
func brokerFigures(stderr string) broker {
	var b broker
	for _, line := range strings.Split(stderr, "\n") {
		if !strings.Contains(line, brokerStopped) {
			continue
		}
		var l struct {
			Message string   `json:"message"`
			Peak    *int64   `json:"peak_rss_bytes"`
			CPU     *float64 `json:"cpu_s"`
		}
		if json.Unmarshal([]byte(line), &l) != nil || l.Message != brokerStopped || l.Peak == nil || l.CPU == nil {
			continue
		}
		b.served = true
		b.peakMiB = max(b.peakMiB, float64(*l.Peak)/(1<<20))
		b.cpu += *l.CPU
	}
	return b
}

// errorOutput is a command's standard error as it is shown when the
// command fails: without the log lines below warn, which the commands
// serving an embedded server log to say what their broker cost.
func errorOutput(stderr string) string {
	var kept []string
	for _, line := range strings.SplitAfter(stderr, "\n") {
		var l struct {
			Level string `json:"level"`
		}
		if strings.HasPrefix(line, "{") && json.Unmarshal([]byte(line), &l) == nil {
			switch l.Level {
			case "trace", "debug", "info":
				continue
			}
		}
		kept = append(kept, line)
	}
	return strings.Join(kept, "")
}

// child is a command started under "rssbench measure".
type child struct {
	cmd    *exec.Cmd
	report string // the file the measure process writes its report to
	stderr strings.Builder
	start  time.Time
	exited chan error // the command's end, once
}

// startMeasured starts bin with args through "rssbench measure", with env
// added to this process's environment; its files go in dir.
func startMeasured(dir string, env []string, bin string, args ...string) (*child, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	f, err := os.CreateTemp(dir, "report-*.json")
	if err != nil {
		return nil, err
	}
	f.Close()
	c := &child{report: f.Name(), exited: make(chan error, 1)}
	c.cmd = exec.Command(self, append([]string{"measure", bin}, args...)...)
	c.cmd.Env = append(append(os.Environ(), env...), "RSSBENCH_REPORT="+c.report)
	c.cmd.Stderr = &c.stderr
	c.start = time.Now()
	if err := c.cmd.Start(); err != nil {
		return nil, err
	}
	go func() { c.exited <- c.cmd.Wait() }()
	return c, nil
}

// wait waits for the command to end and returns its figures, with records
// the records it wrote.
func (c *child) wait(records int) (figures, error) {
	if err := <-c.exited; err != nil {
		return figures{}, fmt.Errorf("%w: %s", err, errorOutput(c.stderr.String()))
	}
	wall := time.Since(c.start)
	b, err := os.ReadFile(c.report)
	if err != nil {
		return figures{}, err
	}
	var r report
	if err := json.Unmarshal(b, &r); err != nil {
		return figures{}, fmt.Errorf("%s: %w", c.report, err)
	}
	if r.HWMMiB == 0 {
		return figures{}, fmt.Errorf("no VmHWM of %s sampled from /proc: its own peak RSS is unknown", c.cmd.Args[2])
	}
	return figures{records: records, wall: wall.Seconds(), cpu: r.CPUSeconds, rssMiB: r.HWMMiB,
		anonMiB: r.AnonMiB, fileMiB: r.FileMiB, broker: brokerFigures(c.stderr.String())}, nil
}

// runMeasured runs bin with args through "rssbench measure" to its end.
func runMeasured(dir string, env []string, records int, bin string, args ...string) (figures, error) {
	c, err := startMeasured(dir, env, bin, args...)
	if err != nil {
		return figures{}, err
	}
	return c.wait(records)
}

// measureChild runs a command (forwarding SIGTERM and SIGINT to it),
// samples its resident memory, writes its report to $RSSBENCH_REPORT and
// returns its exit code.
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
	var rep report
	exited, sampled := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(sampled)
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			anon, file, hwm := residentMiB(cmd.Process.Pid)
			rep.AnonMiB, rep.FileMiB, rep.HWMMiB = max(rep.AnonMiB, anon), max(rep.FileMiB, file), max(rep.HWMMiB, hwm)
			select {
			case <-exited:
				return
			case <-t.C:
			}
		}
	}()
	err := cmd.Wait()
	close(exited)
	<-sampled
	ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	if !ok {
		fmt.Fprintln(os.Stderr, "rssbench measure: no resource usage for the child on this system")
		return 1
	}
	rep.MaxRSSKiB = ru.Maxrss
	rep.CPUSeconds = time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
	b, _ := json.Marshal(rep)
	if werr := os.WriteFile(os.Getenv("RSSBENCH_REPORT"), b, 0o644); werr != nil {
		fmt.Fprintln(os.Stderr, "rssbench measure:", werr)
		return 1
	}
	if err != nil {
		return cmd.ProcessState.ExitCode()
	}
	return 0
}

// residentMiB reads a process's resident anonymous and file-backed memory
// and its peak RSS so far (VmHWM) from /proc/PID/status (zeros where there
// is no /proc, or once the process has exited).
func residentMiB(pid int) (anon, file, hwm float64) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		var kb float64
		if _, err := fmt.Sscanf(line, "RssAnon: %f kB", &kb); err == nil {
			anon = kb / 1024
		} else if _, err := fmt.Sscanf(line, "RssFile: %f kB", &kb); err == nil {
			file = kb / 1024
		} else if _, err := fmt.Sscanf(line, "VmHWM: %f kB", &kb); err == nil {
			hwm = kb / 1024
		}
	}
	return anon, file, hwm
}
