package pipeline

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/citecrawl/citecrawl/classify"
	"github.com/citecrawl/citecrawl/ingest"
	"github.com/citecrawl/citecrawl/metrics"
	"github.com/citecrawl/citecrawl/record"
	"github.com/citecrawl/citecrawl/retry"
)

// What a raw record is to its run, in the Citecrawl-Change header.
const (
	ChangeNew     = "new"
	ChangeChanged = "changed"
	ChangeGone    = "gone"
)

// changeHeader marks a raw record with its run and what it is, so a run's
// report counts the records every worker of the cluster published.
func changeHeader(runID, change string) nats.Header {
	return nats.Header{HeaderRun: {runID}, HeaderChange: {change}}
}

// crawlConfig is the part of the configuration the crawling rules read.
func crawlConfig(cfg Config) ingest.CrawlConfig {
	return ingest.CrawlConfig{
		FetchGraph: cfg.FetchGraph, Conditional: cfg.Conditional,
		FullText: cfg.FullText.Enabled, ArxivBase: cfg.FullText.ArxivBase, TextFallback: cfg.FullText.TextFallback,
		DiscoverDepth: cfg.Discover.Depth, DiscoverHosts: cfg.Discover.Hosts, DiscoverMaxPages: cfg.Discover.MaxPages,
	}
}

// newCrawler builds the fetch stage's crawler: it fetches through f,
// counted on the run's progress line, and remembers what it saw in the
// cluster's key-value cache.
func newCrawler(cfg Config, f *ingest.Fetcher, cache *httpCache, env Env, log zerolog.Logger) (*ingest.Crawler, error) {
	opts := []ingest.CrawlerOption{
		ingest.WithChecker(countingGetter{singleTry{f}, env.Stats}),
		ingest.WithClock(env.Now), ingest.WithLogger(log),
	}
	if cache != nil {
		opts = append(opts, ingest.WithValidators(cache), ingest.WithHistory(cache), ingest.WithBudget(cache), ingest.WithPages(cache))
	}
	return ingest.NewCrawler(countingGetter{f, env.Stats}, crawlConfig(cfg), opts...)
}

// singleTry is a Fetcher without retries, for checks whose failure only
// means "do the full work".
type singleTry struct{ f *ingest.Fetcher }

func (o singleTry) Get(ctx context.Context, u string, hdr http.Header) (*ingest.Response, error) {
	return o.f.GetOnce(ctx, u, hdr)
}

// countingGetter counts the pages fetched and the 304s for the progress line.
type countingGetter struct {
	g     ingest.Getter
	stats *Stats
}

func (c countingGetter) Get(ctx context.Context, u string, hdr http.Header) (*ingest.Response, error) {
	resp, err := c.g.Get(ctx, u, hdr)
	if err == nil {
		c.stats.PagesFetched.Add(1)
		if resp.Status == http.StatusNotModified {
			c.stats.NotModified.Add(1)
		}
	}
	return resp, err
}

// fetchHandler turns fetch tasks into crawler calls, and what the crawler
// found into messages.
type fetchHandler struct {
	crawler *ingest.Crawler
	stats   *Stats
	// maxPayload is the broker's message size limit (0: unknown).
	maxPayload int64
	// bus is where the task queue is, to see whether a hub is already
	// being crawled (nil: not looked at).
	bus  *Bus
	hubs *hubWatch // nil but in a run's own process
	// tagger is the classifier when the classify stage runs in this
	// process too: the handler then tags each record itself and publishes
	// only its tagged record, on SelfTaggedSubject (see records). That
	// saves each record a store, a delivery, an ack and a decode.
	tagger *classify.Classifier
	// own keeps the lines of the tagged records for the sink stage of
	// this process (nil when it runs elsewhere).
	own *ownLines
	// lines sizes the buffers records are encoded into.
	lines lineSize
	hold  *hold // the stages' pause, looked at between the papers of a task
	// spaced is the fetcher's Spaced, and arxivBase the crawl's arXiv,
	// for the size of a hub's papers tasks (taskSize; nil spaced: every
	// host is taken as spaced).
	spaced    func(rawURL string) (delayed, oneAtATime bool)
	arxivBase string
	workers   int // the process's fetch workers, over which a hub's tasks are spread
	// policy decides about a paper that failed inside a papers task, as
	// the stage's would about a paper task of its own; now is its clock.
	policy retry.Policy
	now    func() time.Time
	log    zerolog.Logger
}

