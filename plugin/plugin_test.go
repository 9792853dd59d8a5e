package plugin_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/pawlogs/paw/metrics"
)

const filterPipeline = `
steps:
  - filter: {program: real-error, keep: [error]}
  - tag: {programs: [real-error, security-event]}
  - route:
      program: security-event
      routes: {auth_failure: security-events}
      default: app-logs
`

const tagPipeline = `
steps:
  - tag: {programs: [noise]}
`

func TestBadProperties(t *testing.T) {
	dir := t.TempDir()
	pipe := writePipeline(t, dir, "p.yaml", tagPipeline)
	tests := []struct {
		name  string
		props map[string]string
		want  string
	}{
		{"no pipeline", map[string]string{}, "property pipeline is required"},
		{"missing pipeline file", map[string]string{"pipeline": filepath.Join(dir, "nope.yaml")}, "no such file"},
		{"bad max_batch", map[string]string{"pipeline": pipe, "max_batch": "lots"}, "property max_batch"},
		{"bad output", map[string]string{"pipeline": pipe, "output": "s3://bucket"}, "property output"},
		{"kafka without topic", map[string]string{"pipeline": pipe, "output": "kafka://127.0.0.1:9092"}, "want kafka://host1:9092,host2:9092/TOPIC"},
		{"bad device", map[string]string{"pipeline": pipe, "device": "tpu"}, "property device"},
		{"bad field", map[string]string{"pipeline": pipe, "field": "a..b"}, "property field"},
		{"template input", map[string]string{"pipeline": writePipeline(t, dir, "tmpl.yaml", "input: \"{{.service}}: {{.msg}}\"\n"+tagPipeline)}, "is a template: out_paw reads one field"},
		{"programs missing", map[string]string{"pipeline": pipe, "programs_dir": dir}, "noise.paw"},
		{"unwritable dead letter", map[string]string{"pipeline": pipe, "programs_dir": build.programs, "dead_letter": "/nonexistent/dl.jsonl"}, "property dead_letter"},
	}
	h := startHarness(t)
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := h.instance(i, tc.props); got != fmt.Sprintf("init %d 0", i) {
				t.Fatalf("init = %q, want FLB_ERROR (0)", got)
			}
			if !h.stderrContains(tc.want) {
				t.Fatalf("stderr does not explain %q:\n%s", tc.want, h.stderr.String())
			}
		})
	}
}

// outputLine is out_paw's JSON line.
type outputLine struct {
	Timestamp string                 `json:"timestamp"`
	Tag       string                 `json:"tag"`
	Record    map[string]interface{} `json:"record"`
	Paw       map[string]struct {
		Label string  `json:"label"`
		Score float32 `json:"score"`
		ID    string  `json:"id"`
	} `json:"paw"`
	Destination string `json:"destination"`
}

func readLines(t *testing.T, path string) []outputLine {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []outputLine
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var l outputLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("output line %q: %v", sc.Text(), err)
		}
		out = append(out, l)
	}
	return out
}

func seqOf(t *testing.T, l outputLine) int {
	t.Helper()
	f, ok := l.Record["seq"].(float64)
	if !ok {
		t.Fatalf("record without seq: %+v", l.Record)
	}
	return int(f)
}

