package ingest

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/rs/zerolog"

	"github.com/citecrawl/citecrawl/retry"
)

// Only http and https are fetched: other schemes fail at once, for good,
// naming the URL (they used to fail later as temporary errors).
func TestFetchRefusesOtherSchemes(t *testing.T) {
	f := NewFetcher(testFetchConfig(), zerolog.Nop())
	for _, u := range []string{"file:///etc/passwd", "ftp://example.org/citations/x", "gopher://example.org/", "//example.org/x"} {
		_, err := f.Get(context.Background(), u, nil)
		if !retry.IsPermanent(err) || !strings.Contains(err.Error(), u) {
			t.Errorf("%s: err = %v, want a permanent error naming the URL", u, err)
		}
	}
}

// Loopback, private, link-local, unique-local and cloud-metadata addresses
// are refused when connecting, with a permanent error naming the address;
// the request never leaves, and is not retried.
func TestFetchRefusesInternalAddresses(t *testing.T) {
	cfg := testFetchConfig()
	cfg.AllowAddresses = nil
	cfg.Timeout = 2e9
	f := NewFetcher(cfg, zerolog.Nop())
	var hits atomic.Int32
	srv := siteWithoutRobots(t, func(w http.ResponseWriter, r *http.Request) { hits.Add(1); fmt.Fprint(w, "secret") })
	port := srv.Listener.Addr().String()
	port = port[strings.LastIndex(port, ":"):]
	for _, tc := range []struct{ url, addr, kind string }{
		{srv.URL + "/", "127.0.0.1", "loopback"},
		{"http://localhost" + port + "/", "", "loopback"}, // a name, checked after DNS
		{"http://10.1.2.3/", "10.1.2.3", "private"},
		{"http://192.168.0.1/", "192.168.0.1", "private"},
		{"http://169.254.169.254/latest/meta-data/", "169.254.169.254", "cloud metadata"},
		{"http://169.254.10.1/", "169.254.10.1", "link-local"},
	} {
		_, err := f.Get(context.Background(), tc.url, nil)
		if !retry.IsPermanent(err) || !strings.Contains(err.Error(), tc.kind) || !strings.Contains(err.Error(), tc.addr) {
			t.Errorf("%s: err = %v, want a permanent %s refusal naming the address", tc.url, err, tc.kind)
		}
	}
	if hits.Load() != 0 {
		t.Fatalf("the loopback site was reached %d times", hits.Load())
	}
	// allow_private lets them through.
	cfg.AllowPrivate = true
	if _, err := NewFetcher(cfg, zerolog.Nop()).Get(context.Background(), srv.URL+"/", nil); err != nil {
		t.Fatalf("allow_private: %v", err)
	}
}

func TestAddressKinds(t *testing.T) {
	g := addressGuard{}
	for addr, kind := range map[string]string{
		"127.0.0.1": "loopback", "::1": "loopback", "10.0.0.1": "private", "172.16.5.4": "private",
		"192.168.1.1": "private", "169.254.169.254": "cloud metadata", "fd00:ec2::254": "cloud metadata",
		"fe80::1": "link-local", "fc00::1": "unique-local", "fd12:3456::1": "unique-local",
		"::ffff:10.0.0.1": "private", "0.0.0.0": "unspecified", "100.64.0.1": "carrier-grade NAT",
		"93.184.216.34": "", "2606:2800:220:1::1": "",
	} {
		err := g.check(netip.MustParseAddr(addr))
		if kind == "" {
			if err != nil {
				t.Errorf("%s: %v, want allowed", addr, err)
			}
			continue
		}
		if err == nil || !retry.IsPermanent(err) || !strings.Contains(err.Error(), kind) {
			t.Errorf("%s: %v, want a permanent %s refusal", addr, err, kind)
		}
	}
	allow, err := ParseAllowAddresses([]string{"127.0.0.1", "10.0.0.0/8"})
	if err != nil {
		t.Fatal(err)
	}
	g = addressGuard{allow: allow}
	if g.check(netip.MustParseAddr("127.0.0.1")) != nil || g.check(netip.MustParseAddr("10.9.9.9")) != nil || g.check(netip.MustParseAddr("127.0.0.2")) == nil {
		t.Error("allow_addresses: listed addresses and prefixes only")
	}
	if _, err := ParseAllowAddresses([]string{"not-an-ip"}); err == nil || !strings.Contains(err.Error(), "not-an-ip") {
		t.Errorf("bad allow_addresses entry: %v", err)
	}
}

// A redirect is checked hop by hop: to another scheme, or to an address
// that is not allowed, it fails for good.
func TestFetchRedirectChecks(t *testing.T) {
	srv := siteWithoutRobots(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/to-file":
			http.Redirect(w, r, "file:///etc/passwd", http.StatusFound)
		case "/to-loopback":
			// 127.0.0.2 is loopback too, but not the one address allowed.
			http.Redirect(w, r, "http://127.0.0.2:9/admin", http.StatusFound)
		case "/to-metadata":
			http.Redirect(w, r, "http://169.254.169.254/latest/meta-data/", http.StatusFound)
		}
	})
	cfg := testFetchConfig()
	cfg.AllowAddresses = []string{"127.0.0.1/32"}
	f := NewFetcher(cfg, zerolog.Nop())
	for path, says := range map[string]string{
		"/to-file":     "file:///etc/passwd",
		"/to-loopback": "address 127.0.0.2 is loopback",
		"/to-metadata": "address 169.254.169.254 is cloud metadata",
	} {
		_, err := f.Get(context.Background(), srv.URL+path, nil)
		if !retry.IsPermanent(err) || !strings.Contains(err.Error(), says) {
			t.Errorf("%s: err = %v, want a permanent error saying %q", path, err, says)
		}
	}
}

// robots.txt is read for every host a redirect leads to, and obeyed.
func TestFetchRedirectReadsTargetRobots(t *testing.T) {
	var robotsRead, private atomic.Int32
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/robots.txt":
			robotsRead.Add(1)
			fmt.Fprint(w, "User-agent: *\nDisallow: /private/\n")
		case "/private/page":
			private.Add(1)
			fmt.Fprint(w, "secret")
		default:
			fmt.Fprint(w, "public")
		}
	}))
	t.Cleanup(target.Close)
	origin := siteWithoutRobots(t, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, target.URL+r.URL.Path, http.StatusFound)
	})
	f := NewFetcher(testFetchConfig(), zerolog.Nop())
	_, err := f.Get(context.Background(), origin.URL+"/private/page", nil)
	if !retry.IsPermanent(err) || !strings.Contains(err.Error(), "robots.txt") {
		t.Fatalf("err = %v, want a permanent robots.txt refusal of the redirect", err)
	}
	if private.Load() != 0 || robotsRead.Load() != 1 {
		t.Fatalf("target page fetched %d times, its robots.txt read %d times", private.Load(), robotsRead.Load())
	}
	resp, err := f.Get(context.Background(), origin.URL+"/open", nil)
	if err != nil || string(resp.Body) != "public" || robotsRead.Load() != 1 {
		t.Fatalf("allowed redirect: %v, robots.txt read %d times", err, robotsRead.Load())
	}
}
