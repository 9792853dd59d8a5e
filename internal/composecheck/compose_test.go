package composecheck

import (
	"bufio"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/goccy/go-yaml"

	"github.com/pawlogs/paw/processor"
	"github.com/pawlogs/paw/runtime"
)

const root = "../.."

type compose struct {
	Services map[string]struct {
		Build *struct {
			Context    string `yaml:"context"`
			Dockerfile string `yaml:"dockerfile"`
			Target     string `yaml:"target"`
		} `yaml:"build"`
		Image       string         `yaml:"image"`
		Command     []string       `yaml:"command"`
		Volumes     []string       `yaml:"volumes"`
		Ports       []string       `yaml:"ports"`
		DependsOn   map[string]any `yaml:"depends_on"`
		Healthcheck *struct {
			Test []string `yaml:"test"`
		} `yaml:"healthcheck"`
	} `yaml:"services"`
	Volumes map[string]any `yaml:"volumes"`
}

func load(t *testing.T) compose {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(root, "docker-compose.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var c compose
	if err := yaml.Unmarshal(data, &c); err != nil {
		t.Fatal(err)
	}
	return c
}

// imageFiles maps paths inside the images to repository paths, from the
// Dockerfile's COPY lines (not those copying from another stage).
func imageFiles(t *testing.T) (map[string]string, []string, string) {
	t.Helper()
	f, err := os.Open(filepath.Join(root, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	copies := map[string]string{}
	var stages []string
	var text strings.Builder
	sc := bufio.NewScanner(f)
	stage := regexp.MustCompile(`(?i)^FROM \S+ AS (\S+)`)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		text.WriteString(line + "\n")
		if m := stage.FindStringSubmatch(line); m != nil {
			stages = append(stages, m[1])
		}
		fields := strings.Fields(line)
		if len(fields) == 3 && fields[0] == "COPY" {
			if _, err := os.Stat(filepath.Join(root, fields[1])); err != nil {
				t.Errorf("Dockerfile copies %s, which is not in the repository", fields[1])
			}
			copies[fields[2]] = fields[1]
		}
	}
	return copies, stages, text.String()
}

// repoPath finds the repository file an image path comes from.
func repoPath(copies map[string]string, p string) (string, bool) {
	for dst, src := range copies {
		if p == dst {
			return src, true
		}
		if strings.HasPrefix(p, strings.TrimSuffix(dst, "/")+"/") {
			return filepath.Join(src, strings.TrimPrefix(p, strings.TrimSuffix(dst, "/")+"/")), true
		}
	}
	return "", false
}

func TestComposeReferencesExist(t *testing.T) {
	c := load(t)
	copies, stages, dockerfile := imageFiles(t)
	hostPorts := map[string]string{}
	containerPorts := map[string][]string{}
	for name, s := range c.Services {
		if s.Build == nil && s.Image == "" {
			t.Errorf("%s: neither build nor image", name)
		}
		if b := s.Build; b != nil {
			if _, err := os.Stat(filepath.Join(root, b.Context, b.Dockerfile)); err != nil {
				t.Errorf("%s: %v", name, err)
			}
			if !slices.Contains(stages, b.Target) {
				t.Errorf("%s: Dockerfile has no stage %q (has %v)", name, b.Target, stages)
			}
		}
		for dep := range s.DependsOn {
			if _, ok := c.Services[dep]; !ok {
				t.Errorf("%s depends on unknown service %s", name, dep)
			}
		}
		for _, v := range s.Volumes {
			src, _, _ := strings.Cut(v, ":")
			if strings.HasPrefix(src, "./") {
				if _, err := os.Stat(filepath.Join(root, src)); err != nil {
					t.Errorf("%s mounts %s: %v", name, src, err)
				}
			} else if _, ok := c.Volumes[src]; !ok {
				t.Errorf("%s uses volume %s, not declared", name, src)
			}
		}
		for _, p := range s.Ports {
			host, cont, ok := strings.Cut(p, ":")
			if !ok {
				t.Errorf("%s: port %q wants host:container", name, p)
				continue
			}
			if other, dup := hostPorts[host]; dup {
				t.Errorf("host port %s used by %s and %s", host, name, other)
			}
			hostPorts[host] = name
			containerPorts[name] = append(containerPorts[name], cont)
		}
		// Every /etc/paw or /fluent-bit path in a command or healthcheck
		// is in the image (copied from the repository) or mounted.
		args := append([]string{}, s.Command...)
		if s.Healthcheck != nil {
			args = append(args, s.Healthcheck.Test...)
		}
		for _, a := range args {
			for _, p := range regexp.MustCompile(`/(?:etc/paw|fluent-bit)/[\w./-]+`).FindAllString(a, -1) {
				if mounted(s.Volumes, p) {
					continue
				}
				src, ok := repoPath(copies, p)
				if !ok {
					if !strings.Contains(dockerfile, p) {
						t.Errorf("%s refers to %s, which no COPY or volume provides", name, p)
					}
					continue
				}
				if _, err := os.Stat(filepath.Join(root, src)); err != nil {
					t.Errorf("%s refers to %s (%s): %v", name, p, src, err)
				}
			}
		}
	}

	// The processor's config: valid, and its endpoints are services and
	// ports of this file.
	pc, err := processor.LoadConfig(filepath.Join(root, "configs/processor.compose.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range pc.Brokers {
		wantServicePort(t, containerPorts, b, "kafka")
	}
	u, err := url.Parse(pc.ProgramsURL)
	if err != nil {
		t.Fatal(err)
	}
	wantServicePort(t, containerPorts, u.Host, "sidecar")
	_, mport, _ := strings.Cut(pc.MetricsListen, ":")
	if !slices.Contains(containerPorts["processor"], mport) {
		t.Errorf("processor metrics on %s, but compose publishes %v", mport, containerPorts["processor"])
	}
	if _, err := runtime.LoadPipelineConfig(pc.PipelinePath()); err != nil {
		t.Error(err)
	}

	// Fluent Bit's config: its plugin file and plugin are in the image.
	fb, err := os.ReadFile(filepath.Join(root, "configs/fluent-bit/fluent-bit.compose.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range regexp.MustCompile(`/(?:etc/paw|fluent-bit)/[\w./-]+`).FindAllString(string(fb), -1) {
		if src, ok := repoPath(copies, p); ok {
			if _, err := os.Stat(filepath.Join(root, src)); err != nil {
				t.Errorf("fluent-bit.compose.yaml refers to %s: %v", p, err)
			}
		} else if !strings.Contains(dockerfile, p) {
			t.Errorf("fluent-bit.compose.yaml refers to %s, which the image does not have", p)
		}
	}
	for _, hp := range []string{"http_port: 2020", "programs_url: http://sidecar:8080", "kafka://kafka:9092/"} {
		if !strings.Contains(string(fb), hp) {
			t.Errorf("fluent-bit.compose.yaml lacks %q, which the compose file assumes", hp)
		}
	}
}

func wantServicePort(t *testing.T, ports map[string][]string, hostport, service string) {
	t.Helper()
	host, port, _ := strings.Cut(hostport, ":")
	if host != service {
		t.Errorf("%s points at %s, want the %s service", hostport, host, service)
	}
	if !slices.Contains(ports[service], port) {
		t.Errorf("%s: service %s publishes %v", hostport, service, ports[service])
	}
}

func mounted(volumes []string, p string) bool {
	for _, v := range volumes {
		parts := strings.Split(v, ":")
		if len(parts) >= 2 && (p == parts[1] || strings.HasPrefix(p, strings.TrimSuffix(parts[1], "/")+"/")) {
			return true
		}
	}
	return false
}
