package record

import gojson "github.com/goccy/go-json"

// Marshal and Unmarshal are a record's JSON, for every place that sends,
// decodes or hashes records (the stages, the fingerprint): the same bytes
// as encoding/json gives (TestMarshalIsEncodingJSON holds them to it), at
// a fraction of its cost, which counts because a record is encoded and
// decoded several times on its way through the stages.
func Marshal(r *Record) ([]byte, error) { return gojson.Marshal(r) }

// Unmarshal decodes a record's JSON into r.
func Unmarshal(b []byte, r *Record) error { return gojson.Unmarshal(b, r) }
