// Command citecrawl crawls citation hubs, tags every citing paper with a
// citation role, a polarity and a pluralism category, and writes JSON
// lines. This file only wires the packages together.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"github.com/citecrawl/citecrawl/ingest"
	"github.com/citecrawl/citecrawl/ingest/snapshot"
	"github.com/citecrawl/citecrawl/pipeline"
)

// Exit codes.
const (
	exitOK          = 0
	exitFailed      = 1 // the run failed or left dead letters
	exitUsage       = 2 // bad flags, config or input
	exitInterrupted = 130
)

const usage = `citecrawl: how science cites a piece of work.

Usage:
  citecrawl run      [flags]   crawl the configured hubs through every stage, then exit
                    [--schedule SPEC]   ... or keep crawling on a schedule (cron or @every 6h)
  citecrawl worker   --stage fetch|classify|sink [flags]   run stages until stopped
  citecrawl contexts --html FILE_OR_URL --cited ARXIV_ID|DOI|TITLE [--list-refs] [--fallback]
                                print the sentences of a full text that cite a work
  citecrawl classify [--in FILE] [--out FILE]   tag JSON lines (contexts, papers or records)
  citecrawl eval --task role|intent|polarity|pluralism --gold FILE [--format FMT] [--json]
                                measure the classifier against labelled data
  citecrawl tail [--hub H] [--role R] [--polarity P] [--pluralism C] [--since TIME | --all] [--durable NAME]
                                print tagged records as they arrive
  citecrawl reprocess [--from stream|DIR] [--out DIR] [--rules DIR]
                                re-tag everything crawled with the current rules, no network
  citecrawl dead list [--stage S] [--reason R] [--format table|json]
                                show the dead letters: messages that failed for good, and why
  citecrawl dead replay [--stage S] [--reason R]
                                queue them again where they failed (once the cause is mended)
  citecrawl report --hub H [--format md|html|json] [--out DIR]
                                the distribution of tags of a hub, with charts
  citecrawl snapshot [--listen ADDR]   serve the offline snapshot site
  citecrawl broker   --data DIR   serve a data folder's embedded NATS server until stopped
                                (commands given the same --data join it)
  citecrawl healthcheck URL     GET URL (e.g. /readyz of --metrics-listen): exit 0 on 200, else 1
  citecrawl options             list every configuration option
  citecrawl version

Run 'citecrawl COMMAND -h' for a command's flags. Configuration comes from
--config FILE, then CITECRAWL_* environment variables, then flags.
`

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	os.Exit(cli{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr, environ: os.Environ()}.main(os.Args[1:]))
}

// cli is the command line with its streams, so tests can run it in-process.
type cli struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	environ        []string
}

func (c cli) main(args []string) int {
	if _, ok := c.stderr.(*os.File); !ok {
		// A broker child's lines are copied into it from another goroutine
		// (brokerProcess); a file takes writes from both sides itself.
		c.stderr = zerolog.SyncWriter(c.stderr)
	}
	if len(args) == 0 {
		fmt.Fprint(c.stderr, usage)
		return exitUsage
	}
	switch args[0] {
	case "run":
		return c.run(args[1:])
	case "worker":
		return c.worker(args[1:])
	case "snapshot":
		return c.snapshot(args[1:])
	case "contexts":
		return c.contexts(args[1:])
	case "classify":
		return c.classifyCmd(args[1:])
	case "tail":
		return c.tail(args[1:])
	case "reprocess":
		return c.reprocess(args[1:])
	case "dead":
		return c.dead(args[1:])
	case "report":
		return c.report(args[1:])
	case "eval":
		return c.eval(args[1:])
	case "healthcheck":
		return c.healthcheck(args[1:])
	case "broker":
		return c.broker(args[1:])
	case "options":
		for _, o := range optionNames() {
			fmt.Fprintf(c.stdout, "%-36s CITECRAWL_%s\n", o, strings.ToUpper(strings.ReplaceAll(o, ".", "_")))
		}
		return exitOK
	case "version", "--version":
		fmt.Fprintln(c.stdout, "citecrawl", version)
		return exitOK
	case "help", "-h", "--help":
		fmt.Fprint(c.stdout, usage)
		return exitOK
	default:
		fmt.Fprintf(c.stderr, "citecrawl: unknown command %q\n\n%s", args[0], usage)
		return exitUsage
	}
}

