package pipeline

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/rs/zerolog"
)

// One data folder, one embedded server, many readers.
//
// The process that starts the embedded server holds an exclusive lock on
// DATA/citecrawl.lock for as long as the server runs, and writes where the
// server can be reached into DATA/citecrawl.server.json (mode 0600: it holds
// the server's token). Any other citecrawl process given the same data
// folder and no --nats URL finds the lock taken and connects to that server
// instead of opening the same store a second time. The lock is the truth:
// the file of a process killed with SIGKILL is simply overwritten by the
// next one to take the lock.

const (
	lockFile   = "citecrawl.lock"
	serverFile = "citecrawl.server.json"
)

// sharedServer is what DATA/citecrawl.server.json holds.
type sharedServer struct {
	URL   string `json:"url"`
	Token string `json:"token,omitempty"`
	PID   int    `json:"pid"`
}

// ErrDataDirInUse is returned when another process holds the data folder
// and its server cannot be reached.
var ErrDataDirInUse = errors.New("data folder is in use by another citecrawl process")

// OpenOption tunes Open.
type OpenOption func(*Bus)

// RunClientName is the connection name of a `citecrawl run`: a process
// serving a data folder waits for the runs that joined it before it stops
// its server (see Bus.CloseWhenAlone).
const RunClientName = "citecrawl run"

// WithClientName names the connection, as the server lists it.
func WithClientName(name string) OpenOption { return func(b *Bus) { b.name = name } }

// joinedReconnects bounds how long a process that joined another's server
// tries to reach it again once it is gone: that process has stopped, and
// its server with it, so the joiner ends rather than waits for ever.
const joinedReconnects = 5

// shareGrace bounds how long the process serving a data folder waits, once
// its own work is done, for the runs that joined it to finish theirs.
const shareGrace = 2 * time.Minute

// CloseWhenAlone closes the bus once no other `run` uses its embedded
// server, so that a run that joined this process's server is not cut off
// in the middle of its last steps. It waits at most shareGrace, and not at
// all once ctx is done (the process was told to stop).
func (b *Bus) CloseWhenAlone(ctx context.Context) {
	if b.server != nil {
		own := uint64(0)
		if b.NC != nil && !b.NC.IsClosed() {
			if id, err := b.NC.GetClientID(); err == nil {
				own = id
			}
		}
		b.server.WaitForRuns(ctx, own)
	}
	b.Close()
}

// Server is the embedded NATS server of a data folder, served by this
// process. Open starts one in the process when there is no nats.url;
// `citecrawl broker` runs one in a process of its own, which a command
// starts for itself where nats.embedded_process says so (so that the
// server's heap, its caches of the blocks read, is not in the command's).
type Server struct {
	srv   *server.Server
	lock  *os.File // held while the server runs
	dir   string
	token string // what clients give, when the server made its own ("": none, or nats.*'s)
	log   zerolog.Logger
}

// ErrServed is returned by Serve when another process serves the data
// folder already: connect to it (Open does) rather than open its store twice.
var ErrServed = errors.New("data folder is served by another citecrawl process")

// Serve takes the lock of cfg.DataDir and starts its embedded server with
// JetStream, then says where it can be reached (DATA/citecrawl.server.json).
func Serve(cfg BrokerConfig, log zerolog.Logger) (*Server, error) {
	dir := cfg.DataDir
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("data folder %s: %w", dir, err)
	}
	lock, ok, err := tryLock(filepath.Join(dir, lockFile))
	if err != nil {
		return nil, fmt.Errorf("data folder %s: %w", dir, err)
	}
	if !ok {
		return nil, fmt.Errorf("%w: %s", ErrServed, dir)
	}
	// What a holder killed with SIGKILL left: not to be joined while this
	// server starts.
	os.Remove(filepath.Join(dir, serverFile))
	s := &Server{lock: lock, dir: dir, log: log}
	// Without nats.listen the server still listens, on a random loopback
	// port behind a token only this user can read, so that tail, report and
	// workers started in the same folder can follow the crawl.
	if cfg.Listen == "" {
		if s.token, err = newToken(); err != nil {
			lock.Close()
			return nil, err
		}
	}
	if s.srv, err = startEmbedded(cfg, s.token); err != nil {
		lock.Close()
		return nil, err
	}
	if err := publishServer(dir, sharedServer{URL: s.srv.ClientURL(), Token: s.token, PID: os.Getpid()}); err != nil {
		s.Close()
		return nil, fmt.Errorf("data folder %s: %w", dir, err)
	}
	log.Info().Str("data_dir", dir).Str("listen", cfg.Listen).Msg("embedded NATS server with JetStream started")
	return s, nil
}

