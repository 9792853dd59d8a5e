package cli

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pawlogs/paw/internal/devbroker"
)

// TestProcessStandaloneServesMetrics runs `paw process` with no sidecar:
// metrics_listen serves Prometheus metrics, the dashboard, the query API
// and a fleet of one.
func TestProcessStandaloneServesMetrics(t *testing.T) {
	progs := programs(t)
	b, err := devbroker.Start(devbroker.Config{Topics: []string{"logs:1", "app-logs:1", "security-events:1", "logs-dlq:1"}})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	dir := t.TempDir()
	pipeline, err := os.ReadFile("../../../configs/pipeline.yaml")
	if err != nil {
		t.Fatal(err)
	}
	pipe := strings.Replace(string(pipeline), "programs_dir: ../build/programs", "programs_dir: "+progs, 1)
	if err := os.WriteFile(filepath.Join(dir, "pipeline.yaml"), []byte(pipe), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := fmt.Sprintf("brokers: [%s]\ntopics: [logs]\npipeline: pipeline.yaml\ndlq_topic: logs-dlq\nmetrics_listen: %s\nmetrics_dir: %s\nreport: {interval: 100ms, name: solo}\n",
		b.Addr(), addr, filepath.Join(dir, "metrics"))
	if err := os.WriteFile(filepath.Join(dir, "processor.yaml"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() {
		done <- Main(ctx, []string{"process", "--config", filepath.Join(dir, "processor.yaml"), "--log-level", "warn"}, nil, io.Discard, io.Discard)
	}()
	get := func(path string) (int, string) {
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		code, fleet := get("/v1/fleet")
		if code == 200 && strings.Contains(fleet, `"name":"solo"`) && strings.Contains(fleet, `"real-error"`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no fleet of one: %d %s", code, fleet)
		}
		time.Sleep(50 * time.Millisecond)
	}
	for path, want := range map[string]string{
		"/":                                    "paw: decisions by program",
		"/metrics":                             "paw_processor_records_fetched_total",
		"/v1/metrics/query?metric=paw_records": `"series"`,
	} {
		if code, body := get(path); code != 200 || !strings.Contains(body, want) {
			t.Errorf("GET %s: %d, want 200 with %q", path, code, want)
		}
	}
	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("paw process exited %d", code)
	}
	if _, err := os.Stat(filepath.Join(dir, "metrics", "series.jsonl")); err != nil {
		t.Fatalf("metrics_dir not written: %v", err)
	}
}
