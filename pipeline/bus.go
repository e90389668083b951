package pipeline

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	gojson "github.com/goccy/go-json"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/citecrawl/citecrawl/metrics"
)

// Streams and subjects. See the README's table for who publishes and who
// consumes each.
const (
	StreamTasks  = "CITECRAWL_TASKS"
	StreamRaw    = "CITECRAWL_RAW"
	StreamTagged = "CITECRAWL_TAGGED"
	StreamDead   = "CITECRAWL_DEAD"
	StreamRuns   = "CITECRAWL_RUNS"

	SubjectHubTask   = "citecrawl.tasks.hub"
	SubjectPaperTask = "citecrawl.tasks.paper"
	subjectRaw       = "citecrawl.raw."    // + hub id
	subjectTagged    = "citecrawl.tagged." // + hub id, and ".self.all" when its fetcher tagged it (SelfTaggedSubject)
	subjectDead      = "citecrawl.dead."   // + stage
	subjectRuns      = "citecrawl.runs."   // + run id

	ConsumerFetch    = "fetch"
	ConsumerClassify = "classify"
)

// Headers on dead letters.
const (
	HeaderError      = "Citecrawl-Error"
	HeaderStage      = "Citecrawl-Stage"
	HeaderSubject    = "Citecrawl-Subject"
	HeaderDeliveries = "Citecrawl-Deliveries"
	HeaderRun        = "Citecrawl-Run"    // on raw records: the run that published them
	HeaderChange     = "Citecrawl-Change" // on raw records: new, changed or gone
	HeaderPages      = "Citecrawl-Pages"  // on self-tagged records: the pages they were built from (httpCache.RecordPages)
	// HeaderFingerprint, on a tagged record, says its data is the
	// record's JSON exactly as record.Marshal gave it, and is its
	// Fingerprint: the sink writes that data as the record's line.
	HeaderFingerprint = "Citecrawl-Fingerprint"
)

// RawSubject, TaggedSubject and DeadSubject build the per-hub and
// per-stage subjects.
func RawSubject(hubID string) string    { return subjectRaw + token(hubID) }
func TaggedSubject(hubID string) string { return subjectTagged + token(hubID) }
func DeadSubject(stage string) string   { return subjectDead + token(stage) }

// SelfTaggedSubject is where a record goes when its fetcher tagged it
// itself (see fetchHandler.tagger): on the tagged stream, as its only
// stored copy, raw record included, with the pages it was built from in
// its Citecrawl-Pages header (read back by the hub's next crawl, see
// hubPages). One subject a hub, as for raw records: the broker keeps an
// index entry per subject in memory, and a subject per record (what
// versions before 2026-12-02 used, citecrawl.tagged.<hub id>.self.<record
// id>, still read) cost its server about 100 MiB and a second and a half
// of start-up a million records. The sink and tail read it with every
// tagged record; reprocess and a run's counts read the raw stream and
// these (selfTagged). Older versions put a raw copy on
// citecrawl.raw.<hub id>.tagged, which reprocess still reads with the raw
// stream.
func SelfTaggedSubject(hubID string) string {
	return TaggedSubject(hubID) + ".self.all"
}

// hubTagged are the filters of a hub's tagged records: those the classify
// stage tagged and those their fetch stage did (SelfTaggedSubject).
func hubTagged(hubID string) []string {
	return []string{TaggedSubject(hubID), TaggedSubject(hubID) + ".>"}
}

// selfTagged is the filter of the self-tagged records in StreamTagged,
// of this version and older ones.
const selfTagged = subjectTagged + "*.self.*"

// hubSelfTagged is the filter of one hub's self-tagged records.
func hubSelfTagged(hubID string) string { return TaggedSubject(hubID) + ".self.*" }

// isSelfTagged says whether subject is a SelfTaggedSubject.
func isSelfTagged(subject string) bool {
	return strings.HasPrefix(subject, subjectTagged) && strings.Contains(subject[len(subjectTagged):], ".self.")
}

// rawToClassify is the classify consumer's filter: the raw records still
// to be tagged, one token after citecrawl.raw.
const rawToClassify = subjectRaw + "*"

// token makes s usable as one subject token.
func token(s string) string {
	if s == "" {
		return "_"
	}
	return strings.Map(func(r rune) rune {
		if r == '.' || r == '*' || r == '>' || r <= ' ' {
			return '_'
		}
		return r
	}, s)
}

