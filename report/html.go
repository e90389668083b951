package report

import (
	"fmt"
	"html"
	"io"
	"maps"
	"slices"
	"strings"

	"github.com/citecrawl/citecrawl/record"
)

// The HTML report is one file a researcher can mail: styles inline, charts
// as inline SVG, no script, nothing fetched. The table of citing papers is
// "sorted" by being written in order: grouped by role, newest first.

const style = `body{font-family:system-ui,sans-serif;max-width:72em;margin:2em auto;padding:0 1em;color:#222;line-height:1.4}
h1{margin-bottom:.2em}h2{margin-top:1.6em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:.25em .5em;text-align:right;vertical-align:top}
td:first-child,th:first-child{text-align:left}
.grid{display:flex;flex-wrap:wrap;gap:0 2em}.grid>div{flex:1 1 20em}
table.papers{width:100%}table.papers td,table.papers th{text-align:left}table.papers td.num{text-align:right}
table.papers tbody th{background:#eef2f8;font-size:1.05em}table.papers td:first-child{width:28%}
table.papers .sentence{width:45%}table.papers .section{color:#555;font-size:.9em}
.muted{color:#666}.legend span{display:inline-block;margin-right:1em}.legend i{display:inline-block;width:.9em;height:.9em;margin-right:.3em;vertical-align:-.1em}`

// colours of labels in charts; roles, polarities and pluralism categories
// keep theirs in every chart.
var colours = map[string]string{
	record.RoleBackground: "#8da0cb", record.RoleUses: "#66c2a5", record.RoleCompares: "#fc8d62",
	record.RoleMotivation: "#e78ac3", record.RoleExtends: "#a6d854", record.RoleFuture: "#ffd92f",
	record.PolaritySupporting: "#4daf4a", record.PolarityContrasting: "#e41a1c", record.PolarityNeutral: "#bbbbbb",
	record.PluralismOverton: "#1b9e77", record.PluralismSteerable: "#d95f02", record.PluralismDistributional: "#7570b3",
	record.PluralismMultiObjective: "#e7298a", record.PluralismTradeoffSteerable: "#66a61e", record.PluralismJury: "#e6ab02",
	record.PluralismNone: "#cccccc", "other": "#fc8d62", "citecrawl": "#4a7bb7", "hub": "#f0a040",
}

func colour(label string) string {
	if c, ok := colours[label]; ok {
		return c
	}
	return "#999999"
}

var esc = html.EscapeString

