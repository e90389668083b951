package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"runtime/debug"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"github.com/citecrawl/citecrawl/pipeline"
)

// The embedded server in a process of its own.
//
// A command with no nats.url serves its data folder, unless another
// process does already. Where nats.embedded_process says so (always; auto:
// for reprocess) it does so through a child, `citecrawl broker --child`:
// the child takes the folder's lock and runs the server; the command joins
// it as any other process of the folder would (pipeline.Open). Why: what
// the server reads and caches, and its work, are then not in the heap and
// on the scheduler of a command that reads the whole store (see
// pipeline.EmbeddedAuto for what it saves and costs).
//
// The command talks to the child over its standard input and output:
//   - it writes one line, the brokerRequest, as JSON;
//   - the child answers one line, the brokerReady, once the server is
//     ready (or another process's server is found to serve the folder);
//   - to stop it, the command closes the pipe, after a line "runs" when
//     the child is first to wait for the runs that joined its server (a run
//     that ended of itself; see pipeline.Bus.CloseWhenAlone). The end of the
//     input alone stops the child at once: that is also what a command
//     killed with SIGKILL leaves, so its child stops and frees the folder
//     rather than serve on for newcomers it would soon cut off.
//
// The child is in a process group of its own, so that the Ctrl-C of a
// terminal reaches the command only: the command drains its connection
// before its server goes. A SIGTERM sent to both (a service manager
// stopping the group) stops the child once the command has closed the
// pipe, or brokerTermGrace later; a SIGTERM while it waits for runs stops
// it at once. The command sends one as soon as it is interrupted.

// brokerRequest is what a command asks of its broker child.
type brokerRequest struct {
	NATS pipeline.BrokerConfig `json:"nats"`
	Log  pipeline.LogConfig    `json:"log"`
}

// brokerReady is the child's answer.
type brokerReady struct {
	URL string `json:"url,omitempty"`
	PID int    `json:"pid"`
	// Served: another process served the folder already; the child has
	// ended, and the command joins that process's server.
	Served bool   `json:"served,omitempty"`
	Error  string `json:"error,omitempty"`
}

// brokerWaitForRuns is the line that asks a child to wait for the runs
// that joined its server before it stops.
const brokerWaitForRuns = "runs"

// brokerTermGrace bounds how long a child told to stop by SIGTERM waits
// for its command to close the pipe: time for the command's stages to
// finish what they hold and its connection to drain.
const brokerTermGrace = 2 * time.Minute

// brokerStart bounds how long a command waits for its child's server: on
// a large store it reads every stream's index first.
const brokerStart = 5 * time.Minute

// brokerStop bounds how long a command waits for its child to end, beyond
// the runs the child may wait for.
const brokerStop = 2*time.Minute + 30*time.Second

// broker is `citecrawl broker`: serve a data folder's embedded server
// until SIGINT or SIGTERM, for the commands and workers that use the
// folder (they join it), or, with --child, for the command that started it.
func (c cli) broker(args []string) int {
	if len(args) > 0 && args[0] == "--child" {
		return c.brokerChild()
	}
	o := newOptions("broker", c.stderr, serveFlags)
	cfg, err := o.load(args, c.environ)
	if err != nil {
		return c.usageError(err)
	}
	if cfg.NATS.URL != "" {
		return c.usageError(fmt.Errorf("broker serves the embedded server of --data; nats.url (%s) names another server", cfg.NATS.URL))
	}
	log, err := c.logger(cfg.Log)
	if err != nil {
		return c.usageError(err)
	}
	ctx, stop := signalContext()
	defer stop()
	srv, err := pipeline.Serve(cfg.NATS, log)
	if err != nil {
		log.Error().Err(err).Msg("broker")
		return exitFailed
	}
	log.Info().Str("url", srv.URL()).Msg("serving until SIGINT or SIGTERM; commands given the same --data join this server")
	<-ctx.Done()
	srv.Close()
	return exitOK
}

