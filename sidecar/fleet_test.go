package sidecar

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pawlogs/paw/metrics"
)

func (s *server) report(r metrics.Report) (int, string) {
	s.t.Helper()
	body, _ := json.Marshal(r)
	resp, data := s.request("POST", "/v1/report", bytes.NewReader(body), map[string]string{"Content-Type": "application/json"})
	return resp.StatusCode, string(data)
}

type queryResult struct {
	Series []metrics.Series `json:"series"`
}

func (s *server) query(params string) queryResult {
	s.t.Helper()
	resp, data := s.request("GET", "/v1/metrics/query?"+params, nil, nil)
	if resp.StatusCode != 200 {
		s.t.Fatalf("query %s: %d %s", params, resp.StatusCode, data)
	}
	var q queryResult
	if err := json.Unmarshal(data, &q); err != nil {
		s.t.Fatal(err)
	}
	return q
}

func TestReportsAreStoredQueriedAndShownInTheFleet(t *testing.T) {
	s := startServer(t, "tok", map[string]string{"errs.yaml": specYAML("errs", 1)})
	id := s.waitFor("published", func(ps map[string]Program) bool { return ps["errs.yaml"].Status == "ok" })["errs.yaml"].ID
	base := time.Now().UTC().Truncate(time.Minute).Add(-10 * time.Minute)
	for i := 0; i < 10; i++ {
		for _, who := range []string{"proc-a", "plugin-b"} {
			kind := map[string]string{"proc-a": "processor", "plugin-b": "plugin"}[who]
			programs := map[string]string{"errs": id}
			if who == "plugin-b" {
				programs["errs"] = "an-older-id"
			}
			code, body := s.report(metrics.Report{Reporter: who, Kind: kind, Programs: programs, Time: base.Add(time.Duration(i) * time.Minute), IntervalSeconds: 5,
				Decisions: map[string]map[string]int64{"errs": {"error": int64(i), "ok": 100}}, Records: int64(100 + i)})
			if code != http.StatusNoContent {
				t.Fatalf("report: %d %s", code, body)
			}
		}
	}
	from := strconv.FormatInt(base.UnixMilli(), 10)
	q := s.query("metric=paw_decisions&program=errs&label=error&reporter=proc-a&step=1m&from=" + from)
	if len(q.Series) != 1 || len(q.Series[0].Samples) != 10 {
		t.Fatalf("series %+v", q.Series)
	}
	for i, smp := range q.Series[0].Samples {
		if smp.V != float64(i) || smp.T != base.Add(time.Duration(i)*time.Minute).UnixMilli() {
			t.Fatalf("sample %d = %+v, want %d at %v", i, smp, i, base.Add(time.Duration(i)*time.Minute))
		}
	}
	if q := s.query("metric=paw_decisions&program=errs&from=" + from); len(q.Series) != 4 {
		t.Fatalf("want 4 series (2 reporters x 2 labels), got %d", len(q.Series))
	}

	resp, data := s.request("GET", "/v1/fleet", nil, nil)
	var fleet []metrics.Member
	if err := json.Unmarshal(data, &fleet); err != nil || resp.StatusCode != 200 || len(fleet) != 2 {
		t.Fatalf("fleet: %d %s", resp.StatusCode, data)
	}
	if fleet[0].Name != "plugin-b" || fleet[0].Current || !fleet[1].Current || fleet[0].Stale || fleet[0].Kind != "plugin" {
		t.Fatalf("fleet view %+v: plugin-b runs an older program, proc-a the published one", fleet)
	}

	for _, bad := range []struct {
		name, body string
		code       int
	}{
		{"not json", "{", 400},
		{"unknown field", `{"reporter":"x","kind":"plugin","time":"2026-11-25T10:00:00Z","bogus":1}`, 400},
		{"bad kind", `{"reporter":"x","kind":"robot","time":"2026-11-25T10:00:00Z"}`, 422},
		{"negative", `{"reporter":"x","kind":"plugin","time":"2026-11-25T10:00:00Z","records":-1}`, 422},
		{"too large", `{"reporter":"` + strings.Repeat("x", 70<<10) + `"}`, 413},
		{"too many series", manyLabels(2000), 422},
		{"from the future", `{"reporter":"x","kind":"plugin","time":"2999-01-01T00:00:00Z"}`, 422},
		{"negative latency", `{"reporter":"x","kind":"plugin","time":"2026-11-25T10:00:00Z","latency_p99_ms":-5}`, 422},
	} {
		resp, data := s.request("POST", "/v1/report", strings.NewReader(bad.body), map[string]string{"Content-Type": "application/json"})
		if resp.StatusCode != bad.code {
			t.Errorf("%s: %d %s, want %d", bad.name, resp.StatusCode, data, bad.code)
		}
	}
}

// manyLabels is a report with n label values of one program.
func manyLabels(n int) string {
	var b strings.Builder
	b.WriteString(`{"reporter":"x","kind":"plugin","time":"2026-11-25T10:00:00Z","decisions":{"p":{`)
	for i := 0; i < n; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `"l%d":1`, i)
	}
	b.WriteString("}}}")
	return b.String()
}

