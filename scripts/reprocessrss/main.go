// Command reprocessrss measures the `citecrawl reprocess` process at several
// record counts (issue 11, items 1 and 2): for each count N it publishes N
// raw records (20 hubs) to a fresh data folder through the embedded NATS
// server, then runs the built binary as a child three times:
//
//   - stream -> new: from the raw stream into a new output folder;
//   - stream -> over: from the stream again, over that output (the usual
//     re-tag after a rule change, compared with the old output);
//   - folder: from that output folder into a new one;
//
// and prints, per run, wall seconds and records/s, CPU seconds (user and
// system) and records per CPU-second (the figure a machine shared with
// other work still gives), and the child's peak RSS (rusage Maxrss) with
// the most of it anonymous (Go heap) and file-backed (mapped files) seen, then the spread of the peak RSS over the counts (the
// issue asks for less than 50 MB).
//
//	go build -o /tmp/citecrawl ./cmd/citecrawl
//	go run ./scripts/reprocessrss -citecrawl /tmp/citecrawl          # 10k, 100k, 1M
//	go run ./scripts/reprocessrss -citecrawl /tmp/citecrawl -quick   # 10k, 100k
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"github.com/citecrawl/citecrawl/ingest/snapshot"
	"github.com/citecrawl/citecrawl/pipeline"
	"github.com/citecrawl/citecrawl/record"
)

func main() {
	if len(os.Args) == 4 && os.Args[1] == "publish" {
		var n int
		if _, err := fmt.Sscan(os.Args[3], &n); err != nil {
			fmt.Fprintln(os.Stderr, "reprocessrss publish:", err)
			os.Exit(2)
		}
		if err := publish(os.Args[2], n); err != nil {
			fmt.Fprintln(os.Stderr, "reprocessrss publish:", err)
			os.Exit(1)
		}
		return
	}
	citecrawl := flag.String("citecrawl", "", "the citecrawl binary to measure (required)")
	quick := flag.Bool("quick", false, "10,000 and 100,000 records only (no 1,000,000)")
	counts := flag.String("counts", "", "record counts to measure, comma-separated (overrides -quick)")
	flag.Parse()
	if *citecrawl == "" {
		fmt.Fprintln(os.Stderr, "reprocessrss: -citecrawl is required")
		os.Exit(2)
	}
	ns := []int{10_000, 100_000, 1_000_000}
	if *quick {
		ns = ns[:2]
	}
	if *counts != "" {
		ns = nil
		for _, c := range strings.Split(*counts, ",") {
			var n int
			if _, err := fmt.Sscan(c, &n); err != nil || n < 1 {
				fmt.Fprintf(os.Stderr, "reprocessrss: -counts %q: want positive whole numbers\n", *counts)
				os.Exit(2)
			}
			ns = append(ns, n)
		}
	}
	if err := measure(*citecrawl, ns); err != nil {
		fmt.Fprintln(os.Stderr, "reprocessrss:", err)
		os.Exit(1)
	}
}