// options are the flags shared by run and worker; each sets a config
// option, applied after the file and the environment.
type options struct {
	fs      *flag.FlagSet
	config  string
	sets    []kv
	offline bool
}

// optionFlag records a flag's value against a config path.
type optionFlag struct {
	o      *options
	path   string
	append bool // repeatable: values accumulate into a list
}

func (f optionFlag) String() string { return "" }
func (f optionFlag) Set(v string) error {
	if f.append && strings.TrimSpace(v) == "" {
		return errors.New("empty value") // the flag package names the flag
	}
	if f.append {
		for i := range f.o.sets {
			if f.o.sets[i].path == f.path {
				f.o.sets[i].value += "," + v
				return nil
			}
		}
	}
	f.o.sets = append(f.o.sets, kv{f.path, v})
	return nil
}

type setFlag struct{ o *options }

func (f setFlag) String() string { return "" }
func (f setFlag) Set(v string) error {
	path, value, ok := strings.Cut(v, "=")
	if !ok {
		return fmt.Errorf("--set %q: want option=value", v)
	}
	f.o.sets = append(f.o.sets, kv{path, value})
	return nil
}

// flagGroups are the option flags a command takes besides --config, --set
// and the log flags. A command registers only those it uses, so a flag it
// would ignore is refused (exit 2) with its name.
type flagGroups uint8

const (
	brokerFlags flagGroups = 1 << iota // --nats, --nats-*, --data
	outFlag                            // --out
	rulesFlag                          // --rules
	crawlFlags                         // --hub, --offline
	metricsFlag                        // --metrics-listen
	serveFlags                         // what the embedded server itself takes: --data, --nats-listen and its credentials
)

// newOptions registers the config, --set and logging flags, and the groups
// of option flags the command uses.
func newOptions(name string, stderr io.Writer, groups flagGroups) *options {
	o := &options{fs: flag.NewFlagSet(name, flag.ContinueOnError)}
	o.fs.SetOutput(stderr)
	o.fs.StringVar(&o.config, "config", "", "configuration file (YAML; see configs/citecrawl.yaml)")
	for _, f := range []struct {
		group            flagGroups
		name, path, help string
	}{
		{brokerFlags, "nats", "nats.url", "URL of an external NATS server or cluster (default: embedded server)"},
		{brokerFlags | serveFlags, "nats-user", "nats.user", "NATS user name"},
		{brokerFlags | serveFlags, "nats-password", "nats.password", "NATS password"},
		{brokerFlags | serveFlags, "nats-token", "nats.token", "NATS token"},
		{brokerFlags, "nats-creds", "nats.creds", "NATS credentials file"},
		{brokerFlags, "nats-tls-ca", "nats.tls_ca", "PEM file of the authorities that sign the NATS server's certificate"},
		{brokerFlags, "nats-tls-cert", "nats.tls_cert", "client certificate (PEM) for a NATS server that verifies clients"},
		{brokerFlags, "nats-tls-key", "nats.tls_key", "the client certificate's key (PEM)"},
		{brokerFlags | serveFlags, "nats-listen", "nats.listen", "let other processes reach the embedded server on host:port"},
		{brokerFlags | serveFlags, "data", "nats.data_dir", "data directory of the embedded server"},
		{outFlag, "out", "sink.out", "output directory, or - for JSON lines on standard output"},
		{rulesFlag, "rules", "rules", "rules directory (default: the rules built in, a copy of configs/rules)"},
		{metricsFlag, "metrics-listen", "metrics.listen", "serve Prometheus /metrics, /healthz and /readyz on host:port"},
		{0, "log-format", "log.format", "json or console"},
		{0, "log-level", "log.level", "debug, info, warn or error"},
	} {
		if f.group == 0 || groups&f.group != 0 {
			o.fs.Var(optionFlag{o: o, path: f.path}, f.name, f.help)
		}
	}
	o.fs.Var(setFlag{o}, "set", "set any option: --set fetch.delay=2s (repeatable; see 'citecrawl options')")
	if groups&crawlFlags != 0 {
		o.fs.Var(optionFlag{o: o, path: "hubs", append: true}, "hub", "citation hub URL to crawl (repeatable; replaces the configured hubs)")
		o.fs.BoolVar(&o.offline, "offline", false, "crawl the bundled snapshot site served on loopback instead of the web")
	}
	return o
}

