package main

import (
	"errors"
	"flag"
	"fmt"

	"github.com/citecrawl/citecrawl/pipeline"
	"github.com/citecrawl/citecrawl/report"
	"github.com/citecrawl/citecrawl/sink"
)

func (c cli) report(args []string) int {
	fs := flag.NewFlagSet("report", flag.ContinueOnError)
	fs.SetOutput(c.stderr)
	hub := fs.String("hub", "", "hub uuid or /citations/ URL")
	format := fs.String("format", "md", "md, html or json")
	out := fs.String("out", pipeline.DefaultConfig().Sink.Out, "the sink's output folder (or any sink.out that can be read back)")
	minConf := fs.Float64("min-confidence", 0, "also count the tags less confident than this (0..1)")
	if err := parseFlags(fs, args); err != nil {
		return c.usageError(err)
	}
	switch *format {
	case "md", "html", "json":
	default:
		return c.usageError(fmt.Errorf("--format %q: want md, html or json", *format))
	}
	if *hub == "" {
		return c.usageError(errors.New("--hub is required"))
	}
	if *minConf < 0 || *minConf > 1 {
		return c.usageError(fmt.Errorf("--min-confidence %g: want a probability from 0 to 1", *minConf))
	}
	id, err := hubID(*hub)
	if err != nil {
		return c.usageError(err)
	}
	ctx, stop := signalContext()
	defer stop()
	rd, err := sink.OpenReader(ctx, sink.Config{Out: *out})
	if err != nil {
		fmt.Fprintf(c.stderr, "citecrawl report: %v\n", err)
		return exitFailed
	}
	rep, err := report.Build(ctx, rd, id, *minConf)
	if err != nil {
		fmt.Fprintf(c.stderr, "citecrawl report: %s: %v\n", *out, err)
		return exitFailed
	}
	if err := rep.Write(c.stdout, *format); err != nil {
		return c.usageError(err)
	}
	return exitOK
}