// brokerChild is `citecrawl broker --child`, started by brokerProcess.
func (c cli) brokerChild() int {
	in := bufio.NewReader(c.stdin)
	reply := json.NewEncoder(c.stdout)
	var req brokerRequest
	line, err := in.ReadBytes('\n')
	if err == nil {
		err = json.Unmarshal(line, &req)
	}
	if err != nil {
		fmt.Fprintf(c.stderr, "citecrawl broker --child: reading the request on standard input: %v\n", err)
		return exitUsage
	}
	// Before anything else, so that a SIGTERM during a long start is held
	// for the command's word too.
	term := make(chan os.Signal, 1)
	signal.Notify(term, syscall.SIGTERM)
	signal.Ignore(os.Interrupt) // the command's to act on
	ignoreTerminalStops()
	var waitForRuns atomic.Bool
	ended := make(chan struct{})
	go func() {
		defer close(ended)
		for {
			line, err := in.ReadString('\n')
			if line == brokerWaitForRuns+"\n" {
				waitForRuns.Store(true)
			}
			if err != nil {
				return
			}
		}
	}()
	log, err := c.logger(req.Log)
	if err != nil {
		reply.Encode(brokerReady{PID: os.Getpid(), Error: err.Error()})
		return exitUsage
	}
	log = log.With().Str("process", "broker").Logger()
	if os.Getenv("GOGC") == "" {
		// In a store of versions before 2026-12-02 the server's live heap
		// is mostly its subject index (a subject a self-tagged record),
		// which stays; collecting at half of it rather than all of it
		// again costs no CPU that shows (a million such records
		// reprocessed: 10.4 CPU s at 100 and at 50) and 55 MB less peak
		// RSS (374 to 319).
		debug.SetGCPercent(50)
	}
	// A server of the folder still stopping (the child of a command that
	// has just ended) is waited out, not joined.
	srv, err := pipeline.ServeOrWait(req.NATS, log)
	if errors.Is(err, pipeline.ErrServed) {
		reply.Encode(brokerReady{PID: os.Getpid(), Served: true})
		return exitOK
	}
	if err != nil {
		reply.Encode(brokerReady{PID: os.Getpid(), Error: err.Error()})
		return exitFailed
	}
	defer srv.Close()
	if err := reply.Encode(brokerReady{URL: srv.URL(), PID: os.Getpid()}); err != nil {
		return exitFailed // the command is gone
	}
	// terminated is done once a SIGTERM came.
	terminated, stop := context.WithCancel(context.Background())
	defer stop()
	go func() {
		select {
		case <-term:
			stop()
		case <-terminated.Done():
		}
	}()
	select {
	case <-ended:
		if waitForRuns.Load() {
			srv.WaitForRuns(terminated, 0)
		}
	case <-terminated.Done():
		select {
		case <-ended:
		case <-time.After(brokerTermGrace):
		}
	}
	return exitOK
}

// brokerProcess is a command's broker child.
type brokerProcess struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	log   zerolog.Logger
	quiet bool // it served nothing: say nothing of its end
}