func (r *Report) html(w io.Writer) error {
	fmt.Fprintf(w, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width\">\n<title>%s: citecrawl report</title>\n<style>%s</style></head><body>\n", esc(r.Hub.Title), style)
	fmt.Fprintf(w, "<h1>%s</h1>\n<p>Hub <a href=\"%s\">%s</a> · %d citing papers", esc(r.Hub.Title), esc(r.Hub.URL), esc(r.Hub.ID), r.Records)
	if r.Gone > 0 {
		fmt.Fprintf(w, " (%d no longer listed, left out)", r.Gone)
	}
	fmt.Fprint(w, " · <a href=\"#papers\">the citing papers</a></p>\n")
	if r.MinConfidence > 0 {
		fmt.Fprintf(w, "<p>%s</p>\n", esc(r.underLine()))
	}

	if c := r.HubRoles; c != nil {
		fmt.Fprint(w, "<h2>Roles beside the hub's own summary</h2>\n<p class=\"muted\">citecrawl's six roles mapped to the hub's labels: every role but background is <i>other</i>. Shares of each source's classified citations.</p>\n")
		fmt.Fprint(w, legend([]string{"citecrawl", "hub"}), comparisonChart(c), "\n")
	}
	if p := r.Published; p != nil {
		fmt.Fprintf(w, "<p>The hub publishes: %s</p>\n<ul>\n", esc(r.publishedLine()))
		for _, name := range slices.Sorted(maps.Keys(p.Facets)) {
			fmt.Fprintf(w, "<li>%s: %s</li>\n", esc(name), esc(pairs(p.Facets[name])))
		}
		fmt.Fprint(w, "</ul>\n")
	}

	fmt.Fprint(w, "<div class=\"grid\">\n")
	for _, d := range r.dists() {
		fmt.Fprintf(w, "<div><h2>%s</h2>\n%s</div>\n", d.title, barChart(d.rows(), r.Records))
	}
	fmt.Fprint(w, "</div>\n")

	r.htmlPapers(w)

	for _, t := range r.crossedTables() {
		fmt.Fprintf(w, "<h2>%s</h2>\n", t.title)
		fmt.Fprint(w, legend(t.cols), stackedChart(t), "\n")
		writeCrossed(w, t)
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

func writeCrossed(w io.Writer, t crossed) {
	fmt.Fprintf(w, "<table><tr><th>%s</th>", esc(t.rowName))
	for _, c := range t.cols {
		fmt.Fprintf(w, "<th>%s</th>", esc(c))
	}
	fmt.Fprint(w, "</tr>\n")
	for _, row := range t.rows {
		fmt.Fprintf(w, "<tr><td>%s</td>", esc(row))
		for _, c := range t.cols {
			fmt.Fprintf(w, "<td>%d</td>", t.counts[row][c])
		}
		fmt.Fprint(w, "</tr>\n")
	}
	fmt.Fprint(w, "</table>\n")
}

// htmlPapers is the table of every citing paper: one tbody per role,
// headed by the role and its count, newest first within it.
func (r *Report) htmlPapers(w io.Writer) {
	conf := r.hasConfidence()
	cols := 6
	if conf {
		cols++
	}
	fmt.Fprintf(w, "<h2 id=\"papers\">Citing papers</h2>\n<p class=\"muted\">Grouped by role, newest first. The sentence is the one that speaks most clearly for the role; a role decided from the paper's summary has none.</p>\n")
	fmt.Fprint(w, "<table class=\"papers\"><thead><tr><th>paper</th><th>year</th><th>role</th><th>polarity</th><th>pluralism</th>")
	if conf {
		fmt.Fprint(w, "<th>confidence</th>")
	}
	fmt.Fprint(w, "<th>best citing sentence</th></tr></thead>\n")
	for _, g := range r.groups() {
		fmt.Fprintf(w, "<tbody><tr><th colspan=\"%d\" id=\"role-%s\">%s (%d)</th></tr>\n", cols, esc(g.role), esc(g.role), len(g.papers))
		for _, p := range g.papers {
			title := esc(p.Title)
			if p.URL != "" {
				title = fmt.Sprintf("<a href=\"%s\">%s</a>", esc(p.URL), title)
			}
			role := esc(p.Role)
			if p.RoleSource == record.RoleSourceSummary {
				role += " <span class=\"muted\">(summary)</span>"
			}
			fmt.Fprintf(w, "<tr class=\"paper\" id=\"%s\"><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td>",
				esc(p.ID), title, esc(p.Year), role, esc(p.Polarity), esc(p.Pluralism))
			if conf {
				fmt.Fprintf(w, "<td class=\"num\">%s</td>", confidenceText(p.Confidence))
			}
			fmt.Fprintf(w, "<td class=\"sentence\">%s", esc(sentenceText(p)))
			if p.Section != "" {
				fmt.Fprintf(w, "<br><span class=\"section\">§ %s</span>", esc(p.Section))
			}
			fmt.Fprint(w, "</td></tr>\n")
		}
		fmt.Fprint(w, "</tbody>\n")
	}
	fmt.Fprint(w, "</table>\n")
}

// barChart is a horizontal bar chart as inline SVG: no script, no network.
func barChart(rows [][2]any, total int) string {
	const rowH, labelW, barW = 22, 120, 160
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" role="img">`, labelW+barW+60, rowH*len(rows)+4)
	for i, row := range rows {
		label, n := row[0].(string), row[1].(int)
		y := i*rowH + 2
		w := int(float64(barW) * pct(n, total) / 100)
		fmt.Fprintf(&b, `<text x="0" y="%d" font-size="13" dominant-baseline="middle">%s</text>`, y+rowH/2, esc(label))
		fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%d" height="%d" fill="%s"><title>%s: %d (%.0f%%)</title></rect>`, labelW, y+3, max(w, 1), rowH-6, colour(label), esc(label), n, pct(n, total))
		fmt.Fprintf(&b, `<text x="%d" y="%d" font-size="12" dominant-baseline="middle">%d</text>`, labelW+w+6, y+rowH/2, n)
	}
	b.WriteString(`</svg>`)
	return b.String()
}

// comparisonChart draws, for each of the hub's labels, citecrawl's share
// above the hub's.
func comparisonChart(c *RoleComparison) string {
	const barH, gap, labelW, barW = 18, 12, 110, 320
	ours, theirs := sum(c.Citecrawl), sum(c.Hub)
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" role="img">`, labelW+barW+120, len(c.Labels)*(2*barH+gap)+4)
	for i, l := range c.Labels {
		y := i*(2*barH+gap) + 2
		fmt.Fprintf(&b, `<text x="0" y="%d" font-size="13" dominant-baseline="middle">%s</text>`, y+barH, esc(l))
		for j, s := range []struct {
			name     string
			n, total int
		}{{"citecrawl", c.Citecrawl[l], ours}, {"hub", c.Hub[l], theirs}} {
			p := pct(s.n, s.total)
			w := int(float64(barW) * p / 100)
			by := y + j*barH
			fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%d" height="%d" fill="%s"><title>%s, %s: %d of %d</title></rect>`, labelW, by+1, max(w, 1), barH-2, colour(s.name), s.name, esc(l), s.n, s.total)
			fmt.Fprintf(&b, `<text x="%d" y="%d" font-size="12" dominant-baseline="middle">%.0f%% (%d of %d)</text>`, labelW+w+6, by+barH/2, p, s.n, s.total)
		}
	}
	b.WriteString(`</svg>`)
	return b.String()
}

// stackedChart draws each row of a crossed table as one bar split into its
// columns' shares, with the row's count at its end.
func stackedChart(t crossed) string {
	const rowH, labelW, barW = 24, 110, 420
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" role="img">`, labelW+barW+60, rowH*len(t.rows)+4)
	for i, row := range t.rows {
		y := i*rowH + 2
		total := sum(t.counts[row])
		fmt.Fprintf(&b, `<text x="0" y="%d" font-size="13" dominant-baseline="middle">%s</text>`, y+rowH/2, esc(row))
		x := float64(labelW)
		for _, c := range t.cols {
			n := t.counts[row][c]
			if n == 0 {
				continue
			}
			w := float64(barW) * pct(n, total) / 100
			fmt.Fprintf(&b, `<rect x="%.1f" y="%d" width="%.1f" height="%d" fill="%s"><title>%s, %s: %d of %d</title></rect>`, x, y+3, w, rowH-6, colour(c), esc(row), esc(c), n, total)
			x += w
		}
		fmt.Fprintf(&b, `<text x="%d" y="%d" font-size="12" dominant-baseline="middle">%d</text>`, labelW+barW+6, y+rowH/2, total)
	}
	b.WriteString(`</svg>`)
	return b.String()
}

// legend names the colours of a chart's labels.
func legend(labels []string) string {
	var b strings.Builder
	b.WriteString(`<p class="legend">`)
	for _, l := range labels {
		fmt.Fprintf(&b, `<span><i style="background:%s"></i>%s</span>`, colour(l), esc(l))
	}
	b.WriteString("</p>")
	return b.String()
}