// Bus is a connection to NATS JetStream, and the embedded server when
// there is one.
type Bus struct {
	NC     *nats.Conn
	JS     jetstream.JetStream
	server *Server       // the embedded server, when this process serves its data folder
	joined bool          // connected to the server of another process on the same data folder
	closed chan struct{} // closed when the connection is
	name   string        // the connection's name: what the server lists it as
	cache  *httpCache
	cfg    BrokerConfig
	log    zerolog.Logger
	// metrics counts what the stages on this connection do (nil: nothing).
	metrics *metrics.Metrics
	// pubs are the idle publishers (PublishAll), slots the publishes in
	// flight over all of them (stages.max_pending_publishes).
	pubs  chan *publisher
	slots chan struct{}
	// stored counts what the publishers stored (see tally).
	stored tally
}

// Open connects to cfg.URL. Without one it starts an embedded server with
// JetStream on cfg.DataDir and connects to its port, or, when another
// citecrawl process already serves that data folder, connects to that
// process's server (see share.go): one store never has two servers.
func Open(ctx context.Context, cfg BrokerConfig, maxPending int, log zerolog.Logger, options ...OpenOption) (*Bus, error) {
	b := &Bus{cfg: cfg, log: log, closed: make(chan struct{}), name: "citecrawl", pubs: make(chan *publisher, maxPublishers)}
	for _, o := range options {
		o(b)
	}
	opts := []nats.Option{nats.Name(b.name), nats.MaxReconnects(-1),
		nats.ClosedHandler(func(*nats.Conn) { close(b.closed) })}
	url := cfg.URL
	if url == "" {
		var err error
		if url, opts, err = b.serveOrJoin(opts); err != nil {
			b.Close()
			return nil, err
		}
	}
	switch {
	case cfg.Creds != "":
		opts = append(opts, nats.UserCredentials(cfg.Creds))
	case cfg.Token != "":
		opts = append(opts, nats.Token(cfg.Token))
	case cfg.User != "":
		opts = append(opts, nats.UserInfo(cfg.User, cfg.Password))
	}
	if cfg.TLSCA != "" {
		opts = append(opts, nats.RootCAs(cfg.TLSCA))
	}
	if cfg.TLSCert != "" {
		opts = append(opts, nats.ClientCert(cfg.TLSCert, cfg.TLSKey))
	}
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		b.Close()
		return nil, fmt.Errorf("connecting to NATS %q: %w", displayURL(url), err)
	}
	b.NC = nc
	if err := checkReplicas(nc, cfg.Replicas); err != nil {
		b.Close()
		return nil, err
	}
	if maxPending < 1 {
		maxPending = 4096
	}
	b.slots = make(chan struct{}, maxPending)
	b.JS, err = jetstream.New(nc)
	if err != nil {
		b.Close()
		return nil, err
	}
	if err := b.ensureStreams(ctx); err != nil {
		b.Close()
		return nil, replicasError(err, cfg.Replicas)
	}
	if b.cache, err = openHTTPCache(ctx, b.JS, cfg.Replicas, nc.MaxPayload()); err != nil {
		b.Close()
		return nil, err
	}
	return b, nil
}

// serveOrJoin starts the embedded server of cfg.DataDir (Serve), or finds
// the one another process runs on it. It returns the URL to connect to and
// the connection options.
func (b *Bus) serveOrJoin(opts []nats.Option) (string, []nats.Option, error) {
	srv, s, err := serveOrFind(b.cfg, b.log, serverStartWait)
	if err != nil {
		return "", nil, err
	}
	if srv == nil {
		if s.Token != "" {
			opts = append(opts, nats.Token(s.Token))
		}
		opts = append(opts, nats.MaxReconnects(joinedReconnects), nats.ReconnectWait(time.Second))
		b.joined = true
		b.log.Info().Str("data_dir", b.cfg.DataDir).Str("url", s.URL).Int("pid", s.PID).
			Msg("joined the NATS server of the citecrawl process already using this data folder")
		return s.URL, opts, nil
	}
	b.server = srv
	if srv.token != "" {
		opts = append(opts, nats.Token(srv.token))
	}
	// This process connects as the others do, over the server's port, not
	// nats.go's in-process connection: that is a net.Pipe, which hands the
	// server's writes to the client a buffer at a time, each a wake-up of
	// both sides. Reading a million records through it cost 2 to 3 CPU s
	// more in a reprocess of 36 (the client's read loop and the server's
	// write loop twice as costly); the loopback socket writes each batch of
	// messages in one call.
	return srv.URL(), opts, nil
}

