package pipeline

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/rs/zerolog"
)

// startCluster starts n JetStream servers clustered on loopback and
// returns their client URLs, comma-separated.
func startCluster(t *testing.T, n int) string {
	t.Helper()
	ports := make([]int, n)
	for i := range ports {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ports[i] = ln.Addr().(*net.TCPAddr).Port
		ln.Close()
	}
	var routes []string
	for _, p := range ports {
		routes = append(routes, fmt.Sprintf("nats://127.0.0.1:%d", p))
	}
	var urls []string
	for i, p := range ports {
		s, err := server.NewServer(&server.Options{
			ServerName: fmt.Sprintf("n%d", i+1), Host: "127.0.0.1", Port: -1, NoSigs: true,
			JetStream: true, StoreDir: t.TempDir(),
			Cluster: server.ClusterOpts{Name: "test", Host: "127.0.0.1", Port: p},
			Routes:  server.RoutesFromStr(strings.Join(routes, ",")),
		})
		if err != nil {
			t.Fatal(err)
		}
		s.Start()
		t.Cleanup(s.Shutdown)
		if !s.ReadyForConnections(10 * time.Second) {
			t.Fatal("server not ready")
		}
		urls = append(urls, s.ClientURL())
	}
	return strings.Join(urls, ",")
}

// More replicas than the cluster has servers is a configuration error
// naming nats.replicas, not the server's placement text; as many as it
// has works.
func TestReplicasOverClusterSize(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a three-node cluster")
	}
	url := startCluster(t, 3)
	ctx := context.Background()
	var bus *Bus
	var err error
	deadline := time.Now().Add(30 * time.Second)
	for { // the cluster elects its meta leader first
		if bus, err = Open(ctx, BrokerConfig{URL: url, Replicas: 3}, 16, zerolog.Nop()); err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("replicas 3 on three servers: %v", err)
	}
	bus.Close()
	_, err = Open(ctx, BrokerConfig{URL: url, Replicas: 5}, 16, zerolog.Nop())
	if !errors.Is(err, ErrBadConfig) || !strings.Contains(err.Error(), "nats.replicas is 5") {
		t.Fatalf("replicas 5 on three servers: err = %v, want a configuration error naming nats.replicas", err)
	}
}
