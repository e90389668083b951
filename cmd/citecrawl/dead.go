package main

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/citecrawl/citecrawl/pipeline"
)

// dead shows and redrives the dead letters of CITECRAWL_DEAD.
func (c cli) dead(args []string) int {
	if len(args) == 0 || (args[0] != "list" && args[0] != "replay") {
		return c.usageError(fmt.Errorf("dead: want 'dead list' or 'dead replay' [--stage S] [--reason R]"))
	}
	sub := args[0]
	o := newOptions("dead "+sub, c.stderr, brokerFlags)
	var f pipeline.DeadFilter
	o.fs.StringVar(&f.Stage, "stage", "", "only the dead letters of this stage: fetch, classify or sink")
	o.fs.StringVar(&f.Reason, "reason", "", "only the dead letters whose reason contains this text (any case)")
	format := "table"
	if sub == "list" {
		o.fs.StringVar(&format, "format", "table", "table or json (one dead letter per line)")
	}
	cfg, err := o.load(args[1:], c.environ)
	if err != nil {
		return c.usageError(err)
	}
	if f.Stage != "" && !slices.Contains(pipeline.AllStages, f.Stage) {
		return c.usageError(fmt.Errorf("--stage %q: want fetch, classify or sink", f.Stage))
	}
	if format != "table" && format != "json" {
		return c.usageError(fmt.Errorf("--format %q: want table or json", format))
	}
	sess, code := c.start(cfg, true)
	if sess == nil {
		return code
	}
	defer sess.close()
	if sub == "replay" {
		n, err := pipeline.ReplayDeadLetters(sess.ctx, sess.bus, f)
		if err != nil {
			sess.log.Error().Err(err).Int("replayed", n).Msg("dead replay")
			return exitFailed
		}
		fmt.Fprintf(c.stdout, "replayed %d dead letters; 'citecrawl run' (or the workers) will process them\n", n)
		return exitOK
	}
	dead, err := pipeline.ListDeadLetters(sess.ctx, sess.bus, f)
	if err != nil {
		sess.log.Error().Err(err).Msg("dead list")
		return exitFailed
	}
	if format == "json" {
		enc := json.NewEncoder(c.stdout)
		for _, d := range dead {
			if err := enc.Encode(d); err != nil {
				return exitFailed
			}
		}
		return exitOK
	}
	tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SEQ\tTIME\tSTAGE\tSUBJECT\tDELIVERIES\tREASON")
	for _, d := range dead {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\n", d.Seq, d.Time.UTC().Format("2006-01-02T15:04:05Z"), d.Stage, d.Subject, d.Deliveries,
			strings.ReplaceAll(d.Error, "\n", " "))
	}
	_ = tw.Flush()
	fmt.Fprintf(c.stderr, "%d dead letters; redrive them with 'citecrawl dead replay [--stage S] [--reason R]'\n", len(dead))
	return exitOK
}
