package pipeline

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/citecrawl/citecrawl/ingest/snapshot"
)

// testCluster is a JetStream cluster of real nats-servers in this process,
// started and stopped the way nats-server's own tests do it.
type testCluster struct {
	t    testing.TB
	opts []*server.Options
	srvs []*server.Server
}

// freePort is a loopback port nobody listens on now. Nodes get fixed
// ports so that they can name each other's routes before they start and
// come back on the same addresses after a restart.
func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startNode starts a nats-server in this process; it is shut down when the
// test ends (shutting down twice is harmless).
func startNode(t testing.TB, o *server.Options) *server.Server {
	t.Helper()
	s, err := server.NewServer(o)
	if err != nil {
		t.Fatalf("node %s: %v", o.ServerName, err)
	}
	s.Start()
	t.Cleanup(s.Shutdown)
	return s
}

// startServer starts one nats-server and waits until it takes clients.
func startServer(t testing.TB, o *server.Options) *server.Server {
	t.Helper()
	s := startNode(t, o)
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatalf("nats-server %s not ready", o.ServerName)
	}
	return s
}

// runInBackground starts a run and returns where its result will come.
func runInBackground(ctx context.Context, bus *Bus, cfg Config, env Env) <-chan runResult {
	done := make(chan runResult, 1)
	go func() {
		res, err := Run(ctx, bus, cfg, env)
		done <- runResult{res, err}
	}()
	return done
}

// waitPages waits until the run has fetched n pages: the middle of a crawl.
func waitPages(t testing.TB, env Env, n int64) {
	t.Helper()
	checkFor(t, 2*time.Minute, func() error {
		if p := env.Stats.PagesFetched.Load(); p < n {
			return fmt.Errorf("%d pages fetched", p)
		}
		return nil
	})
}

// startCluster starts n nodes routed to each other. A port freePort gave
// may be taken by another test's process before its node listens on it
// (a node then never becomes ready): the cluster is started again on
// other ports, a few times.
func startCluster(t testing.TB, n int) *testCluster {
	t.Helper()
	const attempts = 3
	for attempt := 1; ; attempt++ {
		c, ready := tryCluster(t, n)
		if ready {
			t.Cleanup(c.shutdown)
			c.waitForLeader()
			return c
		}
		c.shutdown()
		if attempt == attempts {
			t.Fatalf("a %d-node cluster was not ready in %d attempts on fresh ports", n, attempts)
		}
	}
}

// tryCluster starts n nodes routed to each other on fresh ports and says
// whether every one takes clients within 20 seconds.
func tryCluster(t testing.TB, n int) (*testCluster, bool) {
	c := &testCluster{t: t}
	clusterPorts := make([]int, n)
	for i := range clusterPorts {
		clusterPorts[i] = freePort(t)
	}
	for i := range n {
		var routes []string
		for j, p := range clusterPorts {
			if j != i {
				routes = append(routes, fmt.Sprintf("nats://127.0.0.1:%d", p))
			}
		}
		c.opts = append(c.opts, &server.Options{
			ServerName: fmt.Sprintf("n%d", i+1), Host: "127.0.0.1", Port: freePort(t), NoSigs: true, NoLog: true,
			JetStream: true, StoreDir: t.TempDir(),
			Cluster: server.ClusterOpts{Name: "citecrawl-test", Host: "127.0.0.1", Port: clusterPorts[i]},
			Routes:  server.RoutesFromStr(strings.Join(routes, ",")),
		})
	}
	for _, o := range c.opts {
		c.srvs = append(c.srvs, startNode(t, o))
	}
	for _, s := range c.srvs {
		if !s.ReadyForConnections(20 * time.Second) {
			t.Logf("node %s not ready (a port taken?)", s.Name())
			return c, false
		}
	}
	return c, true
}