func (h *fetchHandler) handle(ctx context.Context, m jetstream.Msg) (Outcome, error) {
	t, err := DecodeTask(m.Data())
	if err != nil {
		return Outcome{}, fmt.Errorf("task on %s: %w", m.Subject(), err)
	}
	switch t.Kind {
	case TaskHub:
		if h.queuedBefore(ctx, m) {
			// Two runs queued the same hub at once: the earlier task crawls it.
			return Outcome{}, nil
		}
		return h.hub(ctx, t)
	case TaskPaper:
		j, err := t.paperJob()
		if err != nil {
			return Outcome{}, err
		}
		if wait := time.UnixMilli(t.NotBefore).Sub(h.now()); t.NotBefore != 0 && wait > 0 {
			return Outcome{}, notDue{wait}
		}
		return h.paper(ctx, t.RunID, j)
	case TaskPapers:
		return h.papers(ctx, m, t)
	default:
		return Outcome{}, retry.Permanentf("task on %s has unknown kind %q", m.Subject(), t.Kind)
	}
}

// taskSize is how many of n papers each of a hub's papers tasks carries:
// papersPerTask, or, when no request its papers make is kept waiting by a
// delay (the hub's host takes several at once, fetch.host_concurrency, and
// neither it nor arXiv, where a paper's abstract page and full text are,
// has a delay or a Crawl-delay read so far), up to papersPerOwnedTask,
// but no more than spreads the hub over every fetch worker: a task's
// papers are built one after another, and a hub of 128 papers in two
// tasks kept six of eight workers idle (2.5 times the wall time with 20 ms
// a page).
func (h *fetchHandler) taskSize(j ingest.HubJob, n int) int {
	if h.spaced == nil {
		return papersPerTask
	}
	arxiv := j.ArxivBase
	if arxiv == "" {
		arxiv = h.arxivBase
	}
	delayed, oneAtATime := h.spaced(j.URL)
	arxivDelayed, _ := h.spaced(arxiv)
	if delayed || oneAtATime || arxivDelayed {
		return papersPerTask
	}
	w := max(h.workers, 1)
	return min(papersPerOwnedTask, max(papersPerTask, (n+w-1)/w))
}

// queuedBefore says whether a task for the same hub is queued ahead of m,
// as when two runs started at once both queued their hub: crawling it
// twice would fetch every paper twice. When it cannot tell, it says no.
func (h *fetchHandler) queuedBefore(ctx context.Context, m jetstream.Msg) bool {
	meta, err := m.Metadata()
	if h.bus == nil || err != nil || !strings.HasPrefix(m.Subject(), SubjectHubTask+".") {
		return false // tasks of older versions share one subject for every hub
	}
	ctx, cancel := context.WithTimeout(ctx, apiTimeout)
	defer cancel()
	s, err := h.bus.JS.Stream(ctx, StreamTasks)
	if err != nil {
		return false
	}
	first, err := s.GetMsg(ctx, 1, jetstream.WithGetMsgSubject(m.Subject()))
	return err == nil && first.Sequence < meta.Sequence.Stream
}

// hub queues the papers tasks of its citing papers, a gone record per paper the
// hub stopped listing, and the hubs discovery allows.
func (h *fetchHandler) hub(ctx context.Context, t Task) (Outcome, error) {
	c, err := h.crawler.CrawlHub(ctx, t.hubJob())
	if h.hubs.observe(t, err) {
		return Outcome{}, retry.Permanent(err) // no configured hub can be reached: the run ends (unreachable.go)
	}
	if err != nil || c.NotModified {
		return Outcome{}, err
	}
	keep := h.knownPages(ctx, c)
	tasks, err := paperTasks(t.RunID, c.Papers, h.taskSize(t.hubJob(), len(c.Papers)), h.maxPayload)
	if err != nil {
		return Outcome{}, err
	}
	out := Outcome{Outs: tasks, Commit: append(commits(c.Commits), keep...)}
	for i := range c.Gone {
		o, err := h.records(t.RunID, &c.Gone[i], ChangeGone)
		if err != nil {
			return Outcome{}, err
		}
		out.Outs = append(out.Outs, o...)
	}
	gone := int64(len(c.Gone))
	out.Commit = append(out.Commit, func(context.Context) error { h.stats.Gone.Add(gone); h.tagged(len(c.Gone)); return nil })
	out.Outs = append(out.Outs, hubTasks(t.RunID, c.Discovered)...)
	return out, nil
}

