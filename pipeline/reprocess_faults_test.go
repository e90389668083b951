package pipeline

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/citecrawl/citecrawl/classify"
)

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

// The answer to a part's last pull comes after the puller gave up on it
// (its idle wait and grace, 2 s): the consumer has nothing pending then,
// but the messages it sent are on their way and are read, not counted as
// gone from the stream. (They were counted gone, and left out.)
func TestReprocessReaderWaitsForMessagesSentLate(t *testing.T) {
	const n = 2500 // a pull of 2,048, then the tail of 452
	cfg := testConfig(t, t.TempDir(), nil)
	bus := openBus(t, cfg)
	defer bus.Close()
	ctx := context.Background()
	outs := make([]Out, n)
	for i := range outs {
		outs[i] = Out{Subject: RawSubject("hub"), Data: []byte(fmt.Sprintf(`{"i":%d}`, i))}
	}
	if err := bus.PublishAll(ctx, outs); err != nil {
		t.Fatal(err)
	}
	st, err := streamState(ctx, bus, StreamRaw)
	if err != nil {
		t.Fatal(err)
	}
	s, err := findServer(cfg.NATS.DataDir, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var slow atomic.Bool
	nc, err := nats.Connect("", nats.InProcessServer(slowServer{bus.srv, &slow, 2500 * time.Millisecond}), nats.Token(s.Token))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	pr := &streamReader{streamPart: streamPart{stream: StreamRaw, start: st.FirstSeq, last: st.LastSeq}}
	slow.Store(true)
	stop, err := pr.startReading(ctx, &Bus{NC: nc, JS: js}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	read := 0
	for {
		if err := pr.next(ctx); err != nil {
			t.Fatal(err)
		}
		if pr.head == nil {
			break
		}
		read++
	}
	slow.Store(false)
	stop()
	if read != n || pr.gone != 0 {
		t.Errorf("read %d of %d messages, %d counted gone from the stream (none left it)", read, n, pr.gone)
	}
}

// Records that leave the stream between an interrupted reprocess and its
// resume are counted as gone: each record is in the new generation or
// counted. (They were neither.)
func TestReprocessCountsWhatLeftTheStreamBeforeItResumed(t *testing.T) {
	const n = 6000
	cfg := testConfig(t, t.TempDir(), nil)
	bus := openBus(t, cfg)
	defer bus.Close()
	c, err := classify.Load(cfg.Rules)
	if err != nil {
		t.Fatal(err)
	}
	bg := context.Background()
	stream := publishRawRecords(t, bus, n)
	first := stream.CachedInfo().State.FirstSeq
	ctx, cancel := context.WithCancel(bg)
	opts := ReprocessOptions{From: "stream", Out: filepath.Join(t.TempDir(), "out"), Classifier: c, Batch: 64, Log: zerolog.Nop(),
		Progress: func(done, total int64) { cancel() }}
	if _, err := Reprocess(ctx, bus, opts); err == nil {
		t.Fatal("an interrupted reprocess reported success")
	}
	// The first half leaves the stream before the run is resumed.
	if err := stream.Purge(bg, jetstream.WithPurgeSequence(first+n/2)); err != nil {
		t.Fatal(err)
	}
	opts.Progress = nil
	res, err := Reprocess(bg, bus, opts)
	if err != nil {
		t.Fatal(err)
	}
	if got := len(readOut(t, opts.Out)); uint64(got)+res.Gone != n {
		t.Errorf("%d records in the new generation and %d counted gone: %d of %d unaccounted for", got, res.Gone, n-got-int(res.Gone), n)
	}
}
