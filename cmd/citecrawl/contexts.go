package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"strings"

	"github.com/rs/zerolog"

	"github.com/citecrawl/citecrawl/ingest"
	"github.com/citecrawl/citecrawl/pipeline"
	"github.com/citecrawl/citecrawl/record"
)

// contextLine is one line of `citecrawl contexts`: a citing sentence and
// the bibliography entry it cites.
type contextLine struct {
	record.Context
	Entry  string  `json:"entry"`
	Label  string  `json:"label"`
	Method string  `json:"method"`
	Score  float64 `json:"score"`
}

func (c cli) contexts(args []string) int {
	fs := flag.NewFlagSet("contexts", flag.ContinueOnError)
	fs.SetOutput(c.stderr)
	src := fs.String("html", "", "LaTeXML full text: a file, or an http(s) URL fetched politely")
	cited := fs.String("cited", "", "the cited work: an arXiv id, a DOI or a title")
	listRefs := fs.Bool("list-refs", false, "print every bibliography entry instead, one JSON line each")
	fallback := fs.Bool("fallback", false, "when the page links no citation, match plain [n] markers (marked \"text\")")
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	if *src == "" || (*cited == "" && !*listRefs) {
		return c.usageError(errors.New("contexts needs --html FILE_OR_URL and --cited ARXIV_ID|DOI|TITLE (or --list-refs)"))
	}
	body, ctype, err := readSource(*src)
	if err != nil {
		fmt.Fprintf(c.stderr, "citecrawl contexts: %v\n", err)
		return exitFailed
	}
	ft, err := ingest.ParseFullText(*src, body, ctype)
	if err != nil {
		fmt.Fprintf(c.stderr, "citecrawl contexts: %v\n", err)
		return exitFailed
	}
	enc := json.NewEncoder(c.stdout)
	enc.SetEscapeHTML(false)
	if *listRefs {
		for _, e := range ft.Refs {
			_ = enc.Encode(e)
		}
		return exitOK
	}
	sp, err := ingest.NewSplitter()
	if err != nil {
		fmt.Fprintf(c.stderr, "citecrawl contexts: %v\n", err)
		return exitFailed
	}
	// The crawl reads full text through the same call.
	found, got := ft.CitingSentences(sp, ingest.ParseCited(*cited), ingest.ContextOptions{TextFallback: *fallback})
	if found.Status == record.FullTextNoMatch {
		fmt.Fprintf(c.stderr, "citecrawl contexts: %s: none of its %d bibliography entries is %q (try --list-refs)\n", *src, len(ft.Refs), *cited)
		return exitFailed
	}
	for _, cx := range got {
		_ = enc.Encode(contextLine{Context: cx, Entry: found.Entry, Label: found.Label, Method: found.Method, Score: found.Score})
	}
	fmt.Fprintf(c.stderr, "%s: %d references, %d linked citations; %q is %s (%s, score %.2f); %d contexts\n",
		*src, found.References, found.LinkedCitations, *cited, found.Entry, found.Method, found.Score, len(got))
	return exitOK
}

// readSource reads a file, or fetches a URL with the polite defaults.
func readSource(src string) ([]byte, string, error) {
	if strings.HasPrefix(src, "http://") || strings.HasPrefix(src, "https://") {
		f := ingest.NewFetcher(pipeline.DefaultConfig().Fetch, zerolog.Nop())
		resp, err := f.Get(context.Background(), src, http.Header{"Accept": {"text/html"}})
		if err != nil {
			return nil, "", err
		}
		return resp.Body, resp.Header.Get("Content-Type"), nil
	}
	b, err := os.ReadFile(src)
	if err != nil {
		return nil, "", fmt.Errorf("reading %s: %w", src, err)
	}
	ctype := ""
	if strings.HasSuffix(src, ".xhtml") {
		ctype = "application/xhtml+xml; charset=utf-8"
	}
	return b, ctype, nil
}
