package ingest

import (
	"github.com/citecrawl/citecrawl/retry"

	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// robotsSite serves robots.txt (whatever robots returns at the time) and
// "ok" for every other path, counting the requests of each.
type robotsSite struct {
	*httptest.Server
	robotsHits, pageHits atomic.Int32
	pages                sync.Map // path?query -> hits
}

func newRobotsSite(t *testing.T, robots func(w http.ResponseWriter, r *http.Request)) *robotsSite {
	s := &robotsSite{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/robots.txt" {
			s.robotsHits.Add(1)
			robots(w, r)
			return
		}
		s.pageHits.Add(1)
		s.pages.Store(r.URL.RequestURI(), true)
		fmt.Fprint(w, "ok")
	}))
	t.Cleanup(s.Close)
	return s
}

func robotsText(body string) func(http.ResponseWriter, *http.Request) {
	return func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, body) }
}

// checkRobots fetches each path and checks it was allowed (fetched) or
// refused as robots.txt says, without the refused ones reaching the site.
func checkRobots(t *testing.T, f *Fetcher, site *robotsSite, want map[string]bool) {
	t.Helper()
	for path, allowed := range want {
		_, err := f.Get(context.Background(), site.URL+path, nil)
		_, requested := site.pages.Load(path)
		switch {
		case allowed && err != nil:
			t.Errorf("%s refused: %v", path, err)
		case !allowed && (err == nil || !retry.IsPermanent(err) || !strings.Contains(err.Error(), "disallowed by robots.txt")):
			t.Errorf("%s: err = %v, want a permanent robots.txt refusal", path, err)
		case !allowed && requested:
			t.Errorf("%s was requested although robots.txt forbids it", path)
		}
	}
}

// The group for the product token of fetch.user_agent wins over *, and
// the agent is not hard-coded.
func TestRobotsMatchTheConfiguredAgent(t *testing.T) {
	body := "User-agent: *\nDisallow: /\n\nUser-agent: PoliteBot\nDisallow: /x\n\nUser-agent: CiteCrawl\nDisallow: /y\n"
	site := newRobotsSite(t, robotsText(body))
	cfg := testFetchConfig()
	cfg.UserAgent = "PoliteBot/2.0"
	checkRobots(t, NewFetcher(cfg, zerolog.Nop()), site, map[string]bool{"/y": true, "/x/1": false, "/": true})

	site = newRobotsSite(t, robotsText(body))
	checkRobots(t, NewFetcher(testFetchConfig(), zerolog.Nop()), site, map[string]bool{"/x/1": true, "/y": false})

	site = newRobotsSite(t, robotsText(body))
	cfg.UserAgent = "OtherBot/1"
	checkRobots(t, NewFetcher(cfg, zerolog.Nop()), site, map[string]bool{"/x/1": false, "/z": false})
}

// Disallow and Allow see the query string, with wildcards and $.
func TestRobotsQueryStrings(t *testing.T) {
	site := newRobotsSite(t, robotsText("User-agent: *\nDisallow: /search?q=\nDisallow: /*?sort=\nAllow: /*?sort=title$\nDisallow: /*.pdf$\n"))
	checkRobots(t, NewFetcher(testFetchConfig(), zerolog.Nop()), site, map[string]bool{
		"/search":             true,
		"/search?q=pluralism": false,
		"/search?page=2":      true,
		"/list?sort=date":     false,
		"/list?page=2&sort=x": true, // "?sort=" is not in it
		"/list?sort=title":    true,
		"/list":               true,
		"/a/b.pdf":            false,
		"/a/b.pdf.html":       true,
	})
}

func TestRobotsCrawlDelay(t *testing.T) {
	site := newRobotsSite(t, robotsText("User-agent: *\nCrawl-delay: 0.25\nDisallow: /private/\n"))
	f := NewFetcher(testFetchConfig(), zerolog.Nop())
	if _, err := f.Get(context.Background(), site.URL+"/a", nil); err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(site.URL)
	if d := f.delay(u); d != 250*time.Millisecond {
		t.Fatalf("delay %s, want the Crawl-delay of 250ms", d)
	}
}

// Sixteen first requests to a host at once fetch its robots.txt once.
func TestRobotsFetchedOncePerHost(t *testing.T) {
	site := newRobotsSite(t, func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(50 * time.Millisecond) // keep the first fetch open while the others ask
		fmt.Fprint(w, "User-agent: *\nDisallow: /private/\n")
	})
	f := NewFetcher(testFetchConfig(), zerolog.Nop())
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Go(func() {
			<-start
			if _, err := f.Get(context.Background(), fmt.Sprintf("%s/p%d", site.URL, i), nil); err != nil {
				t.Error(err)
			}
		})
	}
	close(start)
	wg.Wait()
	if n := site.robotsHits.Load(); n != 1 {
		t.Fatalf("robots.txt fetched %d times, want 1", n)
	}
	if n := site.pageHits.Load(); n != 16 {
		t.Fatalf("%d pages fetched, want 16", n)
	}
}

