package pipeline

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/citecrawl/citecrawl/ingest"
)

// ErrHubsUnreachable is the error of a run none of whose configured hubs
// could be reached: every one failed because its host's name does not
// resolve or its connection was refused (ingest.UnreachableError), which
// is what a machine without network sees. The run ends at once rather
// than after minutes of redeliveries; its hub tasks are dead letters.
var ErrHubsUnreachable = errors.New("no configured hub can be reached")

// hubWatch follows the configured hubs of one run, in the process that
// runs it, to end the run when every one of them is unreachable. Workers
// of other processes have none and retry as usual.
type hubWatch struct {
	runID string
	mu    sync.Mutex
	last  map[string]error // configured hub URL -> its latest unreachable error, nil while none
}

func newHubWatch(runID string, hubs []string) *hubWatch {
	w := &hubWatch{runID: runID, last: make(map[string]error, len(hubs))}
	for _, h := range hubs {
		w.last[h] = nil
	}
	return w
}

// observe records how a hub task ended (err nil: it was reached) and
// tells whether every configured hub of the run is now unreachable, so
// that its task should be given up rather than retried.
func (w *hubWatch) observe(t Task, err error) bool {
	if w == nil || t.RunID != w.runID || t.Depth != 0 {
		return false
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if _, configured := w.last[t.URL]; !configured {
		return false
	}
	if !ingest.IsUnreachable(err) {
		err = nil
	}
	w.last[t.URL] = err
	return w.allUnreachable()
}

func (w *hubWatch) allUnreachable() bool {
	for _, err := range w.last {
		if err == nil {
			return false
		}
	}
	return len(w.last) > 0
}

// err is ErrHubsUnreachable naming each host and why, or nil when some
// hub was reached (or not yet tried).
func (w *hubWatch) err() error {
	if w == nil {
		return nil
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.allUnreachable() {
		return nil
	}
	seen := map[string]bool{}
	var hosts []string
	for _, err := range w.last {
		var u *ingest.UnreachableError
		if errors.As(err, &u) && !seen[u.Error()] {
			seen[u.Error()] = true
			hosts = append(hosts, u.Error())
		}
	}
	slices.Sort(hosts)
	return fmt.Errorf("%w: %s", ErrHubsUnreachable, strings.Join(hosts, "; "))
}