// load parses args and builds the configuration.
func (o *options) load(args []string, environ []string) (Config, error) {
	if err := parseFlags(o.fs, args); err != nil {
		return Config{}, err
	}
	path := o.config
	if path == "" {
		path = envValue(environ, "CITECRAWL_CONFIG")
	}
	cfg, err := loadConfig(path, environ)
	if err != nil {
		return cfg, err
	}
	if err := applyOptions(&cfg, o.sets); err != nil {
		return cfg, err
	}
	if o.offline {
		if flagSet(o.fs, "hub") {
			return cfg, errors.New("--hub and --offline: offline mode crawls the snapshot's hubs")
		}
		cfg.Offline = true
	}
	// The sink acks a record when its segment is sealed, so segments must
	// seal within the ack wait: a segment age left at its default follows
	// a shorter ack wait rather than refusing it.
	if def := defaultConfig().Sink.SegmentMaxAge; cfg.Sink.SegmentMaxAge == def && cfg.Stages.AckWait <= def {
		cfg.Sink.SegmentMaxAge = cfg.Stages.AckWait / 2
	}
	return cfg, cfg.Validate()
}

func envValue(environ []string, key string) string {
	for _, kv := range environ {
		if v, ok := strings.CutPrefix(kv, key+"="); ok {
			return v
		}
	}
	return ""
}

func (c cli) logger(cfg pipeline.LogConfig) (zerolog.Logger, error) {
	level, err := zerolog.ParseLevel(cfg.Level)
	if err != nil {
		return zerolog.Nop(), fmt.Errorf("log.level %q: want debug, info, warn or error", cfg.Level)
	}
	// Stages log from many goroutines: serialise the writes, whatever the
	// writer (a file, a pipe, a test's buffer).
	var w io.Writer = zerolog.SyncWriter(c.stderr)
	switch cfg.Format {
	case "json", "":
	case "console":
		// Colour codes are for people at a terminal, not for files and pipes.
		w = zerolog.ConsoleWriter{Out: w, TimeFormat: time.TimeOnly, NoColor: !isTerminal(c.stderr)}
	default:
		return zerolog.Nop(), fmt.Errorf("log.format %q: want json or console", cfg.Format)
	}
	return zerolog.New(w).Level(level).With().Timestamp().Logger(), nil
}

// session is what a long-running command works in: its logger, a context
// that SIGINT or SIGTERM ends, and (when asked for) the broker.
type session struct {
	log  zerolog.Logger
	ctx  context.Context
	bus  *pipeline.Bus
	stop context.CancelFunc
	// broker is the child serving the data folder (nats.embedded_process).
	broker *brokerProcess
	// waitForRuns keeps a data folder's server up, when this process
	// serves it, until the runs that joined it are done.
	waitForRuns bool
}

// start opens a session; on failure it has said why and returns the exit
// code.
func (c cli) start(cfg Config, withBus bool, opts ...pipeline.OpenOption) (*session, int) {
	log, err := c.logger(cfg.Log)
	if err != nil {
		return nil, c.usageError(err)
	}
	ctx, stop := signalContext()
	s := &session{log: log, ctx: ctx, stop: stop}
	if withBus && cfg.NATS.URL == "" && cfg.NATS.EmbeddedProcess == pipeline.EmbeddedAlways {
		if s.broker, err = c.startBroker(ctx, cfg, log); err != nil {
			stop()
			log.Error().Err(err).Msg("broker")
			return nil, exitFailed
		}
	}
	if withBus {
		if s.bus, err = pipeline.Open(ctx, cfg.NATS, cfg.Stages.MaxPending, log, opts...); err != nil {
			s.stopBroker()
			stop()
			if errors.Is(err, pipeline.ErrBadConfig) {
				return nil, c.usageError(err) // an option the server cannot honour
			}
			log.Error().Err(err).Msg("broker")
			return nil, exitFailed
		}
	}
	return s, exitOK
}

