package metrics

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestReportValidateBounds(t *testing.T) {
	now := t0
	ok := func() Report {
		return Report{Reporter: "r1", Kind: "plugin", Time: now, Decisions: map[string]map[string]int64{"p": {"a": 1}}}
	}
	many := map[string]int64{}
	for i := 0; i <= MaxReportSeries; i++ {
		many[fmt.Sprintf("l%d", i)] = 1
	}
	tests := []struct {
		name string
		mut  func(*Report)
		want string
	}{
		{"too many series", func(r *Report) { r.Decisions["p"] = many }, "1025 decision and escalation series: at most 1024"},
		{"future time", func(r *Report) { r.Time = now.Add(time.Hour) }, "ahead of the sidecar's clock"},
		{"negative latency", func(r *Report) { r.LatencyP99Ms = -1 }, "latency_p99_ms -1"},
		{"long label", func(r *Report) { r.Decisions["p"] = map[string]int64{strings.Repeat("x", 201): 1} }, "want names of 1 to 200"},
		{"negative count", func(r *Report) { r.Escalations = map[string]int64{"p": -1} }, "count >= 0"},
		{"too many patterns", func(r *Report) { r.Patterns = make([]ReportPattern, MaxReportPatterns+1) }, "501 patterns: at most 500"},
		{"empty template", func(r *Report) { r.Patterns = []ReportPattern{{Program: "p", ID: "1", Label: "a"}} }, "patterns[0]: template of 0 bytes"},
		{"long template", func(r *Report) {
			r.Patterns = []ReportPattern{{Program: "p", ID: "1", Label: "a", Template: strings.Repeat("x", 1025)}}
		}, "template of 1025 bytes"},
		{"NaN novelty", func(r *Report) {
			r.Patterns = []ReportPattern{{Program: "p", ID: "1", Label: "a", Template: "x", Novelty: math.NaN()}}
		}, "novelty NaN"},
	}
	r := ok()
	if err := r.Validate(now); err != nil {
		t.Fatal(err)
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := ok()
			tc.mut(&r)
			if err := r.Validate(now); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
		})
	}
}

// A report over the series limits is refused whole: none of its points
// are stored, so the same report can come back later.
func TestStoreSeriesLimits(t *testing.T) {
	s := openAt(t, t.TempDir(), 24*time.Hour)
	defer s.Close()
	s.MaxSeries, s.MaxSeriesPerReporter = 25, 10
	report := func(reporter string, labels int) []Point {
		var pts []Point
		for i := 0; i < labels; i++ {
			pts = append(pts, Point{Metric: MetricDecisions, Labels: map[string]string{"reporter": reporter, "program": "p", "label": fmt.Sprintf("l%d", i)}, Value: 1, Time: t0})
		}
		return pts
	}
	if err := s.Add(report("r1", 10)); err != nil {
		t.Fatal(err)
	}
	if err := s.Add(report("r1", 11)); !errors.Is(err, ErrSeriesLimit) || !strings.Contains(err.Error(), `reporter "r1" has 10 series and sends 1 new`) {
		t.Fatalf("per reporter: %v", err)
	}
	if err := s.Add(report("r2", 10)); err != nil {
		t.Fatal(err)
	}
	if err := s.Add(report("r3", 6)); !errors.Is(err, ErrSeriesLimit) || !strings.Contains(err.Error(), "more than the store's 25") {
		t.Fatalf("total: %v", err)
	}
	got, err := s.Query(Query{Metric: MetricDecisions, Match: map[string]string{"reporter": "r3"}, From: t0.Add(-time.Hour), To: t0.Add(time.Hour)})
	if err != nil || len(got) != 0 {
		t.Fatalf("refused report stored: %v %v", got, err)
	}
	// r1's known series still take points.
	if err := s.Add(report("r1", 10)); err != nil {
		t.Fatal(err)
	}
}