func displayURL(u string) string {
	if u == "" {
		return "embedded"
	}
	return u
}

func startEmbedded(cfg BrokerConfig, token string) (*server.Server, error) {
	opts := &server.Options{
		ServerName:    "citecrawl-embedded",
		JetStream:     true,
		StoreDir:      cfg.DataDir,
		NoSigs:        true, // citecrawl handles signals itself
		Host:          "127.0.0.1",
		Port:          server.RANDOM_PORT,
		Authorization: token,
	}
	if cfg.Listen != "" {
		host, port, err := net.SplitHostPort(cfg.Listen)
		if err != nil {
			return nil, fmt.Errorf("nats.listen %q: want host:port: %w", cfg.Listen, err)
		}
		if err := exposedAuth(cfg, host, opts); err != nil {
			return nil, err
		}
		opts.Host = host
		if opts.Port, err = strconv.Atoi(port); err != nil {
			return nil, fmt.Errorf("nats.listen %q: bad port: %w", cfg.Listen, err)
		}
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("embedded NATS server: %w", err)
	}
	srv.Start()
	if !srv.ReadyForConnections(30 * time.Second) {
		srv.Shutdown()
		return nil, errors.New("embedded NATS server did not become ready in 30s (is the data dir usable?)")
	}
	return srv, nil
}

// ClientURL is the address other processes can use to reach the embedded
// server ("" when it does not listen or there is none).
func (b *Bus) ClientURL() string {
	switch {
	case b.cfg.Listen == "":
		return ""
	case b.server != nil:
		return b.server.URL()
	case b.joined && strings.HasSuffix(b.NC.ConnectedUrl(), "://"+b.cfg.Listen):
		return b.NC.ConnectedUrl() // this folder's server listens there: a broker child serves it
	}
	return ""
}

// Close drains the connection and stops the embedded server.
func (b *Bus) Close() {
	if b.NC != nil {
		// Drain lets acks in flight reach the server. A publish still
		// waiting for its answer fails, so its input is not acked and
		// comes again.
		if err := b.NC.Drain(); err == nil {
			select {
			case <-b.closed:
			case <-time.After(30 * time.Second):
			}
		}
		b.NC.Close()
	}
	if b.server != nil {
		b.server.Close()
	}
}

// Joined says whether this process uses the server of another citecrawl
// process on the same data folder.
func (b *Bus) Joined() bool { return b.joined }

// streamConfigs are the streams citecrawl needs.
func (b *Bus) streamConfigs() []jetstream.StreamConfig {
	r := max(b.cfg.Replicas, 1)
	return []jetstream.StreamConfig{
		{Name: StreamTasks, Subjects: []string{"citecrawl.tasks.>"}, Retention: jetstream.WorkQueuePolicy,
			Storage: jetstream.FileStorage, Replicas: r, Duplicates: 2 * time.Minute,
			Description: "fetch tasks: hub pages and citing papers to fetch"},
		{Name: StreamRaw, Subjects: []string{subjectRaw + ">"}, Retention: jetstream.LimitsPolicy,
			Storage: jetstream.FileStorage, Replicas: r, Duplicates: 2 * time.Minute, MaxAge: b.cfg.RetainRecords,
			Description: "raw citing-paper records, untagged, kept for reprocessing"},
		{Name: StreamTagged, Subjects: []string{subjectTagged + ">"}, Retention: jetstream.LimitsPolicy,
			Storage: jetstream.FileStorage, Replicas: r, Duplicates: 2 * time.Minute, MaxAge: b.cfg.RetainRecords,
			Description: "tagged records: role, polarity, pluralism"},
		{Name: StreamDead, Subjects: []string{subjectDead + ">"}, Retention: jetstream.LimitsPolicy,
			Storage: jetstream.FileStorage, Replicas: r, Duplicates: 2 * time.Minute,
			Description: "dead letters: messages that failed for good, with the reason in headers"},
		{Name: StreamRuns, Subjects: []string{subjectRuns + ">"}, Retention: jetstream.LimitsPolicy,
			Storage: jetstream.FileStorage, Replicas: r, Duplicates: 2 * time.Minute,
			Description: "run reports: pages fetched, not modified, new, changed, gone, errors, duration"},
	}
}

