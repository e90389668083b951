package main

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"

	"github.com/citecrawl/citecrawl/classify"
	"github.com/citecrawl/citecrawl/pipeline"
)

// reprocessMemoryLimit is the soft memory limit reprocess sets (unless
// GOMEMLIMIT is set). Its live heap is at most about 70 MiB at any record
// count with 20 hubs (the segments being written and those being sealed,
// each 64 KiB of buffer a hub written in a batch, so more with more hubs; an
// index transaction, the records in flight, NATS's buffers). At 80 MiB the
// collector runs before garbage piles up on top of that: measured at a
// million records from the stream, the peak RSS is about 105 MiB against
// 125 at 100 MiB and 118 to 127 at 200 MiB, for the same CPU within the
// noise (40.1 and 40.8 CPU-seconds against 38.8 and 41.2 at 200 MiB). With many more hubs the live heap may
// pass the limit; the runtime then caps the collector's share of the CPU
// rather than failing.
const reprocessMemoryLimit = 80 << 20

// serverKept is about what the embedded server keeps live for a million
// raw records, which reprocessMemoryLimit makes room for.
const serverKept = 10 << 20

// liveHeap is the heap a collection leaves, in bytes.
func liveHeap() uint64 {
	runtime.GC()
	s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

func (c cli) reprocess(args []string) int {
	o := newOptions("reprocess", c.stderr, brokerFlags|outFlag|rulesFlag)
	from := o.fs.String("from", "stream", "what to re-tag: stream (the raw-record stream) or a folder of JSON Lines output (any sink.out that can be read back)")
	workers := o.fs.Int("workers", 2, "tagging goroutines")
	minConf := o.fs.Float64("min-confidence", 0, "also count the re-tagged tags less confident than this (0..1)")
	allowShrink := o.fs.Bool("allow-shrink", false, "replace the output even with an empty or much smaller generation (fewer than half its records)")
	cfg, err := o.load(args, c.environ)
	if err != nil {
		return c.usageError(err)
	}
	if *workers < 1 {
		return c.usageError(fmt.Errorf("--workers must be at least 1, not %d", *workers))
	}
	if *minConf < 0 || *minConf > 1 {
		return c.usageError(fmt.Errorf("--min-confidence %g: want a probability from 0 to 1", *minConf))
	}
	out, ok := cfg.Sink.Folder()
	if !ok {
		return c.usageError(fmt.Errorf("reprocess writes a new output generation: --out must be a folder"))
	}
	cl, err := classify.Load(cfg.Rules)
	if err != nil {
		return c.usageError(err)
	}
	if cfg.NATS.EmbeddedProcess == pipeline.EmbeddedAuto {
		// The server in a process of its own: what it reads and caches is
		// then not in the heap this batch work's collector walks under the
		// memory limit (see pipeline.EmbeddedAuto).
		cfg.NATS.EmbeddedProcess = pipeline.EmbeddedAlways
	}
	limit := os.Getenv("GOMEMLIMIT") == ""
	var before uint64
	if limit {
		before = liveHeap()
	}
	sess, code := c.start(cfg, *from == "stream") // a folder needs no NATS
	if sess == nil {
		return code
	}
	defer sess.close()
	if limit {
		// Batch work over everything crawled: keep the collector ahead of
		// the garbage so the process stays small. With the server in a
		// broker child (nats.embedded_process auto or always) or external,
		// this process keeps nothing of it: the limit is the 80 MiB. With
		// the server inside (embedded_process never): the 80 MiB were
		// measured with the server of a million raw records, which keeps
		// about 9 MiB live. What a server keeps beyond that comes on top, three
		// times over: its index of a stream's subjects (in a store of
		// versions before 2026-12-02, one a self-tagged record: about 100
		// MiB a million records) is live for the whole
		// run and each collection walks it, so the collector must run
		// seldom. A million self-tagged records, user CPU s / collections
		// / peak RSS (load 8), at 80 MiB plus the index once: 160 / - /
		// 265 MB (the collector back to back); twice 80 / 149 / 346; three
		// times 55 / 56 / 404; no limit 52 / - / 744.
		server := max(liveHeap(), before) - before
		debug.SetMemoryLimit(reprocessMemoryLimit + 3*int64(max(server, serverKept)-serverKept))
		sess.log.Debug().Uint64("server_live_bytes", server).Msg("memory limit set")
	}
	ctx := sess.ctx
	opts := pipeline.ReprocessOptions{From: *from, Out: out, AllowShrink: *allowShrink, Classifier: cl, Workers: *workers, Log: sess.log, MinConfidence: *minConf}
	endProgress := func() {}
	if showProgress("auto", c.stderr) {
		opts.Progress, endProgress = progressBar(c.stderr)
	}
	res, err := pipeline.Reprocess(ctx, sess.bus, opts)
	endProgress()
	if ctx.Err() != nil {
		fmt.Fprintln(c.stderr, "citecrawl reprocess: interrupted; the old output is untouched; run the same command again to resume")
		return exitInterrupted
	}
	if errors.Is(err, pipeline.ErrShrink) {
		fmt.Fprintf(c.stderr, "citecrawl reprocess: %v\n", err)
		return exitUsage // the input is most likely not the right one
	}
	if err != nil {
		fmt.Fprintf(c.stderr, "citecrawl reprocess: %v\n", err)
		return exitFailed
	}
	res.WriteChanges(bufio.NewWriter(c.stdout))
	return exitOK
}
