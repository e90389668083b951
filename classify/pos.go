package classify

import (
	"slices"
	"strings"
	"sync"

	"github.com/jdkato/prose/v2"
)

// posWindow is how many words either side of a cue's word the tagger
// sees: enough for "was used by" or "we use", and short, because tagging
// costs about 35 µs for 6 words but 230 µs for a 35-word sentence.
const posWindow = 4

// tagger tags the words around a cue with prose's averaged-perceptron
// part-of-speech model. The model (about 0.4 s to load) is loaded once,
// on first use, and only by rules that have "pos:" cues.
type tagger struct {
	once  sync.Once
	model *prose.Model
}

func (t *tagger) load() *prose.Model {
	t.once.Do(func() {
		doc, _ := prose.NewDocument("", prose.WithSegmentation(false), prose.WithExtraction(false))
		t.model = doc.Model
	})
	return t.model
}

// tagAt returns the tag prose gives the word at text[start:end], tagging
// a window of words around it rather than the whole sentence. text is the
// lower-cased sentence the cues are matched in.
func (t *tagger) tagAt(text string, start, end int) string {
	before := wordsBefore(text, start, posWindow)
	var after []string
	for w := range strings.FieldsSeq(text[end:]) { // only as far as the window
		if len(after) == posWindow {
			break
		}
		after = append(after, w)
	}
	offset := len(before)
	window := strings.Join(slices.Concat(before, []string{text[start:end]}, after), " ")
	doc, err := prose.NewDocument(window, prose.WithSegmentation(false), prose.WithExtraction(false), prose.UsingModel(t.load()))
	if err != nil {
		return ""
	}
	toks := doc.Tokens()
	word := text[start:end]
	// The tokenizer may split words further ("don't"); find the cue's word
	// from the expected position on.
	for i := min(offset, len(toks)); i < len(toks); i++ {
		if toks[i].Text == word {
			return toks[i].Tag
		}
	}
	return ""
}