// knownPages gives each paper of c that its hub listed before the pages
// its record was last built from, as the hub's records carry them (see
// hubPages), and returns the step that keeps them for the hub's next
// crawl, to take once the papers' tasks are stored. When the streams
// cannot be read the crawl goes on with what the last one kept, and a
// paper whose newer version was not read is built again in full.
func (h *fetchHandler) knownPages(ctx context.Context, c *ingest.HubCrawl) []func(context.Context) error {
	if h.bus == nil || h.bus.cache == nil {
		return nil
	}
	hp, err := loadHubPages(ctx, h.bus, c.Hub.ID, pagesWait)
	if err != nil && ctx.Err() == nil {
		h.log.Warn().Err(err).Str("hub", c.Hub.ID).Msg("the pages of the hub's newest records could not be read; those papers are built again in full")
	}
	if hp == nil {
		return nil
	}
	ids := make([]string, len(c.Papers))
	for i := range c.Papers {
		p := &c.Papers[i]
		ids[i] = p.ID
		if !p.New {
			p.Known = hp.known(p.ID)
		}
	}
	if err != nil {
		return nil // the next crawl reads again what this one could not
	}
	return []func(context.Context) error{func(ctx context.Context) error { return hp.keep(ctx, h.bus, c.Hub.ID, ids) }}
}

// pagesWait bounds the read of a hub's pages object: one whose chunks are
// gone would otherwise be waited for as long as the hub's crawl runs.
const pagesWait = 30 * time.Second

// papers builds the records of a papers task's papers in turn. A paper
// that fails does not fail the others, whose records go out with the
// task's ack: it is queued again on its own, as a paper task whose
// retries and dead letter are its own, or parked at once when its failure
// is permanent. Only a shutdown hands the whole task back; a pause of the
// stages (hold) queues the papers not built yet as a task of their own.
func (h *fetchHandler) papers(ctx context.Context, m jetstream.Msg, t Task) (Outcome, error) {
	jobs, err := t.paperJobs()
	if err != nil {
		return Outcome{}, err
	}
	var out Outcome
	for i, j := range jobs {
		if i > 0 && h.hold.held() {
			// The sink's output is unavailable: the papers not built yet
			// wait on the queue, as a papers task of their own.
			rest, err := paperTasks(t.RunID, jobs[i:], len(jobs)-i, h.maxPayload)
			if err != nil {
				return Outcome{}, err
			}
			out.Outs = append(out.Outs, rest...)
			return out, nil
		}
		o, err := h.paper(ctx, t.RunID, j)
		if ctx.Err() != nil {
			return Outcome{}, ctx.Err()
		}
		if err != nil {
			if o, err = h.alone(m, t.RunID, j, err); err != nil {
				return Outcome{}, err
			}
		}
		out.Outs = append(out.Outs, o.Outs...)
		out.Commit = append(out.Commit, o.Commit...)
	}
	return out, nil
}

// alone is what becomes of a paper of papers task m that failed with
// cause: what the stage policy decides, as for a paper task of its own.
// Either it is queued again as its own paper task, not to be tried before
// the backoff or the Retry-After its server asked for (see notDue), or it
// is parked as a dead letter with its reason when retrying cannot help.
// Its message id is the one a paper task of the paper would have (a dead
// letter's, dead:fetch: and that id), so a papers task handled again
// after a crash queues or parks it once.
func (h *fetchHandler) alone(m jetstream.Msg, runID string, j ingest.PaperJob, cause error) (Outcome, error) {
	next := h.policy.Next(1, cause)
	task, err := paperTask(runID, j, h.now().Add(next.Wait))
	if err != nil {
		return Outcome{}, err
	}
	out := task
	if !next.Retry {
		letter := deadLetter{stage: StageFetch, subject: task.Subject, data: task.Data, header: m.Headers(), deliveries: 1,
			reason: cause.Error(), id: task.MsgID}
		if meta, err := m.Metadata(); err == nil {
			letter.deliveries = meta.NumDelivered
		}
		out = letter.out()
	}
	counted := func(context.Context) error {
		var mt *metrics.Metrics
		if h.bus != nil {
			mt = h.bus.metrics
		}
		mt.Failed(StageFetch, next.Retry)
		if next.Retry {
			h.stats.Retries.Add(1)
			h.log.Info().Err(cause).Str("paper", j.Paper.URL).Dur("retry_in", next.Wait).Msg("a paper of a papers task failed; queued again on its own")
			return nil
		}
		h.stats.DeadLetters.Add(1)
		mt.DeadLettered(StageFetch)
		h.log.Warn().Err(cause).Str("paper", j.Paper.URL).Str("why", next.Why).Msg("a paper of a papers task parked as a dead letter")
		return nil
	}
	return Outcome{Outs: []Out{out}, Commit: []func(context.Context) error{counted}}, nil
}