func measure(citecrawl string, ns []int) error {
	tmp, err := os.MkdirTemp("", "reprocessrss-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	peaks := map[string][]float64{}
	modes := []string{"stream -> new", "stream -> over", "folder"}
	fmt.Printf("%-10s %-15s %8s %10s %8s %14s %10s %20s\n", "records", "run", "wall s", "records/s", "CPU s", "records/cpu-s", "peak RSS", "of it anon / file")
	for _, n := range ns {
		dir := filepath.Join(tmp, fmt.Sprint(n))
		data, out, again := filepath.Join(dir, "data"), filepath.Join(dir, "out"), filepath.Join(dir, "again")
		// In a child of its own: a child's peak RSS counts its parent's at
		// the fork (Linux carries it over the exec), so this process
		// stays small.
		self, err := os.Executable()
		if err != nil {
			return err
		}
		if out, err := exec.Command(self, "publish", data, fmt.Sprint(n)).CombinedOutput(); err != nil {
			return fmt.Errorf("publishing %d records: %w\n%s", n, err, out)
		}
		runs := [][]string{
			{"--data", data, "--out", out},
			{"--data", data, "--out", out},
			{"--from", out, "--out", again},
		}
		for i, args := range runs {
			f, err := run(citecrawl, args)
			if err != nil {
				return fmt.Errorf("%d records, %s: %w", n, modes[i], err)
			}
			fmt.Printf("%-10d %-15s %8.1f %10.0f %8.1f %14.0f %6.0f MiB %9.0f / %4.0f MiB\n", n, modes[i], f.wall, float64(n)/f.wall, f.cpu, float64(n)/f.cpu, f.rss, f.anon, f.file)
			peaks[modes[i]] = append(peaks[modes[i]], f.rss)
		}
		_ = os.RemoveAll(dir)
	}
	for _, m := range modes {
		lo, hi := peaks[m][0], peaks[m][0]
		for _, p := range peaks[m] {
			lo, hi = min(lo, p), max(hi, p)
		}
		fmt.Printf("peak RSS spread, %s: %.0f MiB (%.0f to %.0f)\n", m, hi-lo, lo, hi)
	}
	return nil
}

// publish puts n raw records, as the fetch stage publishes them, into the
// stream of a new data folder, in async batches. They go without a message
// id: the server would hold the ids published in the last 2 minutes (the
// stream's duplicate window) in memory, which a reprocess run minutes after
// the crawl does not see and which would be counted here as reprocess's.
func publish(data string, n int) error {
	ctx := context.Background()
	cfg := pipeline.DefaultConfig()
	cfg.NATS.DataDir = data
	bus, err := pipeline.Open(ctx, cfg.NATS, cfg.Stages.MaxPending, zerolog.Nop())
	if err != nil {
		return err
	}
	defer bus.Close()
	papers := snapshot.Generated(50).Papers
	outs := make([]pipeline.Out, 0, 5000)
	for i := range n {
		p := papers[i%len(papers)]
		hub := fmt.Sprint("hub-", i%20)
		r := record.Record{Schema: record.Schema, ID: record.ID(hub, fmt.Sprint(i)),
			Hub:      record.Hub{ID: hub, Title: "A generated hub", CitedWorkIDs: []string{}},
			Paper:    record.Paper{Title: p.Title, Summary: p.Summary, Published: p.Date, Categories: []string{p.Cat}},
			Contexts: []record.Context{}, SourceURLs: []string{}, Missing: []string{}}
		b, err := json.Marshal(&r)
		if err != nil {
			return err
		}
		outs = append(outs, pipeline.Out{Subject: pipeline.RawSubject(hub), Data: b})
		if len(outs) == cap(outs) || i == n-1 {
			if err := bus.PublishAll(ctx, outs); err != nil {
				return fmt.Errorf("publishing %d records: %w", n, err)
			}
			outs = outs[:0]
		}
	}
	return nil
}

// figures are one run of the child.
type figures struct {
	wall, cpu float64 // seconds; CPU is user+system
	rss       float64 // peak, MiB
	// The most anonymous memory (the Go heap and stacks) and file-backed
	// memory (mapped files, such as an index) resident at once, in MiB,
	// sampled every 100 ms from /proc (0 where there is none).
	anon, file float64
}

// run runs `citecrawl reprocess` with args and measures it.
func run(citecrawl string, args []string) (figures, error) {
	cmd := exec.Command(citecrawl, append([]string{"reprocess", "--log-level", "warn"}, args...)...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return figures{}, err
	}
	var f figures
	exited, sampled := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(sampled)
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			anon, file := residentMiB(cmd.Process.Pid)
			f.anon, f.file = max(f.anon, anon), max(f.file, file)
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
	if err != nil {
		return figures{}, fmt.Errorf("%w\n%s", err, stderr.String())
	}
	f.wall = time.Since(start).Seconds()
	ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	if !ok {
		return figures{}, fmt.Errorf("no resource usage for the child on this system")
	}
	f.cpu = time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
	f.rss = float64(ru.Maxrss) / 1024 // Maxrss is in KiB on Linux
	return f, nil
}

// residentMiB reads a process's resident anonymous and file-backed memory
// from /proc/PID/status (zeros where there is no /proc).
func residentMiB(pid int) (anon, file float64) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		var kb float64
		if _, err := fmt.Sscanf(line, "RssAnon: %f kB", &kb); err == nil {
			anon = kb / 1024
		} else if _, err := fmt.Sscanf(line, "RssFile: %f kB", &kb); err == nil {
			file = kb / 1024
		}
	}
	return anon, file
}
