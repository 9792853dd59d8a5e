package sidecar

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/pawlogs/paw/internal/devbroker"
	"github.com/pawlogs/paw/metrics"
	"github.com/pawlogs/paw/processor"
)

// TestSpecEditReachesARunningProcessor: editing a spec makes the sidecar
// publish a new program, which a running processor hot-reloads, from the
// programs folder or by polling the sidecar's API with its token: records
// produced after the edit carry the new program ID.
func TestSpecEditReachesARunningProcessor(t *testing.T) {
	edit := func(t *testing.T, s *server) string {
		s.writeSpec("errs.yaml", specYAML("errs", 2))
		next := compileID(t, specYAML("errs", 2))
		s.waitFor("the edit", func(ps map[string]Program) bool { return ps["errs.yaml"].ID == next })
		return next
	}
	for _, viaURL := range []bool{false, true} {
		t.Run(map[bool]string{false: "folder", true: "sidecar URL"}[viaURL], func(t *testing.T) {
			changeReachesProcessor(t, viaURL, specYAML("errs", 1), edit)
		})
	}
}

// TestAnswersReachARunningProcessor closes the learning loop end to end:
// answers posted to the sidecar recompile the program, and a processor
// polling the sidecar runs the learned one. It logs how long the
// recompile took and how long the processor took to pick it up.
func TestAnswersReachARunningProcessor(t *testing.T) {
	spec := specYAML("errs", 1) + "learn: {min_new_answers: 20, interval: 1ms}\n"
	learn := func(t *testing.T, s *server) string {
		first := s.waitFor("published", func(ps map[string]Program) bool { return ps["errs.yaml"].Status == "ok" })["errs.yaml"].ID
		var b strings.Builder
		b.WriteString(`{"answers": [`)
		for i := 0; i < 20; i++ {
			label, what := "ok", "finished cleanly"
			if i%2 == 0 {
				label, what = "error", "crashed with fatal exception"
			}
			if i > 0 {
				b.WriteString(",")
			}
			fmt.Fprintf(&b, `{"line": "worker%c step %d %s", "label": %q, "by": "model"}`, 'a'+i, i, what, label)
		}
		b.WriteString("]}")
		posted := time.Now()
		if resp, data := s.request("POST", "/v1/programs/errs/answers", strings.NewReader(b.String()), map[string]string{"Content-Type": "application/json"}); resp.StatusCode != 200 {
			t.Fatalf("answers: %d %s", resp.StatusCode, data)
		}
		learned := s.waitFor("learned", func(ps map[string]Program) bool { return ps["errs.yaml"].Learned > 0 && ps["errs.yaml"].ID != first })["errs.yaml"]
		t.Logf("20 answers posted: learned program %s published %v later", learned.ID[:12], time.Since(posted).Round(time.Millisecond))
		return learned.ID
	}
	changeReachesProcessor(t, true, spec, learn)
}

// changeReachesProcessor runs a processor on the sidecar's program, makes
// change (which returns the new program's ID once published), and wants
// records produced after it tagged by the new program.
func changeReachesProcessor(t *testing.T, viaURL bool, spec string, change func(*testing.T, *server) string) {
	token, extra := "", ""
	if viaURL {
		token = "tok3n"
	}
	t.Setenv("PAW_TEST_SIDECAR_TOKEN", token)
	s := startServer(t, token, map[string]string{"errs.yaml": spec})
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
	next := change(t, s)
	published := time.Now()
	deadline := published.Add(30 * time.Second)
	sent := 1
	for i := 1; ; i++ {
		got := alertID(i)
		sent++
		if got == next {
			t.Logf("record %d after the change carried the new program %s, %v after it was published (poll interval %s)", i, next[:12], time.Since(published).Round(time.Millisecond), map[bool]string{false: "none: the folder is watched", true: "200ms"}[viaURL])
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