// notDue is the error of a task handled before its NotBefore: the stage
// hands it back for the rest of the wait, not counted as a failure (its
// failure was counted when it was queued again).
type notDue struct{ wait time.Duration }

func (e notDue) Error() string { return fmt.Sprintf("not due for %s", e.wait) }

// paper publishes the raw record of one citing paper, unless none of its
// pages changed, and the hubs its record page leads to.
func (h *fetchHandler) paper(ctx context.Context, runID string, j ingest.PaperJob) (Outcome, error) {
	b, err := h.crawler.BuildPaper(ctx, j)
	if err != nil || b.Unchanged {
		return Outcome{}, err
	}
	counter, change := &h.stats.New, ChangeNew
	if b.Known {
		counter, change = &h.stats.Changed, ChangeChanged
	}
	capRecord(&b.Record)
	outs, err := h.records(runID, &b.Record, change)
	if err != nil {
		return Outcome{}, err
	}
	if rec := &outs[0]; !h.fits(rec, 0) {
		// Fetching again would build the same record: park it at once.
		return Outcome{}, retry.Permanentf("record %s is %d bytes with its headers, over the broker's message limit of %d even with its contexts capped",
			b.Record.ID, len(rec.Data), h.maxPayload)
	}
	done := func(context.Context) error {
		// Counted once stored: a retried task must not count twice.
		h.stats.RecordsPublished.Add(1)
		counter.Add(1)
		h.tagged(1)
		return nil
	}
	if h.bus != nil && h.bus.cache != nil {
		if err := h.carryPages(&outs[0], b.Record.ID, b.Pages); err != nil {
			return Outcome{}, err
		}
	}
	return Outcome{Outs: append(outs, hubTasks(runID, b.Discovered)...), Commit: []func(context.Context) error{done}}, nil
}

// records are the messages of a record the crawler built: its raw
// record, or, when this handler tags (see tagger), its tagged record
// alone, on SelfTaggedSubject: that one message is the record's only
// stored copy, the raw record included (tagging again gives the same tags),
// so each page costs one store and one encoding rather than two.
func (h *fetchHandler) records(runID string, r *record.Record, change string) ([]Out, error) {
	if h.tagger == nil {
		raw, err := rawRecord(runID, r, change, &h.lines)
		return []Out{raw}, err
	}
	t := taggedCopy(h.tagger, r) // r stays the raw record, should it be needed
	tagged, err := selfTaggedOut(runID, &t, change, &h.lines)
	if err != nil {
		return nil, err
	}
	if !h.fits(&tagged, 0) {
		// Too large once tagged, headers counted: the raw record goes to
		// the classify stage, which fails it there as it would any other.
		raw, err := rawRecord(runID, r, change, &h.lines)
		return []Out{raw}, err
	}
	h.own.keep(&tagged, &t)
	return []Out{tagged}, nil
}

// taggedCopy is r tagged by tagger, on a copy; Tag sets the contexts'
// fields in place, so they are copied too.
func taggedCopy(tagger *classify.Classifier, r *record.Record) record.Record {
	t := *r
	t.Contexts = slices.Clone(r.Contexts)
	tagger.Tag(&t)
	return t
}

