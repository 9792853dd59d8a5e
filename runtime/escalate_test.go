package runtime_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pawlogs/paw/runtime"
	"github.com/pawlogs/paw/runtime/runtimetest"
	"github.com/pawlogs/paw/teacher/teachertest"
)

// cascadeTexts are 8 templates x 5 numbers: some confident for the test
// program, some not.
func cascadeTexts() [][]byte {
	templates := []string{
		"ERROR request %d failed with exception timeout", "INFO request %d completed in 3ms",
		"something unrelated entirely %d", "ERROR request %d completed", "INFO %d failed",
		"disk %d refused the write", "user %d logged in", "cache %d warmed",
	}
	var out [][]byte
	for n := 0; n < 5; n++ {
		for _, tmpl := range templates {
			out = append(out, fmt.Appendf(nil, tmpl, 100+n))
		}
	}
	return out
}

// localDecisions is what the program alone decides.
func localDecisions(t *testing.T, env *runtime.Env, texts [][]byte) []runtime.Tag {
	t.Helper()
	pl := errsPipeline(t, env, "steps:\n  - tag: {programs: [errs]}\n")
	outs, err := pl.ProcessTexts(context.Background(), texts)
	if err != nil {
		t.Fatal(err)
	}
	tags := make([]runtime.Tag, len(outs))
	for i, o := range outs {
		tags[i] = o.Tags[0]
	}
	return tags
}