func (s *session) close() {
	switch {
	case s.bus != nil && s.waitForRuns:
		s.bus.CloseWhenAlone(s.ctx)
	case s.bus != nil:
		s.bus.Close()
	}
	s.stopBroker()
	s.stop()
}

// stopBroker stops the broker child: once the runs that joined it are done
// when this is a run that ended of itself, else at once.
func (s *session) stopBroker() {
	if s.broker != nil {
		s.broker.stop(!s.waitForRuns || s.ctx.Err() != nil)
		s.broker = nil
	}
}

// signalContext is cancelled by SIGINT or SIGTERM: stages finish what they
// hold or hand it back unacked, and nothing half-written becomes visible.
func signalContext() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}

func (c cli) run(args []string) int {
	o := newOptions("run", c.stderr, brokerFlags|outFlag|rulesFlag|crawlFlags|metricsFlag)
	progress := o.fs.String("progress", "auto", "live progress line on standard error: auto (on a terminal), on or off")
	schedule := o.fs.String("schedule", "", "keep running and crawl on a schedule: a cron expression (\"0 */6 * * *\", \"0 3 * * MON\") or \"@every 6h\"")
	cfg, err := o.load(args, c.environ)
	if err != nil {
		return c.usageError(err)
	}
	var sched pipeline.Schedule
	if *schedule != "" {
		if sched, err = pipeline.ParseSchedule(*schedule); err != nil {
			return c.usageError(fmt.Errorf("--schedule: %w", err))
		}
	}
	switch *progress {
	case "auto", "on", "off":
	default:
		return c.usageError(fmt.Errorf("--progress %q: want auto, on or off", *progress))
	}
	if len(cfg.Hubs) == 0 && !cfg.Offline {
		return c.usageError(errors.New("hubs: no hub to crawl: give --hub URL or set hubs"))
	}
	sess, code := c.start(cfg, true, pipeline.WithClientName(pipeline.RunClientName))
	if sess == nil {
		return code
	}
	sess.waitForRuns = true
	defer sess.close()
	log, ctx, bus := sess.log, sess.ctx, sess.bus

	if cfg.Offline {
		base, closeSite, err := serveSnapshot(log)
		if err != nil {
			log.Error().Err(err).Msg("offline snapshot")
			return exitFailed
		}
		defer closeSite()
		if err := applyOptions(&cfg, offlineOptions(base)); err != nil {
			log.Error().Err(err).Msg("offline options")
			return exitFailed
		}
	}

	if u := bus.ClientURL(); u != "" {
		log.Info().Str("url", u).Msg("workers can join with --nats " + u)
	}
	// A one-shot run runs every stage; a scheduler, between its runs, none.
	stages := pipeline.AllStages
	if sched != nil {
		stages = nil
	}
	stopMetrics, err := serveMetrics(sess, cfg, stages, true)
	if err != nil {
		log.Error().Err(err).Msg("metrics")
		return exitFailed
	}
	defer stopMetrics()

	env := pipeline.Env{Log: log, Stats: &pipeline.Stats{}, Stdout: c.stdout}
	if sched != nil {
		return c.scheduled(ctx, bus, cfg, env, sched)
	}
	stopProgress := func() {}
	if showProgress(*progress, c.stderr) {
		stopProgress = startProgress(c.stderr, env.Stats)
	}
	res, err := pipeline.Run(ctx, bus, cfg.Config, env)
	stopProgress()
	if ctx.Err() != nil {
		log.Warn().Msg("interrupted: work in flight was finished or handed back; run again to resume")
		return exitInterrupted
	}
	if errors.Is(err, pipeline.ErrHubsUnreachable) {
		printSummary(c.stderr, res)
		fmt.Fprintf(c.stderr, "citecrawl: %v\nWithout network? 'citecrawl run --offline' crawls the bundled snapshot site.\n", err)
		return exitFailed
	}
	if err != nil {
		log.Error().Err(err).Msg("run failed")
		return exitFailed
	}
	printSummary(c.stderr, res)
	printNothingNew(ctx, c.stderr, bus, cfg.Hubs, res)
	if res.Errors > 0 {
		return exitFailed
	}
	return exitOK
}

