package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/citecrawl/citecrawl/classify"
	"github.com/citecrawl/citecrawl/pipeline"
	"github.com/citecrawl/citecrawl/record"
)

func (c cli) tail(args []string) int {
	o := newOptions("tail", c.stderr, brokerFlags)
	var opt pipeline.TailOptions
	o.fs.StringVar(&opt.Hub, "hub", "", "only this hub (its uuid or /citations/ URL)")
	o.fs.StringVar(&opt.Role, "role", "", "only this role")
	o.fs.StringVar(&opt.Polarity, "polarity", "", "only this polarity")
	o.fs.StringVar(&opt.Pluralism, "pluralism", "", "only this primary pluralism category")
	o.fs.Float64Var(&opt.MinConfidence, "min-confidence", 0, "only records whose role, polarity and pluralism are each at least this confident (0..1)")
	since := o.fs.String("since", "", "start at records stored since TIME (RFC 3339, or a duration ago like 2h)")
	o.fs.BoolVar(&opt.All, "all", false, "start at the first record stored")
	o.fs.StringVar(&opt.Durable, "durable", "", "remember the position under NAME and resume there next time")
	format := o.fs.String("format", "auto", "json, table, or auto (a table on a terminal)")
	cfg, err := o.load(args, c.environ)
	if err != nil {
		return c.usageError(err)
	}
	if opt.MinConfidence < 0 || opt.MinConfidence > 1 {
		return c.usageError(fmt.Errorf("--min-confidence %g: want a probability from 0 to 1", opt.MinConfidence))
	}
	if *since != "" {
		if opt.Since, err = parseSince(*since, time.Now()); err != nil {
			return c.usageError(err)
		}
	}
	if flagSet(o.fs, "hub") && opt.Hub == "" {
		return c.usageError(errors.New("--hub is empty: give a hub's uuid or /citations/ URL, or leave --hub out for every hub"))
	}
	if opt.Hub != "" {
		if opt.Hub, err = hubID(opt.Hub); err != nil {
			return c.usageError(err)
		}
	}
	switch *format {
	case "auto", "json", "table":
	default:
		return c.usageError(fmt.Errorf("--format %q: want json, table or auto", *format))
	}
	if opt.Durable != "" {
		if err := pipeline.CheckName(opt.Durable); err != nil {
			return c.usageError(fmt.Errorf("--durable: %w", err))
		}
	}
	if err := checkLabels(cfg.Rules, opt); err != nil {
		return c.usageError(err)
	}
	sess, code := c.start(cfg, true)
	if sess == nil {
		return code
	}
	defer sess.close()
	table := *format == "table" || (*format == "auto" && showProgress("auto", c.stdout))
	print := jsonPrinter(c.stdout)
	if table {
		print = tablePrinter(c.stdout)
	}
	if err := pipeline.Tail(sess.ctx, sess.bus, opt, print); err != nil {
		sess.log.Error().Err(err).Msg("tail")
		return exitFailed
	}
	return exitOK
}

// checkLabels refuses a --role, --polarity or --pluralism that the rules
// (the labels of their files) never give, which would match nothing.
func checkLabels(rulesDir string, opt pipeline.TailOptions) error {
	if opt.Role == "" && opt.Polarity == "" && opt.Pluralism == "" {
		return nil
	}
	rules, err := classify.LoadRules(rulesDir)
	if err != nil {
		return err
	}
	for _, f := range []struct {
		flag, value string
		labels      []string
	}{
		{"--role", opt.Role, rules.Role.Labels},
		{"--polarity", opt.Polarity, rules.Polarity.Labels},
		{"--pluralism", opt.Pluralism, append(slices.Clone(rules.Pluralism.Labels), record.PluralismNone)},
	} {
		if f.value != "" && !slices.Contains(f.labels, f.value) {
			return fmt.Errorf("%s %q: want one of %s (the labels of the rules %s)", f.flag, f.value, strings.Join(f.labels, ", "), rules.Version)
		}
	}
	return nil
}

func parseSince(s string, now time.Time) (time.Time, error) {
	if d, err := time.ParseDuration(s); err == nil {
		return now.Add(-d), nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return t, fmt.Errorf("--since %q: want RFC 3339 time or a duration like 2h", s)
	}
	return t, nil
}

func jsonPrinter(w io.Writer) func(*record.Record) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return func(r *record.Record) error { return enc.Encode(r) }
}

// tablePrinter prints one compact line per record, for people.
func tablePrinter(w io.Writer) func(*record.Record) error {
	fmt.Fprintf(w, "%-8s  %-4s  %-10s  %-11s  %-18s  %s\n", "hub", "year", "role", "polarity", "pluralism", "title")
	return func(r *record.Record) error {
		year, plural := "", ""
		if len(r.Paper.Published) >= 4 {
			year = r.Paper.Published[:4]
		}
		if r.Pluralism != nil {
			plural = r.Pluralism.Primary
		}
		role := r.Role
		if r.Gone {
			role = "(gone)"
		}
		hub := r.Hub.ID
		if len(hub) > 8 {
			hub = hub[:8]
		}
		title := r.Paper.Title
		if len([]rune(title)) > 70 {
			title = string([]rune(title)[:69]) + "…"
		}
		_, err := fmt.Fprintf(w, "%-8s  %-4s  %-10s  %-11s  %-18s  %s\n", hub, year, role, r.Polarity, plural, title)
		return err
	}
}
