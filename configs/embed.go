// Package configs holds the default configuration and classification
// rules. They are plain files a user can read and edit; the copies
// compiled in here are only what the binary falls back to when no rules
// directory or config file is given.
package configs

import "embed"

// FS holds citecrawl.yaml and rules/.
//
//go:embed citecrawl.yaml rules/*.yaml
var FS embed.FS