// selfTaggedOut is the message of a record t its fetch stage tagged. Its
// id is the one the classify stage gives the same record tagged
// (taggedOut), so a fetch-only worker retrying the task after a crash
// stores its raw record (another id) and the classify stage's tagged
// record is dropped as the same one. The headers are a raw record's, for
// the run's counts.
func selfTaggedOut(runID string, t *record.Record, change string, sizes *lineSize) (Out, error) {
	o, err := taggedOut(t, sizes)
	if err != nil {
		return Out{}, err
	}
	o.Subject = SelfTaggedSubject(t.Hub.ID)
	o.Header.Set(HeaderRun, runID)
	o.Header.Set(HeaderChange, change)
	return o, nil
}

// FetchedRecord is the message a fetch stage publishes for the record r
// of run runID (change: ChangeNew or ChangeChanged), for tools that fill
// a stream as a crawl would (scripts/rssbench): its raw record, or, with a
// tagger (as when the classify stage runs in the same process), its
// self-tagged record; either carries pages, the pages it was built from.
// Unlike the fetch stage it does not look at the broker's message limit.
func FetchedRecord(runID string, r *record.Record, change string, tagger *classify.Classifier, pages []ingest.SourcePage) (Out, error) {
	var o Out
	var err error
	if tagger == nil {
		o, err = rawRecord(runID, r, change, nil)
	} else {
		t := taggedCopy(tagger, r)
		o, err = selfTaggedOut(runID, &t, change, nil)
	}
	if err != nil {
		return Out{}, err
	}
	p, err := pagesHeader(r.ID, pages)
	if err != nil {
		return Out{}, err
	}
	o.Header.Set(HeaderPages, p)
	return o, nil
}

// carryPages puts the pages record id was built from into its message
// rec, raw or self-tagged (pagesHeader), so that they are stored with it,
// for the hub's next crawl (hubPages). When they do not fit under the
// broker's message limit the record goes without them, and its next crawl
// builds it again rather than asking its pages whether they changed.
func (h *fetchHandler) carryPages(rec *Out, id string, pages []ingest.SourcePage) error {
	p, err := pagesHeader(id, pages)
	if err != nil || !h.fits(rec, len(HeaderPages)+len(p)) {
		return err
	}
	rec.Header.Set(HeaderPages, p)
	return nil
}

// fits says whether o, with extra bytes of headers more, is within the
// broker's message limit: the broker counts the headers too, its message
// id among them (with a margin for the headers' framing).
func (h *fetchHandler) fits(o *Out, extra int) bool {
	if h.maxPayload <= 0 {
		return true
	}
	n := len(o.Data) + extra + len(jetstream.MsgIDHeader) + len(o.MsgID) + 256
	for k, vs := range o.Header {
		for _, v := range vs {
			n += len(k) + len(v) + 4
		}
	}
	return int64(n) <= h.maxPayload
}

// tagged counts n records this handler tagged, as the classify stage
// would have, once they are stored.
func (h *fetchHandler) tagged(n int) {
	if h.tagger == nil || n == 0 {
		return
	}
	h.stats.RecordsTagged.Add(int64(n))
	if h.bus != nil {
		h.bus.metrics.Processed(StageClassify, n)
	}
}

// Caps on what one record carries, so that a huge full text (a page of
// megabytes, one "sentence" of a table dumped as text) still makes a
// record that fits in one broker message. What is cut is counted in the
// record's truncated field.
const (
	maxContexts      = 100
	maxSentenceRunes = 1000
)

// capRecord keeps the first maxContexts contexts and cuts each sentence
// to maxSentenceRunes around its citation marker.
func capRecord(r *record.Record) {
	var t record.Truncated
	if len(r.Contexts) > maxContexts {
		t.Contexts = len(r.Contexts) - maxContexts
		r.Contexts = r.Contexts[:maxContexts]
	}
	for i := range r.Contexts {
		if capSentence(&r.Contexts[i]) {
			t.Sentences++
		}
	}
	if t != (record.Truncated{}) {
		r.Truncated = &t
	}
}

// capSentence cuts c.Text to maxSentenceRunes runes, keeping the cited
// marker (CiteSpan, in runes) inside the window and its span right.
func capSentence(c *record.Context) bool {
	runes := []rune(c.Text)
	if len(runes) <= maxSentenceRunes {
		return false
	}
	start := 0
	if len(c.CiteSpan) == 2 {
		start = min(max(c.CiteSpan[0]-maxSentenceRunes/2, 0), len(runes)-maxSentenceRunes)
	}
	c.Text = string(runes[start : start+maxSentenceRunes])
	if len(c.CiteSpan) == 2 {
		a, b := c.CiteSpan[0]-start, min(c.CiteSpan[1]-start, maxSentenceRunes)
		if a < 0 || a >= b {
			c.CiteSpan = nil
		} else {
			c.CiteSpan = []int{a, b}
		}
	}
	return true
}

