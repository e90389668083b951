// Command collycrawler is the reference crawler: Colly v2.3.0 with
// parallelism 8, fetching a hub and every record page it links and reading
// each page's title. scripts/ingestbench runs it beside citecrawl. It is a
// module of its own so that citecrawl does not depend on Colly.
//
//	collycrawler http://127.0.0.1:PORT/citations/<uuid>
package main

import (
	"fmt"
	"net/url"
	"os"
	"sync/atomic"

	"github.com/gocolly/colly/v2"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: collycrawler HUB_URL")
		os.Exit(2)
	}
	hub, err := url.Parse(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, "collycrawler:", err)
		os.Exit(2)
	}
	c := colly.NewCollector(colly.Async(true), colly.AllowedDomains(hub.Hostname()))
	if err := c.Limit(&colly.LimitRule{DomainGlob: "*", Parallelism: 8}); err != nil {
		fmt.Fprintln(os.Stderr, "collycrawler:", err)
		os.Exit(1)
	}
	var pages, titled, failed atomic.Int64
	c.OnResponse(func(*colly.Response) { pages.Add(1) })
	c.OnError(func(r *colly.Response, err error) {
		failed.Add(1)
		fmt.Fprintln(os.Stderr, "collycrawler:", r.Request.URL, err)
	})
	// The hub links every record page under /pith/.
	c.OnHTML(`a[href^="/pith/"]`, func(e *colly.HTMLElement) {
		_ = e.Request.Visit(e.Attr("href"))
	})
	c.OnHTML("title, h1", func(e *colly.HTMLElement) {
		if e.Text != "" {
			titled.Add(1)
		}
	})
	if err := c.Visit(hub.String()); err != nil {
		fmt.Fprintln(os.Stderr, "collycrawler:", err)
		os.Exit(1)
	}
	c.Wait()
	if failed.Load() > 0 || titled.Load() == 0 {
		os.Exit(1)
	}
	fmt.Println(pages.Load())
}
