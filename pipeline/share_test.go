package pipeline

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
)

// A second Bus on a data folder already served joins that server instead
// of opening the same store twice; once the first is closed, the next one
// serves the folder itself again.
func TestSecondBusOnDataFolderJoins(t *testing.T) {
	ctx := context.Background()
	cfg := BrokerConfig{DataDir: t.TempDir(), Replicas: 1}
	first, err := Open(ctx, cfg, 0, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	if first.Joined() {
		t.Fatal("the first bus on a fresh folder joined something")
	}
	info, err := os.Stat(filepath.Join(cfg.DataDir, serverFile))
	if err != nil {
		t.Fatalf("the serving process did not say where it is: %v", err)
	}
	if perm := info.Mode().Perm(); perm != 0o600 {
		t.Fatalf("%s has mode %v; it holds a token, want 0600", serverFile, perm)
	}

	second, err := Open(ctx, cfg, 0, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	if !second.Joined() {
		t.Fatal("the second bus on the same folder did not join the first's server")
	}
	// What one publishes, the other reads: it is one server.
	if err := second.PublishAll(ctx, []Out{{Subject: RawSubject("h"), MsgID: "m1", Data: []byte(`{}`)}}); err != nil {
		t.Fatal(err)
	}
	msg, err := first.JS.Stream(ctx, StreamRaw)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := msg.GetLastMsgForSubject(ctx, RawSubject("h")); err != nil {
		t.Fatalf("the first bus does not see the second's publish: %v", err)
	}
	second.Close()
	first.Close()

	third, err := Open(ctx, cfg, 0, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer third.Close()
	if third.Joined() {
		t.Fatal("a bus opened after the server closed joined a server that is gone")
	}
	s, err := third.JS.Stream(ctx, StreamRaw)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetLastMsgForSubject(ctx, RawSubject("h")); errors.Is(err, jetstream.ErrMsgNotFound) {
		t.Fatal("the store was not kept across servers")
	}
}

// A folder whose lock is held but whose server says nothing is refused
// with an error naming the folder, not opened a second time.
func TestDataFolderHeldWithoutServerIsRefused(t *testing.T) {
	dir := t.TempDir()
	lock, ok, err := tryLock(filepath.Join(dir, lockFile))
	if err != nil || !ok {
		t.Fatalf("taking the lock: ok=%v err=%v", ok, err)
	}
	defer lock.Close()
	_, _, err = serveOrFind(BrokerConfig{DataDir: dir}, zerolog.Nop(), 0)
	if !errors.Is(err, ErrDataDirInUse) {
		t.Fatalf("want ErrDataDirInUse, got %v", err)
	}
	if want := dir; !strings.Contains(err.Error(), want) {
		t.Fatalf("error %q does not name the folder %s", err, want)
	}
}

// A folder whose lock is held by a server still starting, or stopping (a
// broker child whose command has just ended), is waited for: served once
// it is free, not refused.
func TestDataFolderHeldForAMomentIsServed(t *testing.T) {
	dir := t.TempDir()
	lock, ok, err := tryLock(filepath.Join(dir, lockFile))
	if err != nil || !ok {
		t.Fatalf("taking the lock: ok=%v err=%v", ok, err)
	}
	// Freed after the time a stopping server takes, well within
	// serverStartWait.
	freed := time.AfterFunc(300*time.Millisecond, func() { lock.Close() })
	defer freed.Stop()
	srv, err := ServeOrWait(BrokerConfig{DataDir: dir}, zerolog.Nop())
	if err != nil {
		t.Fatalf("a folder held for a moment: %v", err)
	}
	srv.Close()
}

// Starting again leaves streams already as configured alone (an update
// at every start raced, inside nats-server, with another process
// creating a consumer), and updates those whose configuration changed.
func TestEnsureStreamsUpdatesOnlyWhatChanged(t *testing.T) {
	cfg := testConfig(t, t.TempDir(), nil)
	bus := openBus(t, cfg)
	defer bus.Close()
	ctx := context.Background()
	sub, err := bus.NC.SubscribeSync("$JS.EVENT.ADVISORY.STREAM.>")
	if err != nil {
		t.Fatal(err)
	}
	for _, retain := range []time.Duration{time.Hour, time.Hour, 2 * time.Hour} {
		bus.cfg.RetainRecords = retain
		if err := bus.ensureStreams(ctx); err != nil {
			t.Fatal(err)
		}
	}
	// The server sends its advisories in order: once the new stream's
	// comes, every update's has come.
	if _, err := bus.JS.CreateStream(ctx, jetstream.StreamConfig{Name: "LAST", Subjects: []string{"last.>"}}); err != nil {
		t.Fatal(err)
	}
	var updated []string
	for {
		m, err := sub.NextMsg(20 * time.Second)
		if err != nil {
			t.Fatalf("no advisory of the new stream: %v", err)
		}
		if m.Subject == "$JS.EVENT.ADVISORY.STREAM.CREATED.LAST" {
			break
		}
		if name, ok := strings.CutPrefix(m.Subject, "$JS.EVENT.ADVISORY.STREAM.UPDATED."); ok {
			updated = append(updated, name)
		}
	}
	// The raw and tagged streams keep records for RetainRecords: updated
	// at the first and third start, not at the second.
	slices.Sort(updated)
	if want := []string{StreamRaw, StreamRaw, StreamTagged, StreamTagged}; !slices.Equal(updated, want) {
		t.Fatalf("streams updated %v, want %v", updated, want)
	}
}
