// Package sink writes tagged records out. Every sink buffers what it is
// given and makes it durable and visible only on Flush; the sink stage
// acknowledges messages after a Flush succeeded, so nothing acked can be
// lost and nothing half-written can be seen.
package sink

import (
	"encoding/json"
	"fmt"

	"github.com/citecrawl/citecrawl/record"
)

// Sink is what the sink stage writes to.
type Sink interface {
	// Write buffers r. A record already written with the same content
	// (the same id and fingerprint) is skipped: it reports false.
	Write(r *record.Record) (bool, error)
	// ShouldFlush tells whether the buffered output reached its size or age
	// limit.
	ShouldFlush() bool
	// Flush makes everything written so far durable and visible.
	Flush() error
	// Close flushes and releases the sink.
	Close() error
}

// seen remembers which record versions a sink has written, so that a
// record delivered twice (a crash before the ack, a restart, a second run)
// appears once.
type seen map[string]struct{}

func versionKey(r *record.Record) string { return r.ID + "/" + r.Fingerprint() }

// add records a version key; false means it was written before.
func (s seen) add(k string) bool {
	if _, ok := s[k]; ok {
		return false
	}
	s[k] = struct{}{}
	return true
}

// Encoded is a record with its JSON line and version key worked out, so
// callers with many cores can encode in parallel and write in order.
type Encoded struct {
	Record *record.Record
	Line   []byte // JSON and a newline
	Key    string // id and content fingerprint
}

// Encode prepares r for WriteEncoded.
func Encode(r *record.Record) (Encoded, error) {
	b, err := json.Marshal(r)
	if err != nil {
		return Encoded{}, fmt.Errorf("encoding record %s: %w", r.ID, err)
	}
	return Encoded{Record: r, Line: append(b, '\n'), Key: versionKey(r)}, nil
}
