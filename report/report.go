// Package report turns a hub's sink output into the report people read:
// every citing paper with its tags and its best citing sentence, the
// distribution of roles, polarities and pluralism categories, overall, by
// year and by role, beside the hub's own published role summary, with
// charts as inline SVG. The HTML is one file with no script and nothing
// loaded from the network (html.go); md and json carry the same content.
package report

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"sort"

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
	// PolarityByYear and PluralismByRole count the same records again,
	// crossed: year to polarity, role to pluralism primary.
	PolarityByYear  map[string]map[string]int `json:"polarity_by_year"`
	PluralismByRole map[string]map[string]int `json:"pluralism_by_role"`
	// HubRoles sets citecrawl's roles, mapped to the hub's own labels,
	// beside the role summary the hub publishes (nil when it publishes
	// none).
	HubRoles  *RoleComparison      `json:"hub_roles,omitempty"`
	Published *record.HubCounts    `json:"published,omitempty"`
	Examples  map[string][]Example `json:"examples"`
	// Papers is every citing paper the hub still lists, grouped by role
	// (in record.Roles order), newest first within a role.
	Papers []Paper `json:"papers"`
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

// Paper is one row of the table of citing papers.
type Paper struct {
	ID         string `json:"id"`
	Title      string `json:"title"`
	URL        string `json:"url,omitempty"`
	Year       string `json:"year"`
	Role       string `json:"role"`
	RoleSource string `json:"role_source,omitempty"`
	Polarity   string `json:"polarity"`
	Pluralism  string `json:"pluralism"`
	// Confidence is the classifier's confidence in the role, when the
	// record carries one.
	Confidence *float64 `json:"confidence,omitempty"`
	// Sentence is the citing sentence that speaks most clearly for the
	// role, with its section; empty when the role came from the summary.
	Sentence string `json:"sentence,omitempty"`
	Section  string `json:"section,omitempty"`
}

// RoleComparison is a role distribution in the hub's labels, citecrawl's
// beside the hub's.
type RoleComparison struct {
	Labels    []string       `json:"labels"`
	Citecrawl map[string]int `json:"citecrawl"`
	Hub       map[string]int `json:"hub"`
}

const examplesPerRole = 3

// hubRoleFacet is the facet in which a pith.science hub publishes its own
// role summary; its labels are background and other (TAXONOMY.md).
const hubRoleFacet = "citation-role summary"

// hubRoleLabel maps a citecrawl role to the hub's labels: every role but
// background is "other" (TAXONOMY.md).
func hubRoleLabel(role string) string {
	if role == record.RoleBackground {
		return record.RoleBackground
	}
	return "other"
}

// Build reads the latest version of every record of one hub (its id, as
// ingest.HubID gives it) from what a sink wrote. Its counts are
// the sink's summary of those records (sink.Summarise); the rest is the
// report's own. Tags less confident than minConfidence are counted
// (Under), not left out.
func Build(ctx context.Context, rd sink.Reader, hub string, minConfidence float64) (*Report, error) {
	recs, err := latestRecords(ctx, rd, hub)
	if err != nil {
		return nil, err
	}
	rep := &Report{
		ByYear: map[string]map[string]int{}, PolarityByYear: map[string]map[string]int{},
		PluralismByRole: map[string]map[string]int{}, Examples: map[string][]Example{},
		MinConfidence: minConfidence,
	}
	var h record.Hub
	var published *record.HubCounts
	tags := make(map[string]sink.Tags, len(recs))
	for _, r := range recs {
		h = r.Hub
		if r.Hub.Published != nil {
			published = r.Hub.Published
		}
		t := sink.TagsOf(r)
		tags[r.ID] = t
		if r.Gone {
			continue
		}
		for _, tag := range r.Under(minConfidence) {
			if rep.Under == nil {
				rep.Under = map[string]int{}
			}
			rep.Under[tag]++
		}
		add(rep.ByYear, t.Year, t.Role)
		add(rep.PolarityByYear, t.Year, t.Polarity)
		add(rep.PluralismByRole, t.Role, t.Pluralism)
		for _, c := range r.Contexts {
			if len(rep.Examples[c.Role]) < examplesPerRole {
				rep.Examples[c.Role] = append(rep.Examples[c.Role], Example{Paper: r.Paper.Title, Text: c.Text})
			}
		}
		rep.Papers = append(rep.Papers, paperRow(r, t))
	}
	h.Published = published
	sum := sink.Summarise(h, tags)
	rep.Hub, rep.Published = sum.Hub, sum.Published
	rep.Records, rep.Gone = sum.Records, sum.Gone
	rep.Roles, rep.Polarities, rep.Pluralism = sum.Roles, sum.Polarities, sum.Pluralism
	rep.HubRoles = compareRoles(rep.Roles, rep.Published)
	slices.SortStableFunc(rep.Papers, func(a, b Paper) int {
		return cmp.Or(
			cmp.Compare(rank(record.Roles, a.Role), rank(record.Roles, b.Role)),
			cmp.Compare(yearKey(b.Year), yearKey(a.Year)), // newest first, unknown last
			cmp.Compare(a.Title, b.Title),
		)
	})
	return rep, nil
}

// latestRecords is the one place the report reads records: the latest
// version of each record of the hub, in the order they were first written.
// Any filter of which records a report covers belongs here.
func latestRecords(ctx context.Context, rd sink.Reader, hub string) ([]*record.Record, error) {
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
	out := make([]*record.Record, len(order))
	for i, id := range order {
		out[i] = latest[id]
	}
	return out, nil
}

// yearKey sorts an unknown year before every known one.
func yearKey(y string) string {
	if y == "unknown" {
		return ""
	}
	return y
}

func add(m map[string]map[string]int, row, col string) {
	if m[row] == nil {
		m[row] = map[string]int{}
	}
	m[row][col]++
}

