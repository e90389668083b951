package report

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"

	"github.com/citecrawl/citecrawl/record"
)

// hubRecords are the records of a hub that publishes its role summary:
// several years, every role, a paper without citing sentences, a later
// version and a gone paper.
func hubRecords() []record.Record {
	bg := 60
	hub := record.Hub{ID: "hub-2", Title: "A Cited Work", URL: "https://pith.science/citations/hub-2",
		Published: &record.HubCounts{CitingPapers: 12, BackgroundPercent: &bg,
			Facets: map[string]map[string]int{hubRoleFacet: {"background": 6, "other": 4}}}}
	var recs []record.Record
	for i := range 12 {
		role := record.Roles[i%len(record.Roles)]
		r := record.Record{Schema: record.Schema, ID: fmt.Sprint("p", i), Hub: hub,
			Paper: record.Paper{Title: fmt.Sprintf("Paper %02d & <friends>", i), Published: fmt.Sprintf("%d-03-01", 2022+i%3), Arxiv: fmt.Sprintf("2401.%05d", i)},
			Role:  role, RoleSource: record.RoleSourceContext, Polarity: record.Polarities[i%3],
			Pluralism: &record.Pluralism{Primary: record.PluralismCategories[i%7]},
			Contexts: []record.Context{
				{Text: fmt.Sprint("A weak sentence ", i), Section: "Introduction", Role: role, Evidence: []record.Evidence{{Label: role, Weight: 1}}},
				{Text: fmt.Sprint("The telling sentence ", i), Section: "Method / Data", Role: role, Evidence: []record.Evidence{{Label: role, Weight: 3}}},
			},
			FetchedAt: time.Unix(int64(i), 0)}
		if i == 5 {
			r.Contexts, r.RoleSource = nil, record.RoleSourceSummary
		}
		recs = append(recs, r)
	}
	v2 := recs[0]
	v2.Role, v2.Contexts = record.RoleUses, []record.Context{{Text: "We use it.", Role: record.RoleUses}}
	return append(recs, v2, record.Record{Schema: record.Schema, ID: "p11", Hub: hub, Paper: record.Paper{Title: "Paper 11"}, Gone: true})
}

// The table lists every paper the hub still lists, grouped by role in the
// fixed order and newest first within a role, each with its best
// sentence; the hub's role summary is set beside citecrawl's in its labels.
func TestReportTableAndComparison(t *testing.T) {
	_, rd := writeOutput(t, hubRecords())
	rep, err := Build(context.Background(), rd, "hub-2", 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Papers) != rep.Records || rep.Records != 11 {
		t.Fatalf("%d rows for %d records", len(rep.Papers), rep.Records)
	}
	for i := 1; i < len(rep.Papers); i++ {
		a, b := rep.Papers[i-1], rep.Papers[i]
		if rank(record.Roles, a.Role) > rank(record.Roles, b.Role) || a.Role == b.Role && a.Year < b.Year {
			t.Errorf("row %d (%s %s) before row %d (%s %s)", i-1, a.Role, a.Year, i, b.Role, b.Year)
		}
	}
	byID := map[string]Paper{}
	for _, p := range rep.Papers {
		byID[p.ID] = p
	}
	if p := byID["p1"]; p.Sentence != "The telling sentence 1" || p.Section != "Method / Data" || p.URL != "https://arxiv.org/abs/2401.00001" {
		t.Errorf("p1: %+v", p)
	}
	if p := byID["p0"]; p.Role != record.RoleUses || p.Sentence != "We use it." {
		t.Errorf("p0 is not its latest version: %+v", p)
	}
	if p := byID["p5"]; p.Sentence != "" || !strings.Contains(sentenceText(p), "summary") {
		t.Errorf("p5 (role from its summary): %+v", p)
	}
	c := rep.HubRoles
	if c == nil || strings.Join(c.Labels, ",") != "background,other" || c.Hub["background"] != 6 ||
		c.Citecrawl["background"] != rep.Roles[record.RoleBackground] || c.Citecrawl["background"]+c.Citecrawl["other"] != rep.Records {
		t.Errorf("role comparison: %+v (roles %v)", c, rep.Roles)
	}
	if n := rowTotals(rep.PluralismByRole); n[record.RoleUses] != rep.Roles[record.RoleUses] {
		t.Errorf("pluralism by role counts %d uses, roles %d", n[record.RoleUses], rep.Roles[record.RoleUses])
	}
	var md bytes.Buffer
	if err := rep.Write(&md, "md"); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"## Citing papers", "### uses (", "[Paper 01 & <friends>](https://arxiv.org/abs/2401.00001)", "| other | ", "## Polarity by year", "## Pluralism by role"} {
		if !strings.Contains(md.String(), want) {
			t.Errorf("markdown lacks %q", want)
		}
	}
}

