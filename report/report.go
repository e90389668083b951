// Package report turns a hub's sink output into the report people read:
// the distribution of roles, polarities and pluralism categories, overall
// and by year, beside the hub's own published aggregates, with example
// citing sentences and charts as inline SVG.
package report

import (
	"context"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"maps"
	"slices"
	"sort"
	"strings"

	"github.com/citecrawl/citecrawl/record"
	"github.com/citecrawl/citecrawl/sink"
)

// Report is one hub's report.
type Report struct {
	Hub        record.Hub                `json:"hub"`
	Records    int                       `json:"records"`
	Gone       int                       `json:"gone"`
	Roles      map[string]int            `json:"roles"`
	Polarities map[string]int            `json:"polarities"`
	Pluralism  map[string]int            `json:"pluralism"`
	ByYear     map[string]map[string]int `json:"roles_by_year"`
	Published  *record.HubCounts         `json:"published,omitempty"`
	Examples   map[string][]Example      `json:"examples"`
	// MinConfidence and Under: how many records' role, polarity and
	// pluralism tags are less confident than MinConfidence.
	MinConfidence float64        `json:"min_confidence,omitempty"`
	Under         map[string]int `json:"under_min_confidence,omitempty"`
}

// Example is a citing sentence shown for a role.
type Example struct {
	Paper string `json:"paper"`
	Text  string `json:"text"`
}

const examplesPerRole = 3

// Build reads the latest version of every record of one hub (its id, as
// ingest.HubID gives it) from what a sink wrote. Its counts are
// the sink's summary of those records (sink.Summarise); roles by year and
// the example sentences are the report's own. Tags less confident than
// minConfidence are counted (Under), not left out.
func Build(ctx context.Context, rd sink.Reader, hub string, minConfidence float64) (*Report, error) {
	latest := map[string]*record.Record{}
	var order []string
	err := rd.Records(ctx, func(r *record.Record) error {
		if _, seen := latest[r.ID]; !seen {
			order = append(order, r.ID)
		}
		latest[r.ID] = r
		return nil
	}, sink.OfHub(hub))
	if err != nil {
		return nil, err
	}
	if len(order) == 0 {
		return nil, fmt.Errorf("no records for hub %q", hub)
	}
	rep := &Report{ByYear: map[string]map[string]int{}, Examples: map[string][]Example{}, MinConfidence: minConfidence}
	var h record.Hub
	var published *record.HubCounts
	tags := make(map[string]sink.Tags, len(latest))
	for _, id := range order {
		r := latest[id]
		h = r.Hub
		if r.Hub.Published != nil {
			published = r.Hub.Published
		}
		t := sink.TagsOf(r)
		tags[id] = t
		if r.Gone {
			continue
		}
		for _, tag := range r.Under(minConfidence) {
			if rep.Under == nil {
				rep.Under = map[string]int{}
			}
			rep.Under[tag]++
		}
		if rep.ByYear[t.Year] == nil {
			rep.ByYear[t.Year] = map[string]int{}
		}
		rep.ByYear[t.Year][t.Role]++
		for _, c := range r.Contexts {
			if len(rep.Examples[c.Role]) < examplesPerRole {
				rep.Examples[c.Role] = append(rep.Examples[c.Role], Example{Paper: r.Paper.Title, Text: c.Text})
			}
		}
	}
	h.Published = published
	sum := sink.Summarise(h, tags)
	rep.Hub, rep.Published = sum.Hub, sum.Published
	rep.Records, rep.Gone = sum.Records, sum.Gone
	rep.Roles, rep.Polarities, rep.Pluralism = sum.Roles, sum.Polarities, sum.Pluralism
	return rep, nil
}

// Write renders the report as md, html or json.
func (r *Report) Write(w io.Writer, format string) error {
	switch format {
	case "json":
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(r)
	case "md", "markdown":
		return r.markdown(w)
	case "html":
		return r.html(w)
	default:
		return fmt.Errorf("report format %q: want md, html or json", format)
	}
}