// waitForLeader waits until the running nodes have elected a JetStream
// meta leader that sees every one of them online with JetStream, so that
// R3 streams can be placed.
func (c *testCluster) waitForLeader() {
	c.t.Helper()
	running := 0
	for _, s := range c.srvs {
		if s != nil {
			running++
		}
	}
	checkFor(c.t, 30*time.Second, func() error {
		for _, s := range c.srvs {
			if s == nil || !s.JetStreamIsLeader() {
				continue
			}
			if peers := s.JetStreamClusterPeers(); len(peers) < running {
				return fmt.Errorf("meta leader %s sees %v online", s.Name(), peers)
			}
			return nil
		}
		return fmt.Errorf("no JetStream meta leader")
	})
}

// URLs is the client URL list of every node.
func (c *testCluster) URLs() string {
	var urls []string
	for _, o := range c.opts {
		urls = append(urls, fmt.Sprintf("nats://127.0.0.1:%d", o.Port))
	}
	return strings.Join(urls, ",")
}

// stop shuts node i down, as a crash would end it for its peers.
func (c *testCluster) stop(i int) {
	if s := c.srvs[i]; s != nil {
		s.Shutdown()
		s.WaitForShutdown()
		c.srvs[i] = nil
	}
}

func (c *testCluster) shutdown() {
	for i := range c.srvs {
		c.stop(i)
	}
}

// leaderOf returns the index of the node for which is returns true.
func (c *testCluster) leaderOf(is func(*server.Server) bool) int {
	c.t.Helper()
	idx := -1
	checkFor(c.t, 20*time.Second, func() error {
		for i, s := range c.srvs {
			if s != nil && is(s) {
				idx = i
				return nil
			}
		}
		return fmt.Errorf("no leader")
	})
	return idx
}

func (c *testCluster) streamLeader(stream string) int {
	return c.leaderOf(func(s *server.Server) bool { return s.JetStreamIsStreamLeader(server.DEFAULT_GLOBAL_ACCOUNT, stream) })
}

func (c *testCluster) consumerLeader(stream, consumer string) int {
	return c.leaderOf(func(s *server.Server) bool {
		return s.JetStreamIsConsumerLeader(server.DEFAULT_GLOBAL_ACCOUNT, stream, consumer)
	})
}

// slowSite answers like site, a few milliseconds late, so that a crawl on
// loopback lasts long enough to be interrupted in the middle.
func slowSite(site http.Handler, d time.Duration) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(d)
		site.ServeHTTP(w, r)
	})
}

// A crawl on a three-node cluster with R3 streams finishes with every
// record exactly once when, in the middle of it, the leader of a stream,
// the leader of a consumer, or the node the client is connected to stops.
func TestClusterSurvivesNodeLoss(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a three-node cluster per fault")
	}
	const n = 300
	site := snapshot.New(snapshot.StyleCards, snapshot.Generated(n))
	web := startSite(t, slowSite(site, 3*time.Millisecond))
	faults := []struct {
		name   string
		victim func(c *testCluster, bus *Bus) int
	}{
		{"no fault", nil},
		{"tasks stream leader", func(c *testCluster, _ *Bus) int { return c.streamLeader(StreamTasks) }},
		{"raw stream leader", func(c *testCluster, _ *Bus) int { return c.streamLeader(StreamRaw) }},
		{"tagged stream leader", func(c *testCluster, _ *Bus) int { return c.streamLeader(StreamTagged) }},
		{"fetch consumer leader", func(c *testCluster, _ *Bus) int { return c.consumerLeader(StreamTasks, ConsumerFetch) }},
		{"classify consumer leader", func(c *testCluster, _ *Bus) int { return c.consumerLeader(StreamRaw, ConsumerClassify) }},
		{"sink consumer leader", func(c *testCluster, _ *Bus) int { return c.consumerLeader(StreamTagged, "sink") }},
		{"connected node", func(c *testCluster, bus *Bus) int {
			name := bus.NC.ConnectedServerName()
			return c.leaderOf(func(s *server.Server) bool { return s.Name() == name })
		}},
	}
	for _, f := range faults {
		t.Run(f.name, func(t *testing.T) {
			c := startCluster(t, 3)
			cfg := testConfig(t, "", site.HubURLs(web.URL))
			cfg.NATS.URL, cfg.NATS.Replicas = c.URLs(), 3
			// A failover costs the messages in flight a delivery (their acks
			// are lost with the node); the shipped limit, not the quick
			// tests' two, is what a cluster runs with.
			cfg.Stages.MaxDeliver = DefaultConfig().Stages.MaxDeliver
			bus := openBus(t, cfg)
			defer bus.Close()
			env := testEnv()
			ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
			defer cancel()
			start := time.Now()
			done := runInBackground(ctx, bus, cfg, env)
			waitPages(t, env, n) // a third of the pages

			victim := -1
			if f.victim != nil {
				victim = f.victim(c, bus)
				c.stop(victim)
			}
			r := waitLogging(t, bus, done)
			if r.err != nil {
				t.Fatalf("run failed after %s (node n%d stopped): %v", f.name, victim+1, r.err)
			}
			for _, d := range r.res.DeadLetters {
				t.Logf("dead letter: stage %s, %s: %s", d.Stage, d.Subject, d.Error)
			}
			assertEachOnce(t, readOut(t, cfg.Sink.Out), n)
			t.Logf("%s (n%d) stopped mid-run: finished in %v", f.name, victim+1, time.Since(start).Round(time.Millisecond))
		})
	}
}

