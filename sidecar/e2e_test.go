package sidecar

import (
	"context"
	"encoding/json"
	"fmt"
	"github.com/pawlogs/paw/metrics"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/pawlogs/paw/internal/devbroker"
	"github.com/pawlogs/paw/processor"
)

// TestSpecEditReachesARunningProcessor: editing a spec makes the sidecar
// publish a new program, which a running processor hot-reloads, from the
// programs folder or by polling the sidecar's API with its token: records
// produced after the edit carry the new program ID.
func TestSpecEditReachesARunningProcessor(t *testing.T) {
	for _, viaURL := range []bool{false, true} {
		t.Run(map[bool]string{false: "folder", true: "sidecar URL"}[viaURL], func(t *testing.T) {
			specEditReachesProcessor(t, viaURL)
		})
	}
}

func specEditReachesProcessor(t *testing.T, viaURL bool) {
	token, extra := "", ""
	if viaURL {
		token = "tok3n"
	}
	t.Setenv("PAW_TEST_SIDECAR_TOKEN", token)
	s := startServer(t, token, map[string]string{"errs.yaml": specYAML("errs", 1)})
	if viaURL {
		extra = fmt.Sprintf("programs_url: http://%s\nprograms_token_env: PAW_TEST_SIDECAR_TOKEN\nprograms_poll: 200ms\n", s.addr)
	}
	// The processor reports its decisions and program IDs to the sidecar.
	extra += fmt.Sprintf("report: {url: http://%s, token_env: PAW_TEST_SIDECAR_TOKEN, interval: 100ms, name: proc-1}\n", s.addr)
	first := s.waitFor("published", func(ps map[string]Program) bool { return ps["errs.yaml"].Status == "ok" })["errs.yaml"].ID

	b, err := devbroker.Start(devbroker.Config{Topics: []string{"in:1", "alerts:1", "app:1", "dlq:1"}})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	dir := t.TempDir()
	pipeline := fmt.Sprintf("programs_dir: %s\nsteps:\n  - tag: {programs: [errs]}\n  - route: {program: errs, routes: {error: alerts}, default: app}\n", s.programs)
	programsDir := s.programs
	if viaURL {
		programsDir = t.TempDir() // empty: everything comes from the API
	}
	pipeline = strings.Replace(pipeline, s.programs, programsDir, 1)
	write(t, filepath.Join(dir, "pipeline.yaml"), pipeline)
	write(t, filepath.Join(dir, "processor.yaml"), fmt.Sprintf("brokers: [%s]\ntopics: [in]\npipeline: pipeline.yaml\ndlq_topic: dlq\ncommit_interval: 100ms\n%s", b.Addr(), extra))
	p, err := processor.Open(filepath.Join(dir, "processor.yaml"), "", processor.Options{Logger: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()

	w := &kafka.Writer{Addr: kafka.TCP(b.Addr()), Topic: "in", BatchTimeout: time.Millisecond, RequiredAcks: kafka.RequireAll}
	defer w.Close()
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: []string{b.Addr()}, Topic: "alerts", MaxWait: 100 * time.Millisecond})
	defer r.Close()
	// alertID produces an error line and returns the program ID its alert
	// was tagged with.
	alertID := func(i int) string {
		t.Helper()
		if err := w.WriteMessages(context.Background(), kafka.Message{Value: []byte(fmt.Sprintf("ERROR request %d failed with exception timeout", i))}); err != nil {
			t.Fatal(err)
		}
		rctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		m, err := r.ReadMessage(rctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, h := range m.Headers {
			if h.Key == "paw-errs-id" {
				return string(h.Value)
			}
		}
		t.Fatalf("alert without paw-errs-id: %v", m.Headers)
		return ""
	}
	if got := alertID(0); got != first {
		t.Fatalf("tagged by %s, want the published %s", got, first)
	}
	s.writeSpec("errs.yaml", specYAML("errs", 2))
	next := compileID(t, specYAML("errs", 2))
	s.waitFor("the edit", func(ps map[string]Program) bool { return ps["errs.yaml"].ID == next })
	deadline := time.Now().Add(30 * time.Second)
	sent := 1
	for i := 1; ; i++ {
		got := alertID(i)
		sent++
		if got == next {
			t.Logf("record %d after the edit carried the new program %s", i, next[:12])
			break
		}
		if got != first || time.Now().After(deadline) {
			t.Fatalf("tagged by %s; want %s, then %s", got, first[:12], next[:12])
		}
		time.Sleep(50 * time.Millisecond)
	}
	// The fleet view shows the processor on the new program, and the
	// store holds one "error" decision per record.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		_, data := s.request("GET", "/v1/fleet", nil, nil)
		var fleet []metrics.Member
		json.Unmarshal(data, &fleet)
		q := s.query("metric=paw_decisions&program=errs&label=error&reporter=proc-1&from=" + strconv.FormatInt(time.Now().Add(-time.Hour).UnixMilli(), 10))
		total := 0.0
		for _, sr := range q.Series {
			for _, smp := range sr.Samples {
				total += smp.V
			}
		}
		if len(fleet) == 1 && fleet[0].Name == "proc-1" && fleet[0].Programs["errs"] == next && fleet[0].Current && total == float64(sent) {
			t.Logf("fleet: %s runs %s; %v error decisions stored for %d records", fleet[0].Name, next[:12], total, sent)
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("fleet %s, %v error decisions stored; want proc-1 on %s and %d", data, total, next[:12], sent)
		}
	}
}

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}