// The index grows by a line per new series (it was rewritten whole on
// every report), survives a reopen, and a torn last line costs only that
// line.
func TestStoreIndexIsAppended(t *testing.T) {
	dir := t.TempDir()
	s := openAt(t, dir, 24*time.Hour)
	for r := 0; r < 3; r++ {
		var pts []Point
		for i := 0; i < 100; i++ {
			pts = append(pts, Point{Metric: MetricDecisions, Labels: map[string]string{"reporter": "r", "program": "p", "label": fmt.Sprintf("l%d-%d", r, i)}, Value: 1, Time: t0})
		}
		if err := s.Add(pts); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	data, err := os.ReadFile(filepath.Join(dir, "series.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(data), "\n"); n != 300 {
		t.Fatalf("index has %d lines, want 300", n)
	}
	os.WriteFile(filepath.Join(dir, "series.jsonl"), append(data, `{"metric":"paw_deci`...), 0o644)
	s = openAt(t, dir, 24*time.Hour)
	defer s.Close()
	got, err := s.Query(Query{Metric: MetricDecisions, Match: map[string]string{"program": "p"}, From: t0.Add(-time.Hour), To: t0.Add(time.Hour)})
	if err != nil || len(got) != 300 {
		t.Fatalf("after reopen: %d series, %v", len(got), err)
	}
}

// A partition whose metadata a full disk truncated must not keep the store
// (and so the sidecar) from opening: it is moved aside, the rest is kept.
func TestStoreQuarantinesUnreadablePartitions(t *testing.T) {
	dir := t.TempDir()
	s := openAt(t, dir, 24*time.Hour)
	for h := 0; h < 3; h++ {
		if err := s.Add([]Point{decisions("errs", "error", 1, t0.Add(time.Duration(h)*time.Hour-2*time.Hour))}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	metas, _ := filepath.Glob(filepath.Join(dir, "data", "p-*", "meta.json"))
	if len(metas) == 0 {
		t.Fatal("no partition on disk")
	}
	data, _ := os.ReadFile(metas[0])
	os.WriteFile(metas[0], data[:len(data)/2], 0o644)
	s, err := Open(dir, 24*time.Hour)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer s.Close()
	if len(s.Quarantined) != 1 || !strings.Contains(s.Quarantined[0], filepath.Join(dir, "quarantine")) {
		t.Fatalf("quarantined %v", s.Quarantined)
	}
	if err := s.Add([]Point{decisions("errs", "error", 1, time.Now())}); err != nil {
		t.Fatal(err)
	}
}

// A report whose new series cannot be indexed (a full disk, here a closed
// file) is refused with nothing of it stored, so its retry after the 500
// is not counted twice.
func TestStoreAddIsAllOrNothing(t *testing.T) {
	s := openAt(t, t.TempDir(), 24*time.Hour)
	defer s.Close()
	s.index.Close()
	err := s.Add([]Point{decisions("errs", "error", 5, t0), decisions("errs", "ok", 7, t0)})
	if err == nil {
		t.Fatal("Add succeeded without an index")
	}
	got, qerr := s.Query(Query{Metric: MetricDecisions, Match: map[string]string{"program": "errs"}, From: t0.Add(-time.Hour), To: t0.Add(time.Hour)})
	if qerr != nil || len(got) != 0 {
		t.Fatalf("a refused report left %v (%v)", got, qerr)
	}
}

// Teacher answers go out with the next report; those of a failed report go
// with the one after.
func TestReporterCarriesAnswers(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var got [][]ReportAnswer
	calls := 0
	given := false
	done := make(chan struct{})
	go func() {
		defer close(done)
		RunReporter(ctx, ReporterConfig{Name: "p", Kind: "plugin", Interval: 10 * time.Millisecond,
			Programs: func() map[string]string { return nil },
			Totals:   func() Totals { return Totals{} },
			Answers: func() []ReportAnswer {
				if given {
					return nil
				}
				given = true
				return []ReportAnswer{{Program: "errs", Line: "disk failed", Label: "error"}}
			},
			Send: func(_ context.Context, r *Report) error {
				calls++
				if calls == 1 {
					return errors.New("sidecar down")
				}
				if len(r.Answers) > 0 {
					got = append(got, r.Answers)
					cancel()
				}
				return nil
			}})
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		cancel()
		<-done
	}
	if len(got) != 1 || len(got[0]) != 1 || got[0][0].Line != "disk failed" || calls < 2 {
		t.Fatalf("answers sent %v over %d calls", got, calls)
	}
}
