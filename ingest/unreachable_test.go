package ingest

import (
	"context"
	"errors"
	"net"
	"net/http"
	"os"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/rs/zerolog"

	"github.com/citecrawl/citecrawl/retry"
)

// A refused connection is an UnreachableError naming the host, tried once
// within a delivery and left retryable for redelivery; the fetcher's
// retries are for the other failures.
func TestRefusedConnectionIsUnreachable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	var requests atomic.Int64
	f := NewFetcher(testFetchConfig(), zerolog.Nop(), WithTransport(func(rt http.RoundTripper) http.RoundTripper {
		return roundTripFunc(func(r *http.Request) (*http.Response, error) {
			requests.Add(1)
			return rt.RoundTrip(r)
		})
	}))
	_, err = f.Get(context.Background(), "http://"+addr+"/citations/x", nil)
	var u *UnreachableError
	if !errors.As(err, &u) || u.Host != "127.0.0.1" || !IsUnreachable(err) || retry.IsPermanent(err) {
		t.Fatalf("err = %v, want a retryable UnreachableError for 127.0.0.1", err)
	}
	if n := requests.Load(); n != 1 {
		t.Errorf("%d requests (robots.txt included), want 1: an unreachable host is not retried within a delivery", n)
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestUnreachableKinds(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"no such host", &net.DNSError{Err: "no such host", Name: "pith.science", IsNotFound: true}, true},
		{"no DNS server", &net.DNSError{Err: "server misbehaving", Name: "pith.science", IsTemporary: true}, true},
		{"refused", &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}, true},
		{"no route", &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ENETUNREACH)}, true},
		{"DNS timeout", &net.DNSError{Err: "i/o timeout", Name: "pith.science", IsTimeout: true}, false},
		{"reset", &net.OpError{Op: "read", Net: "tcp", Err: os.NewSyscallError("read", syscall.ECONNRESET)}, false},
		{"other", errors.New("unexpected EOF"), false},
	} {
		err := unreachable("pith.science:443", tc.err)
		if IsUnreachable(err) != tc.want {
			t.Errorf("%s: unreachable = %v, want %v", tc.name, IsUnreachable(err), tc.want)
		}
		if tc.want && err.Error() != "cannot reach pith.science: "+tc.err.Error() || !errors.Is(err, tc.err) {
			t.Errorf("%s: %v does not name the host or lost its cause", tc.name, err)
		}
	}
}
