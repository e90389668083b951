package main

import (
	"bufio"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/citecrawl/citecrawl/internal/testkit"
)

// buildCitecrawl builds the command into dir for tests that run it as a
// child process.
func buildCitecrawl(t *testing.T, dir string) string {
	t.Helper()
	bin := filepath.Join(dir, "citecrawl")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// startNATS starts a JetStream server on a loopback port, stopped when the
// test ends.
func startNATS(t *testing.T, storeDir string) *server.Server {
	t.Helper()
	ns, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: storeDir, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	ns.Start()
	t.Cleanup(ns.Shutdown)
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("NATS server not ready")
	}
	return ns
}

// `tail` started in the folder of a running `run` follows that run's
// records: it joins the run's embedded server instead of starting its own.
func TestTailFollowsRunInSameFolder(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	dir := t.TempDir()
	bin := buildCitecrawl(t, dir)
	data, out := filepath.Join(dir, "data"), filepath.Join(dir, "out")

	run := exec.Command(bin, "run", "--offline", "--schedule", "@every 1s", "--data", data, "--out", out,
		"--rules", "../../configs/rules", "--progress", "off")
	var runErr testkit.LogBuffer
	run.Stderr = &runErr
	if err := run.Start(); err != nil {
		t.Fatal(err)
	}
	defer run.Process.Kill()
	waitForServer(t, data, "run", runErr.String)

	tail := exec.Command(bin, "tail", "--all", "--format", "json", "--data", data)
	var tailErr testkit.LogBuffer
	tail.Stderr = &tailErr
	stdout, err := tail.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := tail.Start(); err != nil {
		t.Fatal(err)
	}
	defer tail.Process.Kill()
	ids := make(chan string, 1024)
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(nil, 16<<20)
		for sc.Scan() {
			var r struct {
				ID string `json:"id"`
			}
			if json.Unmarshal(sc.Bytes(), &r) == nil && r.ID != "" {
				ids <- r.ID
			}
		}
		close(ids)
	}()

	// The run writes every record to out; tail must show each of them.
	seen := map[string]bool{}
	waitFor(t, 90*time.Second, func() bool {
		for {
			select {
			case id, ok := <-ids:
				if !ok {
					return false
				}
				seen[id] = true
				continue
			default:
			}
			break
		}
		_, written := outLines(t, out)
		if len(written) == 0 || len(seen) < len(written) {
			return false
		}
		for id := range written {
			if !seen[id] {
				return false
			}
		}
		return true
	}, func() string {
		return "tail did not show every record the run wrote\nrun:\n" + runErr.String() + "\ntail:\n" + tailErr.String()
	})
	if strings.Contains(tailErr.String(), "embedded NATS server with JetStream started") {
		t.Fatalf("tail started a server of its own:\n%s", tailErr.String())
	}
	for _, p := range []*exec.Cmd{tail, run} {
		if err := p.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
	}
	tail.Wait()
	run.Wait()
}

// waitForServer waits until the data folder's server says where it is,
// for the command who (whose log stderr gives) that needed it.
func waitForServer(t *testing.T, data, who string, stderr func() string) {
	t.Helper()
	waitFor(t, 60*time.Second, func() bool {
		_, err := os.Stat(filepath.Join(data, "citecrawl.server.json"))
		return err == nil
	}, func() string { return who + " never had its data folder served:\n" + stderr() })
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, total time.Duration, cond func() bool, why func() string) {
	t.Helper()
	deadline := time.Now().Add(total)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal(why())
		}
		time.Sleep(50 * time.Millisecond)
	}
}