// ensureStreams creates or updates every stream; running it again changes
// nothing. A stream already as configured is left alone: an update at
// every start raced, inside nats-server, with another process creating a
// consumer on the same stream.
func (b *Bus) ensureStreams(ctx context.Context) error {
	for _, sc := range b.streamConfigs() {
		// A cluster that has just started may still be electing leaders.
		err := rideOut(ctx, func(ctx context.Context) error {
			if s, err := b.JS.Stream(ctx, sc.Name); err == nil && configured(s.CachedInfo().Config, sc) {
				return nil
			}
			_, err := b.JS.CreateOrUpdateStream(ctx, sc)
			return err
		})
		if err != nil {
			return fmt.Errorf("stream %s: %w", sc.Name, err)
		}
	}
	return nil
}

// configured says whether a stream of config have is as streamConfigs
// sets it (the server fills in the fields it leaves unset).
func configured(have, want jetstream.StreamConfig) bool {
	return slices.Equal(have.Subjects, want.Subjects) && have.Retention == want.Retention && have.Storage == want.Storage &&
		have.Replicas == want.Replicas && have.Duplicates == want.Duplicates && have.MaxAge == want.MaxAge &&
		have.Description == want.Description
}

// Consumer creates or updates a durable pull consumer with explicit acks
// and a delivery limit.
func (b *Bus) Consumer(ctx context.Context, stream, durable, filter string, sc StageConfig) (jetstream.Consumer, error) {
	cc := jetstream.ConsumerConfig{
		Durable:       durable,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       sc.AckWait,
		MaxDeliver:    sc.MaxDeliver,
		MaxAckPending: sc.maxAckPending(),
		FilterSubject: filter,
		Description:   "citecrawl " + durable + " stage",
	}
	c, err := b.JS.CreateOrUpdateConsumer(ctx, stream, cc)
	if err != nil {
		return nil, fmt.Errorf("consumer %s on %s: %w", durable, stream, err)
	}
	return c, nil
}

// Out is a message a stage publishes.
type Out struct {
	Subject string
	MsgID   string // Nats-Msg-Id: a re-publish within the window is stored once
	Data    []byte
	Header  nats.Header
}

// How publishes ride out a broker fault: an acknowledgement not back within
// publishAckTimeout counts as lost, and a lost or refused-for-now publish is
// sent again (same Nats-Msg-Id, so the stream stores it once) until
// publishRetryFor has passed. A stream leader election takes seconds.
const (
	publishAckTimeout = 5 * time.Second
	publishRetryFor   = 2 * time.Minute
)

// maxPublishers is how many idle publishers a bus keeps: about as many as
// publish at once (the stages' workers).
const maxPublishers = 32

// PublishAll publishes outs and waits until JetStream has stored every
// one. When too many publishes are outstanding (stages.max_pending_publishes,
// over all of the bus's publishers) it waits for acknowledgements and goes
// on, rather than failing. Publishes that fail for a reason that passes (no
// answer, no leader yet, a reconnect) are retried; one the server refuses
// for good (too large, no stream) is not.
func (b *Bus) PublishAll(ctx context.Context, outs []Out) error {
	if len(outs) == 0 {
		return nil
	}
	p, err := b.publisher()
	if err != nil {
		return err
	}
	defer b.release(p)
	deadline := time.Now().Add(publishRetryFor)
	wait := 100 * time.Millisecond
	for {
		failed, lastErr, err := p.publishOnce(ctx, outs)
		if err != nil {
			return err
		}
		if len(failed) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("publishing to %s: still failing after %v: %w", failed[0].Subject, publishRetryFor, lastErr)
		}
		b.log.Warn().Err(lastErr).Int("messages", len(failed)).Dur("retry_in", wait).Msg("publish not acknowledged; retrying")
		pause(ctx, wait)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		wait = min(2*wait, 2*time.Second)
		outs = failed
	}
}

// publisher publishes messages to JetStream and reads their
// acknowledgements on a subscription of its own, each message with a
// reply subject of its own under it (inbox.1, inbox.2, ...), as the
// puller pulls. nats.go's asynchronous publishing gave each message a
// future with its channels, a timer and a map entry under a lock, and
// handed its acknowledgement over from a callback goroutine after
// decoding it with encoding/json: 4 % of a crawl's CPU. A bus keeps its
// publishers for the next PublishAll (Bus.publisher).
type publisher struct {
	nc     *nats.Conn
	stored *tally // the bus's
	inbox  string // the replies' prefix
	sub    *nats.Subscription
	ch     chan *nats.Msg
	sent   uint64        // messages published: the last reply's number
	slots  chan struct{} // the bus's publishes in flight, one taken per message until its answer
}