// dist is a distribution in a fixed label order, then any other labels.
type dist struct {
	title  string
	counts map[string]int
	order  []string
}

func (r *Report) dists() []dist {
	return []dist{
		{"Citation roles", r.Roles, record.Roles},
		{"Polarities", r.Polarities, record.Polarities},
		{"Pluralism categories", r.Pluralism, record.PluralismCategories},
	}
}

func (d dist) rows() [][2]any {
	var out [][2]any
	seen := map[string]bool{}
	for _, l := range d.order {
		seen[l] = true
		if d.counts[l] > 0 {
			out = append(out, [2]any{l, d.counts[l]})
		}
	}
	var rest []string
	for l := range d.counts {
		if !seen[l] {
			rest = append(rest, l)
		}
	}
	sort.Strings(rest)
	for _, l := range rest {
		out = append(out, [2]any{l, d.counts[l]})
	}
	return out
}

func (r *Report) years() []string {
	ys := make([]string, 0, len(r.ByYear))
	for y := range r.ByYear {
		ys = append(ys, y)
	}
	sort.Strings(ys)
	return ys
}

// underLine says how many tags fall under the minimum confidence.
func (r *Report) underLine() string {
	return fmt.Sprintf("Tags less confident than %g: role %d, polarity %d, pluralism %d of %d papers.",
		r.MinConfidence, r.Under["role"], r.Under["polarity"], r.Under["pluralism"], r.Records)
}

func pct(n, total int) float64 {
	if total == 0 {
		return 0
	}
	return 100 * float64(n) / float64(total)
}

func (r *Report) markdown(w io.Writer) error {
	fmt.Fprintf(w, "# %s\n\nHub %s · %d citing papers", r.Hub.Title, r.Hub.URL, r.Records)
	if r.Gone > 0 {
		fmt.Fprintf(w, " (%d no longer listed)", r.Gone)
	}
	fmt.Fprint(w, "\n\n")
	if r.MinConfidence > 0 {
		fmt.Fprintf(w, "%s\n\n", r.underLine())
	}
	for _, d := range r.dists() {
		fmt.Fprintf(w, "## %s\n\n| label | papers | share |\n|---|---:|---:|\n", d.title)
		for _, row := range d.rows() {
			fmt.Fprintf(w, "| %s | %d | %.0f%% |\n", row[0], row[1], pct(row[1].(int), r.Records))
		}
		fmt.Fprintln(w)
	}
	fmt.Fprint(w, "## Roles by year\n\n| year |")
	for _, role := range record.Roles {
		fmt.Fprintf(w, " %s |", role)
	}
	fmt.Fprint(w, "\n|---|"+strings.Repeat("---:|", len(record.Roles))+"\n")
	for _, y := range r.years() {
		fmt.Fprintf(w, "| %s |", y)
		for _, role := range record.Roles {
			fmt.Fprintf(w, " %d |", r.ByYear[y][role])
		}
		fmt.Fprintln(w)
	}
	if p := r.Published; p != nil {
		fmt.Fprintf(w, "\n## What the hub publishes\n\n%s\n", r.publishedLine())
		for _, name := range slices.Sorted(maps.Keys(p.Facets)) {
			fmt.Fprintf(w, "\n- %s: %s", name, pairs(p.Facets[name]))
		}
		fmt.Fprintln(w)
	}
	fmt.Fprint(w, "\n## Example citing sentences\n")
	for _, role := range record.Roles {
		if len(r.Examples[role]) == 0 {
			continue
		}
		fmt.Fprintf(w, "\n### %s\n\n", role)
		for _, e := range r.Examples[role] {
			fmt.Fprintf(w, "- %s — *%s*\n", e.Text, e.Paper)
		}
	}
	return nil
}

// publishedLine sets the hub's own figures beside citecrawl's.
func (r *Report) publishedLine() string {
	p := r.Published
	line := fmt.Sprintf("%d citing papers", p.CitingPapers)
	if p.BackgroundPercent != nil {
		line += fmt.Sprintf("; %d%% of classified citations as background (citecrawl: %.0f%% background)", *p.BackgroundPercent, pct(r.Roles[record.RoleBackground], r.Records))
	}
	return line + "."
}

