package compiler

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pawlogs/paw/runtime"
	"github.com/pawlogs/paw/teacher/teachertest"
)

var (
	verbs      = []string{"connection to %s failed", "request to %s refused", "call to %s timeout", "cache for %s warmed", "job on %s finished", "user moved on %s", "health of %s good", "sync of %s done"}
	components = []string{"db", "queue", "disk", "auth", "cpu"}
)

// writeTeacherSpec writes a spec and a samples file of n lines from the
// 40 templates (numbers vary), and returns the spec path.
func writeTeacherSpec(t *testing.T, baseURL, extra string, n int) string {
	t.Helper()
	var samples bytes.Buffer
	for i := 0; i < n; i++ {
		v, c := verbs[i%len(verbs)], components[(i/len(verbs))%len(components)]
		fmt.Fprintf(&samples, "2026-11-25T10:%02d:%02d %s after %dms (id %d)\n", i%60, (i*7)%60, fmt.Sprintf(v, c), i%977, i)
	}
	return writeTeacherSamples(t, baseURL, extra, samples.String())
}

// writeTeacherSamples writes a teacher spec over the samples, and returns
// its path.
func writeTeacherSamples(t *testing.T, baseURL, extra, samples string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "samples.log"), []byte(samples), 0o644); err != nil {
		t.Fatal(err)
	}
	spec := fmt.Sprintf(`name: errs
description: Is this line a real error (a failure, refusal or timeout)?
labels: [error, ok]
positive: error
examples:
  - {label: error, text: "upstream api failed with status 500"}
  - {label: error, text: "login refused for user admin"}
  - {label: ok, text: "nightly export finished in 3s"}
  - {label: ok, text: "config reloaded"}
samples_file: samples.log
teacher:
  base_url: %s
  model: teach-1
  cache_dir: %s
%s`, baseURL, filepath.Join(dir, "cache"), extra)
	path := filepath.Join(dir, "errs.yaml")
	if err := os.WriteFile(path, []byte(spec), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func compileSpecFile(t *testing.T, path string) (*Result, error) {
	t.Helper()
	spec, err := LoadSpec(path, LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return Compile(context.Background(), spec, nil)
}

func TestTeacherLabelsTemplatesOnceAndRecompilesFromCache(t *testing.T) {
	ts := teachertest.NewServer(t, teachertest.ErrorRule)
	path := writeTeacherSpec(t, ts.BaseURL(), "", 2000)
	res, err := compileSpecFile(t, path)
	if err != nil {
		t.Fatal(err)
	}
	st, prov := res.Teacher, res.Manifest.Teacher
	t.Logf("teacher: %+v; fidelity %.4f %v on %d held-out lines", *st, prov.Fidelity, prov.FidelityLabels, prov.Holdout)
	templates := map[string]bool{}
	for line := range ts.PerLine() {
		templates[runtime.Normalize([]byte(line), runtime.DefaultMaxBytes)] = true
	}
	if st.Sampled != 2000 || len(templates) != st.Clusters || st.Calls != st.Clusters-st.Overridden || ts.Requests() != st.Calls {
		t.Fatalf("%d requests for %d clusters (%d overridden): want one per template", ts.Requests(), st.Clusters, st.Overridden)
	}
	for line, n := range ts.PerLine() {
		if n != 1 {
			t.Fatalf("%q asked %d times", line, n)
		}
	}
	// One call per mined pattern (8 here: the verbs; the components and
	// numbers are variables), not per exact masked template (66), and the
	// program still agrees with the teacher's own answer on every line.
	if st.Clusters > 10 {
		t.Errorf("%d clusters for 8 verbs", st.Clusters)
	}
	feat, err := runtime.NewFeaturizer(res.Manifest.Featurizer)
	if err != nil {
		t.Fatal(err)
	}
	f := feat.NewFeatures()
	probs := make([]float32, 2)
	agree := 0
	for i := 0; i < 2000; i++ {
		v, c := verbs[i%len(verbs)], components[(i/len(verbs))%len(components)]
		line := fmt.Sprintf("2026-11-25T10:%02d:%02d %s after %dms (id %d)", i%60, (i*7)%60, fmt.Sprintf(v, c), i%977, i)
		feat.Featurize([]byte(line), &f)
		res.Weights.Forward(&f, probs)
		got := res.Manifest.Labels[0]
		if probs[1] > probs[0] {
			got = res.Manifest.Labels[1]
		}
		if got == teachertest.ErrorRule(line) {
			agree++
		}
	}
	if agree < 1980 {
		t.Errorf("the program agrees with the teacher's rule on %d of 2000 lines", agree)
	}
	if prov.Fidelity < 0.97 || prov.Holdout < 300 || prov.Model != "teach-1" || prov.CacheKeyDigest == "" {
		t.Fatalf("provenance %+v", prov)
	}
	// Warm cache: no calls, the same bytes.
	before := ts.Requests()
	again, err := compileSpecFile(t, path)
	if err != nil {
		t.Fatal(err)
	}
	if ts.Requests() != before || again.Teacher.Calls != 0 || !bytes.Equal(again.Artifact, res.Artifact) {
		t.Fatalf("warm recompile: %d calls, identical %v", ts.Requests()-before, bytes.Equal(again.Artifact, res.Artifact))
	}
}

func TestTeacherBudgetRetriesAndBadAnswers(t *testing.T) {
	t.Run("budget", func(t *testing.T) {
		ts := teachertest.NewServer(t, teachertest.ErrorRule)
		res, err := compileSpecFile(t, writeTeacherSpec(t, ts.BaseURL(), "  max_teacher_calls: 5\n  concurrency: 3\n", 400))
		if err != nil {
			t.Fatal(err)
		}
		if ts.Requests() > 5 || res.Teacher.Calls > 5 || res.Teacher.OverBudget != res.Teacher.Clusters-res.Teacher.Overridden-res.Teacher.Calls {
			t.Fatalf("%d requests, stats %+v", ts.Requests(), *res.Teacher)
		}
	})
	t.Run("retries 503", func(t *testing.T) {
		ts := teachertest.NewServer(t, teachertest.ErrorRule)
		ts.FailNext(2)
		res, err := compileSpecFile(t, writeTeacherSpec(t, ts.BaseURL(), "  concurrency: 1\n", 200))
		if err != nil {
			t.Fatal(err)
		}
		if res.Teacher.Calls != ts.Requests() || res.Teacher.Dropped != 0 {
			t.Fatalf("stats %+v, %d requests", *res.Teacher, ts.Requests())
		}
	})
	t.Run("answers outside the labels", func(t *testing.T) {
		ts := teachertest.NewServer(t, teachertest.ErrorRule)
		seen := map[string]bool{}
		ts.Rule = func(line string) string {
			switch {
			case strings.Contains(line, "warmed"):
				return "maybe" // always: re-asked once, then dropped
			case strings.Contains(line, "finished") && !seen[line]:
				seen[line] = true
				return "Probably an error" // first time only: the re-ask succeeds
			}
			return teachertest.ErrorRule(line)
		}
		res, err := compileSpecFile(t, writeTeacherSpec(t, ts.BaseURL(), "  concurrency: 1\n", 400))
		if err != nil {
			t.Fatal(err)
		}
		warmed := 0
		for line, n := range ts.PerLine() {
			if strings.Contains(line, "warmed") || strings.Contains(line, "finished") {
				if n != 2 {
					t.Fatalf("%q asked %d times, want 2", line, n)
				}
			}
			if strings.Contains(line, "warmed") {
				warmed++
			}
		}
		if res.Teacher.Dropped != warmed || warmed == 0 {
			t.Fatalf("dropped %d, want the %d \"warmed\" patterns", res.Teacher.Dropped, warmed)
		}
	})
	t.Run("unreachable", func(t *testing.T) {
		_, err := compileSpecFile(t, writeTeacherSpec(t, "http://127.0.0.1:1/v1", "  concurrency: 1\n", 50))
		if err == nil || !strings.Contains(err.Error(), "http://127.0.0.1:1/v1") || !strings.Contains(err.Error(), "unreachable") {
			t.Fatalf("error %v: want one naming the endpoint", err)
		}
	})
}

func TestExamplesOutrankTheTeacher(t *testing.T) {
	ts := teachertest.NewServer(t, teachertest.ErrorRule)
	// The teacher calls "cache for db warmed" ok; an example says error.
	path := writeTeacherSpec(t, ts.BaseURL(), "", 400)
	data, _ := os.ReadFile(path)
	example := "2026-11-25T10:00:00 cache for db warmed after 43ms (id 43)"
	data = bytes.Replace(data, []byte("examples:\n"), []byte("examples:\n  - {label: error, text: \""+example+"\"}\n"), 1)
	os.WriteFile(path, data, 0o644)
	res, err := compileSpecFile(t, path)
	if err != nil {
		t.Fatal(err)
	}
	if res.Teacher.Overridden != 1 {
		t.Fatalf("overridden %d, want 1", res.Teacher.Overridden)
	}
	tmpl := runtime.Normalize([]byte(example), runtime.DefaultMaxBytes)
	for line := range ts.PerLine() {
		if runtime.Normalize([]byte(line), runtime.DefaultMaxBytes) == tmpl {
			t.Fatalf("the teacher was asked about a template an example labels: %q", line)
		}
	}
}

func TestTeacherSpecValidation(t *testing.T) {
	base := "name: x\ndescription: d\nlabels: [a, b]\nexamples:\n  - {label: a, text: a1}\n  - {label: a, text: a2}\n  - {label: b, text: b1}\n  - {label: b, text: b2}\n"
	tests := []struct{ name, yaml, want string }{
		{"samples without teacher are read for base rates", base + "samples_file: s.log\n", `samples_file "s.log" cannot be read`},
		{"teacher without samples", base + "teacher: {base_url: http://h/v1, model: m}\n", "teacher needs samples_file"},
		{"bad url", base + "samples_file: s.log\nteacher: {base_url: h, model: m}\n", "teacher.base_url"},
		{"no model", base + "samples_file: s.log\nteacher: {base_url: http://h/v1}\n", "teacher.model is required"},
		{"bad holdout", base + "samples_file: s.log\nteacher: {base_url: http://h/v1, model: m, holdout: 1.5}\n", "teacher.holdout"},
		{"too many in flight", base + "samples_file: s.log\nteacher: {base_url: http://h/v1, model: m, concurrency: 65}\n", "x.yaml:10:57: teacher.concurrency is out of range"},
		{"negative timeout", base + "samples_file: s.log\nteacher: {base_url: http://h/v1, model: m, timeout: -1s}\n", "x.yaml:10:53: teacher.timeout is out of range"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseSpec("x.yaml", []byte(tc.yaml), LoadOptions{})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
		})
	}
	_, err := ParseSpec("x.yaml", []byte(base+"samples_file: s.log\nteacher: {base_url: http://h/v1, model: m}\n"), LoadOptions{NoFiles: true})
	if err == nil || !strings.Contains(err.Error(), "samples_file is not allowed here") {
		t.Fatalf("a spec over HTTP read samples_file: %v", err)
	}
}

// TestTeacherAsksEachKind: lines of one pattern whose state word differs
// ("critical", "normal": two words, kinds, not values) are asked about
// apart, and each kind keeps its own answer.
func TestTeacherAsksEachKind(t *testing.T) {
	rule := func(line string) string {
		if strings.Contains(line, "critical") {
			return "error"
		}
		return "ok"
	}
	ts := teachertest.NewServer(t, rule)
	var samples strings.Builder
	for i := range 200 {
		fmt.Fprintf(&samples, "%d gige%d gige temperature %d 1 %s\n", 480000+i, i%3, 1146100000+i, []string{"critical", "normal"}[i%2])
	}
	path := writeTeacherSamples(t, ts.BaseURL(), "", samples.String())
	res, err := compileSpecFile(t, path)
	if err != nil {
		t.Fatal(err)
	}
	st := res.Teacher
	asked := map[string]bool{}
	for line := range ts.PerLine() {
		asked[rule(line)] = true
	}
	// Three patterns (gige0..2: a source, routed apart) of two kinds each.
	if st.Calls != 6 || !asked["error"] || !asked["ok"] {
		t.Fatalf("%d calls, answers %v: want 6, both labels", st.Calls, asked)
	}
	if fid := res.Manifest.Teacher.Fidelity; fid < 0.99 {
		t.Fatalf("fidelity %.4f", fid)
	}
}