// publisher is one of the bus's idle publishers, or a new one.
func (b *Bus) publisher() (*publisher, error) {
	select {
	case p := <-b.pubs:
		return p, nil
	default:
	}
	inbox := b.NC.NewInbox()
	// A channel of its own size: a synchronous subscription's holds
	// 65,536 messages, half a megabyte the collector scans at every
	// cycle. Its answers in flight are at most the bus's slots; a few
	// more may be late answers of a try given up.
	ch := make(chan *nats.Msg, cap(b.slots)+64)
	sub, err := b.NC.QueueSubscribeSyncWithChan(inbox+".*", "", ch)
	if err != nil {
		return nil, fmt.Errorf("publishing: %w", err)
	}
	return &publisher{nc: b.NC, stored: &b.stored, inbox: inbox + ".", sub: sub, ch: ch, slots: b.slots}, nil
}

// release keeps p for the next PublishAll, or ends it when enough are kept.
func (b *Bus) release(p *publisher) {
	select {
	case b.pubs <- p:
	default:
		_ = p.sub.Unsubscribe()
	}
}

// tally counts the messages a bus's publishers stored as new (not
// dropped as duplicates): per stream, and per run and change those of
// the records a run's report counts (raw records and self-tagged ones,
// marked with HeaderRun and HeaderChange). When a stream's last sequence
// moved by exactly what this bus stored on it, every message stored
// there meanwhile was this bus's, and the run's counts are these rather
// than its records' headers read back (see ownChanges).
type tally struct {
	mu      sync.Mutex
	streams map[string]uint64
	changes map[runChange]int64
}

type runChange struct{ run, change string }

// add counts o, stored as new on stream. t is the publisher's own.
func (t *tally) add(stream string, o *Out) {
	if t.streams == nil {
		t.streams, t.changes = map[string]uint64{}, map[runChange]int64{}
	}
	t.streams[stream]++
	if run := o.Header.Get(HeaderRun); run != "" && (strings.HasPrefix(o.Subject, subjectRaw) || isSelfTagged(o.Subject)) {
		t.changes[runChange{run, o.Header.Get(HeaderChange)}]++
	}
}

