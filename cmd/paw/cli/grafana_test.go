package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pawlogs/paw/internal/devbroker"
	"github.com/pawlogs/paw/teacher/teachertest"
)

// dashboardMetrics lists the metric names the shipped Grafana dashboard
// queries (histogram series without their _bucket suffix).
func dashboardMetrics(t *testing.T) []string {
	t.Helper()
	data, err := os.ReadFile("../../../configs/grafana/dashboards/paw.json")
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(data, &d); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	name := regexp.MustCompile(`\bpaw_[a-z0-9_]+`)
	for _, p := range d.Panels {
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			for _, m := range name.FindAllString(tg.Expr, -1) {
				seen[strings.TrimSuffix(m, "_bucket")] = true
			}
		}
	}
	var out []string
	for m := range seen {
		out = append(out, m)
	}
	slices.Sort(out)
	return out
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// TestGrafanaDashboardQueriesExist runs a processor (with escalations to a
// review topic and to a teacher, and a record for the dead-letter topic)
// and a sidecar, and checks that every metric the shipped dashboard
// queries is in their /metrics.
func TestGrafanaDashboardQueriesExist(t *testing.T) {
	progs := programs(t)
	b, err := devbroker.Start(devbroker.Config{Topics: []string{"logs:1", "app-logs:1", "security-events:1", "logs-dlq:1", "review:1"}})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	teach := teachertest.NewServer(t, func(line string) string {
		if strings.Contains(line, "DEBUG") {
			return "noise"
		}
		return "signal"
	})
	dir := t.TempDir()
	pipe := fmt.Sprintf(`programs_dir: %s
input: log
steps:
  - filter: {program: noise, keep: [signal], escalate: {below: 0.99, to: teacher, teacher: {base_url: %q, model: %s}}}
  - tag: {programs: [real-error, security-event]}
  - route: {program: security-event, routes: {auth_failure: security-events}, default: app-logs, escalate: {below: 0.99, to: review}}
`, progs, teach.BaseURL(), teachertest.Model)
	os.WriteFile(filepath.Join(dir, "pipeline.yaml"), []byte(pipe), 0o644)
	procAddr, sideAddr := freeAddr(t), freeAddr(t)
	cfg := fmt.Sprintf("brokers: [%s]\ntopics: [logs]\npipeline: pipeline.yaml\ndlq_topic: logs-dlq\nmetrics_listen: %s\n", b.Addr(), procAddr)
	os.WriteFile(filepath.Join(dir, "processor.yaml"), []byte(cfg), 0o644)
	specs := t.TempDir()
	spec, _ := os.ReadFile("../../../configs/filters/noise.yaml")
	os.WriteFile(filepath.Join(specs, "noise.yaml"), spec, 0o644)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan int, 2)
	go func() {
		done <- Main(ctx, []string{"process", "--config", filepath.Join(dir, "processor.yaml"), "--log-level", "error"}, nil, io.Discard, io.Discard)
	}()
	go func() {
		done <- Main(ctx, []string{"serve", "--specs", specs, "--programs", t.TempDir(), "--listen", sideAddr, "--log-level", "error"}, nil, io.Discard, io.Discard)
	}()
	sample, _ := os.ReadFile("../../../configs/samples/app.log")
	if code, _, errs := paw(t, string(sample), "produce", "--brokers", b.Addr(), "--topic", "logs", "--json-field", "log"); code != 0 {
		t.Fatalf("produce: %s", errs)
	}
	if code, _, errs := paw(t, "not json\n", "produce", "--brokers", b.Addr(), "--topic", "logs"); code != 0 {
		t.Fatalf("produce: %s", errs)
	}
	get := func(addr string) string {
		resp, err := http.Get("http://" + addr + "/metrics")
		if err != nil {
			return ""
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return string(body)
	}
	want := dashboardMetrics(t)
	var missing []string
	deadline := time.Now().Add(60 * time.Second)
	for {
		exposed := get(procAddr) + get(sideAddr)
		missing = missing[:0]
		for _, m := range want {
			if !strings.Contains(exposed, "# TYPE "+m+" ") {
				missing = append(missing, m)
			}
		}
		if len(missing) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if len(missing) > 0 {
		t.Fatalf("the dashboard queries metrics neither the processor nor the sidecar exposes: %v", missing)
	}
	t.Logf("%d metrics queried, all exposed: %v", len(want), want)
	cancel()
	for range 2 {
		if code := <-done; code != 0 {
			t.Errorf("exit %d", code)
		}
	}
}
