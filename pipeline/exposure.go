package pipeline

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// exposedAuth protects an embedded server that listens beyond this
// machine: anyone who reaches it could read every record and queue any
// URL, so it refuses to start without credentials. The token, or user and
// password, of nats.* then guard it (and this process connects with them).
// On a loopback address it keeps the behaviour of before: no credentials
// needed.
func exposedAuth(cfg BrokerConfig, host string, opts *server.Options) error {
	switch {
	case cfg.Token != "":
		opts.Authorization = cfg.Token
	case cfg.User != "":
		opts.Username, opts.Password = cfg.User, cfg.Password
	case !loopbackHost(host):
		return fmt.Errorf("%w: nats.listen %q is reachable from other machines: set nats.token, or nats.user and nats.password, so that clients must authenticate (or listen on 127.0.0.1)",
			ErrBadConfig, cfg.Listen)
	}
	return nil
}

// loopbackHost tells whether a listen host only accepts connections from
// this machine ("" and 0.0.0.0 listen everywhere).
func loopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.IsLoopback()
}

// checkReplicas refuses more stream replicas than the connected servers
// can hold, before any stream is made, with the numbers instead of the
// server's placement error.
func checkReplicas(nc *nats.Conn, replicas int) error {
	if replicas <= 1 {
		return nil
	}
	if nc.ConnectedClusterName() == "" {
		return fmt.Errorf("%w: nats.replicas is %d, but the NATS server at %s is not part of a cluster: use nats.replicas=1",
			ErrBadConfig, replicas, nc.ConnectedUrlRedacted())
	}
	return nil
}

// replicasError names nats.replicas when the cluster could not place a
// stream's replicas (fewer servers with JetStream than replicas asked).
func replicasError(err error, replicas int) error {
	var apiErr *jetstream.APIError
	if replicas > 1 && errors.As(err, &apiErr) && (apiErr.ErrorCode == 10005 || apiErr.ErrorCode == 10074) {
		return fmt.Errorf("%w: nats.replicas is %d, more than the cluster's servers with JetStream can hold (%v): use at most their number",
			ErrBadConfig, replicas, err)
	}
	return err
}