// merge adds what other counted.
func (t *tally) merge(other *tally) {
	if len(other.streams) == 0 {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.streams == nil {
		t.streams, t.changes = map[string]uint64{}, map[runChange]int64{}
	}
	for k, n := range other.streams {
		t.streams[k] += n
	}
	for k, n := range other.changes {
		t.changes[k] += n
	}
}

// snapshot is a copy of what t counted so far.
func (t *tally) snapshot() *tally {
	t.mu.Lock()
	defer t.mu.Unlock()
	return &tally{streams: maps.Clone(t.streams), changes: maps.Clone(t.changes)}
}

// pubAnswer is JetStream's answer to a publish: an acknowledgement or
// an error.
type pubAnswer struct {
	Error     *jetstream.APIError `json:"error,omitempty"`
	Stream    string              `json:"stream"`
	Duplicate bool                `json:"duplicate,omitempty"`
}

// publishOnce publishes outs once. It returns the ones that failed for a
// passing reason (with the last such error), or an error that retrying
// cannot mend.
func (p *publisher) publishOnce(ctx context.Context, outs []Out) (failed []Out, lastErr, err error) {
	first := p.sent + 1 // outs[i] is answered on reply first+i
	answered := make([]bool, len(outs))
	waiting := 0 // published and not answered
	defer func() {
		for range waiting {
			<-p.slots // the unanswered ones are given up on
		}
	}()
	var refused error
	var stored tally // merged into the bus's at the end
	defer p.stored.merge(&stored)
	// answer takes in one answer; answers to an earlier try are passed over.
	answer := func(m *nats.Msg) {
		n, perr := strconv.ParseUint(strings.TrimPrefix(m.Subject, p.inbox), 10, 64)
		if perr != nil || n < first || n-first >= uint64(len(outs)) || answered[n-first] {
			return
		}
		i := n - first
		answered[i] = true
		waiting--
		<-p.slots
		o := outs[i]
		switch ack, aerr := decodeAnswer(m); {
		case aerr == nil && ack.Duplicate: // stored before: not counted again
		case aerr == nil:
			stored.add(ack.Stream, &o)
		case !transient(aerr):
			if refused == nil {
				refused = fmt.Errorf("publishing to %s: %w", o.Subject, aerr)
			}
		default:
			failed, lastErr = append(failed, o), aerr
		}
	}
	// next waits up to publishAckTimeout for one answer, and says whether
	// one came.
	next := func() (bool, error) {
		deadline := time.Now().Add(publishAckTimeout)
		t := time.NewTimer(100 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case m := <-p.ch: // read directly: NextMsg drops a 503 "no responders" answer
				answer(m)
				return true, nil
			case <-ctx.Done():
				return false, ctx.Err()
			case <-t.C:
			}
			if p.nc.IsClosed() {
				return false, nats.ErrConnectionClosed
			}
			if !p.sub.IsValid() {
				return false, nats.ErrBadSubscription
			}
			if time.Now().After(deadline) {
				return false, nil
			}
			t.Reset(100 * time.Millisecond)
		}
	}
	published := 0
	for ; published < len(outs); published++ {
		// Wait for a slot, reading answers meanwhile: ours free slots too.
		taken := false
		for !taken {
			select {
			case p.slots <- struct{}{}:
				taken = true
				continue
			default:
			}
			if waiting == 0 {
				select { // only other publishers' answers can free a slot
				case p.slots <- struct{}{}:
					taken = true
				case <-time.After(100 * time.Millisecond):
				case <-ctx.Done():
					return nil, nil, ctx.Err()
				}
				continue
			}
			got, err := next()
			if err != nil {
				return nil, nil, err
			}
			if !got {
				break // no answer for publishAckTimeout: ours count as lost
			}
		}
		if !taken {
			break
		}
		o := outs[published]
		p.sent++
		h := o.Header
		if h == nil {
			h = nats.Header{}
		}
		if o.MsgID != "" {
			h.Set(jetstream.MsgIDHeader, o.MsgID)
		}
		m := &nats.Msg{Subject: o.Subject, Reply: p.inbox + strconv.FormatUint(p.sent, 10), Data: o.Data, Header: h}
		if err := p.nc.PublishMsg(m); err != nil {
			<-p.slots
			answered[published] = true // never sent: nothing to wait for
			if !transient(err) {
				return nil, nil, fmt.Errorf("publishing to %s: %w", o.Subject, err)
			}
			failed, lastErr = append(failed, o), err
			continue
		}
		waiting++
	}
	for waiting > 0 {
		got, err := next()
		if err != nil {
			return nil, nil, err
		}
		if !got {
			break // no answer for publishAckTimeout: the others count as lost
		}
	}
	if refused != nil {
		return nil, nil, refused
	}
	if waiting > 0 || published < len(outs) {
		for i, o := range outs[:published] {
			if !answered[i] {
				failed = append(failed, o)
			}
		}
		failed, lastErr = append(failed, outs[published:]...), jetstream.ErrAsyncPublishTimeout
	}
	return failed, lastErr, nil
}

// decodeAnswer reads JetStream's answer to a publish: an acknowledgement,
// or the server's error (a "no responders" status when no stream takes
// the subject).
func decodeAnswer(m *nats.Msg) (pubAnswer, error) {
	if len(m.Data) == 0 && m.Header.Get(statusHeader) == "503" {
		return pubAnswer{}, jetstream.ErrNoStreamResponse
	}
	var a pubAnswer
	if err := gojson.Unmarshal(m.Data, &a); err != nil {
		return a, jetstream.ErrInvalidJSAck
	}
	if a.Error != nil {
		return a, a.Error
	}
	if a.Stream == "" {
		return a, jetstream.ErrInvalidJSAck
	}
	return a, nil
}

// transient says whether a failed request or publish may succeed if sent
// again: everything but the server's considered refusals (a 4xx API error
// such as a message over the size limit) and a closed connection. "No
// suitable peers" while a peer is offline passes: it is what a cluster
// that is starting or losing a node answers, not a lack of servers.
func transient(err error) bool {
	var apiErr *jetstream.APIError
	switch {
	case errors.Is(err, nats.ErrMaxPayload), errors.Is(err, nats.ErrConnectionClosed),
		errors.Is(err, nats.ErrBadSubject), errors.Is(err, nats.ErrInvalidMsg):
		return false
	case errors.As(err, &apiErr):
		return apiErr.Code >= 500 || strings.Contains(apiErr.Description, "peer offline")
	}
	return true
}
