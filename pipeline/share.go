package pipeline

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
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

// findServer reads where the server holding dir can be reached. The holder
// writes the file once its server is ready, so a process that finds the
// lock taken waits for it a little.
func findServer(dir string, wait time.Duration) (sharedServer, error) {
	deadline := time.Now().Add(wait)
	for {
		var s sharedServer
		b, err := os.ReadFile(filepath.Join(dir, serverFile))
		if err == nil {
			if err = json.Unmarshal(b, &s); err == nil && s.URL != "" {
				return s, nil
			}
		}
		if time.Now().After(deadline) {
			if err == nil {
				err = errors.New("it names no address")
			}
			return s, fmt.Errorf("%w: %s (and %s: %v)", ErrDataDirInUse, dir, serverFile, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