// printNothingNew says why a run that failed nowhere wrote nothing: every
// record the hubs list was written before.
func printNothingNew(ctx context.Context, w io.Writer, bus *pipeline.Bus, hubs []string, res *pipeline.Result) {
	if res.Written > 0 || len(res.DeadLetters) > 0 {
		return
	}
	if n := max(int64(pipeline.KnownRecords(ctx, bus, hubs)), res.Duplicates); n > 0 {
		fmt.Fprintf(w, "nothing new: %d records already written\n", n)
	}
}

// printSummary writes what a run did on one line, then its dead letters.
func printSummary(w io.Writer, res *pipeline.Result) {
	fmt.Fprintf(w, "run %s: %d records written, %d already written, %d dead letters, %s (pages %d, not modified %d, new %d, changed %d, gone %d)\n",
		res.RunID, res.Written, res.Duplicates, res.Errors, res.Duration, res.Pages, res.NotModified, res.New, res.Changed, res.Gone)
	for _, d := range res.DeadLetters {
		fmt.Fprintf(w, "  dead letter from %s (%s, %s deliveries): %s\n", d.Stage, d.Subject, d.Deliveries, d.Error)
	}
	if res.NotListed > 0 {
		fmt.Fprintf(w, "  ... and %d more dead letters: see them all with 'citecrawl dead list'\n", res.NotListed)
	}
	if res.Errors > 0 {
		fmt.Fprintln(w, "  redrive them, once their cause is mended, with 'citecrawl dead replay'")
	}
}

// scheduled crawls on a schedule under the cluster-wide crawl lease until
// interrupted.
func (c cli) scheduled(ctx context.Context, bus *pipeline.Bus, cfg Config, env pipeline.Env, sched pipeline.Schedule) int {
	host, _ := os.Hostname()
	holder := fmt.Sprintf("%s:%d", host, os.Getpid())
	lease, err := pipeline.NewLease(ctx, bus, "crawl", holder, cfg.LeaseTTL, nil)
	if err != nil {
		env.Log.Error().Err(err).Msg("lease")
		return exitFailed
	}
	err = pipeline.Scheduled(ctx, bus, cfg.Config, env, sched, lease, func(res *pipeline.Result, err error) {
		if err != nil {
			env.Log.Error().Err(err).Msg("scheduled run failed")
			return
		}
		printSummary(c.stderr, res)
		printNothingNew(ctx, c.stderr, bus, cfg.Hubs, res)
	})
	if ctx.Err() != nil {
		env.Log.Warn().Msg("interrupted: the scheduler stopped")
		return exitInterrupted
	}
	if err != nil {
		env.Log.Error().Err(err).Msg("scheduler")
		return exitFailed
	}
	return exitOK
}

func (c cli) worker(args []string) int {
	o := newOptions("worker", c.stderr, brokerFlags|outFlag|rulesFlag|metricsFlag)
	stages := o.fs.String("stage", "", "stages to run: fetch, classify, sink, or several separated by commas")
	cfg, err := o.load(args, c.environ)
	if err != nil {
		return c.usageError(err)
	}
	if *stages == "" {
		return c.usageError(errors.New("--stage is required (fetch, classify or sink)"))
	}
	for _, s := range splitList(*stages) {
		if !slices.Contains(pipeline.AllStages, s) {
			return c.usageError(fmt.Errorf("--stage %q: want fetch, classify or sink, or several separated by commas", s))
		}
	}
	sess, code := c.start(cfg, true)
	if sess == nil {
		return code
	}
	defer sess.close()
	log, ctx := sess.log, sess.ctx
	stopMetrics, err := serveMetrics(sess, cfg, splitList(*stages), slices.Contains(splitList(*stages), pipeline.StageSink))
	if err != nil {
		log.Error().Err(err).Msg("metrics")
		return exitFailed
	}
	defer stopMetrics()
	w, err := pipeline.StartStages(ctx, sess.bus, cfg.Config, splitList(*stages), pipeline.Env{Log: log, Stdout: c.stdout})
	if err != nil {
		log.Error().Err(err).Msg("starting stages")
		return exitUsage
	}
	log.Info().Str("stages", *stages).Msg("worker running; stop with Ctrl-C or SIGTERM")
	select {
	case <-ctx.Done():
	case <-w.Failed():
	case <-sess.bus.Closed():
		_ = w.Stop()
		log.Error().Msg("the connection to NATS is closed (the process whose server this worker joined has stopped)")
		return exitFailed
	}
	if err := w.Stop(); err != nil {
		log.Error().Err(err).Msg("worker failed")
		return exitFailed
	}
	return exitOK
}

