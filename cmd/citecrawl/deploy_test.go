package main

import (
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// Docker is not on the machines this project is built on, so the image and
// the compose file are checked here by reading them: the compose topology
// is whole and healthy-gated, every citecrawl command in it is one the
// binary accepts, and the binary the Dockerfile builds is static.

type composeFile struct {
	Services map[string]composeService `yaml:"services"`
}

type composeService struct {
	Image       string            `yaml:"image"`
	Build       any               `yaml:"build"`
	Command     any               `yaml:"command"`
	Environment map[string]string `yaml:"environment"`
	DependsOn   map[string]struct {
		Condition string `yaml:"condition"`
	} `yaml:"depends_on"`
	Healthcheck *struct {
		Test []string `yaml:"test"`
	} `yaml:"healthcheck"`
}

func readCompose(t *testing.T) composeFile {
	t.Helper()
	b, err := os.ReadFile("../../docker-compose.yml")
	if err != nil {
		t.Fatal(err)
	}
	var c composeFile
	if err := yaml.Unmarshal(b, &c); err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	return c
}

func TestComposeTopology(t *testing.T) {
	c := readCompose(t)
	var nats, workers []string
	for name, s := range c.Services {
		if s.Healthcheck == nil || len(s.Healthcheck.Test) == 0 {
			t.Errorf("service %s has no health check", name)
		}
		for dep, d := range s.DependsOn {
			if _, ok := c.Services[dep]; !ok {
				t.Errorf("service %s depends on %s, which is not defined", name, dep)
			}
			if d.Condition != "service_healthy" {
				t.Errorf("service %s starts before %s is healthy (condition %q)", name, dep, d.Condition)
			}
		}
		switch {
		case strings.HasPrefix(s.Image, "nats:"):
			nats = append(nats, name)
		case strings.HasPrefix(s.Image, "citecrawl"):
			if s.Build == nil {
				t.Errorf("service %s uses the citecrawl image but does not say how it is built", name)
			}
			workers = append(workers, name)
		default:
			t.Errorf("service %s: image %q is neither NATS nor citecrawl", name, s.Image)
		}
	}
	if len(nats) != 3 {
		t.Errorf("want three NATS nodes, have %v", nats)
	}
	for _, w := range workers {
		url := c.Services[w].Environment["CITECRAWL_NATS_URL"]
		for _, n := range nats {
			if !strings.Contains(url, "nats://"+n+":4222") {
				t.Errorf("service %s does not list NATS node %s in CITECRAWL_NATS_URL %q", w, n, url)
			}
		}
		if r := c.Services[w].Environment["CITECRAWL_NATS_REPLICAS"]; r != "3" {
			t.Errorf("service %s: streams on a three-node cluster want 3 replicas, not %q", w, r)
		}
	}
	var stages []string
	for _, w := range workers {
		args := commandArgs(t, c.Services[w].Command)
		if args[0] == "worker" {
			stages = append(stages, args[slices.Index(args, "--stage")+1])
		}
	}
	slices.Sort(stages)
	if want := []string{"classify", "fetch", "sink"}; !slices.Equal(stages, want) {
		t.Errorf("worker stages %v, want one service each for %v", stages, want)
	}
}

func commandArgs(t *testing.T, cmd any) []string {
	t.Helper()
	list, ok := cmd.([]any)
	if !ok || len(list) == 0 {
		t.Fatalf("command %v: want a list of arguments", cmd)
	}
	args := make([]string, len(list))
	for i, a := range list {
		args[i] = a.(string)
	}
	return args
}

// Every citecrawl command and environment variable in the compose file is
// one the binary knows: a flag it would refuse would crash-loop the service.
func TestComposeCommandsAreAccepted(t *testing.T) {
	c := readCompose(t)
	_, known, _ := runCLI(t, "options")
	for name, s := range c.Services {
		if !strings.HasPrefix(s.Image, "citecrawl") {
			continue
		}
		for env := range s.Environment {
			if !strings.Contains(known, " "+env+"\n") {
				t.Errorf("service %s sets %s, which is no citecrawl option", name, env)
			}
		}
		for _, args := range [][]string{commandArgs(t, s.Command), s.Healthcheck.Test[1:]} {
			if strings.HasSuffix(args[0], "/citecrawl") {
				args = args[1:]
			}
			// -h after the flags: the flags are parsed, then help ends it.
			_, _, stderr := runCLI(t, append(slices.Clone(args), "-h")...)
			for _, bad := range []string{"flag provided but not defined", "unknown command"} {
				if strings.Contains(stderr, bad) {
					t.Errorf("service %s: citecrawl %s: %s", name, strings.Join(args, " "), firstLine(stderr))
				}
			}
		}
	}
}

func firstLine(s string) string { return strings.SplitN(s, "\n", 2)[0] }

// The Dockerfile builds in one stage and ships a static binary with the
// configs in a small base image of another.
func TestDockerfileBuildsStaticImage(t *testing.T) {
	b, err := os.ReadFile("../../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	df := string(b)
	froms := regexp.MustCompile(`(?m)^FROM\s+(\S+)`).FindAllStringSubmatch(df, -1)
	if len(froms) < 2 {
		t.Fatalf("want a multi-stage Dockerfile, have %d FROM lines", len(froms))
	}
	if final := froms[len(froms)-1][1]; !strings.Contains(final, "distroless/static") && final != "scratch" {
		t.Errorf("final stage %s: want a static base image", final)
	}
	for _, want := range []string{"CGO_ENABLED=0", "COPY configs/", "COPY --from=build", "ENTRYPOINT"} {
		if !strings.Contains(df, want) {
			t.Errorf("Dockerfile lacks %q", want)
		}
	}
	if testing.Short() {
		return
	}
	// Build the way the Dockerfile does and check the result needs no libc.
	bin := filepath.Join(t.TempDir(), "citecrawl")
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", bin, ".")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Fatal("the binary asks for a dynamic loader: it would not start on a static base image")
		}
	}
}
