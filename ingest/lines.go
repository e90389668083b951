package ingest

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	"github.com/PuerkitoBio/goquery"
	"golang.org/x/net/html"
	"golang.org/x/net/html/charset"
)

// Line is one line of a page as a reader sees it, with the links on it.
// Parsing pages as lines keyed on label texts keeps the parsers
// independent of markup and class names, which are not known and change.
type Line struct {
	Text  string
	Links []Link
}

// Link is an anchor on a line.
type Link struct {
	Text string
	Href string
}

// blockTags end the current line: anything that a browser lays out as a
// block or a row.
var blockTags = map[string]bool{
	"address": true, "article": true, "aside": true, "blockquote": true, "br": true, "dd": true,
	"details": true, "dialog": true, "div": true, "dl": true, "dt": true, "fieldset": true,
	"figcaption": true, "figure": true, "footer": true, "form": true, "h1": true, "h2": true,
	"h3": true, "h4": true, "h5": true, "h6": true, "header": true, "hr": true, "li": true,
	"main": true, "nav": true, "ol": true, "p": true, "pre": true, "section": true,
	"summary": true, "table": true, "tbody": true, "td": true, "tfoot": true, "th": true,
	"thead": true, "tr": true, "ul": true, "body": true, "html": true, "caption": true,
}

var skipTags = map[string]bool{"script": true, "style": true, "noscript": true, "template": true, "head": true, "svg": true}

// ParseHTML reads an HTML document in the charset it declares (in
// contentType, which may be empty, or in a <meta> tag). Undeclared bytes
// that are valid UTF-8 are read as UTF-8; anything invalid is replaced.
func ParseHTML(body []byte, contentType string) (*goquery.Document, error) {
	enc, name, certain := charset.DetermineEncoding(body, contentType)
	if !certain && utf8.Valid(body) || name == "utf-8" {
		return goquery.NewDocumentFromReader(bytes.NewReader(fixUTF8(body)))
	}
	b, err := io.ReadAll(enc.NewDecoder().Reader(bytes.NewReader(body)))
	if err != nil {
		return nil, fmt.Errorf("decoding page as %s: %w", name, err)
	}
	return goquery.NewDocumentFromReader(bytes.NewReader(fixUTF8(b)))
}

func fixUTF8(b []byte) []byte {
	if utf8.Valid(b) {
		return b
	}
	return []byte(strings.ToValidUTF8(string(b), "\uFFFD"))
}

// Lines flattens a document into non-empty lines of text, in reading order.
func Lines(doc *goquery.Document) []Line {
	var w lineWriter
	for _, n := range doc.Nodes {
		w.walk(n)
	}
	w.flush()
	return w.lines
}

// TextLines splits plain text (a page as copied by a reader) into Lines.
func TextLines(text string) []Line {
	var out []Line
	for _, l := range strings.Split(text, "\n") {
		if t := normaliseSpace(l); t != "" {
			out = append(out, Line{Text: t})
		}
	}
	return out
}

type lineWriter struct {
	lines []Line
	cur   strings.Builder
	links []Link
}

func (w *lineWriter) walk(n *html.Node) {
	switch n.Type {
	case html.TextNode:
		w.cur.WriteString(n.Data)
		return
	case html.ElementNode:
		if skipTags[n.Data] {
			return
		}
		if blockTags[n.Data] {
			w.flush()
			defer w.flush()
		}
		if n.Data == "a" {
			start := w.cur.Len()
			for c := n.FirstChild; c != nil; c = c.NextSibling {
				w.walk(c)
			}
			href := attr(n, "href")
			if href != "" {
				w.links = append(w.links, Link{Text: normaliseSpace(w.cur.String()[min(start, w.cur.Len()):]), Href: href})
			}
			return
		}
	}
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		w.walk(c)
	}
}

func (w *lineWriter) flush() {
	t := normaliseSpace(w.cur.String())
	if t != "" {
		w.lines = append(w.lines, Line{Text: t, Links: w.links})
	}
	w.cur.Reset()
	w.links = nil
}

func attr(n *html.Node, key string) string {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val
		}
	}
	return ""
}

// normaliseSpace folds runs of white space (including no-break spaces) to
// one space and trims the ends. Most text is so already (a hub page's
// every line and link goes through here), and is given back as it is.
func normaliseSpace(s string) string {
	if normalSpaced(s) {
		return s
	}
	return strings.Join(strings.FieldsFunc(s, isSpace), " ")
}

// isSpace is the white space normaliseSpace folds.
func isSpace(r rune) bool {
	return r == ' ' || r == '\t' || r == '\n' || r == '\r' || r == '\f' || r == '\u00a0' || r == '\u2009' || r == '\u202f'
}

// normalSpaced says whether normaliseSpace would give s back: no white
// space at either end, and none but single plain spaces between words.
// Runes are read as strings.FieldsFunc reads them (a byte that is not
// UTF-8 is one rune that is not a space).
func normalSpaced(s string) bool {
	space := true // at the start as after a space: a space there is not normal
	for i := 0; i < len(s); {
		r, n := rune(s[i]), 1
		if r >= utf8.RuneSelf {
			r, n = utf8.DecodeRuneInString(s[i:])
		}
		i += n
		if !isSpace(r) {
			space = false
			continue
		}
		if space || r != ' ' {
			return false
		}
		space = true
	}
	return !space || s == ""
}
