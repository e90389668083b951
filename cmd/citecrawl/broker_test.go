package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/citecrawl/citecrawl/filelock"
	"github.com/citecrawl/citecrawl/internal/testkit"
	"github.com/citecrawl/citecrawl/pipeline"
)

// TestMain lets the test binary be the broker child the commands under
// test start (os.Executable is this binary, not citecrawl).
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == "broker" {
		os.Exit(cli{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr, environ: os.Environ()}.main(os.Args[1:]))
	}
	os.Exit(m.Run())
}

// startSession starts the session of a command given the broker flags
// args (its broker child too, when asked for), logging into stderr.
func startSession(t *testing.T, stderr *testkit.LogBuffer, args ...string) *session {
	t.Helper()
	cfg, err := newOptions("test", io.Discard, brokerFlags).load(args, nil)
	if err != nil {
		t.Fatal(err)
	}
	sess, code := cli{stdout: io.Discard, stderr: stderr}.start(cfg, true)
	if sess == nil {
		t.Fatalf("start: exit %d:\n%s", code, stderr.String())
	}
	return sess
}

// served is where the data folder's server is, from the file its
// process publishes there.
func served(t *testing.T, data string) (s struct {
	URL, Token string
	PID        int
}) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(data, "citecrawl.server.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatal(err)
	}
	return s
}