// startBroker starts the child that serves cfg.NATS.DataDir and waits
// until its server is ready. It returns nil, and no error, when another
// process serves the folder already.
func (c cli) startBroker(ctx context.Context, cfg Config, log zerolog.Logger) (*brokerProcess, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("embedded broker process: %w", err)
	}
	req, err := json.Marshal(brokerRequest{NATS: cfg.NATS, Log: cfg.Log})
	if err != nil {
		return nil, err
	}
	// Interrupted (ctx done), the command sends the child SIGTERM: stop
	// once the pipe is closed, and at once if it waits for joined runs;
	// brokerStop later, SIGKILL.
	cmd := exec.CommandContext(ctx, exe, "broker", "--child")
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = brokerStop
	cmd.Stderr = c.stderr
	if _, ok := c.stderr.(*os.File); !ok {
		cmd.Stderr = &lineWriter{w: c.stderr} // whole log lines, between the command's own
	}
	cmd.SysProcAttr = ownProcessGroup()
	// Its own garbage collector's pace: a limit set for the command (say
	// reprocess's) would have it collect back to back over its index.
	cmd.Env = slices.DeleteFunc(os.Environ(), func(e string) bool { return strings.HasPrefix(e, "GOMEMLIMIT=") })
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("embedded broker process %s: %w", exe, err)
	}
	b := &brokerProcess{cmd: cmd, stdin: stdin, log: log.With().Str("data_dir", cfg.NATS.DataDir).Logger()}
	answer := make(chan brokerReady, 1)
	go func() {
		var r brokerReady
		line, err := bufio.NewReader(stdout).ReadBytes('\n')
		if err == nil {
			err = json.Unmarshal(line, &r)
		}
		if err != nil {
			r.Error = fmt.Sprintf("no answer on its standard output (%v)", err)
		}
		answer <- r
		io.Copy(io.Discard, stdout) // until it ends: Wait closes the pipe
	}()
	if _, err := stdin.Write(append(req, '\n')); err != nil {
		b.stop(true)
		return nil, fmt.Errorf("embedded broker process: %w", err)
	}
	var r brokerReady
	select {
	case r = <-answer:
	case <-ctx.Done():
		b.stop(true)
		return nil, ctx.Err()
	case <-time.After(brokerStart):
		b.cmd.Process.Kill() // nothing served yet
		b.stop(true)
		return nil, fmt.Errorf("embedded broker process: its server was not ready after %s", brokerStart)
	}
	switch {
	case r.Error != "":
		b.stop(true)
		return nil, fmt.Errorf("embedded broker process for %s: %s", cfg.NATS.DataDir, r.Error)
	case r.Served:
		// It served nothing: another process's server is joined.
		b.quiet = true
		b.stop(true)
		return nil, nil
	}
	log.Debug().Int("pid", r.PID).Str("url", r.URL).Msg("embedded broker process started")
	return b, nil
}

// stop ends the child, at once or once the runs that joined its server
// are done (at once, too, once the command is interrupted: see
// startBroker), and waits for it.
func (b *brokerProcess) stop(now bool) {
	if !now {
		io.WriteString(b.stdin, brokerWaitForRuns+"\n")
	}
	b.stdin.Close()
	hung := time.AfterFunc(brokerStop, func() { b.cmd.Process.Kill() })
	err := b.cmd.Wait()
	hung.Stop()
	if errors.Is(err, context.Canceled) {
		err = nil // the command was interrupted, and the child stopped on it
	}
	if lw, ok := b.cmd.Stderr.(*lineWriter); ok && len(lw.pending) > 0 {
		lw.w.Write(append(lw.pending, '\n')) // its last words, unended
	}
	if b.quiet && err == nil {
		return
	}
	ev := b.log.Info()
	if err != nil {
		ev = b.log.Warn().Err(err)
	}
	if st := b.cmd.ProcessState; st != nil {
		if peak, ok := peakRSS(st); ok {
			// What rssbench reads: the child's own peak, which the
			// command's rusage (the larger of the two) would hide.
			ev = ev.Int64("peak_rss_bytes", peak)
		}
		ev = ev.Float64("cpu_s", (st.UserTime() + st.SystemTime()).Seconds())
	}
	ev.Msg("embedded broker process stopped")
}

// lineWriter passes on only whole lines, so that a child's log lines are
// not cut by the command's.
type lineWriter struct {
	w       io.Writer
	pending []byte
}

func (l *lineWriter) Write(p []byte) (int, error) {
	l.pending = append(l.pending, p...)
	if i := bytes.LastIndexByte(l.pending, '\n'); i >= 0 {
		if _, err := l.w.Write(l.pending[:i+1]); err != nil {
			return 0, err
		}
		l.pending = append(l.pending[:0], l.pending[i+1:]...)
	}
	return len(p), nil
}
