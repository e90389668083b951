package ingest

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/temoto/robotstxt"

	"github.com/citecrawl/citecrawl/retry"
	"golang.org/x/sync/singleflight"
)

// robotsCache holds what each host's robots.txt says to us. A host's file
// is fetched once, however many workers ask for it at the same time.
type robotsCache struct {
	mu     sync.Mutex
	hosts  map[string]*hostRobots
	flight singleflight.Group
}

// hostRobots is the group of a host's robots.txt that applies to our agent,
// or the reason every URL of the host is refused.
type hostRobots struct {
	group *robotstxt.Group
	err   error
}

func (c *robotsCache) lookup(host string) *hostRobots {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.hosts[host]
}

func (c *robotsCache) store(host string, r *hostRobots) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.hosts == nil {
		c.hosts = map[string]*hostRobots{}
	}
	c.hosts[host] = r
}

// crawlDelay is the Crawl-delay the host asks of us (0 if none or not yet
// known).
func (c *robotsCache) crawlDelay(host string) time.Duration {
	if r := c.lookup(host); r != nil && r.group != nil {
		return r.group.CrawlDelay
	}
	return 0
}

// allowed checks u (path and query) against the host's robots.txt, fetching
// it on first use. A missing robots.txt (4xx) allows everything; one that
// cannot be read (5xx, network) is an error, so the message is retried
// later rather than crawled blind; one that cannot be parsed refuses every
// URL of the host, saying why.
func (f *Fetcher) allowed(ctx context.Context, u *url.URL, retries int) (bool, error) {
	r, err := f.robotsFor(ctx, u, retries)
	if err != nil {
		return false, err
	}
	if r.err != nil {
		return false, r.err
	}
	return r.group.Test(u.RequestURI()), nil
}

// robotsFor returns the cached rules of u's host or fetches them, one
// fetch per host at a time; callers arriving meanwhile share its result.
func (f *Fetcher) robotsFor(ctx context.Context, u *url.URL, retries int) (*hostRobots, error) {
	for {
		if r := f.robots.lookup(u.Host); r != nil {
			return r, nil
		}
		ch := f.robots.flight.DoChan(u.Host, func() (any, error) {
			if r := f.robots.lookup(u.Host); r != nil {
				return r, nil // a fetch finished between our lookup and this flight
			}
			r, err := f.loadRobots(ctx, u, retries)
			if err != nil {
				return nil, err
			}
			f.robots.store(u.Host, r)
			return r, nil
		})
		select {
		case res := <-ch:
			if res.Err == nil {
				return res.Val.(*hostRobots), nil
			}
			// The fetch ran under the context of whoever asked first: if
			// that one was cancelled and ours was not, ask again.
			if errors.Is(res.Err, context.Canceled) && ctx.Err() == nil {
				continue
			}
			return nil, res.Err
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

func (f *Fetcher) loadRobots(ctx context.Context, u *url.URL, retries int) (*hostRobots, error) {
	robotsURL := (&url.URL{Scheme: u.Scheme, Host: u.Host, Path: "/robots.txt"}).String()
	status, body := 0, []byte(nil)
	resp, err := f.get(ctx, robotsURL, nil, retries)
	var he *HTTPError
	switch {
	case err == nil:
		status, body = resp.Status, resp.Body
	case errors.As(err, &he) && he.Status >= 400 && he.Status < 500:
		status = he.Status // no robots.txt: everything is allowed
	default:
		return nil, fmt.Errorf("robots.txt of %s: %w", u.Host, err)
	}
	data, err := robotstxt.FromStatusAndBytes(status, body)
	if err != nil {
		return &hostRobots{err: retry.Permanentf("robots.txt of %s cannot be parsed, so nothing of the host is fetched: %s", u.Host, parseErrors(err))}, nil
	}
	return &hostRobots{group: data.FindGroup(f.agent())}, nil
}

// agent is the product token robots.txt groups are matched against: the
// configured user agent up to its version ("citecrawl" of "citecrawl/0.1").
func (f *Fetcher) agent() string {
	fields := strings.Fields(f.cfg.UserAgent)
	if len(fields) == 0 {
		return ""
	}
	token, _, _ := strings.Cut(fields[0], "/")
	return strings.ToLower(token)
}

// parseErrors lists a parse error's lines on one line.
func parseErrors(err error) string {
	var pe *robotstxt.ParseError
	if !errors.As(err, &pe) {
		return err.Error()
	}
	msgs := make([]string, len(pe.Errs))
	for i, e := range pe.Errs {
		msgs[i] = e.Error()
	}
	return strings.Join(msgs, "; ")
}
