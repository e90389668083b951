package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// `citecrawl contexts` reads a full text through the crawl's own call
// (ingest's CitingSentences): the sentence citing the work, with the entry
// and how it was matched; a work the bibliography lacks is an error.
func TestContextsCommand(t *testing.T) {
	page := filepath.Join(t.TempDir(), "paper.html")
	html := `<html><body><section id="S1" class="ltx_section"><h2 class="ltx_title ltx_title_section">1 Introduction</h2>
<div id="S1.p1" class="ltx_para"><p class="ltx_p">Models serve people with different values. We use the roadmap of <cite class="ltx_cite">[<a href="#bib.bib1" class="ltx_ref">1</a>]</cite> to organise our study.</p></div></section>
<section id="bib" class="ltx_bibliography"><ul class="ltx_biblist"><li id="bib.bib1" class="ltx_bibitem"><span class="ltx_tag ltx_tag_bibitem">[1]</span><span class="ltx_bibblock">T. Sorensen and others. “A Roadmap to Pluralistic Alignment,” 2024. arXiv:2402.05070.</span></li></ul></section></body></html>`
	if err := os.WriteFile(page, []byte(html), 0o644); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := runCLI(t, "contexts", "--html", page, "--cited", "2402.05070")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var line struct {
		Text, Entry, Method, Marker string
	}
	if err := json.Unmarshal([]byte(stdout), &line); err != nil {
		t.Fatalf("stdout %q: %v", stdout, err)
	}
	if line.Text != "We use the roadmap of [1] to organise our study." || line.Entry != "bib.bib1" || line.Method != "arxiv" || line.Marker != "linked" {
		t.Errorf("context %+v", line)
	}
	if !strings.Contains(stderr, "1 references, 1 linked citations") || !strings.Contains(stderr, "1 contexts") {
		t.Errorf("stderr %q", stderr)
	}
	code, _, stderr = runCLI(t, "contexts", "--html", page, "--cited", "A study of birds and their songs")
	if code != exitFailed || !strings.Contains(stderr, "none of its 1 bibliography entries") {
		t.Errorf("unlisted work: exit %d, %s", code, stderr)
	}
}
