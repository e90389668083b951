package record

import (
	"bytes"
	"slices"
	"sync"

	gojson "github.com/goccy/go-json"
)

// Marshal and Unmarshal are a record's JSON, for every place that sends,
// decodes or hashes records (the stages, the fingerprint): the same bytes
// as encoding/json gives (TestMarshalIsEncodingJSON holds them to it), at
// a fraction of its cost, which counts because a record is encoded and
// decoded several times on its way through the stages.
func Marshal(r *Record) ([]byte, error) { return gojson.Marshal(r) }

// Unmarshal decodes a record's JSON into r.
func Unmarshal(b []byte, r *Record) error { return gojson.Unmarshal(b, r) }

// MarshalLine is Marshal's bytes followed by a newline, a line of a JSON
// Lines file, in one allocation (appending the newline to Marshal's bytes,
// which fill their slice, copies them all again).
func MarshalLine(r *Record) ([]byte, error) {
	return withJSON(r, slices.Clone[[]byte])
}

// buffers hold records' JSON while it is hashed or copied out.
var buffers = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// withJSON encodes r into a reused buffer and returns what use makes of
// the bytes: Marshal's and a newline. use must not keep them.
func withJSON[T any](r *Record, use func([]byte) T) (T, error) {
	buf := buffers.Get().(*bytes.Buffer)
	defer buffers.Put(buf)
	buf.Reset()
	if err := gojson.NewEncoder(buf).Encode(r); err != nil {
		var zero T
		return zero, err
	}
	return use(buf.Bytes()), nil
}
