package main

import (
	"errors"
	"flag"
	"fmt"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/citecrawl/citecrawl/metrics"
	"github.com/citecrawl/citecrawl/pipeline"
)

// serveMetrics serves Prometheus metrics and the health checks of the
// stages this process runs, when metrics.listen is set. The registry is
// this process's own, never the global default.
func serveMetrics(s *session, cfg Config, stages []string, writesOutput bool) (stop func(), err error) {
	if cfg.Metrics.Listen == "" {
		return func() {}, nil
	}
	reg := prometheus.NewRegistry()
	s.bus.Instrument(metrics.New(reg), cfg.Config)
	srv, err := metrics.Serve(cfg.Metrics.Listen, reg, pipeline.Ready(s.bus, cfg.Config, stages, writesOutput))
	if err != nil {
		return nil, err
	}
	s.log.Info().Str("addr", srv.Addr()).Msg("serving /metrics, /healthz and /readyz")
	return func() { _ = srv.Close() }, nil
}

// healthcheck GETs a URL and exits 0 on 200, 1 otherwise: a health check
// for container images that have no curl.
func (c cli) healthcheck(args []string) int {
	fs := flag.NewFlagSet("healthcheck", flag.ContinueOnError)
	fs.SetOutput(c.stderr)
	timeout := fs.Duration("timeout", 5*time.Second, "how long to wait for the answer")
	if err := fs.Parse(args); err != nil {
		return c.usageError(fmt.Errorf("healthcheck: %w", err))
	}
	if fs.NArg() != 1 {
		return c.usageError(errors.New("healthcheck: want one URL, e.g. http://127.0.0.1:9090/readyz"))
	}
	if *timeout <= 0 {
		return c.usageError(fmt.Errorf("healthcheck: --timeout must be more than 0, not %s", *timeout))
	}
	client := &http.Client{Timeout: *timeout}
	resp, err := client.Get(fs.Arg(0))
	if err != nil {
		fmt.Fprintf(c.stderr, "citecrawl healthcheck: %v\n", err)
		return exitFailed
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		fmt.Fprintf(c.stderr, "citecrawl healthcheck: %s: %s\n", fs.Arg(0), resp.Status)
		return exitFailed
	}
	return exitOK
}