// rank is a label's place in its fixed order; labels outside it come last.
func rank(order []string, label string) int {
	if i := slices.Index(order, label); i >= 0 {
		return i
	}
	return len(order)
}

func paperRow(r *record.Record, t sink.Tags) Paper {
	p := Paper{ID: r.ID, Title: r.Paper.Title, URL: paperURL(r), Year: t.Year, Role: t.Role, RoleSource: t.RoleSource,
		Polarity: t.Polarity, Pluralism: t.Pluralism, Confidence: confidence(r)}
	if p.Title == "" {
		p.Title = "(untitled) " + r.ID
	}
	if c := bestContext(r); c != nil {
		p.Sentence, p.Section = c.Text, c.Section
	}
	return p
}

// paperURL is the paper's own page: its record page, else its arXiv
// abstract.
func paperURL(r *record.Record) string {
	switch {
	case r.Paper.URL != "":
		return r.Paper.URL
	case r.Paper.Arxiv != "":
		return "https://arxiv.org/abs/" + r.Paper.Arxiv
	}
	return ""
}

// bestContext is the citing sentence that speaks most clearly for the
// record's role: of those tagged with that role, the one whose evidence
// for it weighs most; else the first sentence.
func bestContext(r *record.Record) *record.Context {
	var best *record.Context
	bestWeight := -1.0
	for i := range r.Contexts {
		c := &r.Contexts[i]
		if c.Role != r.Role {
			continue
		}
		w := 0.0
		for _, e := range c.Evidence {
			if e.Label == r.Role {
				w += e.Weight
			}
		}
		if w > bestWeight {
			best, bestWeight = c, w
		}
	}
	if best == nil && len(r.Contexts) > 0 {
		best = &r.Contexts[0]
	}
	return best
}

// confidence is the record's calibrated confidence in its role, when it
// carries one (records tagged before confidences existed do not).
func confidence(r *record.Record) *float64 {
	if r.RoleConfidence == 0 {
		return nil
	}
	c := r.RoleConfidence
	return &c
}

// underLine says how many tags fall under the minimum confidence.
func (r *Report) underLine() string {
	return fmt.Sprintf("Tags less confident than %g: role %d, polarity %d, pluralism %d of %d papers.",
		r.MinConfidence, r.Under["role"], r.Under["polarity"], r.Under["pluralism"], r.Records)
}

// hasConfidence tells whether any paper carries a confidence, so the
// column is shown only then.
func (r *Report) hasConfidence() bool {
	return slices.ContainsFunc(r.Papers, func(p Paper) bool { return p.Confidence != nil })
}

// compareRoles maps citecrawl's roles to the hub's labels and sets them
// beside the hub's published role summary.
func compareRoles(roles map[string]int, p *record.HubCounts) *RoleComparison {
	if p == nil || len(p.Facets[hubRoleFacet]) == 0 {
		return nil
	}
	c := &RoleComparison{Citecrawl: map[string]int{}, Hub: p.Facets[hubRoleFacet]}
	for role, n := range roles {
		c.Citecrawl[hubRoleLabel(role)] += n
	}
	labels := map[string]bool{}
	for l := range c.Citecrawl {
		labels[l] = true
	}
	for l := range c.Hub {
		labels[l] = true
	}
	for l := range labels {
		c.Labels = append(c.Labels, l)
	}
	hubOrder := []string{record.RoleBackground, "other"} // as the hub shows them
	slices.SortFunc(c.Labels, func(a, b string) int {
		return cmp.Or(cmp.Compare(rank(hubOrder, a), rank(hubOrder, b)), cmp.Compare(a, b))
	})
	return c
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

// labels are the labels of counts in order, then any others sorted.
func labels(order []string, counts map[string]int) []string {
	var out []string
	seen := map[string]bool{}
	for _, l := range order {
		seen[l] = true
		if counts[l] > 0 {
			out = append(out, l)
		}
	}
	var rest []string
	for l := range counts {
		if !seen[l] {
			rest = append(rest, l)
		}
	}
	sort.Strings(rest)
	return append(out, rest...)
}

func (d dist) rows() [][2]any {
	var out [][2]any
	for _, l := range labels(d.order, d.counts) {
		out = append(out, [2]any{l, d.counts[l]})
	}
	return out
}

// crossed is a table of counts crossed by two labels (year × polarity,
// role × pluralism), with its rows and columns in order.
type crossed struct {
	title, rowName string
	rows, cols     []string
	counts         map[string]map[string]int
}

func (r *Report) crossedTables() []crossed {
	return []crossed{
		{"Roles by year", "year", r.years(r.ByYear), record.Roles, r.ByYear},
		{"Polarity by year", "year", r.years(r.PolarityByYear), record.Polarities, r.PolarityByYear},
		{"Pluralism by role", "role", labels(record.Roles, rowTotals(r.PluralismByRole)), labels(record.PluralismCategories, colTotals(r.PluralismByRole)), r.PluralismByRole},
	}
}

func rowTotals(m map[string]map[string]int) map[string]int {
	out := map[string]int{}
	for row, cols := range m {
		for _, n := range cols {
			out[row] += n
		}
	}
	return out
}

func colTotals(m map[string]map[string]int) map[string]int {
	out := map[string]int{}
	for _, cols := range m {
		for col, n := range cols {
			out[col] += n
		}
	}
	return out
}

func (r *Report) years(m map[string]map[string]int) []string {
	ys := make([]string, 0, len(m))
	for y := range m {
		ys = append(ys, y)
	}
	sort.Strings(ys)
	return ys
}

func pct(n, total int) float64 {
	if total == 0 {
		return 0
	}
	return 100 * float64(n) / float64(total)
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

func sum(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}
