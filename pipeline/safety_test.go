package pipeline

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/rs/zerolog"

	"github.com/citecrawl/citecrawl/ingest/snapshot"
)

// A hub whose name resolves to a loopback address is refused at
// connection time, for good: one delivery, a dead letter naming the
// address, and the site never reached.
func TestHubOnInternalAddressIsDeadLettered(t *testing.T) {
	var reached atomic.Bool
	web := startSite(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { reached.Store(true) }))
	port := web.URL[strings.LastIndexByte(web.URL, ':'):]
	cfg := testConfig(t, t.TempDir(), []string{"http://localhost" + port + "/citations/667ba460-8f85-44de-abed-e988dbbf316b"})
	cfg.Fetch.AllowAddresses = nil // the default: nothing internal
	bus := openBus(t, cfg)
	defer bus.Close()
	res, err := Run(context.Background(), bus, cfg, testEnv())
	if err != nil {
		t.Fatal(err)
	}
	if len(res.DeadLetters) != 1 || res.DeadLetters[0].Deliveries != "1" || !strings.Contains(res.DeadLetters[0].Error, "is loopback: refused") {
		t.Fatalf("dead letters %+v, want one after one delivery naming the loopback address", res.DeadLetters)
	}
	if reached.Load() {
		t.Fatal("the site on loopback was reached")
	}
}

// The offline snapshot keeps working with only its own address allowed.
func TestAllowOneAddress(t *testing.T) {
	site := snapshot.Default()
	web := startSite(t, site)
	cfg := testConfig(t, t.TempDir(), site.HubURLs(web.URL)[:1])
	cfg.Fetch.AllowAddresses = []string{"127.0.0.1/32"}
	bus := openBus(t, cfg)
	defer bus.Close()
	res, err := Run(context.Background(), bus, cfg, testEnv())
	if err != nil || len(res.DeadLetters) != 0 || res.Written == 0 {
		t.Fatalf("err %v, dead letters %+v, %d written", err, res, res.Written)
	}
}

// An embedded server listening beyond loopback needs credentials.
func TestExposedEmbeddedServerNeedsCredentials(t *testing.T) {
	cfg := BrokerConfig{DataDir: t.TempDir(), Listen: "0.0.0.0:0", Replicas: 1}
	_, err := Open(context.Background(), cfg, 16, zerolog.Nop())
	if !errors.Is(err, ErrBadConfig) || !strings.Contains(err.Error(), "nats.token") {
		t.Fatalf("err = %v, want a refusal asking for credentials", err)
	}
	cfg.Token = "s3cret-token"
	bus, err := Open(context.Background(), cfg, 16, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer bus.Close()
	// Another client without the token is turned away.
	if _, err := Open(context.Background(), BrokerConfig{URL: bus.ClientURL(), Replicas: 1}, 16, zerolog.Nop()); err == nil {
		t.Fatal("a client without the token connected")
	}
	other, err := Open(context.Background(), BrokerConfig{URL: bus.ClientURL(), Token: "s3cret-token", Replicas: 1}, 16, zerolog.Nop())
	if err != nil {
		t.Fatalf("with the token: %v", err)
	}
	other.Close()
}