func (c cli) snapshot(args []string) int {
	fs := flag.NewFlagSet("snapshot", flag.ContinueOnError)
	fs.SetOutput(c.stderr)
	listen := fs.String("listen", "127.0.0.1:8080", "address to serve the snapshot site on")
	papers := fs.Int("papers", 0, "serve a generated hub of N citing papers instead (for load and fault tests)")
	validators := fs.Bool("validators", true, "send ETags and answer conditional requests with 304 (false: every request is answered in full)")
	logReqs := fs.Bool("log-requests", false, "write one line per request to standard error")
	if err := parseFlags(fs, args); err != nil {
		return c.usageError(err)
	}
	if *papers < 0 {
		return c.usageError(fmt.Errorf("--papers %d: want 0 (the shipped snapshot) or more", *papers))
	}
	if _, _, err := net.SplitHostPort(*listen); err != nil {
		return c.usageError(fmt.Errorf("--listen %q: want host:port: %w", *listen, err))
	}
	site := snapshot.Default()
	if *papers > 0 {
		site = snapshot.New(snapshot.StyleCards, snapshot.Generated(*papers))
	}
	ctx, stop := signalContext()
	defer stop()
	// Listen first, so that a taken port is said plainly, before "serving on".
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return c.usageError(fmt.Errorf("--listen %q: %w", *listen, err))
	}
	var handler http.Handler = site
	if !*validators {
		handler = snapshot.WithoutValidators(handler)
	}
	if *logReqs {
		handler = logRequests(handler, zerolog.SyncWriter(c.stderr))
	}
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	addr := ln.Addr().String() // the port chosen, for :0
	fmt.Fprintf(c.stderr, "serving the offline snapshot on http://%s/ (hubs: %s)\n", addr, strings.Join(site.HubURLs("http://"+addr), " "))
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		fmt.Fprintf(c.stderr, "citecrawl snapshot: %v\n", err)
		return exitFailed
	}
	return exitOK
}

// serveSnapshot serves the offline site on a free loopback port.
func serveSnapshot(log zerolog.Logger) (base string, closeFn func(), err error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, fmt.Errorf("listening on loopback: %w", err)
	}
	srv := &http.Server{Handler: snapshot.Default(), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	base = "http://" + ln.Addr().String()
	log.Info().Str("url", base).Msg("offline snapshot site served")
	return base, func() { _ = srv.Close() }, nil
}

// parseFlags parses a command's own flags, refusing arguments it would
// ignore.
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%s: %w", fs.Name(), err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%s: unexpected arguments: %s", fs.Name(), strings.Join(fs.Args(), " "))
	}
	return nil
}

// hubID reads a --hub value: a hub's uuid or its /citations/ URL.
func hubID(s string) (string, error) {
	u := s
	if !strings.Contains(u, "/") {
		u = "/citations/" + u
	}
	id, err := ingest.HubID(u)
	if err != nil || (u != s && id != strings.ToLower(s)) {
		return "", fmt.Errorf("--hub %q: want a hub's uuid or its /citations/ URL", s)
	}
	return id, nil
}

// flagSet tells whether the flag name was given on the command line.
func flagSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

func (c cli) usageError(err error) int {
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	fmt.Fprintf(c.stderr, "citecrawl: %v\n", err)
	return exitUsage
}