// TestTwoInstancesManyChunks runs two instances at once, each flushed from
// two threads (Fluent Bit's output workers), and checks every record.
func TestTwoInstancesManyChunks(t *testing.T) {
	const n, per = 12000, 200
	dir := t.TempDir()
	filterPath := writePipeline(t, dir, "filter.yaml", filterPipeline)
	tagPath := writePipeline(t, dir, "tag.yaml", tagPipeline)
	writeChunks(t, filepath.Join(dir, "a"), 0, n, per)
	writeChunks(t, filepath.Join(dir, "b"), 0, n, per)
	h := startHarness(t)
	outA, outB := filepath.Join(dir, "a.jsonl"), filepath.Join(dir, "b.jsonl")
	if got := h.instance(1, map[string]string{"pipeline": filterPath, "programs_dir": build.programs, "output": "file://" + outA}); got != "init 1 1" {
		t.Fatalf("init 1: %s\n%s", got, h.stderr.String())
	}
	if got := h.instance(2, map[string]string{"pipeline": tagPath, "programs_dir": build.programs, "output": "file://" + outB, "Field": "log", "max_batch": "64"}); got != "init 2 1" {
		t.Fatalf("init 2: %s\n%s", got, h.stderr.String())
	}
	replies := h.par(
		fmt.Sprintf("flushdir 1 app.a %s 2", filepath.Join(dir, "a")),
		fmt.Sprintf("flushdir 2 app.b %s 2", filepath.Join(dir, "b")))
	for _, r := range replies {
		if !strings.Contains(r, fmt.Sprintf("ok=%d retry=0 error=0", n/per)) {
			t.Fatalf("flush: %s", r)
		}
	}
	if got := h.do("exit 1"); got != "exit 1 1" {
		t.Fatalf("exit: %s", got)
	}
	if got := h.do("exit 2"); got != "exit 2 1" {
		t.Fatalf("exit: %s", got)
	}

	texts := make([][]byte, n)
	for seq := range texts {
		texts[seq] = []byte(testRecord(seq)["log"].(string))
	}
	check := func(name, path, pipeline, tag string) {
		want := oracle(t, pipeline, texts)
		lines := readLines(t, path)
		seen := make([]bool, n)
		kept := 0
		for _, o := range want {
			if o.Keep {
				kept++
			}
		}
		if len(lines) != kept {
			t.Fatalf("%s: %d records out, want %d", name, len(lines), kept)
		}
		for _, l := range lines {
			seq := seqOf(t, l)
			if seen[seq] {
				t.Fatalf("%s: record %d twice", name, seq)
			}
			seen[seq] = true
			o := want[seq]
			if !o.Keep {
				t.Fatalf("%s: record %d should have been dropped", name, seq)
			}
			for _, tg := range o.Tags {
				if got := l.Paw[tg.Program]; got.Label != tg.Label || got.ID != tg.ID {
					t.Fatalf("%s: record %d tagged %+v, want %+v", name, seq, got, tg)
				}
			}
			if l.Destination != o.Destination || l.Tag != tag {
				t.Fatalf("%s: record %d destination %q tag %q", name, seq, l.Destination, l.Tag)
			}
			// The timestamp survives every encoding form: EventTime to the
			// nanosecond, integer seconds to the second.
			ts := eventTime(seq)
			if (seq/per)%3 == 2 {
				ts = ts.Truncate(1e9)
			}
			if l.Timestamp != ts.Format("2006-01-02T15:04:05.999999999Z07:00") {
				t.Fatalf("%s: record %d timestamp %s, want %s", name, seq, l.Timestamp, ts)
			}
			if k, _ := l.Record["kubernetes"].(map[string]interface{}); k["pod"] != fmt.Sprintf("api-%d", seq%3) {
				t.Fatalf("%s: record %d nested map lost: %+v", name, seq, l.Record)
			}
		}
		t.Logf("%s: %d of %d records out, all as the in-process pipeline decided", name, len(lines), n)
	}
	check("filter instance", outA, filterPath, "app.a")
	check("tag instance", outB, tagPath, "app.b")
}

func TestStdoutOutput(t *testing.T) {
	dir := t.TempDir()
	pipe := writePipeline(t, dir, "p.yaml", tagPipeline)
	writeChunks(t, filepath.Join(dir, "c"), 0, 300, 100)
	h := startHarness(t)
	if got := h.instance(1, map[string]string{"pipeline": pipe, "programs_dir": build.programs, "report_token": "s3cret"}); got != "init 1 1" {
		t.Fatalf("init: %s", got)
	}
	// Every setting in effect is logged once at start, defaults included,
	// secrets only as set or not.
	if !h.stderrContains("settings") || !h.stderrContains("field=log") || !h.stderrContains("max_batch=256") || !h.stderrContains("report_token_set=true") || strings.Contains(h.stderr.String(), "s3cret") {
		t.Fatalf("settings not logged, or a secret was:\n%s", h.stderr.String())
	}
	if got := h.do(fmt.Sprintf("flushdir 1 app %s 3", filepath.Join(dir, "c"))); !strings.Contains(got, "ok=3 retry=0 error=0") {
		t.Fatalf("flush: %s", got)
	}
	h.do("exit 1")
	lines := strings.Split(strings.TrimSpace(h.stdout.String()), "\n")
	seen := map[int]bool{}
	for _, raw := range lines {
		var l outputLine
		if err := json.Unmarshal([]byte(raw), &l); err != nil {
			t.Fatalf("stdout line %q: %v", raw, err)
		}
		seen[seqOf(t, l)] = true
		if l.Paw["noise"].Label == "" {
			t.Fatalf("untagged: %s", raw)
		}
	}
	if len(lines) != 300 || len(seen) != 300 {
		t.Fatalf("%d lines, %d distinct records on stdout; want 300", len(lines), len(seen))
	}
}

