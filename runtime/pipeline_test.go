package runtime_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pawlogs/paw/runtime"
	"github.com/pawlogs/paw/runtime/runtimetest"
)

func TestParsePipelineConfigErrors(t *testing.T) {
	tests := []struct {
		name, yaml, want string
	}{
		{"syntax", "steps:\n  - filter: {program: x\n", "p.yaml:"},
		{"unknown key", "steps:\n  - filter: {program: x, keep: [a]}\nbogus: 1\n", "p.yaml:3:1:"},
		{"wrong type", "steps: 5\n", "p.yaml:1:8:"},
		{"no steps", "input: log\n", "p.yaml:1:1: steps: at least one step is required"},
		{"steps null", "steps:\n", "steps: at least one step is required"},
		{"two kinds in a step", "steps:\n  - filter: {program: x, keep: [a]}\n    tag: {programs: [x]}\n", "p.yaml:2:5: a step has exactly one of filter, tag, route or grep (found 2)"},
		{"grep with neither", "steps:\n  - grep: {}\n", "p.yaml:2:11: grep needs one of regex"},
		{"grep with both", "steps:\n  - grep: {regex: a, exclude: b}\n", "grep needs one of regex"},
		{"grep bad regex", "steps:\n  - grep: {regex: '(a'}\n", "p.yaml:2:19: grep.regex: error parsing regexp"},
		{"grep long pattern", "steps:\n  - grep: {exclude: '" + strings.Repeat("a", 5000) + "'}\n", "grep.exclude is 5000 bytes; the limit is 4096"},
		{"filter without keep", "steps:\n  - filter: {program: x}\n", "p.yaml:2:14: filter.keep needs at least one label"},
		{"min score range", "steps:\n  - filter: {program: x, keep: [a], min_score: 2}\n", "p.yaml:2:48: filter.min_score 2 must be between 0 and 1"},
		{"route without default", "steps:\n  - route: {program: x, routes: {a: t}}\n", "route.default is required"},
		{"bad input", "input: 'a..b'\nsteps:\n  - tag: {programs: [x]}\n", "p.yaml:1:8: input:"},
		{"bad template", "input: '{{ .log '\nsteps:\n  - tag: {programs: [x]}\n", "input: template"},
		{"pattern sample", "pattern_sample: -2\nsteps: []\n", "p.yaml:1:17: pattern_sample -2"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := runtime.ParsePipelineConfig("p.yaml", []byte(tc.yaml))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestPipelineSteps(t *testing.T) {
	env := openEnv(t)
	open := func(name string) *runtime.Program {
		p, err := runtime.NewProgram(env, errorsProgram(t, name), runtime.ProgramOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	cfg, err := runtime.ParsePipelineConfig("p.yaml", []byte(`
input: log
steps:
  - filter: {program: errs, keep: [error], min_score: 0.5}
  - tag: {programs: [errs, other]}
  - route: {program: other, routes: {error: alerts}, default: logs}
`))
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.ProgramNames(); strings.Join(got, ",") != "errs,other" {
		t.Fatalf("ProgramNames = %v", got)
	}
	pl, err := runtime.NewPipeline(cfg, []*runtime.Program{open("errs"), open("other")}, runtime.BatcherConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer pl.Close()
	records := [][]byte{
		[]byte(`{"log": "ERROR request 77 failed with exception timeout"}`),
		[]byte(`{"log": "INFO request 78 completed in 3ms"}`),
		[]byte(`not json`),
		[]byte(`{"msg": "no log field"}`),
		[]byte(`{"log": 12}`),
		[]byte("\xff\xfe"),
	}
	outs, err := pl.Process(context.Background(), records)
	if err != nil {
		t.Fatal(err)
	}
	kept := outs[0]
	if !kept.Keep || kept.Destination != "alerts" || len(kept.Tags) != 2 || kept.Tags[0].Label != "error" || kept.Tags[0].Score < 0.5 {
		t.Errorf("error record: %+v", kept)
	}
	if outs[1].Keep || outs[1].DroppedBy != "errs" {
		t.Errorf("ok record: %+v, want dropped by errs", outs[1])
	}
	for i, want := range []error{runtime.ErrNotJSON, runtime.ErrFieldMissing, runtime.ErrNotString, runtime.ErrInvalidUTF8} {
		if !errors.Is(outs[i+2].Err, want) {
			t.Errorf("record %d: err %v, want %v", i+2, outs[i+2].Err, want)
		}
	}
}

func TestGrepSteps(t *testing.T) {
	env := openEnv(t)
	texts := [][]byte{[]byte("ERROR disk full"), []byte("INFO all good"), []byte("WARN retry failed"), []byte("debug: Error page rendered")}
	tests := []struct {
		name, steps string
		keep        []bool
		tagged      bool
	}{
		{"regex only", "  - grep: {regex: '(?i)(error|fail)'}\n", []bool{true, false, true, true}, false},
		{"exclude only", "  - grep: {exclude: '^(INFO|DEBUG|debug)'}\n", []bool{true, false, true, false}, false},
		{"two greps", "  - grep: {regex: '(?i)error'}\n  - grep: {exclude: debug}\n", []bool{true, false, false, false}, false},
		{"grep before a program", "  - grep: {regex: '(?i)(error|fail)'}\n  - tag: {programs: [errs]}\n", []bool{true, false, true, true}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var progs []*runtime.Program
			if tc.tagged {
				p, err := runtime.NewProgram(env, errorsProgram(t, "errs"), runtime.ProgramOptions{})
				if err != nil {
					t.Fatal(err)
				}
				progs = append(progs, p)
			}
			pl := runtimetest.Pipeline(t, "steps:\n"+tc.steps, progs...)
			outs, err := pl.ProcessTexts(context.Background(), texts)
			if err != nil {
				t.Fatal(err)
			}
			for i, o := range outs {
				if o.Keep != tc.keep[i] {
					t.Errorf("%q: keep %v, want %v", texts[i], o.Keep, tc.keep[i])
				}
				if !o.Keep && o.DroppedBy != runtime.DroppedByGrep {
					t.Errorf("%q: dropped by %q", texts[i], o.DroppedBy)
				}
				if o.Keep && tc.tagged != (len(o.Tags) == 1) {
					t.Errorf("%q: tags %v", texts[i], o.Tags)
				}
			}
		})
	}
}

func TestPipelineRejectsUnknownLabels(t *testing.T) {
	env := openEnv(t)
	p, err := runtime.NewProgram(env, errorsProgram(t, "errs"), runtime.ProgramOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := runtime.ParsePipelineConfig("p.yaml", []byte("steps:\n  - filter: {program: errs, keep: [nope]}\n  - tag: {programs: [ghost]}\n"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = runtime.NewPipeline(cfg, []*runtime.Program{p}, runtime.BatcherConfig{})
	p.Close()
	for _, want := range []string{`p.yaml:2:36: program errs has no label "nope"`, `p.yaml:3:22: program "ghost" is not loaded`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v, want %q", err, want)
		}
	}
}

func TestInputExtract(t *testing.T) {
	tests := []struct {
		expr, record, want string
		err                error
	}{
		{"", "raw line", "raw line", nil},
		{"log", `{"log":"hello"}`, "hello", nil},
		{"kubernetes.labels.app", `{"kubernetes":{"labels":{"app":"web"}}}`, "web", nil},
		{"{{.level}}: {{.log}}", `{"level":"warn","log":"disk"}`, "warn: disk", nil},
		{"{{.missing}}", `{"log":"x"}`, "", runtime.ErrFieldMissing},
		{"log", `{"other":1}`, "", runtime.ErrFieldMissing},
		{"log", `{"log":{"a":1}}`, "", runtime.ErrNotString},
		{"log", `[1,2]`, "", runtime.ErrNotJSON},
		{"log", `{"log":"big","n":1` + strings.Repeat("0", 100000) + `}`, "big", nil},
		{"{{.n}}", `{"n":1.50}`, "1.50", nil},
		{"log", `{"log":"first","log":"last"}`, "last", nil},
		{"log", `{"log":"x"} trailing`, "", runtime.ErrNotJSON},
	}
	for _, tc := range tests {
		in, err := runtime.ParseInput(tc.expr)
		if err != nil {
			t.Fatalf("ParseInput(%q): %v", tc.expr, err)
		}
		got, err := in.Extract([]byte(tc.record))
		if !errors.Is(err, tc.err) || (err == nil && string(got) != tc.want) {
			t.Errorf("%q on %s = %q, %v; want %q, %v", tc.expr, tc.record, got, err, tc.want, tc.err)
		}
	}
	// Fluent Bit's decoded maps use interface keys and []byte strings.
	v, err := runtime.Lookup(map[any]any{"kubernetes": map[any]any{"pod": []byte("p1")}}, []string{"kubernetes", "pod"})
	if err != nil || string(v.([]byte)) != "p1" {
		t.Errorf("Lookup on Fluent Bit maps = %v, %v", v, err)
	}
}

func FuzzParsePipeline(f *testing.F) {
	f.Add([]byte("steps:\n  - filter: {program: x, keep: [a]}\n"))
	f.Add([]byte("input: log\nsteps:\n  - route: {program: x, routes: {a: b}, default: c}\n"))
	f.Add([]byte("steps: [{tag: {programs: [a, b]}}]"))
	f.Add([]byte("encoders_dir: enc\nsteps:\n  - filter: {program: x, keep: [a], escalate: {below: 0.7, to: teacher, teacher: {base_url: 'http://h/v1', model: m, calls_per_second: 2, max_calls: 10}}}\n"))
	f.Add([]byte("{{"))
	f.Add([]byte("steps: []\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := runtime.ParsePipelineConfig("p.yaml", data)
		if err != nil {
			if !strings.Contains(err.Error(), "p.yaml:") {
				t.Fatalf("error without a location: %v", err)
			}
			return
		}
		// `steps: []` is the documented pass-through; no steps key at all
		// is refused.
		if cfg.Steps == nil {
			t.Fatal("accepted a pipeline without a steps key")
		}
		cfg.ProgramNames()
	})
}

func TestPassThroughPipeline(t *testing.T) {
	pl := runtimetest.Pipeline(t, "input: log\nsteps: []\n")
	outs, err := pl.Process(context.Background(), [][]byte{[]byte(`{"log": "x"}`), []byte("not json")})
	if err != nil {
		t.Fatal(err)
	}
	if !outs[0].Keep || outs[0].Err != nil || len(outs[0].Tags) != 0 || !errors.Is(outs[1].Err, runtime.ErrNotJSON) {
		t.Fatalf("pass-through outcomes %+v", outs)
	}
}

func TestPipelineCountsDecisions(t *testing.T) {
	pl := errsPipeline(t, openEnv(t), "steps:\n  - filter: {program: errs, keep: [error]}\n")
	texts := [][]byte{[]byte("ERROR request 1 failed with exception timeout"), []byte("INFO request 2 completed in 3ms"), []byte("INFO request 9 completed in 1ms")}
	for i := 0; i < 2; i++ {
		if _, err := pl.ProcessTexts(context.Background(), texts); err != nil {
			t.Fatal(err)
		}
	}
	got := pl.Decisions()["errs"]
	if got["error"] != 2 || got["ok"] != 4 {
		t.Fatalf("decisions %v, want error 2 and ok 4 (dropped records count too)", got)
	}
}

func TestPipelinePatterns(t *testing.T) {
	tests := []struct {
		name, sample string
		collect      bool
		records      int
		want         map[string]int64 // template -> estimated count
	}{
		{"every record", "pattern_sample: 1\n", true, 60, map[string]int64{"ERROR request <*> failed with exception timeout": 20, "INFO request <*> completed in <*>": 40}},
		// One in four of records 0..59: 15 sampled, records 0, 4, 8, ...;
		// every third record is an error, so 5 of them are.
		{"one in four", "pattern_sample: 4\n", true, 60, map[string]int64{"ERROR request <*> failed with exception timeout": 20, "INFO request <*> completed in <*>": 40}},
		{"off", "pattern_sample: -1\n", true, 60, map[string]int64{}},
		// Nothing collects: the default sampling does no work.
		{"not collected", "", false, 60, map[string]int64{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pl := errsPipeline(t, openEnv(t), tc.sample+"steps:\n  - filter: {program: errs, keep: [error]}\n")
			if tc.collect {
				pl.CollectPatterns()
			}
			var texts [][]byte
			for i := range tc.records {
				if i%3 == 0 {
					texts = append(texts, fmt.Appendf(nil, "ERROR request %d failed with exception timeout", i))
				} else {
					texts = append(texts, fmt.Appendf(nil, "INFO request %d completed in %dms", i, i%7))
				}
			}
			// Uneven batches: sampling must follow the record count, not
			// the batch boundaries.
			for len(texts) > 0 {
				n := min(7, len(texts))
				if _, err := pl.ProcessTexts(context.Background(), texts[:n]); err != nil {
					t.Fatal(err)
				}
				texts = texts[n:]
			}
			got, dropped := pl.TakePatterns()
			if dropped != 0 {
				t.Fatalf("dropped %d", dropped)
			}
			counts := map[string]int64{}
			for _, pc := range got {
				if pc.Program != "errs" {
					t.Fatalf("program %q", pc.Program)
				}
				counts[pc.Template] += pc.Count
				wantLabel := "ok"
				if strings.HasPrefix(pc.Template, "ERROR") {
					wantLabel = "error"
				}
				if pc.Label != wantLabel || pc.Share != 1 || pc.Novelty < 0 || pc.Novelty > 1 {
					t.Fatalf("%q: label %s share %v novelty %v", pc.Template, pc.Label, pc.Share, pc.Novelty)
				}
			}
			if !maps.Equal(counts, tc.want) {
				t.Fatalf("patterns %v, want %v", counts, tc.want)
			}
			if again, _ := pl.TakePatterns(); len(again) != 0 {
				t.Fatalf("second take %v, want nothing new", again)
			}
		})
	}
}

func TestEscalation(t *testing.T) {
	env := openEnv(t)
	p, err := runtime.NewProgram(env, errorsProgram(t, "errs"), runtime.ProgramOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := runtime.ParsePipelineConfig("p.yaml", []byte(`
steps:
  - tag: {programs: [errs]}
  - filter: {program: errs, keep: [error], escalate: {below: 0.99, to: review}}
`))
	if err != nil {
		t.Fatal(err)
	}
	if d := cfg.EscalationDestinations(); len(d) != 1 || d[0] != "review" {
		t.Fatalf("destinations %v", d)
	}
	pl, err := runtime.NewPipeline(cfg, []*runtime.Program{p}, runtime.BatcherConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer pl.Close()
	texts := [][]byte{[]byte("ERROR request 1 failed with exception timeout"), []byte("INFO request 2 completed in 3ms"),
		[]byte("something unrelated entirely"), []byte("ERROR request completed"), []byte("INFO failed")}
	outs, err := pl.ProcessTexts(context.Background(), texts)
	if err != nil {
		t.Fatal(err)
	}
	escalated := 0
	for i, o := range outs {
		score := o.Tags[0].Score
		if got, want := len(o.Escalations) == 1, score < 0.99; got != want {
			t.Fatalf("%q scored %v: escalated %v", texts[i], score, got)
		}
		if len(o.Escalations) == 1 {
			escalated++
			if e := o.Escalations[0]; e.To != "review" || e.Program != "errs" || e.Score != score {
				t.Fatalf("escalation %+v", e)
			}
		}
	}
	if escalated == 0 || escalated == len(texts) {
		t.Fatalf("%d of %d escalated: want some of each", escalated, len(texts))
	}
	if got := pl.Escalations()["errs"]; got != int64(escalated) {
		t.Fatalf("Escalations = %d, want %d", got, escalated)
	}
	for _, bad := range []struct{ yaml, want string }{
		{"steps:\n  - filter: {program: x, keep: [a], escalate: {below: 0, to: r}}\n", "escalate needs below"},
		{"steps:\n  - filter: {program: x, keep: [a], escalate: {below: 1.5, to: r}}\n", "escalate.below 1.5"},
		{"steps:\n  - filter: {program: x, keep: [a], escalate: {novel_above: 1, to: r}}\n", "escalate.novel_above 1"},
		{"steps:\n  - route: {program: x, routes: {a: t}, default: d, escalate: {below: 0.5}}\n", "escalate.to is required"},
	} {
		if _, err := runtime.ParsePipelineConfig("p.yaml", []byte(bad.yaml)); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("%q: %v", bad.yaml, err)
		}
	}
}

// BenchmarkEscalateIdle runs the same filter with and without an escalate
// step on lines where nothing escalates (below 0.5 on a two-label
// program), to measure what the cascade costs confident records.
func BenchmarkEscalateIdle(b *testing.B) {
	env := openEnv(b)
	lines := benchTexts(4096)
	for _, mode := range []struct{ name, yaml string }{
		{"filter", "steps:\n  - filter: {program: errs, keep: [error, ok]}\n"},
		{"filter+escalate", "steps:\n  - filter: {program: errs, keep: [error, ok], escalate: {below: 0.5, to: review}}\n"},
		{"filter+teacher", "steps:\n  - filter: {program: errs, keep: [error, ok], escalate: {below: 0.5, to: teacher, teacher: {base_url: 'http://127.0.0.1:1/v1', model: m}}}\n"},
	} {
		b.Run(mode.name, func(b *testing.B) {
			pl := benchPipeline(b, env, []byte(mode.yaml), lines, nil)
			if n := pl.Escalations()["errs"]; n != 0 {
				b.Fatalf("%d escalated: the benchmark wants none", n)
			}
		})
	}
}

// BenchmarkPipelinePatterns measures what the dashboard's pattern sampling
// costs a pipeline: off, the default one record in 64, and every record.
func BenchmarkPipelinePatterns(b *testing.B) {
	env := openEnv(b)
	lines := loghubLines(b)
	if len(lines) < 1024 {
		lines = benchTexts(4096)
	}
	for _, sample := range []int{-1, 64, 1} {
		b.Run(fmt.Sprintf("sample=%d", sample), func(b *testing.B) {
			yaml := fmt.Appendf(nil, "pattern_sample: %d\nsteps:\n  - filter: {program: errs, keep: [error]}\n", sample)
			benchPipeline(b, env, yaml, lines, func(pl *runtime.Pipeline, i int) {
				if i%64 == 63 { // as a reporter would, every few seconds
					pl.TakePatterns()
				}
			})
		})
	}
}

// benchPipeline runs a pipeline of the errs program on lines, 512 at a
// time, pattern sampling on, calling after (when set) after each call, and reports lines/s.
func benchPipeline(b *testing.B, env *runtime.Env, yaml []byte, lines [][]byte, after func(*runtime.Pipeline, int)) *runtime.Pipeline {
	p, err := runtime.NewProgram(env, errorsProgram(b, "errs"), runtime.ProgramOptions{Sessions: 2})
	if err != nil {
		b.Fatal(err)
	}
	pl := runtimetest.Pipeline(b, string(yaml), p)
	pl.CollectPatterns() // as a processor or plugin that reports does
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		lo := (i * 512) % (len(lines) - 512)
		if _, err := pl.ProcessTexts(context.Background(), lines[lo:lo+512]); err != nil {
			b.Fatal(err)
		}
		if after != nil {
			after(pl, i)
		}
	}
	b.ReportMetric(float64(b.N*512)/b.Elapsed().Seconds(), "lines/s")
	return pl
}

func TestOutcomeReviews(t *testing.T) {
	e := func(prog, to string) runtime.Escalation { return runtime.Escalation{Program: prog, To: to} }
	tests := []struct {
		name string
		in   []runtime.Escalation
		want []runtime.Escalation
	}{
		{"none", nil, nil},
		{"one", []runtime.Escalation{e("a", "review")}, []runtime.Escalation{e("a", "review")}},
		{"two steps, one destination: the first", []runtime.Escalation{e("a", "review"), e("b", "review")}, []runtime.Escalation{e("a", "review")}},
		{"two destinations", []runtime.Escalation{e("a", "r1"), e("b", "r2"), e("c", "r1")}, []runtime.Escalation{e("a", "r1"), e("b", "r2")}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := runtime.Outcome{Escalations: tc.in}
			if got := o.Reviews(); fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Fatalf("Reviews = %v, want %v", got, tc.want)
			}
		})
	}
}

// TestProcessSetsOversizedRecordsAside: past MaxRecordBytes a record is
// not read; its outcome says why, and the others line up.
func TestProcessSetsOversizedRecordsAside(t *testing.T) {
	cfg, err := runtime.ParsePipelineConfig(filepath.Join(t.TempDir(), "p.yaml"), []byte("input: log\nsteps: []\n"))
	if err != nil {
		t.Fatal(err)
	}
	pl, err := runtime.OpenPipeline(openEnv(t), cfg, runtime.PipelineOptions{MaxRecordBytes: 32})
	if err != nil {
		t.Fatal(err)
	}
	defer pl.Close()
	records := [][]byte{[]byte(`{"log": "short"}`), []byte(`{"log": "` + strings.Repeat("x", 40) + `"}`), []byte(`not json`)}
	outs, err := pl.Process(context.Background(), records)
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []error{nil, runtime.ErrTooLarge, runtime.ErrNotJSON} {
		if !errors.Is(outs[i].Err, want) || (want == nil) != outs[i].Keep {
			t.Errorf("record %d: %+v, want error %v", i, outs[i], want)
		}
	}
}