// The HTML report, rendered by headless Chromium, logs nothing to the
// console and has one table row per record.
func TestReportRendersInChromium(t *testing.T) {
	chromium := findChromium(t)
	_, rd := writeOutput(t, hubRecords())
	rep, err := Build(context.Background(), rd, "hub-2", 0)
	if err != nil {
		t.Fatal(err)
	}
	var page bytes.Buffer
	if err := rep.Write(&page, "html"); err != nil {
		t.Fatal(err)
	}
	dom, console := render(t, chromium, page.Bytes())
	if len(console) > 0 {
		t.Errorf("console messages:\n%s", strings.Join(console, "\n"))
	}
	doc, err := goquery.NewDocumentFromReader(strings.NewReader(dom))
	if err != nil {
		t.Fatal(err)
	}
	rows := doc.Find("table.papers tr.paper")
	if rows.Length() != rep.Records {
		t.Fatalf("%d table rows, want one per record (%d)", rows.Length(), rep.Records)
	}
	if links := rows.Find("td:first-child a[href]").Length(); links != rep.Records {
		t.Errorf("%d paper links, want %d", links, rep.Records)
	}
	if got := doc.Find("svg").Length(); got < 6 {
		t.Errorf("%d charts, want at least 6", got)
	}
	if doc.Find("script").Length() > 0 {
		t.Error("the report has a script")
	}

	// The check itself sees a page's console errors.
	_, console = render(t, chromium, []byte(`<!DOCTYPE html><p>x</p><script>console.error("deliberate"); notDefined();</script>`))
	if len(console) < 2 {
		t.Errorf("console errors of a broken page not seen: %q", console)
	}
}

// findChromium is Debian's chromium, which .ci/run installs; without it
// the test is skipped, saying so.
func findChromium(t *testing.T) string {
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Skip("chromium is not installed (apt-get install chromium; .ci/run installs it): the HTML report is not rendered")
	return ""
}

// render loads page from a file in headless Chromium and returns the DOM
// after load and the console lines Chromium logged.
func render(t *testing.T, chromium string, page []byte) (dom string, console []string) {
	t.Helper()
	dir := t.TempDir()
	file := filepath.Join(dir, "report.html")
	if err := os.WriteFile(file, page, 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, chromium, "--headless", "--disable-gpu", "--no-sandbox", "--no-first-run",
		"--user-data-dir="+filepath.Join(dir, "profile"), "--enable-logging=stderr", "--v=0", "--dump-dom", "file://"+file)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("chromium: %v\n%s", err, stderr.String())
	}
	for line := range strings.Lines(stderr.String()) {
		if strings.Contains(line, ":CONSOLE") || strings.Contains(line, "Uncaught") {
			console = append(console, strings.TrimSpace(line))
		}
	}
	return stdout.String(), console
}

// The confidence column is shown only when some record carries one.
func TestConfidenceColumnOnlyWhenKnown(t *testing.T) {
	_, rd := writeOutput(t, hubRecords())
	rep, err := Build(context.Background(), rd, "hub-2", 0)
	if err != nil {
		t.Fatal(err)
	}
	render := func() string {
		var b bytes.Buffer
		if err := rep.Write(&b, "html"); err != nil {
			t.Fatal(err)
		}
		return b.String()
	}
	if strings.Contains(render(), "<th>confidence</th>") {
		t.Fatal("a confidence column without any confidence")
	}
	c := 0.83
	rep.Papers[0].Confidence = &c
	if page := render(); !strings.Contains(page, "<th>confidence</th>") || !strings.Contains(page, ">0.83</td>") {
		t.Fatal("no confidence column although a paper has one")
	}
}
