package report

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"

	"github.com/citecrawl/citecrawl/record"
)

func (r *Report) markdown(w io.Writer) error {
	fmt.Fprintf(w, "# %s\n\nHub %s · %d citing papers", r.Hub.Title, r.Hub.URL, r.Records)
	if r.Gone > 0 {
		fmt.Fprintf(w, " (%d no longer listed)", r.Gone)
	}
	fmt.Fprint(w, "\n\n")
	if r.MinConfidence > 0 {
		fmt.Fprintf(w, "%s\n\n", r.underLine())
	}
	if c := r.HubRoles; c != nil {
		fmt.Fprint(w, "## Roles beside the hub's own summary\n\ncitecrawl's six roles mapped to the hub's labels (every role but background is other).\n\n| label | citecrawl | share | hub | share |\n|---|---:|---:|---:|---:|\n")
		for _, l := range c.Labels {
			fmt.Fprintf(w, "| %s | %d | %.0f%% | %d | %.0f%% |\n", l, c.Citecrawl[l], pct(c.Citecrawl[l], sum(c.Citecrawl)), c.Hub[l], pct(c.Hub[l], sum(c.Hub)))
		}
		fmt.Fprintln(w)
	}
	for _, d := range r.dists() {
		fmt.Fprintf(w, "## %s\n\n| label | papers | share |\n|---|---:|---:|\n", d.title)
		for _, row := range d.rows() {
			fmt.Fprintf(w, "| %s | %d | %.0f%% |\n", row[0], row[1], pct(row[1].(int), r.Records))
		}
		fmt.Fprintln(w)
	}
	for _, t := range r.crossedTables() {
		fmt.Fprintf(w, "## %s\n\n| %s |", t.title, t.rowName)
		for _, c := range t.cols {
			fmt.Fprintf(w, " %s |", c)
		}
		fmt.Fprint(w, "\n|---|"+strings.Repeat("---:|", len(t.cols))+"\n")
		for _, row := range t.rows {
			fmt.Fprintf(w, "| %s |", row)
			for _, c := range t.cols {
				fmt.Fprintf(w, " %d |", t.counts[row][c])
			}
			fmt.Fprintln(w)
		}
		fmt.Fprintln(w)
	}
	if p := r.Published; p != nil {
		fmt.Fprintf(w, "## What the hub publishes\n\n%s\n", r.publishedLine())
		for _, name := range slices.Sorted(maps.Keys(p.Facets)) {
			fmt.Fprintf(w, "\n- %s: %s", name, pairs(p.Facets[name]))
		}
		fmt.Fprint(w, "\n\n")
	}
	r.markdownPapers(w)
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

// markdownPapers is the table of citing papers, one table per role.
func (r *Report) markdownPapers(w io.Writer) {
	conf := r.hasConfidence()
	fmt.Fprint(w, "## Citing papers\n")
	for _, g := range r.groups() {
		fmt.Fprintf(w, "\n### %s (%d)\n\n| paper | year | polarity | pluralism |", g.role, len(g.papers))
		if conf {
			fmt.Fprint(w, " confidence |")
		}
		fmt.Fprint(w, " citing sentence | section |\n|---|---|---|---|")
		if conf {
			fmt.Fprint(w, "---:|")
		}
		fmt.Fprint(w, "---|---|\n")
		for _, p := range g.papers {
			title := mdCell(p.Title)
			if p.URL != "" {
				title = fmt.Sprintf("[%s](%s)", title, p.URL)
			}
			fmt.Fprintf(w, "| %s | %s | %s | %s |", title, p.Year, p.Polarity, p.Pluralism)
			if conf {
				fmt.Fprintf(w, " %s |", confidenceText(p.Confidence))
			}
			fmt.Fprintf(w, " %s | %s |\n", mdCell(sentenceText(p)), mdCell(p.Section))
		}
	}
}

// mdCell keeps a value inside its table cell.
func mdCell(s string) string {
	return strings.NewReplacer("|", `\|`, "\n", " ").Replace(s)
}

// group is the papers of one role, in the report's order.
type group struct {
	role   string
	papers []Paper
}

func (r *Report) groups() []group {
	var out []group
	for _, p := range r.Papers {
		if len(out) == 0 || out[len(out)-1].role != p.Role {
			out = append(out, group{role: p.Role})
		}
		out[len(out)-1].papers = append(out[len(out)-1].papers, p)
	}
	return out
}

func confidenceText(c *float64) string {
	if c == nil {
		return ""
	}
	return fmt.Sprintf("%.2f", *c)
}

// sentenceText is the paper's best citing sentence, or says why there is
// none.
func sentenceText(p Paper) string {
	if p.Sentence != "" {
		return p.Sentence
	}
	if p.RoleSource == record.RoleSourceSummary {
		return "(no citing sentence known: role from the paper's summary)"
	}
	return "(no citing sentence known)"
}

func pairs(m map[string]int) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf("%s %d", k, m[k]))
	}
	return strings.Join(parts, ", ")
}
