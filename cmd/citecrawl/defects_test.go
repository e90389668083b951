package main

import (
	"bufio"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/citecrawl/citecrawl/internal/testkit"
	"github.com/citecrawl/citecrawl/pipeline"
)

// A plain run whose hub cannot be reached ends at once, naming the host
// and pointing at --offline, instead of retrying for minutes.
func TestRunUnreachableHubSaysWhy(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // connections are refused from now on
	code, _, stderr := runCLI(t, "run", "--hub", "http://"+addr+"/citations/667ba460-8f85-44de-abed-e988dbbf316b",
		"--data", t.TempDir(), "--out", t.TempDir(), "--set", "fetch.allow_addresses=127.0.0.1")
	if code != exitFailed || !strings.Contains(stderr, "cannot reach 127.0.0.1") || !strings.Contains(stderr, "--offline") {
		t.Fatalf("exit %d, want %d naming the host and suggesting --offline:\n%s", code, exitFailed, stderr)
	}
}

// Console logs are coloured on a terminal only: a file gets plain text.
func TestConsoleLogsHaveNoColourInFiles(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "log.txt"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	log, err := cli{stderr: f}.logger(pipeline.LogConfig{Format: "console", Level: "info"})
	if err != nil {
		t.Fatal(err)
	}
	log.Warn().Str("hub", "x").Msg("hello")
	b, err := os.ReadFile(f.Name())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), "hello") || strings.Contains(string(b), "\x1b[") {
		t.Fatalf("console log in a file: %q", b)
	}
}

// `snapshot --listen` on a port already taken says so and exits 2,
// without claiming to serve.
func TestSnapshotOnTakenPort(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	code, _, stderr := runCLI(t, "snapshot", "--listen", ln.Addr().String())
	if code != exitUsage || !strings.Contains(stderr, ln.Addr().String()) || !strings.Contains(stderr, "in use") || strings.Contains(stderr, "serving") {
		t.Fatalf("exit %d, want %d saying the address is in use:\n%s", code, exitUsage, stderr)
	}
}

// Every option `options` lists is one --set and the environment accept.
func TestListedOptionsAreSettable(t *testing.T) {
	_, out, _ := runCLI(t, "options")
	sc := bufio.NewScanner(strings.NewReader(out))
	n := 0
	for sc.Scan() {
		name := strings.Fields(sc.Text())[0]
		cfg := defaultConfig()
		if _, err := findOption(reflect.ValueOf(&cfg).Elem(), name); err != nil || strings.Contains(name, "-") {
			t.Errorf("options lists %q, which --set refuses: %v", name, err)
		}
		n++
	}
	if n < 40 {
		t.Fatalf("options listed %d options", n)
	}
}

// Ctrl-C ends `run --schedule` with exit 130, as any interrupted run.
func TestScheduledRunInterruptedExits130(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	dir := t.TempDir()
	bin := buildCitecrawl(t, dir)
	cmd := exec.Command(bin, "run", "--offline", "--schedule", "@every 1h", "--data", filepath.Join(dir, "data"),
		"--out", filepath.Join(dir, "out"), "--progress", "off")
	var stderr testkit.LogBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	waitFor(t, 60*time.Second, func() bool { return strings.Contains(stderr.String(), "waiting for the next scheduled run") },
		func() string { return "the scheduler never waited:\n" + stderr.String() })
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	var exit *exec.ExitError
	if err := cmd.Wait(); !errors.As(err, &exit) || exit.ExitCode() != exitInterrupted {
		t.Fatalf("exit %v after SIGINT, want %d:\n%s", err, exitInterrupted, stderr.String())
	}
}
