package ingest

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// robotsRules is the group of a robots.txt that applies to us.
type robotsRules struct {
	rules      []robotsRule
	crawlDelay time.Duration
}

type robotsRule struct {
	allow  bool
	prefix string
}

// allowed checks u against the host's robots.txt, fetching and caching it
// on first use. A missing robots.txt (4xx) allows everything; a robots.txt
// that cannot be read (5xx, network) is an error, so the message is
// retried later rather than crawled blind.
func (f *Fetcher) allowed(ctx context.Context, u *url.URL, retries int) (bool, error) {
	f.mu.Lock()
	r, ok := f.robots[u.Host]
	f.mu.Unlock()
	if !ok {
		var err error
		r, err = f.loadRobots(ctx, u, retries)
		if err != nil {
			return false, err
		}
		f.mu.Lock()
		f.robots[u.Host] = r
		f.mu.Unlock()
	}
	return r.allows(u.EscapedPath()), nil
}

func (f *Fetcher) loadRobots(ctx context.Context, u *url.URL, retries int) (*robotsRules, error) {
	robotsURL := (&url.URL{Scheme: u.Scheme, Host: u.Host, Path: "/robots.txt"}).String()
	resp, err := f.get(ctx, robotsURL, nil, retries)
	if err != nil {
		var he *HTTPError
		if errors.As(err, &he) && he.Status >= 400 && he.Status < 500 {
			return &robotsRules{}, nil
		}
		return nil, fmt.Errorf("robots.txt of %s: %w", u.Host, err)
	}
	return parseRobots(resp.Body, "citecrawl"), nil
}

// parseRobots reads the group for agent (matched case-insensitively as a
// substring of the User-agent line), or else the * group.
func parseRobots(body []byte, agent string) *robotsRules {
	var own, star *robotsRules
	var current []*robotsRules // groups the current record applies to
	inRules := false
	sc := bufio.NewScanner(bytes.NewReader(body))
	for sc.Scan() {
		line := sc.Text()
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		key, val, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		key = strings.ToLower(strings.TrimSpace(key))
		val = strings.TrimSpace(val)
		switch key {
		case "user-agent":
			if inRules {
				current, inRules = nil, false
			}
			ua := strings.ToLower(val)
			switch {
			case ua == "*":
				if star == nil {
					star = &robotsRules{}
				}
				current = append(current, star)
			case strings.Contains(agent, ua) || strings.Contains(ua, agent):
				if own == nil {
					own = &robotsRules{}
				}
				current = append(current, own)
			default:
				current = append(current, &robotsRules{}) // someone else's group
			}
		case "allow", "disallow":
			inRules = true
			if val == "" {
				continue // "Disallow:" with nothing allows all
			}
			for _, g := range current {
				g.rules = append(g.rules, robotsRule{allow: key == "allow", prefix: val})
			}
		case "crawl-delay":
			inRules = true
			if s, err := strconv.ParseFloat(val, 64); err == nil && s > 0 {
				for _, g := range current {
					g.crawlDelay = time.Duration(s * float64(time.Second))
				}
			}
		}
	}
	switch {
	case own != nil:
		return own
	case star != nil:
		return star
	default:
		return &robotsRules{}
	}
}

// allows applies the longest matching rule; Allow wins a tie. Patterns
// support * and a trailing $ as in RFC 9309.
func (r *robotsRules) allows(path string) bool {
	if path == "" {
		path = "/"
	}
	best, allow := -1, true
	for _, rule := range r.rules {
		if robotsMatch(rule.prefix, path) {
			n := len(rule.prefix)
			if n > best || (n == best && rule.allow) {
				best, allow = n, rule.allow
			}
		}
	}
	return allow
}

func robotsMatch(pattern, path string) bool {
	anchored := strings.HasSuffix(pattern, "$")
	pattern = strings.TrimSuffix(pattern, "$")
	parts := strings.Split(pattern, "*")
	if !strings.HasPrefix(path, parts[0]) {
		return false
	}
	pos := len(parts[0])
	for _, p := range parts[1:] {
		i := strings.Index(path[pos:], p)
		if i < 0 {
			return false
		}
		pos += i + len(p)
	}
	if anchored {
		if len(parts) == 1 {
			return pos == len(path)
		}
		return strings.HasSuffix(path, parts[len(parts)-1])
	}
	return true
}