// errsPipeline runs the errs test program through the pipeline yaml; it
// is closed when the test ends.
func errsPipeline(t testing.TB, env *runtime.Env, yaml string) *runtime.Pipeline {
	t.Helper()
	p, err := runtime.NewProgram(env, errorsProgram(t, "errs"), runtime.ProgramOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return runtimetest.Pipeline(t, yaml, p)
}

func cascadeYAML(baseURL, teacher string) string {
	return fmt.Sprintf(`steps:
  - tag: {programs: [errs]}
  - filter:
      program: errs
      keep: [error, ok]
      escalate:
        below: 0.9
        to: teacher
        teacher: {base_url: %q, model: %s, %s}
`, baseURL, teachertest.Model, teacher)
}

func TestEscalateToTeacher(t *testing.T) {
	env := openEnv(t)
	texts := cascadeTexts()
	local := localDecisions(t, env, texts)
	// The teacher disagrees with the program on purpose: "unrelated" lines
	// are errors to it.
	rule := func(line string) string {
		if strings.Contains(line, "unrelated") {
			return "error"
		}
		return teachertest.ErrorRule(line)
	}
	lowTemplates := map[string]bool{}
	low := 0
	for i, tag := range local {
		if tag.Score < 0.9 {
			low++
			lowTemplates[strings.Map(func(r rune) rune {
				if r >= '0' && r <= '9' {
					return -1
				}
				return r
			}, string(texts[i]))] = true
		}
	}
	if low == 0 || low == len(texts) {
		t.Fatalf("%d of %d below 0.9: the test wants some of each", low, len(texts))
	}

	t.Run("answers replace low decisions, one call per template", func(t *testing.T) {
		ts := teachertest.NewServer(t, rule)
		pl := errsPipeline(t, env, cascadeYAML(ts.BaseURL(), "calls_per_second: 1000, cache_dir: "+strconv.Quote(t.TempDir())))
		for round := 0; round < 2; round++ {
			outs, err := pl.ProcessTexts(context.Background(), texts)
			if err != nil {
				t.Fatal(err)
			}
			for i, o := range outs {
				tag := o.Tags[0]
				if local[i].Score >= 0.9 {
					if tag.Label != local[i].Label || tag.Score != local[i].Score || tag.ID != local[i].ID || tag.By != local[i].By {
						t.Fatalf("confident %q changed: %+v, local %+v", texts[i], tag, local[i])
					}
					continue
				}
				// The teacher is asked before the steps run, so every step,
				// tags included, sees its answer.
				if tag.Label != rule(string(texts[i])) || tag.Score != 1 || tag.By != runtime.TagByTeacher {
					t.Fatalf("tag of %q: %+v, want the teacher's %q", texts[i], tag, rule(string(texts[i])))
				}
			}
		}
		if ts.Requests() != len(lowTemplates) {
			t.Fatalf("%d requests for %d low-confidence templates, over two rounds", ts.Requests(), len(lowTemplates))
		}
		for line := range ts.PerLine() {
			for i, tag := range local {
				if string(texts[i]) == line && tag.Score >= 0.9 {
					t.Fatalf("confident line %q was sent to the teacher", line)
				}
			}
		}
		c := pl.TeacherCounts()["errs"]
		t.Logf("counts %+v", c)
		if c.Escalated != int64(2*low) || c.Asked+c.Cached+c.OverBudget+c.Failed+c.Dropped != c.Escalated ||
			c.Calls != int64(len(lowTemplates)) || c.OverBudget != 0 || c.Changed == 0 {
			t.Fatalf("counts %+v with %d low records per round", c, low)
		}
		if got := pl.Escalations()["errs"]; got != c.Escalated {
			t.Fatalf("Escalations = %d, want %d", got, c.Escalated)
		}
		// Each answer the teacher gave is handed over once, for the
		// program's answer log.
		answers := pl.TakeTeacherAnswers()
		if len(answers) != len(lowTemplates) || len(pl.TakeTeacherAnswers()) != 0 {
			t.Fatalf("%d answers taken for %d templates asked", len(answers), len(lowTemplates))
		}
		for _, a := range answers {
			if a.Program != "errs" || a.Label != rule(a.Line) || a.ProgramID == "" {
				t.Fatalf("answer %+v", a)
			}
		}
	})

	t.Run("teacher decides the step", func(t *testing.T) {
		ts := teachertest.NewServer(t, rule)
		yaml := strings.Replace(cascadeYAML(ts.BaseURL(), "calls_per_second: 1000, cache_dir: "+strconv.Quote(t.TempDir())), "keep: [error, ok]", "keep: [error]", 1)
		pl := errsPipeline(t, env, yaml)
		outs, err := pl.ProcessTexts(context.Background(), texts)
		if err != nil {
			t.Fatal(err)
		}
		for i, o := range outs {
			want := local[i].Label == "error"
			if local[i].Score < 0.9 {
				want = rule(string(texts[i])) == "error"
			}
			if o.Keep != want {
				t.Fatalf("%q (local %+v): keep %v, want %v", texts[i], local[i], o.Keep, want)
			}
			if len(o.Escalations) != 0 {
				t.Fatalf("a teacher escalation became a review escalation: %+v", o.Escalations)
			}
		}
	})

	t.Run("over budget the local decision stands", func(t *testing.T) {
		ts := teachertest.NewServer(t, rule)
		pl := errsPipeline(t, env, cascadeYAML(ts.BaseURL(), "calls_per_second: 1000, max_calls: 1, concurrency: 1, cache_dir: "+strconv.Quote(t.TempDir())))
		if _, err := pl.ProcessTexts(context.Background(), texts); err != nil {
			t.Fatal(err)
		}
		c := pl.TeacherCounts()["errs"]
		if ts.Requests() != 1 || c.Calls != 1 || c.OverBudget == 0 || c.Asked+c.Cached+c.OverBudget != c.Escalated {
			t.Fatalf("%d requests, counts %+v: want 1 call and the rest over budget", ts.Requests(), c)
		}
	})

	t.Run("rate: a burst over calls_per_second is not waited for", func(t *testing.T) {
		ts := teachertest.NewServer(t, rule)
		pl := errsPipeline(t, env, cascadeYAML(ts.BaseURL(), "calls_per_second: 1, concurrency: 1, cache_dir: "+strconv.Quote(t.TempDir())))
		if _, err := pl.ProcessTexts(context.Background(), texts); err != nil {
			t.Fatal(err)
		}
		c := pl.TeacherCounts()["errs"]
		if len(lowTemplates) > 1 && (ts.Requests() != 1 || c.OverBudget == 0) {
			t.Fatalf("%d requests, counts %+v: want 1 call at 1 call/s", ts.Requests(), c)
		}
	})

	t.Run("unreachable teacher: local decisions, no error", func(t *testing.T) {
		pl := errsPipeline(t, env, cascadeYAML("http://127.0.0.1:1/v1", "calls_per_second: 1000, cache_dir: "+strconv.Quote(t.TempDir())))
		outs, err := pl.ProcessTexts(context.Background(), texts)
		if err != nil {
			t.Fatal(err)
		}
		if c := pl.TeacherCounts()["errs"]; c.Failed != int64(low) || len(outs) != len(texts) {
			t.Fatalf("counts %+v, want %d failed", c, low)
		}
	})

	t.Run("a failing teacher is left alone for a while", func(t *testing.T) {
		ts := teachertest.NewServer(t, rule)
		ts.FailNext(1000)
		pl := errsPipeline(t, env, cascadeYAML(ts.BaseURL(), "calls_per_second: 1000, concurrency: 1, cache_dir: "+strconv.Quote(t.TempDir())))
		for round := 0; round < 3; round++ {
			if _, err := pl.ProcessTexts(context.Background(), texts); err != nil {
				t.Fatal(err)
			}
		}
		// The first round's calls fail (each tried twice); the next rounds,
		// within the pause, send nothing.
		if c := pl.TeacherCounts()["errs"]; ts.Requests() != 2*len(lowTemplates) || c.Failed != int64(3*low) {
			t.Fatalf("%d requests, counts %+v: want %d requests, then a pause", ts.Requests(), c, 2*len(lowTemplates))
		}
	})

	t.Run("no endpoint", func(t *testing.T) {
		p, err := runtime.NewProgram(env, errorsProgram(t, "errs"), runtime.ProgramOptions{})
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		cfg, err := runtime.ParsePipelineConfig("p.yaml", []byte("steps:\n  - filter: {program: errs, keep: [error], escalate: {below: 0.9, to: teacher}}\n"))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := runtime.NewPipeline(cfg, []*runtime.Program{p}, runtime.BatcherConfig{}); err == nil || !strings.Contains(err.Error(), "not compiled with a teacher") {
			t.Fatalf("error %v", err)
		}
	})

	t.Run("budget survives a reload", func(t *testing.T) {
		ts := teachertest.NewServer(t, rule)
		pl := errsPipeline(t, env, cascadeYAML(ts.BaseURL(), "calls_per_second: 1000, max_calls: 2, concurrency: 1, cache_dir: "+strconv.Quote(t.TempDir())))
		if _, err := pl.ProcessTexts(context.Background(), texts); err != nil {
			t.Fatal(err)
		}
		a, err := runtime.DecodeArtifact(errorsArtifact(t, "errs", 1))
		if err != nil {
			t.Fatal(err)
		}
		p, err := runtime.NewProgram(env, a, runtime.ProgramOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if err := pl.Replace(p); err != nil {
			t.Fatal(err)
		}
		if _, err := pl.ProcessTexts(context.Background(), texts); err != nil {
			t.Fatal(err)
		}
		if ts.Requests() > 2 || pl.TeacherCounts()["errs"].Calls > 2 {
			t.Fatalf("%d requests with max_calls 2 across a reload", ts.Requests())
		}
	})
}

// TestEscalateOncePerPattern: lines that differ in a user's name have
// template keys of their own, but one log pattern; once four names have
// shown the position holds values, the teacher is asked once for all of
// them, and its answer stands for the pattern's later lines too. Lines
// whose word there is one of a few ("failed", "done") are kinds of the
// event, asked about apart. Each template is kept once to learn from.
func TestEscalateOncePerPattern(t *testing.T) {
	env := openEnv(t)
	line := func(f string, args ...any) []byte { return fmt.Appendf(nil, f, args...) }
	var first [][]byte
	for _, name := range []string{"alice", "bob", "carol", "dave", "erin", "frank"} {
		first = append(first, line("session opened for user %s", name))
	}
	first = append(first, line("upload of batch 17 failed"), line("upload of batch 18 done"), line("upload of batch 19 failed"))
	later := [][]byte{line("session opened for user gina"), line("session opened for user hank"), line("upload of batch 20 done")}
	ts := teachertest.NewServer(t, teachertest.ErrorRule)
	pl := errsPipeline(t, env, strings.Replace(cascadeYAML(ts.BaseURL(), "calls_per_second: 1000, cache_dir: "+strconv.Quote(t.TempDir())), "below: 0.9", "below: 1", 1))
	tests := []struct {
		name     string
		texts    [][]byte
		requests int // in all, after this batch
		answers  int // kept to learn from, in this batch
	}{
		// alice (the pattern's first line), bob and carol, before the
		// fourth name shows values; the upload pattern's first line
		// (failed), and done.
		{"9 lines, 8 templates", first, 5, 8},
		{"later lines of known kinds", later, 5, 2},
	}
	for _, tc := range tests {
		outs, err := pl.ProcessTexts(context.Background(), tc.texts)
		if err != nil {
			t.Fatal(err)
		}
		for i, o := range outs {
			if tag := o.Tags[0]; tag.By != runtime.TagByTeacher || tag.Label != teachertest.ErrorRule(string(tc.texts[i])) {
				t.Fatalf("%s: tag of %q: %+v, want the teacher's", tc.name, tc.texts[i], tag)
			}
		}
		if ts.Requests() != tc.requests {
			t.Fatalf("%s: %d requests, want %d: %v", tc.name, ts.Requests(), tc.requests, ts.PerLine())
		}
		answers := pl.TakeTeacherAnswers()
		if len(answers) != tc.answers {
			t.Fatalf("%s: %d answers kept, want %d: %+v", tc.name, len(answers), tc.answers, answers)
		}
		for _, a := range answers {
			if a.Label != teachertest.ErrorRule(a.Line) {
				t.Fatalf("%s: kept %+v", tc.name, a)
			}
		}
	}
}

func TestEscalateTeacherConfigErrors(t *testing.T) {
	tests := []struct{ name, yaml, want string }{
		{"teacher block with a topic", "steps:\n  - filter: {program: x, keep: [a], escalate: {below: 0.5, to: review, teacher: {model: m}}}\n", "escalate.teacher configures to: teacher"},
		{"bad url", "steps:\n  - filter: {program: x, keep: [a], escalate: {below: 0.5, to: teacher, teacher: {base_url: localhost}}}\n", "escalate.teacher.base_url"},
		{"negative budget", "steps:\n  - filter: {program: x, keep: [a], escalate: {below: 0.5, to: teacher, teacher: {max_calls: -1}}}\n", "escalate.teacher.max_calls"},
		{"too many in flight", "steps:\n  - filter: {program: x, keep: [a], escalate: {below: 0.5, to: teacher, teacher: {concurrency: 65}}}\n", "p.yaml:2:96: escalate.teacher.concurrency is out of range"},
		{"negative timeout", "steps:\n  - filter: {program: x, keep: [a], escalate: {below: 0.5, to: teacher, teacher: {timeout: -1s}}}\n", "p.yaml:2:92: escalate.teacher.timeout is out of range"},
		{"unknown key", "steps:\n  - filter: {program: x, keep: [a], escalate: {below: 0.5, to: teacher, teacher: {budget: 5}}}\n", "p.yaml:2:"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := runtime.ParsePipelineConfig("p.yaml", []byte(tc.yaml)); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
		})
	}
}

// TestTeacherCallDoesNotHoldUpAReload: while a batch waits on the teacher,
// a reload goes through; the teacher is only let go once it has.
func TestTeacherCallDoesNotHoldUpAReload(t *testing.T) {
	env := openEnv(t)
	reached, release := make(chan struct{}), make(chan struct{})
	var reachOnce, releaseOnce sync.Once
	letGo := func() { releaseOnce.Do(func() { close(release) }) }
	ts := teachertest.NewServer(t, func(line string) string {
		reachOnce.Do(func() { close(reached) })
		<-release
		return teachertest.ErrorRule(line)
	})
	defer letGo()
	pl := errsPipeline(t, env, cascadeYAML(ts.BaseURL(), "calls_per_second: 1000, timeout: 2m, cache_dir: "+strconv.Quote(t.TempDir())))
	done := make(chan error, 1)
	go func() {
		_, err := pl.ProcessTexts(context.Background(), cascadeTexts())
		done <- err
	}()
	guard := time.After(time.Minute) // a failure, not a measurement: the test would hang
	select {
	case <-reached:
	case err := <-done:
		t.Fatalf("the batch asked no teacher: %v", err)
	case <-guard:
		t.Fatal("the teacher was never asked")
	}
	next, err := runtime.NewProgram(env, errorsProgram(t, "errs"), runtime.ProgramOptions{})
	if err != nil {
		t.Fatal(err)
	}
	replaced := make(chan error, 1)
	go func() { replaced <- pl.Replace(next) }()
	select {
	case err := <-replaced:
		if err != nil {
			t.Fatal(err)
		}
	case <-guard:
		t.Fatal("Replace waited for the batch's teacher call")
	}
	letGo()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