func pairs(m map[string]int) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf("%s %d", k, m[k]))
	}
	return strings.Join(parts, ", ")
}

// barChart is a horizontal bar chart as inline SVG: no script, no network.
func barChart(rows [][2]any, total int) string {
	const rowH, labelW, barW = 22, 150, 320
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" role="img">`, labelW+barW+60, rowH*len(rows)+4)
	for i, row := range rows {
		n := row[1].(int)
		y := i*rowH + 2
		w := int(float64(barW) * pct(n, total) / 100)
		fmt.Fprintf(&b, `<text x="0" y="%d" font-size="13" dominant-baseline="middle">%s</text>`, y+rowH/2, html.EscapeString(row[0].(string)))
		fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%d" height="%d" fill="#4a7bb7"/>`, labelW, y+3, max(w, 1), rowH-6)
		fmt.Fprintf(&b, `<text x="%d" y="%d" font-size="12" dominant-baseline="middle">%d</text>`, labelW+w+6, y+rowH/2, n)
	}
	b.WriteString(`</svg>`)
	return b.String()
}

func (r *Report) html(w io.Writer) error {
	esc := html.EscapeString
	fmt.Fprintf(w, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>%s: citecrawl report</title>\n", esc(r.Hub.Title))
	fmt.Fprint(w, "<style>body{font-family:sans-serif;max-width:60em;margin:2em auto;padding:0 1em}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.2em .5em;text-align:right}td:first-child,th:first-child{text-align:left}</style></head><body>\n")
	fmt.Fprintf(w, "<h1>%s</h1>\n<p>Hub <a href=\"%s\">%s</a> · %d citing papers", esc(r.Hub.Title), esc(r.Hub.URL), esc(r.Hub.ID), r.Records)
	if r.Gone > 0 {
		fmt.Fprintf(w, " (%d no longer listed)", r.Gone)
	}
	fmt.Fprint(w, "</p>\n")
	if r.MinConfidence > 0 {
		fmt.Fprintf(w, "<p>%s</p>\n", esc(r.underLine()))
	}
	for _, d := range r.dists() {
		fmt.Fprintf(w, "<h2>%s</h2>\n%s\n", d.title, barChart(d.rows(), r.Records))
	}
	fmt.Fprint(w, "<h2>Roles by year</h2>\n<table><tr><th>year</th>")
	for _, role := range record.Roles {
		fmt.Fprintf(w, "<th>%s</th>", role)
	}
	fmt.Fprint(w, "</tr>\n")
	for _, y := range r.years() {
		fmt.Fprintf(w, "<tr><td>%s</td>", esc(y))
		for _, role := range record.Roles {
			fmt.Fprintf(w, "<td>%d</td>", r.ByYear[y][role])
		}
		fmt.Fprint(w, "</tr>\n")
	}
	fmt.Fprint(w, "</table>\n")
	if p := r.Published; p != nil {
		fmt.Fprintf(w, "<h2>What the hub publishes</h2>\n<p>%s</p>\n<ul>\n", esc(r.publishedLine()))
		for _, name := range slices.Sorted(maps.Keys(p.Facets)) {
			fmt.Fprintf(w, "<li>%s: %s</li>\n", esc(name), esc(pairs(p.Facets[name])))
		}
		fmt.Fprint(w, "</ul>\n")
	}
	fmt.Fprint(w, "<h2>Example citing sentences</h2>\n")
	for _, role := range record.Roles {
		if len(r.Examples[role]) == 0 {
			continue
		}
		fmt.Fprintf(w, "<h3>%s</h3>\n<ul>\n", role)
		for _, e := range r.Examples[role] {
			fmt.Fprintf(w, "<li>%s — <i>%s</i></li>\n", esc(e.Text), esc(e.Paper))
		}
		fmt.Fprint(w, "</ul>\n")
	}
	fmt.Fprint(w, "</body></html>\n")
	return nil
}
