package pipeline

import (
	"context"
	"encoding/json"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// checkFor polls f until it returns nil or the deadline passes, in the
// manner of nats-server's tests.
func checkFor(t testing.TB, total time.Duration, f func() error) {
	t.Helper()
	deadline := time.Now().Add(total)
	var err error
	for time.Now().Before(deadline) {
		if err = f(); err == nil {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("condition not met within %v: %v", total, err)
}

func readJSON(t testing.TB, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// startStages starts the named stages for a test, which stops them
// (before it closes their bus).
func startStages(t testing.TB, bus *Bus, cfg Config, env Env, names ...string) *Workers {
	t.Helper()
	w, err := StartStages(context.Background(), bus, cfg, names, env)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// slowLink is an in-process connection to a server that hands the client
// what the server sent delay later while slow is set: a slow link, a
// paused process, a busy broker.
type slowLink struct {
	net.Conn
	slow  *atomic.Bool
	delay time.Duration
	once  sync.Once
	in    chan slowChunk
	buf   []byte
	err   error
}

type slowChunk struct {
	b   []byte
	at  time.Time
	err error
}

func (c *slowLink) Read(p []byte) (int, error) {
	c.once.Do(func() {
		c.in = make(chan slowChunk, 1<<16)
		go func() {
			for {
				b := make([]byte, 32<<10)
				n, err := c.Conn.Read(b)
				at := time.Now()
				if c.slow.Load() {
					at = at.Add(c.delay)
				}
				c.in <- slowChunk{b[:n], at, err}
				if err != nil {
					return
				}
			}
		}()
	})
	if len(c.buf) == 0 {
		if c.err != nil {
			return 0, c.err
		}
		k := <-c.in
		time.Sleep(time.Until(k.at)) // the link's delay, the fault itself
		c.buf, c.err = k.b, k.err
		if len(c.buf) == 0 {
			return 0, c.err
		}
	}
	n := copy(p, c.buf)
	c.buf = c.buf[n:]
	return n, nil
}

// slowServer gives connections to srv through a slowLink.
type slowServer struct {
	srv   *server.Server
	slow  *atomic.Bool
	delay time.Duration
}

func (s slowServer) InProcessConn() (net.Conn, error) {
	c, err := s.srv.InProcessConn()
	if err != nil {
		return nil, err
	}
	return &slowLink{Conn: c, slow: s.slow, delay: s.delay}, nil
}