// A crawl against a single external server that restarts in the middle
// finishes with every record exactly once.
func TestRunSurvivesBrokerRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("restarts a server mid-crawl")
	}
	const n = 300
	site := snapshot.New(snapshot.StyleCards, snapshot.Generated(n))
	web := startSite(t, slowSite(site, 3*time.Millisecond))
	o := &server.Options{ServerName: "solo", Host: "127.0.0.1", Port: freePort(t), NoSigs: true, NoLog: true,
		JetStream: true, StoreDir: t.TempDir()}
	srv := startServer(t, o)
	cfg := testConfig(t, "", site.HubURLs(web.URL))
	cfg.NATS.URL = srv.ClientURL()
	cfg.Stages.MaxDeliver = DefaultConfig().Stages.MaxDeliver
	bus := openBus(t, cfg)
	defer bus.Close()
	env := testEnv()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	start := time.Now()
	done := runInBackground(ctx, bus, cfg, env)
	waitPages(t, env, n)
	srv.Shutdown()
	srv.WaitForShutdown()
	startNode(t, o) // the broker back, on the same store: the run goes on (stopped at cleanup)
	if err := (<-done).err; err != nil {
		t.Fatalf("run failed across a broker restart: %v", err)
	}
	assertEachOnce(t, readOut(t, cfg.Sink.Out), n)
	t.Logf("broker restarted mid-run: finished in %v", time.Since(start).Round(time.Millisecond))
}

type runResult struct {
	res *Result
	err error
}

// waitLogging waits for a run, logging where its consumers stand every 10
// seconds: shown only when the test fails, it says where a run got stuck.
func waitLogging(t *testing.T, bus *Bus, done <-chan runResult) runResult {
	for {
		select {
		case r := <-done:
			return r
		case <-time.After(10 * time.Second):
			for _, c := range [][2]string{{StreamTasks, ConsumerFetch}, {StreamRaw, ConsumerClassify}, {StreamTagged, "sink"}} {
				info, err := consumerInfo(context.Background(), bus, c[0], c[1])
				if err != nil {
					t.Logf("%s: %v", c[1], err)
					continue
				}
				t.Logf("%s: pending %d, ack pending %d, redelivered %d, waiting pulls %d, leader %s",
					c[1], info.NumPending, info.NumAckPending, info.NumRedelivered, info.NumWaiting, info.Cluster.Leader)
			}
		}
	}
}
