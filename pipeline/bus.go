package pipeline

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

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
	subjectTagged    = "citecrawl.tagged." // + hub id, and ".self.<record id>" when its fetcher tagged it
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
// its Citecrawl-Pages header; a subject per record, so that the last one
// is found by its id (httpCache.RecordPages) as a key-value entry would
// be. The sink and tail read it with every tagged record; reprocess and a
// run's counts read the raw stream and these (selfTagged). Older versions
// put a raw copy on citecrawl.raw.<hub id>.tagged, which reprocess still
// reads with the raw stream.
func SelfTaggedSubject(hubID, recordID string) string {
	return TaggedSubject(hubID) + ".self." + token(recordID)
}

// hubTagged are the filters of a hub's tagged records: those the classify
// stage tagged and those their fetch stage did (SelfTaggedSubject).
func hubTagged(hubID string) []string {
	return []string{TaggedSubject(hubID), TaggedSubject(hubID) + ".>"}
}

// selfTagged is the filter of the self-tagged records in StreamTagged.
const selfTagged = subjectTagged + "*.self.*"

// isSelfTagged says whether subject is a SelfTaggedSubject.
func isSelfTagged(subject string) bool {
	return strings.HasPrefix(subject, subjectTagged) && strings.Contains(subject[len(subjectTagged):], ".self.")
}

// selfTaggedRecord is the filter of one record's self-tagged versions.
func selfTaggedRecord(recordID string) string { return subjectTagged + "*.self." + token(recordID) }

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
	srv    *server.Server
	lock   *os.File      // held while this process serves its data folder
	joined bool          // connected to the server of another process on the same data folder
	closed chan struct{} // closed when the connection is
	name   string        // the connection's name: what the server lists it as
	cache  *httpCache
	cfg    BrokerConfig
	log    zerolog.Logger
	// metrics counts what the stages on this connection do (nil: nothing).
	metrics *metrics.Metrics
}

// Open connects to cfg.URL. Without one it starts an embedded server with
// JetStream on cfg.DataDir and connects to it in-process, or, when another
// citecrawl process already serves that data folder, connects to that
// process's server (see share.go): one store never has two servers.
func Open(ctx context.Context, cfg BrokerConfig, maxPending int, log zerolog.Logger, options ...OpenOption) (*Bus, error) {
	b := &Bus{cfg: cfg, log: log, closed: make(chan struct{}), name: "citecrawl"}
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
	b.JS, err = jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(maxPending),
		jetstream.WithPublishAsyncTimeout(publishAckTimeout))
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

// serveOrJoin starts the embedded server of cfg.DataDir, or finds the one
// another process runs on it. It returns the URL to connect to ("" for
// in-process) and the connection options.
func (b *Bus) serveOrJoin(opts []nats.Option) (string, []nats.Option, error) {
	dir := b.cfg.DataDir
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", nil, fmt.Errorf("data folder %s: %w", dir, err)
	}
	lock, ok, err := tryLock(filepath.Join(dir, lockFile))
	if err != nil {
		return "", nil, fmt.Errorf("data folder %s: %w", dir, err)
	}
	if !ok {
		s, err := findServer(dir, 10*time.Second)
		if err != nil {
			return "", nil, err
		}
		if s.Token != "" {
			opts = append(opts, nats.Token(s.Token))
		}
		opts = append(opts, nats.MaxReconnects(joinedReconnects), nats.ReconnectWait(time.Second))
		b.joined = true
		b.log.Info().Str("data_dir", dir).Str("url", s.URL).Int("pid", s.PID).
			Msg("joined the NATS server of the citecrawl process already using this data folder")
		return s.URL, opts, nil
	}
	b.lock = lock
	// Without --nats-listen the server still listens, on a random loopback
	// port behind a token only this user can read, so that tail, report and
	// workers started in the same folder can follow the crawl.
	token := ""
	if b.cfg.Listen == "" {
		if token, err = newToken(); err != nil {
			return "", nil, err
		}
		opts = append(opts, nats.Token(token))
	}
	srv, err := startEmbedded(b.cfg, token)
	if err != nil {
		return "", nil, err
	}
	b.srv = srv
	if err := publishServer(dir, sharedServer{URL: srv.ClientURL(), Token: token, PID: os.Getpid()}); err != nil {
		return "", nil, fmt.Errorf("data folder %s: %w", dir, err)
	}
	b.log.Info().Str("data_dir", dir).Str("listen", b.cfg.Listen).Msg("embedded NATS server with JetStream started")
	return "", append(opts, nats.InProcessServer(srv)), nil
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
	if b.srv == nil || b.cfg.Listen == "" {
		return ""
	}
	return b.srv.ClientURL()
}

