package pipeline

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// More replicas than the cluster has servers is a configuration error
// naming nats.replicas, not the server's placement text; as many as it
// has works.
func TestReplicasOverClusterSize(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a three-node cluster")
	}
	url := startCluster(t, 3).URLs()
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