// TestPluginReportsMetrics: an instance with report_url pushes its
// decisions and program IDs; the last push happens at exit.
func TestPluginReportsMetrics(t *testing.T) {
	var mu sync.Mutex
	var reports []metrics.Report
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var rep metrics.Report
		if err := json.NewDecoder(r.Body).Decode(&rep); err != nil || r.URL.Path != "/v1/report" || r.Header.Get("Authorization") != "Bearer tk" {
			http.Error(w, "bad report", 400)
			return
		}
		mu.Lock()
		reports = append(reports, rep)
		mu.Unlock()
		w.WriteHeader(204)
	}))
	defer srv.Close()
	dir := t.TempDir()
	pipe := writePipeline(t, dir, "p.yaml", tagPipeline)
	writeChunks(t, filepath.Join(dir, "c"), 0, 500, 100)
	h := startHarness(t)
	if got := h.instance(1, map[string]string{"pipeline": pipe, "programs_dir": build.programs, "output": "file:///dev/null",
		"report_url": srv.URL, "report_token": "tk", "report_interval": "100ms", "report_name": "fb-1"}); got != "init 1 1" {
		t.Fatalf("init: %s", got)
	}
	h.do(fmt.Sprintf("flushdir 1 app %s 2", filepath.Join(dir, "c")))
	h.do("exit 1")
	mu.Lock()
	defer mu.Unlock()
	var records, decided, patterned int64
	for _, r := range reports {
		if r.Reporter != "fb-1" || r.Kind != "plugin" || r.Programs["noise"] == "" {
			t.Fatalf("report %+v", r)
		}
		records += r.Records
		for _, n := range r.Decisions["noise"] {
			decided += n
		}
		for _, p := range r.Patterns {
			if p.Program == "noise" {
				patterned += p.Count
			}
		}
	}
	// Patterns: one record in 64 sampled (0, 64, ..., 448), 64 each.
	if records != 500 || decided != 500 || patterned != 8*64 {
		t.Fatalf("%d reports carried %d records, %d decisions and patterns of %d, want 500, 500 and 512", len(reports), records, decided, patterned)
	}
	if last := reports[len(reports)-1]; last.InferenceMeanMs <= 0 || last.InferenceP99Ms < last.InferenceMeanMs/2 || last.MeanBatch != 100 {
		t.Fatalf("inference latency or batch size missing from %+v", last)
	}
}

// TestEscalationToAReviewFile: low-confidence decisions also go to the
// review file named by the pipeline; every record still goes on.
func TestEscalationToAReviewFile(t *testing.T) {
	dir := t.TempDir()
	review := filepath.Join(dir, "review.jsonl")
	pipe := writePipeline(t, dir, "p.yaml", fmt.Sprintf("steps:\n  - tag: {programs: [real-error]}\n  - route: {program: real-error, routes: {error: errors}, default: rest, escalate: {below: 0.8, to: \"file://%s\"}}\n", review))
	writeChunks(t, filepath.Join(dir, "c"), 0, 600, 100)
	out := filepath.Join(dir, "out.jsonl")
	h := startHarness(t)
	if got := h.instance(1, map[string]string{"pipeline": pipe, "programs_dir": build.programs, "output": "file://" + out}); got != "init 1 1" {
		t.Fatalf("init: %s\n%s", got, h.stderr.String())
	}
	if got := h.do(fmt.Sprintf("flushdir 1 app %s 2", filepath.Join(dir, "c"))); !strings.Contains(got, "ok=6 retry=0 error=0") {
		t.Fatalf("flush: %s", got)
	}
	h.do("exit 1")
	texts := make([][]byte, 600)
	for seq := range texts {
		texts[seq] = []byte(testRecord(seq)["log"].(string))
	}
	want := 0
	for _, o := range oracle(t, pipe, texts) {
		if len(o.Escalations) > 0 {
			want++
		}
	}
	got := readLines(t, review)
	for _, l := range got {
		if l.Paw["real-error"].Score >= 0.8 {
			t.Fatalf("a confident record was escalated: %+v", l.Paw)
		}
	}
	if len(got) != want || want == 0 || len(readLines(t, out)) != 600 {
		t.Fatalf("%d escalated (want %d, some), %d sent on (want 600)", len(got), want, len(readLines(t, out)))
	}
	t.Logf("%d of 600 records escalated to the review file", want)
}

// With no field property, an instance reads the field the pipeline's
// input names, as paw process does: here "seq", a number, so every record
// is poison (not_string) rather than read from "log".
func TestPipelineInputIsTheField(t *testing.T) {
	dir := t.TempDir()
	pipe := writePipeline(t, dir, "p.yaml", "input: seq\n"+tagPipeline)
	writeChunks(t, filepath.Join(dir, "c"), 0, 200, 100)
	h := startHarness(t)
	if got := h.instance(1, map[string]string{"pipeline": pipe, "programs_dir": build.programs, "output": "file:///dev/null"}); got != "init 1 1" {
		t.Fatalf("init: %s\n%s", got, h.stderr.String())
	}
	if got := h.do(fmt.Sprintf("flushdir 1 app %s 1", filepath.Join(dir, "c"))); !strings.Contains(got, "ok=2 retry=0 error=0") {
		t.Fatalf("flush: %s", got)
	}
	h.do("exit 1")
	if !h.stderrContains("field=seq") || !h.stderrContains("records=200 tagged=0 dropped=0 poison=200") {
		t.Fatalf("the pipeline's input was not read:\n%s", h.stderr.String())
	}
}
