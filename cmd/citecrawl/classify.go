package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/citecrawl/citecrawl/classify"
)

// classifyCmd tags JSON lines from --in (stdin) to --out (stdout),
// streaming, in order.
func (c cli) classifyCmd(args []string) int {
	fs := flag.NewFlagSet("classify", flag.ContinueOnError)
	fs.SetOutput(c.stderr)
	in := fs.String("in", "-", "input JSON lines (- for standard input)")
	out := fs.String("out", "-", "output JSON lines (- for standard output)")
	rules := fs.String("rules", "", "rules directory (default: the built-in copy of configs/rules)")
	opts := classify.DefaultStreamOptions
	fs.IntVar(&opts.MaxLineBytes, "max-line-bytes", opts.MaxLineBytes, "longest input line; a longer one is reported and skipped")
	fs.IntVar(&opts.MaxEvidence, "max-evidence", opts.MaxEvidence, "most evidence entries kept per label of a tag")
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	if opts.MaxLineBytes < 1 || opts.MaxEvidence < 1 {
		return c.usageError(fmt.Errorf("--max-line-bytes (%d) and --max-evidence (%d) must be at least 1", opts.MaxLineBytes, opts.MaxEvidence))
	}
	cl, err := classify.Load(*rules)
	if err != nil {
		return c.usageError(err)
	}
	var r io.Reader = c.stdin
	if *in != "-" {
		f, err := os.Open(*in)
		if err != nil {
			return c.usageError(fmt.Errorf("--in: %w", err))
		}
		defer f.Close()
		r = f
	}
	var w io.Writer = c.stdout
	var outFile *os.File
	if *out != "-" {
		if outFile, err = os.Create(*out); err != nil {
			return c.usageError(fmt.Errorf("--out: %w", err))
		}
		w = outFile
	}
	bad, err := classify.StreamWith(cl, r, w, opts, func(line int, err error) {
		fmt.Fprintf(c.stderr, "citecrawl classify: %s line %d: %v\n", *in, line, err)
	})
	if outFile != nil {
		if cerr := outFile.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		fmt.Fprintf(c.stderr, "citecrawl classify: %v\n", err)
		return exitFailed
	}
	if bad > 0 {
		fmt.Fprintf(c.stderr, "citecrawl classify: %d malformed line(s) were not tagged\n", bad)
		return exitFailed
	}
	return exitOK
}

func (c cli) eval(args []string) int {
	fs := flag.NewFlagSet("eval", flag.ContinueOnError)
	fs.SetOutput(c.stderr)
	task := fs.String("task", "", "role, intent, polarity or pluralism")
	gold := fs.String("gold", "", "gold file (the formats of ../shared/data)")
	format := fs.String("format", "", "scicite, acl-arc, act, athar, clinical or pluralism (default: from the path)")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	rules := fs.String("rules", "", "rules directory (default: the built-in copy of configs/rules)")
	nErrors := fs.Int("errors", 0, "also list up to N wrongly labelled rows with the cues that fired")
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	switch *task {
	case classify.TaskRole, classify.TaskIntent, classify.TaskPolarity, classify.TaskPluralism:
	default:
		return c.usageError(fmt.Errorf("--task %q: want role, intent, polarity or pluralism", *task))
	}
	if *gold == "" {
		return c.usageError(errors.New("--gold FILE is required"))
	}
	if *format == "" {
		*format = classify.GuessFormat(*gold)
	}
	cl, err := classify.Load(*rules)
	if err != nil {
		return c.usageError(err)
	}
	exs, err := classify.ReadGold(*gold, *format, *task)
	if err != nil {
		return c.usageError(err)
	}
	rep := cl.Evaluate(*task, exs, *nErrors)
	if *asJSON {
		enc := json.NewEncoder(c.stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(rep)
		return exitOK
	}
	bw := bufio.NewWriter(c.stdout)
	rep.Format(bw)
	_ = bw.Flush()
	return exitOK
}
