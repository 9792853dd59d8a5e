package processor_test

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pawlogs/paw/internal/answerlog"
	"github.com/pawlogs/paw/internal/devbroker"
	"github.com/pawlogs/paw/runtime"
	"github.com/pawlogs/paw/teacher/teachertest"
)

// TestEscalationToTheTeacher routes records the program is unsure about by
// the teacher's answer, asking once per log pattern within the budget.
func TestEscalationToTheTeacher(t *testing.T) {
	const n = 6000
	// The teacher calls maintenance notices errors; the program has never
	// seen one.
	rule := func(line string) string {
		if strings.Contains(line, "maintenance") {
			return "error"
		}
		if strings.Contains(line, "ERROR") {
			return "error"
		}
		return "ok"
	}
	ts := teachertest.NewServer(t, rule)
	pipeline := func(cache string) string {
		return fmt.Sprintf(`
programs_dir: .
steps:
  - route:
      program: errs
      routes: {error: alerts}
      default: app
      escalate:
        below: 0.9
        to: teacher
        teacher: {base_url: %q, model: %s, calls_per_second: 1000, max_calls: 100, cache_dir: %s}
`, ts.BaseURL(), teachertest.Model, strconv.Quote(cache))
	}
	value := func(seq int) []byte {
		if seq%5 == 4 {
			return []byte(fmt.Sprintf("NOTICE maintenance window %d opened on rack %d", seq, seq%13))
		}
		return textValue(seq)
	}
	s := newSetup(t, pipeline(t.TempDir()), "", devbroker.Config{Topics: []string{"in:4", "alerts:4", "app:2", "dropped:1", "dlq:1"}})

	// The oracle: the same programs and pipeline in-process, with a cache
	// of its own, so that the processor below asks for itself.
	env, err := runtime.OpenEnv("")
	if err != nil {
		t.Fatal(err)
	}
	defer env.Close()
	pc, err := runtime.ParsePipelineConfig(filepath.Join(s.dir, "oracle.yaml"), []byte(pipeline(t.TempDir())))
	if err != nil {
		t.Fatal(err)
	}
	oracle, err := runtime.OpenPipeline(env, pc, runtime.PipelineOptions{})
	if err != nil {
		t.Fatal(err)
	}
	texts := make([][]byte, n)
	for i := range texts {
		texts[i] = value(i)
	}
	outs, err := oracle.ProcessTexts(context.Background(), texts)
	counts := oracle.TeacherCounts()["errs"]
	oracle.Close()
	if err != nil {
		t.Fatal(err)
	}
	if counts.Escalated == 0 || counts.Changed == 0 {
		t.Fatalf("oracle counts %+v: the test wants escalations the teacher changes", counts)
	}
	oracleCalls := ts.Requests()

	produce(t, client(t, s.broker.Addr()), 0, n, 4, value)
	r := startProcessor(t, s)
	c := consumeUntil(t, s.broker.Addr(), []string{"alerts", "app"}, time.Minute, func(c *consumed) bool {
		return c.count("alerts")+c.count("app") >= n
	})
	time.Sleep(300 * time.Millisecond)
	r.shutdown(t)
	for _, topic := range []string{"alerts", "app"} {
		for _, rec := range c.byTopic[topic] {
			if seq := seqOf(t, rec); outs[seq].Destination != topic {
				t.Fatalf("record %d (%s) in %s, want %s", seq, value(seq), topic, outs[seq].Destination)
			}
		}
	}
	calls := ts.Requests() - oracleCalls
	asked := r.metric(t, "paw_teacher_escalations_total", map[string]string{"program": "errs", "outcome": "asked"})
	cached := r.metric(t, "paw_teacher_escalations_total", map[string]string{"program": "errs", "outcome": "cached"})
	escalated := r.metric(t, "paw_escalations_total", map[string]string{"program": "errs"})
	if c.count("alerts")+c.count("app") != n || asked+cached != escalated || escalated < float64(counts.Escalated) ||
		float64(calls) != r.metric(t, "paw_teacher_calls_total", map[string]string{"program": "errs"}) || calls == 0 || calls > 20 {
		t.Fatalf("%d routed; %d teacher calls; metrics asked %v cached %v escalated %v; oracle %+v", c.count("alerts")+c.count("app"), calls, asked, cached, escalated, counts)
	}
	t.Logf("%v of %d records escalated to the teacher in %d calls (%v answered by a call, %v from cache); every record routed by its answer", escalated, n, calls, asked, cached)

	// Reporting to no sidecar, the processor keeps the answers itself: one
	// per template of the patterns asked about (a call answers a pattern),
	// with the line's template, who answered and the program.
	lg, err := answerlog.Open(filepath.Join(s.dir, ".answers", "errs.answers.jsonl"), 0)
	if err != nil {
		t.Fatal(err)
	}
	defer lg.Close()
	as := lg.All()
	templates := map[string]bool{}
	for _, a := range as {
		if a.Label != rule(a.Line) || a.By != "model" || a.Template == "" || a.ProgramID == "" || templates[a.Template] {
			t.Fatalf("answer %+v", a)
		}
		templates[a.Template] = true
	}
	if len(as) < calls {
		t.Fatalf("%d answers kept for %d teacher calls", len(as), calls)
	}
}
