package main

import (
	"errors"
	"flag"
	"fmt"

	"github.com/citecrawl/citecrawl/report"
)

func (c cli) report(args []string) int {
	fs := flag.NewFlagSet("report", flag.ContinueOnError)
	fs.SetOutput(c.stderr)
	hub := fs.String("hub", "", "hub uuid or /citations/ URL")
	format := fs.String("format", "md", "md, html or json")
	out := fs.String("out", "./out", "the sink's output folder")
	minConf := fs.Float64("min-confidence", 0, "also count the tags less confident than this (0..1)")
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	if *hub == "" {
		return c.usageError(errors.New("--hub is required"))
	}
	if *minConf < 0 || *minConf > 1 {
		return c.usageError(fmt.Errorf("--min-confidence %g: want a probability from 0 to 1", *minConf))
	}
	rep, err := report.Build(*out, *hub, *minConf)
	if err != nil {
		fmt.Fprintf(c.stderr, "citecrawl report: %v\n", err)
		return exitFailed
	}
	if err := rep.Write(c.stdout, *format); err != nil {
		return c.usageError(err)
	}
	return exitOK
}
