package main

import (
	"strings"
	"testing"
)

func TestSpreadGivesLowestMedianHighest(t *testing.T) {
	rate := func(f figures) float64 { return float64(f.records) / f.wall }
	for _, c := range []struct {
		walls []float64
		want  [3]float64
	}{
		{[]float64{2}, [3]float64{50, 50, 50}},
		{[]float64{1, 4, 2}, [3]float64{25, 50, 100}},      // odd: the middle one, whatever the order
		{[]float64{4, 1, 2, 5}, [3]float64{20, 37.5, 100}}, // even: the mean of the middle two (25 and 50)
	} {
		runs := make([]figures, len(c.walls))
		for i, w := range c.walls {
			runs[i] = figures{records: 100, wall: w}
		}
		if got := spread(runs, rate); got != c.want {
			t.Errorf("spread of walls %v = %v, want %v", c.walls, got, c.want)
		}
	}
}

func TestBrokerFiguresAreTheStoppedLines(t *testing.T) {
	const (
		started = `{"level":"info","process":"broker","data_dir":"/d","listen":"","time":"2026-12-02T04:40:00Z","message":"embedded NATS server with JetStream started"}` + "\n"
		stopped = `{"level":"info","peak_rss_bytes":335544320,"cpu_s":10.25,"time":"2026-12-02T04:40:20Z","message":"embedded broker process stopped"}` + "\n"
		// A child that ended badly: logged at warn, with its error.
		failed = `{"level":"warn","error":"signal: killed","peak_rss_bytes":104857600,"cpu_s":1.5,"time":"2026-12-02T04:41:00Z","message":"embedded broker process stopped"}` + "\n"
		// The message quoted in another line is not the line.
		quoted = `{"level":"error","error":"x","peak_rss_bytes":1073741824,"cpu_s":100,"message":"after embedded broker process stopped"}` + "\n"
	)
	for _, c := range []struct {
		name, stderr string
		want         broker
	}{
		{"none (an in-process server, or an external one)", `{"level":"warn","message":"slow"}` + "\n", broker{}},
		{"empty", "", broker{}},
		{"one child", started + stopped, broker{served: true, peakMiB: 320, cpu: 10.25}},
		{"one child, last line unended", started + stopped[:len(stopped)-1], broker{served: true, peakMiB: 320, cpu: 10.25}},
		{"two children: CPU adds up, the larger peak", stopped + quoted + failed, broker{served: true, peakMiB: 320, cpu: 11.75}},
		{"not JSON", "embedded broker process stopped peak_rss_bytes=1 cpu_s=1\n", broker{}},
		{"no figures", `{"level":"info","message":"embedded broker process stopped"}` + "\n", broker{}},
	} {
		if got := brokerFigures(c.stderr); got != c.want {
			t.Errorf("%s: brokerFigures = %+v, want %+v", c.name, got, c.want)
		}
	}
}

func TestErrorOutputKeepsWhatLogLevelWarnShows(t *testing.T) {
	in := `{"level":"info","message":"embedded NATS server with JetStream started"}` + "\n" +
		`{"level":"error","error":"disk full","message":"reprocess"}` + "\n" +
		`{"level":"debug","message":"embedded broker process started"}` + "\n" +
		"citecrawl: a line that is not a log line\n" +
		`{"level":"info","peak_rss_bytes":1,"cpu_s":1,"message":"embedded broker process stopped"}` + "\n" +
		`{"level":"warn","message":"unended"}`
	want := `{"level":"error","error":"disk full","message":"reprocess"}` + "\n" +
		"citecrawl: a line that is not a log line\n" +
		`{"level":"warn","message":"unended"}`
	if got := errorOutput(in); got != want {
		t.Errorf("errorOutput =\n%s\nwant\n%s", got, want)
	}
}

func TestFormatRowMatchesTheHeader(t *testing.T) {
	in := formatRow(1000000, row{"stream -> over (before)", figures{records: 1000000, wall: 20, cpu: 40, rssMiB: 88, anonMiB: 60, fileMiB: 20}})
	served := formatRow(1000000, row{"stream -> new", figures{records: 1000000, wall: 20, cpu: 40, rssMiB: 88, anonMiB: 60, fileMiB: 20,
		broker: broker{served: true, peakMiB: 320, cpu: 10.25}}})
	for _, line := range []string{in, served} {
		if len(line) != len(rowHeader) {
			t.Errorf("a row of %d characters under a header of %d:\n%s\n%s", len(line), len(rowHeader), rowHeader, line)
		}
	}
	if !strings.HasSuffix(in, " -") || strings.Count(in, " - ") != 1 {
		t.Errorf("a run without a broker child shows broker figures: %s", in)
	}
	for _, s := range []string{" 10.2 ", " 320 MiB", " 88 MiB", " 40.0 "} {
		if !strings.Contains(served, s) {
			t.Errorf("a run with a broker child lacks %q: %s", s, served)
		}
	}
}