func TestFleetMarksSilentReportersStale(t *testing.T) {
	now := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	f := metrics.NewFleet()
	f.SetClock(func() time.Time { return now })
	f.Seen(&metrics.Report{Reporter: "a", Kind: "processor", IntervalSeconds: 5, Programs: map[string]string{"p": "1"}})
	f.Seen(&metrics.Report{Reporter: "b", Kind: "plugin", IntervalSeconds: 5})
	now = now.Add(10 * time.Second)
	f.Seen(&metrics.Report{Reporter: "b", Kind: "plugin", IntervalSeconds: 5})
	now = now.Add(8 * time.Second) // a: 18s silent (> 3 x 5s); b: 8s
	got := f.List(map[string]string{"p": "1"})
	if !got[0].Stale || got[1].Stale || !got[0].Current {
		t.Fatalf("%+v", got)
	}
}

// TestMetricsReopenAfterRestart: reports survive a sidecar restart on the
// same metrics folder.
func TestMetricsReopenAfterRestart(t *testing.T) {
	dir := t.TempDir()
	at := time.Now().UTC().Add(-time.Minute).Truncate(time.Second)
	for round := 0; round < 2; round++ {
		ctx, cancel := context.WithCancel(context.Background())
		addr := make(chan string, 1)
		done := make(chan error, 1)
		go func() {
			done <- Run(ctx, Config{SpecsDir: t.TempDir(), ProgramsDir: t.TempDir(), Listen: "127.0.0.1:0", MetricsDir: dir},
				Options{Logger: testLogger(), OnListen: func(a string) { addr <- a }})
		}()
		s := &server{t: t, addr: <-addr}
		if round == 0 {
			if code, body := s.report(metrics.Report{Reporter: "r", Kind: "processor", Time: at, Records: 42}); code != 204 {
				t.Fatalf("%d %s", code, body)
			}
		} else {
			q := s.query("metric=paw_records&reporter=r&from=" + strconv.FormatInt(at.Add(-time.Minute).UnixMilli(), 10))
			if len(q.Series) != 1 || len(q.Series[0].Samples) != 1 || q.Series[0].Samples[0].V != 42 {
				t.Fatalf("after the restart: %+v", q.Series)
			}
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
}

// TestDriftRaisesTheGauge: a program whose positive rate jumps in the last
// minutes is flagged in /v1/programs and by paw_drift.
func TestDriftRaisesTheGauge(t *testing.T) {
	s := startServer(t, "", map[string]string{"errs.yaml": specYAML("errs", 1)})
	id := s.waitFor("published", func(ps map[string]Program) bool { return ps["errs.yaml"].Status == "ok" })["errs.yaml"].ID
	now := time.Now().UTC()
	for m := 60; m >= 0; m-- {
		pos := int64(10)
		if m < 4 {
			pos = 70
		}
		r := metrics.Report{Reporter: "p", Kind: "processor", Programs: map[string]string{"errs": id}, Time: now.Add(-time.Duration(m) * time.Minute),
			Decisions: map[string]map[string]int64{"errs": {"error": pos, "ok": 100 - pos}}}
		if code, body := s.report(r); code != 204 {
			t.Fatalf("%d %s", code, body)
		}
	}
	// The check runs on a timer, maybe while the reports still arrive: wait
	// for one that saw the window's five.
	ps := s.waitFor("the drift check", func(ps map[string]Program) bool {
		d := ps["errs.yaml"].Drift
		return d != nil && d.Drifting && d.RecentN >= 500
	})
	d := ps["errs.yaml"].Drift
	if d.Recent < 0.5 || d.Baseline > 0.2 {
		t.Fatalf("drift %+v", d)
	}
	_, m := s.request("GET", "/metrics", nil, nil)
	if !strings.Contains(string(m), `paw_drift{program="errs"} 1`) {
		t.Fatalf("no paw_drift gauge:\n%s", m)
	}
	t.Logf("drift: recent positive rate %.2f against a baseline of %.2f", d.Recent, d.Baseline)
}

// The teacher answers a processor or plugin passes on with its report go
// into the program's answer log; one for a label the program lacks is
// refused and counted.
func TestReportedAnswersAreLogged(t *testing.T) {
	s := startServer(t, "", map[string]string{"a.yaml": specYAML("a", 1)})
	id := s.waitFor("published", func(ps map[string]Program) bool { return ps["a.yaml"].Status == "ok" })["a.yaml"].ID
	code, body := s.report(metrics.Report{Reporter: "p1", Kind: "processor", Time: time.Now().UTC(), Programs: map[string]string{"a": id},
		Answers: []metrics.ReportAnswer{{Program: "a", ProgramID: id, Line: "WARN disk 91% full on /var", Label: "error"}, {Program: "a", Line: "x", Label: "maybe"}}})
	if code != 204 {
		t.Fatalf("%d %s", code, body)
	}
	data, err := os.ReadFile(filepath.Join(s.programs, ".answers", "a.answers.jsonl"))
	if err != nil || strings.Count(string(data), "\n") != 1 || !strings.Contains(string(data), `"by":"model"`) {
		t.Fatalf("answer log %q, %v", data, err)
	}
	_, metricsText := s.request("GET", "/metrics", nil, nil)
	if !strings.Contains(string(metricsText), `paw_sidecar_reports_refused_total{reason="answer"} 1`) {
		t.Error("the refused answer is not counted")
	}
}