// No robots.txt (404) allows everything, and is asked once.
func TestRobotsMissingAllowsAll(t *testing.T) {
	site := newRobotsSite(t, http.NotFound)
	checkRobots(t, NewFetcher(testFetchConfig(), zerolog.Nop()), site, map[string]bool{"/": true, "/private/x": true, "/a?b=c": true})
	if n := site.robotsHits.Load(); n != 1 {
		t.Fatalf("robots.txt asked %d times, want 1", n)
	}
}

// A robots.txt that cannot be read (5xx) fails the request as retryable,
// without crawling the page blind; once it can be read, it is obeyed.
func TestRobotsUnreadableIsRetriedLater(t *testing.T) {
	var down atomic.Bool
	down.Store(true)
	site := newRobotsSite(t, func(w http.ResponseWriter, r *http.Request) {
		if down.Load() {
			http.Error(w, "overloaded", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprint(w, "User-agent: *\nDisallow: /private/\n")
	})
	cfg := testFetchConfig()
	cfg.Retries = 1
	f := NewFetcher(cfg, zerolog.Nop())
	_, err := f.Get(context.Background(), site.URL+"/a", nil)
	if err == nil || retry.IsPermanent(err) || !strings.Contains(err.Error(), "robots.txt of") || !strings.Contains(err.Error(), "503") {
		t.Fatalf("err = %v, want a retryable robots.txt error", err)
	}
	if site.pageHits.Load() != 0 || site.robotsHits.Load() != 2 {
		t.Fatalf("%d pages and %d robots.txt requests; want 0 and 2 (one retry)", site.pageHits.Load(), site.robotsHits.Load())
	}
	down.Store(false)
	checkRobots(t, f, site, map[string]bool{"/a": true, "/private/b": false})
}

// A robots.txt that cannot be parsed refuses the host's pages, saying why.
func TestRobotsUnparseableRefusesTheHost(t *testing.T) {
	site := newRobotsSite(t, robotsText("Disallow: /private/\nUser-agent: *\nCrawl-delay: soon\n"))
	f := NewFetcher(testFetchConfig(), zerolog.Nop())
	for range 2 {
		_, err := f.Get(context.Background(), site.URL+"/a", nil)
		if err == nil || !retry.IsPermanent(err) || !strings.Contains(err.Error(), "cannot be parsed") || !strings.Contains(err.Error(), "Disallow before User-agent") {
			t.Fatalf("err = %v, want a permanent error naming the parse errors", err)
		}
	}
	if site.pageHits.Load() != 0 || site.robotsHits.Load() != 1 {
		t.Fatalf("%d pages and %d robots.txt requests; want 0 and 1", site.pageHits.Load(), site.robotsHits.Load())
	}
}

// When the caller whose fetch of robots.txt the others wait on gives up,
// the others fetch it themselves instead of failing with its cancellation.
func TestRobotsFirstCallerCancelled(t *testing.T) {
	// The first fetch of robots.txt hangs until its caller gives up.
	var first atomic.Bool
	first.Store(true)
	hang := make(chan struct{})
	site := newRobotsSite(t, func(w http.ResponseWriter, r *http.Request) {
		if first.CompareAndSwap(true, false) {
			close(hang)
			<-r.Context().Done()
			return
		}
		fmt.Fprint(w, "User-agent: *\nDisallow: /private/\n")
	})
	f := NewFetcher(testFetchConfig(), zerolog.Nop())
	ctxA, cancelA := context.WithCancel(context.Background())
	errA := make(chan error, 1)
	go func() { _, err := f.Get(ctxA, site.URL+"/a", nil); errA <- err }()
	<-hang
	errB := make(chan error, 1)
	go func() { _, err := f.Get(context.Background(), site.URL+"/b", nil); errB <- err }()
	cancelA()
	if err := <-errA; !errors.Is(err, context.Canceled) {
		t.Fatalf("first caller: err = %v, want its cancellation", err)
	}
	if err := <-errB; err != nil {
		t.Fatalf("second caller failed with the first one's cancellation: %v", err)
	}
	if n := site.robotsHits.Load(); n != 2 {
		t.Fatalf("robots.txt fetched %d times, want 2 (the cancelled fetch and one more)", n)
	}
}