// Close drains the connection and stops the embedded server.
func (b *Bus) Close() {
	if b.NC != nil {
		// Drain lets acks and publishes in flight finish before closing.
		if err := b.NC.Drain(); err == nil {
			select {
			case <-b.closed:
			case <-time.After(30 * time.Second):
			}
		}
		b.NC.Close()
	}
	if b.srv != nil {
		os.Remove(filepath.Join(b.cfg.DataDir, serverFile))
		b.srv.Shutdown()
		b.srv.WaitForShutdown()
	}
	if b.lock != nil {
		b.lock.Close() // frees the data folder for the next process
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
	// IfDuplicate, when set, is published in its place when the stream
	// drops this message as a duplicate: what rode in it is then kept
	// (a self-tagged record's pages, when the same tagged record was
	// stored before without them).
	IfDuplicate *Out
}

// How publishes ride out a broker fault: an acknowledgement not back within
// publishAckTimeout counts as lost, and a lost or refused-for-now publish is
// sent again (same Nats-Msg-Id, so the stream stores it once) until
// publishRetryFor has passed. A stream leader election takes seconds.
const (
	publishAckTimeout = 5 * time.Second
	publishRetryFor   = 2 * time.Minute
)

// PublishAll publishes outs asynchronously and waits until JetStream has
// stored every one. When too many publishes are outstanding it waits for
// them to complete and goes on, rather than failing. Publishes that fail
// for a reason that passes (no answer, no leader yet, a reconnect) are
// retried; one the server refuses for good (too large, no stream) is not.
func (b *Bus) PublishAll(ctx context.Context, outs []Out) error {
	deadline := time.Now().Add(publishRetryFor)
	wait := 100 * time.Millisecond
	var instead []Out // for the duplicates that carry IfDuplicate
	for {
		failed, dups, lastErr, err := b.publishOnce(ctx, outs)
		instead = append(instead, dups...)
		if err != nil {
			return err
		}
		if len(failed) == 0 {
			if len(instead) == 0 {
				return nil
			}
			return b.PublishAll(ctx, instead)
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

// publishOnce publishes outs once. It returns the ones that failed for a
// passing reason (with the last such error), the IfDuplicate of those
// dropped as duplicates, or an error that retrying cannot mend.
func (b *Bus) publishOnce(ctx context.Context, outs []Out) (failed, dups []Out, lastErr, err error) {
	type sent struct {
		out Out
		f   jetstream.PubAckFuture
	}
	futures := make([]sent, 0, len(outs))
	for _, o := range outs {
		m := &nats.Msg{Subject: o.Subject, Data: o.Data, Header: o.Header}
		if m.Header == nil {
			m.Header = nats.Header{}
		}
		for {
			f, err := b.JS.PublishMsgAsync(m, jetstream.WithMsgID(o.MsgID))
			if errors.Is(err, jetstream.ErrTooManyStalledMsgs) {
				select {
				case <-b.JS.PublishAsyncComplete():
				case <-time.After(100 * time.Millisecond):
				case <-ctx.Done():
					return nil, nil, nil, ctx.Err()
				}
				continue
			}
			if err != nil {
				if !transient(err) {
					return nil, nil, nil, fmt.Errorf("publishing to %s: %w", o.Subject, err)
				}
				failed, lastErr = append(failed, o), err
				break
			}
			futures = append(futures, sent{o, f})
			break
		}
	}
	for _, s := range futures {
		select {
		case ack := <-s.f.Ok():
			if ack.Duplicate && s.out.IfDuplicate != nil {
				dups = append(dups, *s.out.IfDuplicate)
			}
		case err := <-s.f.Err():
			if !transient(err) {
				return nil, nil, nil, fmt.Errorf("publishing to %s: %w", s.out.Subject, err)
			}
			failed, lastErr = append(failed, s.out), err
		case <-ctx.Done():
			return nil, nil, nil, ctx.Err()
		}
	}
	return failed, dups, lastErr, nil
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