// rawRecord is a raw record's message, marked with its run and change;
// sizes sizes its buffer (nil: grown from nothing).
func rawRecord(runID string, r *record.Record, change string, sizes *lineSize) (Out, error) {
	// One encoding gives the bytes and the fingerprint of the message id.
	line, fp, err := sizes.marshal(r)
	if err != nil {
		return Out{}, fmt.Errorf("record %s: %w", r.ID, err)
	}
	return Out{Subject: RawSubject(r.Hub.ID), MsgID: r.ID + ":" + fp, Data: line[:len(line)-1], Header: changeHeader(runID, change)}, nil
}

// hubTasks are the tasks of discovered hubs.
func hubTasks(runID string, jobs []ingest.HubJob) []Out {
	var outs []Out
	for _, j := range jobs {
		// The crawler gives only hub URLs, so HubTask cannot refuse one.
		if o, err := hubTask(runID, j); err == nil {
			outs = append(outs, o)
		}
	}
	return outs
}

func commits(cs []ingest.Commit) []func(context.Context) error {
	out := make([]func(context.Context) error, 0, len(cs)+1)
	for _, c := range cs {
		out = append(out, c)
	}
	return out
}

// classifyHandler tags raw records.
type classifyHandler struct {
	c     *classify.Classifier
	stats *Stats
	own   *ownLines // as fetchHandler's
	lines lineSize
}

// lineSize sizes the buffer a stage encodes a record's line into from the
// last line it encoded, so that the buffer is allocated once at about
// the right size rather than grown by doubling from nothing, which made
// half of the bytes encoding allocated. Its zero value is ready; a nil
// one sizes nothing.
type lineSize struct{ last atomic.Int64 }

// marshal is record.MarshalLine into a buffer a quarter larger than the
// last line.
func (s *lineSize) marshal(r *record.Record) (line []byte, fp string, err error) {
	if s == nil {
		return record.MarshalLine(r)
	}
	n := s.last.Load()
	line, fp, err = record.AppendLine(make([]byte, 0, n+n/4), r)
	if err == nil {
		s.last.Store(int64(len(line)))
	}
	return line, fp, err
}

// taggedOut is a tagged record's message. Its id is the record's id and
// Fingerprint, from the one encoding, followed by :tagged: a record tagged
// the same, by whichever stage, is stored once (the fingerprint leaves
// out the fetch time and URLs, so a raw record fetched again unchanged,
// or redelivered, gives the same id). The fingerprint is in a header of
// its own too (HeaderFingerprint), which tells the sink the data is the
// record's line as it writes it: an id of that form made by a version
// before it held the raw record's fingerprint.
//
// sizes sizes its buffer (nil: grown from nothing).
func taggedOut(r *record.Record, sizes *lineSize) (Out, error) {
	line, fp, err := sizes.marshal(r)
	if err != nil {
		return Out{}, fmt.Errorf("record %s: %w", r.ID, err)
	}
	return Out{Subject: TaggedSubject(r.Hub.ID), MsgID: r.ID + ":" + fp + ":tagged", Data: line[:len(line)-1],
		Header: nats.Header{HeaderFingerprint: {fp}}}, nil
}

func (h *classifyHandler) handle(_ context.Context, m jetstream.Msg) (Outcome, error) {
	var r record.Record
	if err := record.Unmarshal(m.Data(), &r); err != nil {
		return Outcome{}, retry.Permanentf("raw record on %s is not valid JSON: %w", m.Subject(), err)
	}
	if r.ID == "" || r.Schema != record.Schema {
		return Outcome{}, retry.Permanentf("raw record on %s: no id, or schema %q is not %q", m.Subject(), r.Schema, record.Schema)
	}
	h.c.Tag(&r) // Tag leaves a gone paper untagged
	o, err := taggedOut(&r, &h.lines)
	if err != nil {
		return Outcome{}, err
	}
	h.own.keep(&o, &r)
	h.stats.RecordsTagged.Add(1)
	return Outcome{Outs: []Out{o}}, nil
}
