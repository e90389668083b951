package main

import (
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/citecrawl/citecrawl/ingest/snapshot"
	"github.com/citecrawl/citecrawl/pipeline"
)

// Config is the whole configuration file: the pipeline's options plus the
// command line's own.
type Config struct {
	pipeline.Config `yaml:",inline"`
	// Offline crawls the bundled snapshot site: see offlineOptions.
	Offline bool `yaml:"offline"`
}

// defaultConfig is pipeline.DefaultConfig, where every default is written;
// offline is off.
func defaultConfig() Config { return Config{Config: pipeline.DefaultConfig()} }

// offlineOptions are what offline mode changes, given where the snapshot
// site is served: its hubs, its copy of arXiv, no politeness delay for our
// own server on loopback, and leave to connect to that one address.
func offlineOptions(base string) []kv {
	host := base
	if u, err := url.Parse(base); err == nil {
		host = u.Hostname()
	}
	return []kv{
		{"hubs", strings.Join(snapshot.Default().HubURLs(base), ",")},
		{"full_text.arxiv_base", base},
		{"fetch.host_delays", host + "=0s"},
		// The crawler refuses loopback addresses; the snapshot's own is
		// the one it may reach.
		{"fetch.allow_addresses", host},
	}
}

// kv is an option path and its value as text.
type kv struct{ path, value string }

// applyOptions sets each option in turn (later ones win).
func applyOptions(cfg *Config, opts []kv) error {
	for _, o := range opts {
		if err := setOption(cfg, o.path, o.value); err != nil {
			return fmt.Errorf("option %s: %w", o.path, err)
		}
	}
	return nil
}

// loadConfig layers the configuration: defaults, then the file (if any),
// then CITECRAWL_* environment variables; flags are applied by the caller.
func loadConfig(path string, environ []string) (Config, error) {
	cfg := defaultConfig()
	if path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return cfg, fmt.Errorf("config file: %w", err)
		}
		dec := yaml.NewDecoder(strings.NewReader(string(b)))
		dec.KnownFields(true)                                               // a misspelt option is an error, not silently ignored
		if err := dec.Decode(&cfg); err != nil && !errors.Is(err, io.EOF) { // io.EOF: an empty file
			return cfg, fmt.Errorf("config file %s: %w", path, err)
		}
	}
	for _, kv := range environ {
		k, v, _ := strings.Cut(kv, "=")
		name, ok := strings.CutPrefix(k, "CITECRAWL_")
		if !ok || name == "CONFIG" {
			continue
		}
		if err := setOption(&cfg, envToPath(name), v); err != nil {
			return cfg, fmt.Errorf("environment variable %s: %w", k, err)
		}
	}
	return cfg, nil
}

// envToPath is the inverse of the naming used in the README:
// CITECRAWL_NATS_DATA_DIR is nats.data_dir.
func envToPath(name string) string { return strings.ToLower(name) }

// setOption sets the option at path ("nats.url", or "nats_url" from the
// environment, where _ separates both levels and words) to the text value.
func setOption(cfg *Config, path, value string) error {
	field, err := findOption(reflect.ValueOf(cfg).Elem(), path)
	if err != nil {
		return err
	}
	return setValue(field, value)
}

// findOption walks yaml names. A path may use "." or "_" between levels,
// so it tries every split of an underscored name.
func findOption(v reflect.Value, path string) (reflect.Value, error) {
	t := v.Type()
	for i := range t.NumField() {
		f := t.Field(i)
		tag := strings.Split(f.Tag.Get("yaml"), ",")
		if len(tag) > 1 && tag[1] == "inline" {
			if fv, err := findOption(v.Field(i), path); err == nil {
				return fv, nil
			}
			continue
		}
		name := tag[0]
		if name == "" || name == "-" {
			continue
		}
		if path == name {
			return v.Field(i), nil
		}
		for _, sep := range []string{".", "_"} {
			if rest, ok := strings.CutPrefix(path, name+sep); ok && f.Type.Kind() == reflect.Struct {
				if fv, err := findOption(v.Field(i), rest); err == nil {
					return fv, nil
				}
			}
		}
	}
	return reflect.Value{}, fmt.Errorf("no option %q", path)
}

var durationType = reflect.TypeFor[time.Duration]()

func setValue(v reflect.Value, s string) error {
	switch {
	case v.Type() == durationType:
		d, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("%q is not a duration like 3s or 2m: %w", s, err)
		}
		v.SetInt(int64(d))
	case v.Kind() == reflect.String:
		v.SetString(s)
	case v.Kind() == reflect.Bool:
		b, err := strconv.ParseBool(s)
		if err != nil {
			return fmt.Errorf("%q is not true or false", s)
		}
		v.SetBool(b)
	case v.Kind() == reflect.Int || v.Kind() == reflect.Int64:
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return fmt.Errorf("%q is not a whole number", s)
		}
		v.SetInt(n)
	case v.Kind() == reflect.Float64:
		f, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return fmt.Errorf("%q is not a number", s)
		}
		v.SetFloat(f)
	case v.Kind() == reflect.Slice:
		parts := splitList(s)
		out := reflect.MakeSlice(v.Type(), len(parts), len(parts))
		for i, p := range parts {
			if err := setValue(out.Index(i), p); err != nil {
				return err
			}
		}
		v.Set(out)
	case v.Kind() == reflect.Map && v.Type().Key().Kind() == reflect.String:
		m := reflect.MakeMap(v.Type())
		for _, p := range splitList(s) {
			k, val, ok := strings.Cut(p, "=")
			if !ok {
				return fmt.Errorf("%q: want key=value pairs separated by commas", s)
			}
			e := reflect.New(v.Type().Elem()).Elem()
			if err := setValue(e, val); err != nil {
				return err
			}
			m.SetMapIndex(reflect.ValueOf(k), e)
		}
		v.Set(m)
	default:
		return fmt.Errorf("options of type %s cannot be set from text", v.Type())
	}
	return nil
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// optionNames lists every settable option path, for the README and for
// the help text.
func optionNames() []string {
	var out []string
	var walk func(t reflect.Type, prefix string)
	walk = func(t reflect.Type, prefix string) {
		for i := range t.NumField() {
			f := t.Field(i)
			tag := strings.Split(f.Tag.Get("yaml"), ",")
			if len(tag) > 1 && tag[1] == "inline" {
				walk(f.Type, prefix)
				continue
			}
			if tag[0] == "" || tag[0] == "-" { // as findOption: not an option
				continue
			}
			if f.Type.Kind() == reflect.Struct && f.Type != durationType {
				walk(f.Type, prefix+tag[0]+".")
				continue
			}
			out = append(out, prefix+tag[0])
		}
	}
	walk(reflect.TypeFor[Config](), "")
	sort.Strings(out)
	return out
}