// URL is where clients reach the server.
func (s *Server) URL() string { return s.srv.ClientURL() }

// Close stops the server and frees the data folder for the next process.
func (s *Server) Close() {
	os.Remove(filepath.Join(s.dir, serverFile))
	s.srv.Shutdown()
	s.srv.WaitForShutdown()
	s.lock.Close()
}

// WaitForRuns returns once no `run` but the client own (0: none) is
// connected, after at most shareGrace, or at once when ctx is done.
func (s *Server) WaitForRuns(ctx context.Context, own uint64) {
	deadline := time.Now().Add(shareGrace)
	logged := false
	for ctx.Err() == nil && time.Now().Before(deadline) {
		n := s.otherRuns(own)
		if n == 0 {
			return
		}
		if !logged {
			s.log.Info().Int("runs", n).Dur("at_most", shareGrace).
				Msg("waiting for the runs that joined this data folder's server to finish before stopping it")
			logged = true
		}
		pause(ctx, 200*time.Millisecond)
	}
}

// otherRuns counts the `run` connections on the server besides own.
func (s *Server) otherRuns(own uint64) int {
	cz, err := s.srv.Connz(&server.ConnzOptions{Limit: 1 << 16})
	if err != nil {
		return 0
	}
	n := 0
	for _, c := range cz.Conns {
		if c.Name == RunClientName && c.Cid != own {
			n++
		}
	}
	return n
}

// Closed is closed when the connection is closed for good: for a process
// that joined another's server, when that server has stopped.
func (b *Bus) Closed() <-chan struct{} { return b.closed }

// newToken is the secret of an embedded server that listens only so that
// this user's other citecrawl processes can reach it.
func newToken() (string, error) {
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return hex.EncodeToString(b), nil
}

// publishServer writes where the server of dir can be reached, atomically.
func publishServer(dir string, s sharedServer) error {
	b, err := json.Marshal(s)
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, "."+serverFile+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), filepath.Join(dir, serverFile))
}

// serverStartWait bounds how long a process waits for the server of a
// folder whose lock is taken but which says nothing yet: it is starting
// (a large store takes seconds), or stopping (a broker child whose command
// ended), after which the folder is free to serve.
const serverStartWait = 10 * time.Second

// ServeOrWait serves cfg.DataDir (Serve), waiting out a server of the
// folder that is starting or stopping, up to serverStartWait; ErrServed
// when another process serves it.
func ServeOrWait(cfg BrokerConfig, log zerolog.Logger) (*Server, error) {
	srv, _, err := serveOrFind(cfg, log, serverStartWait)
	if err == nil && srv == nil {
		return nil, fmt.Errorf("%w: %s", ErrServed, cfg.DataDir)
	}
	return srv, err
}

// serveOrFind serves cfg.DataDir or, when another process does, says
// where its server is. It waits out a server that is starting or
// stopping, up to wait.
func serveOrFind(cfg BrokerConfig, log zerolog.Logger, wait time.Duration) (*Server, sharedServer, error) {
	deadline := time.Now().Add(wait)
	for {
		srv, err := Serve(cfg, log)
		if !errors.Is(err, ErrServed) {
			return srv, sharedServer{}, err
		}
		s, err := readServer(cfg.DataDir)
		if err == nil {
			return nil, s, nil
		}
		if time.Now().After(deadline) {
			return nil, s, fmt.Errorf("%w: %s (and %s: %v)", ErrDataDirInUse, cfg.DataDir, serverFile, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// readServer reads where the server holding dir can be reached. The holder
// writes the file once its server is ready and removes it first thing
// when it stops.
func readServer(dir string) (sharedServer, error) {
	var s sharedServer
	b, err := os.ReadFile(filepath.Join(dir, serverFile))
	if err != nil {
		return s, err
	}
	if err := json.Unmarshal(b, &s); err != nil {
		return s, err
	}
	if s.URL == "" {
		return s, errors.New("it names no address")
	}
	return s, nil
}
