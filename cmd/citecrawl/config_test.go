package main

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// The shipped configs/citecrawl.yaml documents the defaults: it must load
// to exactly what the code uses when there is no file.
func TestShippedConfigIsTheDefaults(t *testing.T) {
	cfg, err := loadConfig(filepath.Join("..", "..", "configs", "citecrawl.yaml"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := defaultConfig(); !reflect.DeepEqual(cfg, want) {
		t.Fatalf("configs/citecrawl.yaml differs from the defaults:\nfile:     %+v\ndefaults: %+v", cfg, want)
	}
}

func TestConfigPrecedence(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "c.yaml")
	os.WriteFile(file, []byte("nats:\n  url: nats://file:4222\nfetch:\n  delay: 5s\n"), 0o644)
	env := []string{"CITECRAWL_NATS_URL=nats://env:4222", "CITECRAWL_FETCH_HOST_DELAYS=a.org=1s,b.org=2s", "CITECRAWL_FETCH_HOST_CONCURRENCY=mirror.example=8", "CITECRAWL_HUBS=https://x/citations/11111111-0001,https://x/citations/22222222-0002", "HOME=/root"}
	o := newOptions("run", os.Stderr, brokerFlags|outFlag|rulesFlag|crawlFlags)
	cfg, err := o.load([]string{"--config", file, "--nats", "nats://flag:4222", "--set", "stages.batch=7"}, env)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.NATS.URL != "nats://flag:4222" {
		t.Errorf("flag did not win: %s", cfg.NATS.URL)
	}
	if cfg.Fetch.Delay != 5*time.Second {
		t.Errorf("file value lost: %s", cfg.Fetch.Delay)
	}
	if cfg.Fetch.HostDelays["b.org"] != 2*time.Second || cfg.Fetch.HostConcurrency["mirror.example"] != 8 || len(cfg.Hubs) != 2 || cfg.Stages.Batch != 7 {
		t.Errorf("env or --set not applied: %v %v %v %d", cfg.Fetch.HostDelays, cfg.Fetch.HostConcurrency, cfg.Hubs, cfg.Stages.Batch)
	}
}

func TestConfigErrorsNameTheInput(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "bad.yaml")
	os.WriteFile(file, []byte("fetch:\n  dealy: 5s\n"), 0o644)
	if _, err := loadConfig(file, nil); err == nil || !strings.Contains(err.Error(), "bad.yaml") || !strings.Contains(err.Error(), "dealy") {
		t.Fatalf("misspelt option: err = %v", err)
	}
	if _, err := loadConfig("", []string{"CITECRAWL_FETCH_DELAY=soon"}); err == nil || !strings.Contains(err.Error(), "CITECRAWL_FETCH_DELAY") {
		t.Fatalf("bad env value: err = %v", err)
	}
	o := newOptions("run", os.Stderr, brokerFlags|outFlag|rulesFlag|crawlFlags)
	if _, err := o.load([]string{"--set", "no.such=1"}, nil); err == nil || !strings.Contains(err.Error(), "no.such") {
		t.Fatalf("unknown option: err = %v", err)
	}
}