func pgid(t *testing.T, pid int) int {
	t.Helper()
	g, err := syscall.Getpgid(pid)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// folderFree says whether no process serves the data folder any more.
func folderFree(t *testing.T, data string) bool {
	t.Helper()
	f, ok, err := filelock.TryLock(filepath.Join(data, "citecrawl.lock"))
	if err != nil {
		t.Fatal(err)
	}
	if ok {
		f.Close()
	}
	return ok
}

// A command serves its data folder from a child of its own with
// nats.embedded_process always, from its own process with never, and, but
// for reprocess, with auto (the default); the child is gone, and the
// folder free, once the command has closed its session.
func TestCommandsServeTheirDataFolderFromAChild(t *testing.T) {
	for _, where := range []string{"always", "never", "auto"} {
		inChild := where == "always"
		data := t.TempDir()
		var stderr testkit.LogBuffer
		sess := startSession(t, &stderr, "--data", data, "--set", "nats.embedded_process="+where)
		pid := served(t, data).PID
		if got := pid != os.Getpid(); got != inChild {
			t.Fatalf("embedded_process %s: the folder is served by pid %d, this process is %d", where, pid, os.Getpid())
		}
		if inChild && pgid(t, pid) == pgid(t, os.Getpid()) {
			t.Fatal("the broker child is in the command's process group: a terminal's Ctrl-C would stop it before the command drains")
		}
		sess.close()
		if !folderFree(t, data) {
			t.Fatalf("embedded_process %s: the data folder is still held after the command closed:\n%s", where, stderr.String())
		}
		if inChild && syscall.Kill(pid, 0) == nil {
			t.Fatalf("the broker child %d outlived its command", pid)
		}
	}
}

// With nats.listen the broker child listens there, and the command says
// so (a run prints it for the workers of other machines).
func TestBrokerChildListensWhereTold(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	var stderr testkit.LogBuffer
	sess := startSession(t, &stderr, "--data", t.TempDir(), "--nats-listen", addr, "--set", "nats.embedded_process=always")
	defer sess.close()
	if got, want := sess.bus.ClientURL(), "nats://"+addr; got != want {
		t.Fatalf("ClientURL %q, want %q", got, want)
	}
}

// reprocess serves the folder from a broker child by default (auto), and
// from its own process with never.
func TestReprocessServesFromABrokerChildByDefault(t *testing.T) {
	for _, where := range []string{"auto", "never"} {
		var stderr testkit.LogBuffer
		dir := t.TempDir()
		code := cli{stdout: io.Discard, stderr: &stderr}.main([]string{"reprocess", "--data", filepath.Join(dir, "data"),
			"--out", filepath.Join(dir, "out"), "--log-level", "info", "--set", "nats.embedded_process=" + where})
		if code != exitOK {
			t.Fatalf("embedded_process %s: exit %d:\n%s", where, code, stderr.String())
		}
		child := strings.Contains(stderr.String(), "embedded broker process stopped")
		if child != (where == "auto") {
			t.Fatalf("embedded_process %s: a broker child: %v, want %v:\n%s", where, child, where == "auto", stderr.String())
		}
	}
}

// A run that ended of itself waits for the runs that joined its broker
// child; interrupted then (Ctrl-C, SIGTERM), it stops the child at once
// rather than wait on for them.
func TestInterruptedRunStopsItsBrokerChildAtOnce(t *testing.T) {
	data := t.TempDir()
	var stderr testkit.LogBuffer
	sess := startSession(t, &stderr, "--data", data, "--log-level", "info", "--set", "nats.embedded_process=always")
	sess.waitForRuns = true
	other := joinAsRun(t, data)
	defer other.Close()
	closed := make(chan struct{})
	go func() { sess.close(); close(closed) }()
	waitFor(t, 30*time.Second, func() bool { return strings.Contains(stderr.String(), "waiting for the runs that joined") },
		func() string { return "the broker child never waited for the joined run:\n" + stderr.String() })
	sess.stop() // what SIGINT does to the session's context
	waitFor(t, 30*time.Second, func() bool {
		select {
		case <-closed:
			return true
		default:
			return false
		}
	}, func() string {
		return "the session still waits for its broker child after the interrupt:\n" + stderr.String()
	})
	if !folderFree(t, data) {
		t.Fatal("the folder is still held")
	}
}

// An exposed server without credentials is bad usage (exit 2) naming
// what to set, whether the server would run in the command or in its
// child: the configuration is checked before either starts.
func TestBrokerChildRefusesAnExposedServerWithoutCredentials(t *testing.T) {
	for _, inChild := range []string{"always", "never"} {
		var stderr bytes.Buffer
		code := cli{stdout: io.Discard, stderr: &stderr}.main([]string{"dead", "list", "--data", t.TempDir(),
			"--nats-listen", "0.0.0.0:0", "--set", "nats.embedded_process=" + inChild})
		if code != exitUsage || !strings.Contains(stderr.String(), "nats.token") {
			t.Fatalf("embedded_process=%s: exit %d, want %d naming nats.token:\n%s", inChild, code, exitUsage, stderr.String())
		}
	}
}

// joinAsRun connects to the data folder's server as another `run` would,
// one the broker child waits for before it stops of itself.
func joinAsRun(t *testing.T, data string) *nats.Conn {
	t.Helper()
	s := served(t, data)
	nc, err := nats.Connect(s.URL, nats.Token(s.Token), nats.Name(pipeline.RunClientName), nats.NoReconnect())
	if err != nil {
		t.Fatal(err)
	}
	return nc
}

// A command killed with SIGKILL takes its broker child with it: the child
// reads the end of its standard input and stops its server at once, even
// with a run joined to it (it would cut that run off soon anyway, and any
// newcomer with it), removing the file that says where it is and freeing
// the folder for the next command.
func TestBrokerChildEndsWhenItsCommandIsKilled(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	dir := t.TempDir()
	bin := buildCitecrawl(t, dir)
	data := filepath.Join(dir, "data")
	tail := exec.Command(bin, "tail", "--all", "--format", "json", "--data", data, "--set", "nats.embedded_process=always")
	// A file, not a pipe: tail's Wait must not wait for the child, which
	// inherits tail's standard error.
	logFile, err := os.Create(filepath.Join(dir, "tail.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	tail.Stderr = logFile
	tailLog := func() string { b, _ := os.ReadFile(logFile.Name()); return string(b) }
	if err := tail.Start(); err != nil {
		t.Fatal(err)
	}
	defer tail.Process.Kill()
	waitForServer(t, data, "tail", tailLog)
	if served(t, data).PID == tail.Process.Pid {
		t.Fatalf("tail serves the folder itself")
	}
	run := joinAsRun(t, data)
	defer run.Close()
	if err := tail.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	tail.Wait()
	// Well within the 2 minutes a child waits for joined runs when its
	// command ends of itself.
	waitFor(t, 30*time.Second, func() bool { return folderFree(t, data) },
		func() string {
			return "the broker child still holds the folder after its command was killed:\n" + tailLog()
		})
	if _, err := os.Stat(filepath.Join(data, "citecrawl.server.json")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the broker child ended without removing where it served (killed rather than stopped?): %v\n%s", err, tailLog())
	}
	// The next command serves the folder as if nothing had happened.
	if out, err := exec.Command(bin, "dead", "list", "--data", data).CombinedOutput(); err != nil {
		t.Fatalf("dead list after the kill: %v\n%s", err, out)
	}

	// `citecrawl broker` serves the folder for the commands that join it,
	// until SIGTERM.
	broker := exec.Command(bin, "broker", "--data", data)
	var brokerErr testkit.LogBuffer
	broker.Stderr = &brokerErr
	if err := broker.Start(); err != nil {
		t.Fatal(err)
	}
	defer broker.Process.Kill()
	waitFor(t, 60*time.Second, func() bool { return !folderFree(t, data) }, func() string { return "broker never served:\n" + brokerErr.String() })
	out, err := exec.Command(bin, "dead", "list", "--data", data).CombinedOutput()
	if err != nil || !bytes.Contains(out, []byte("joined the NATS server")) {
		t.Fatalf("dead list beside the broker: %v, want it to join:\n%s", err, out)
	}
	if err := broker.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := broker.Wait(); err != nil {
		t.Fatalf("broker after SIGTERM: %v\n%s", err, brokerErr.String())
	}
	if !folderFree(t, data) {
		t.Fatal("the folder is still held after the broker ended")
	}
}
