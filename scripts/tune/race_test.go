//go:build race

package main

// raceDetector is true under -race, where a fit runs about ten times
// slower: the long cross-validations are skipped there (CI runs -race);
// `go test ./scripts/tune` runs them.
const raceDetector = true
