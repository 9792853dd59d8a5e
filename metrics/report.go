package metrics

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"slices"
	"strings"
	"time"
)

// Report is what a processor or plugin pushes to paw serve
// (POST /v1/report) every few seconds: who it is, which program IDs it
// runs, and what it counted since its previous report.
type Report struct {
	Reporter        string            `json:"reporter"`
	Kind            string            `json:"kind"` // processor or plugin
	Programs        map[string]string `json:"programs"`
	Time            time.Time         `json:"time"`
	IntervalSeconds float64           `json:"interval_seconds"`
	// Decisions counts records by program and label since the previous
	// report; so do Records, DeadLetters and Retries.
	Decisions map[string]map[string]int64 `json:"decisions"`
	// Escalations counts low-confidence decisions sent for review, by
	// program, since the previous report.
	Escalations map[string]int64 `json:"escalations,omitempty"`
	// Novel counts decisions on records unlike the program's training
	// data (novelty above 0.5), by program, since the previous report.
	Novel map[string]int64 `json:"novel,omitempty"`
	// Answers are the teacher's answers to escalations since the previous
	// report, for the sidecar's answer logs (the learning loop).
	Answers []ReportAnswer `json:"answers,omitempty"`
	// Patterns are the log patterns of the records the reporter sampled
	// since the previous report, largest first; PatternsDropped estimates
	// the decisions that did not fit in them.
	Patterns        []ReportPattern `json:"patterns,omitempty"`
	PatternsDropped int64           `json:"patterns_dropped,omitempty"`
	Records         int64           `json:"records"`
	DeadLetters     int64           `json:"dead_letters"`
	Retries         int64           `json:"retries"`
	LatencyP50Ms    float64         `json:"latency_p50_ms"`
	LatencyP99Ms    float64         `json:"latency_p99_ms"`
	MeanBatch       float64         `json:"mean_batch"`
	// Per-batch featurize-plus-inference time.
	InferenceMeanMs float64 `json:"inference_mean_ms"`
	InferenceP99Ms  float64 `json:"inference_p99_ms"`
}

// Limits on one report: a real one carries a few programs with a few
// labels each.
const (
	// MaxReportSeries bounds the decision and escalation series of a report.
	MaxReportSeries = 1024
	maxNameLen      = 200
	// maxClockSkew is how far in the future a report's time may be.
	maxClockSkew = 5 * time.Minute
)

// ReportAnswer is one teacher answer a reporter passes on.
type ReportAnswer struct {
	Program   string `json:"program"`
	ProgramID string `json:"program_id,omitempty"`
	Line      string `json:"line"`
	Label     string `json:"label"`
}

// MaxReportAnswers bounds the answers one report carries; more wait for
// the next.
const MaxReportAnswers = 1000

// Validate reports a report the sidecar must refuse, at time now.
func (r *Report) Validate(now time.Time) error {
	switch {
	case !validName(r.Reporter):
		return errors.New("reporter: 1 to 200 characters")
	case r.Kind != "processor" && r.Kind != "plugin":
		return fmt.Errorf("kind %q: want processor or plugin", r.Kind)
	case r.Time.IsZero():
		return errors.New("time is required")
	case r.Time.After(now.Add(maxClockSkew)):
		return fmt.Errorf("time %s is more than %s ahead of the sidecar's clock", r.Time.Format(time.RFC3339), maxClockSkew)
	case r.Records < 0 || r.DeadLetters < 0 || r.Retries < 0:
		return errors.New("counts must not be negative")
	case len(r.Programs) > MaxReportSeries:
		return fmt.Errorf("%d programs: at most %d", len(r.Programs), MaxReportSeries)
	case len(r.Answers) > MaxReportAnswers:
		return fmt.Errorf("%d answers: at most %d per report", len(r.Answers), MaxReportAnswers)
	case len(r.Patterns) > MaxReportPatterns:
		return fmt.Errorf("%d patterns: at most %d per report", len(r.Patterns), MaxReportPatterns)
	case r.PatternsDropped < 0:
		return errors.New("patterns_dropped must not be negative")
	}
	for i := range r.Patterns {
		if err := r.Patterns[i].Validate(); err != nil {
			return fmt.Errorf("patterns[%d]: %w", i, err)
		}
	}
	for i, a := range r.Answers {
		if a.Program == "" || a.Label == "" || a.Line == "" || len(a.Line) > 64<<10 || len(a.Label) > maxNameLen {
			return fmt.Errorf("answers[%d]: want a program, a label and a line of at most 64 KiB", i)
		}
	}
	for name, v := range map[string]float64{"latency_p50_ms": r.LatencyP50Ms, "latency_p99_ms": r.LatencyP99Ms, "mean_batch": r.MeanBatch,
		"inference_mean_ms": r.InferenceMeanMs, "inference_p99_ms": r.InferenceP99Ms, "interval_seconds": r.IntervalSeconds} {
		if !(v >= 0 && v <= math.MaxFloat32) {
			return fmt.Errorf("%s %v: want a finite value >= 0", name, v)
		}
	}
	series := len(r.Escalations) + len(r.Novel)
	for _, byLabel := range r.Decisions {
		series += len(byLabel)
	}
	if series > MaxReportSeries {
		return fmt.Errorf("%d decision and escalation series: at most %d per report", series, MaxReportSeries)
	}
	if err := checkCounts("novel", r.Novel); err != nil {
		return err
	}
	if err := checkCounts("escalations", r.Escalations); err != nil {
		return err
	}
	for p, byLabel := range r.Decisions {
		for l, n := range byLabel {
			if n < 0 || !validName(p) || !validName(l) {
				return fmt.Errorf("decisions[%q][%q] = %d: want names of 1 to %d characters and a count >= 0", p, l, n, maxNameLen)
			}
		}
	}
	return nil
}

func validName(s string) bool { return s != "" && len(s) <= maxNameLen }

// checkCounts refuses a per-program count with a bad name or below 0.
func checkCounts(field string, counts map[string]int64) error {
	for p, n := range counts {
		if n < 0 || !validName(p) {
			return fmt.Errorf("%s[%q] = %d: want a name of 1 to %d characters and a count >= 0", field, p, n, maxNameLen)
		}
	}
	return nil
}

// Metric names in the store.
const (
	MetricDecisions   = "paw_decisions"
	MetricRecords     = "paw_records"
	MetricDeadLetters = "paw_dead_letters"
	MetricRetries     = "paw_retries"
	MetricLatencyP50  = "paw_latency_p50_ms"
	MetricLatencyP99  = "paw_latency_p99_ms"
	MetricMeanBatch   = "paw_mean_batch"
	MetricInferMean   = "paw_inference_mean_ms"
	MetricInferP99    = "paw_inference_p99_ms"
	MetricEscalations = "paw_escalations"
	MetricNovel       = "paw_novel"
	// MetricPatternsDropped estimates decisions left out of a report's
	// patterns for lack of room: the pattern view undercounts by as much.
	MetricPatternsDropped = "paw_patterns_dropped"
)

// Points turns a report into store points, labelled with the reporter
// (and program and label for decisions).
func (r *Report) Points() []Point {
	who := map[string]string{"reporter": r.Reporter}
	var pts []Point
	for p, byLabel := range r.Decisions {
		for l, n := range byLabel {
			pts = append(pts, Point{Metric: MetricDecisions, Labels: map[string]string{"reporter": r.Reporter, "program": p, "label": l}, Value: float64(n), Time: r.Time})
		}
	}
	for p, n := range r.Novel {
		pts = append(pts, Point{Metric: MetricNovel, Labels: map[string]string{"reporter": r.Reporter, "program": p}, Value: float64(n), Time: r.Time})
	}
	for p, n := range r.Escalations {
		pts = append(pts, Point{Metric: MetricEscalations, Labels: map[string]string{"reporter": r.Reporter, "program": p}, Value: float64(n), Time: r.Time})
	}
	for _, m := range []struct {
		name string
		v    float64
	}{{MetricRecords, float64(r.Records)}, {MetricDeadLetters, float64(r.DeadLetters)}, {MetricRetries, float64(r.Retries)},
		{MetricLatencyP50, r.LatencyP50Ms}, {MetricLatencyP99, r.LatencyP99Ms}, {MetricMeanBatch, r.MeanBatch},
		{MetricInferMean, r.InferenceMeanMs}, {MetricInferP99, r.InferenceP99Ms}, {MetricPatternsDropped, float64(r.PatternsDropped)}} {
		pts = append(pts, Point{Metric: m.name, Labels: who, Value: m.v, Time: r.Time})
	}
	return pts
}

// Totals are a reporter's cumulative counts; the reporter sends the
// differences.
type Totals struct {
	Decisions                       map[string]map[string]int64
	Escalations                     map[string]int64
	Novel                           map[string]int64
	Records, DeadLetters, Retries   int64
	LatencyP50Ms, LatencyP99Ms      float64
	MeanBatch                       float64
	InferenceMeanMs, InferenceP99Ms float64
}

// ReporterConfig configures RunReporter. Zero values take the defaults.
type ReporterConfig struct {
	// URL of paw serve, e.g. http://sidecar:8080. Required.
	URL   string
	Token string
	// Name identifies the instance in the fleet view. Required.
	Name string
	Kind string
	// Interval between reports. Default: 5s.
	Interval time.Duration
	Programs func() map[string]string
	Totals   func() Totals
	// Answers, if set, hands over the teacher answers gathered since its
	// last call; those of a failed report go with the next one.
	Answers func() []ReportAnswer
	// Patterns, if set, hands over the log patterns sampled since its last
	// call and how many sampled decisions did not fit; those of a failed
	// report are merged into the next one.
	Patterns func() ([]ReportPattern, int64)
	Logger   *slog.Logger
	Client   *http.Client
	// Send, when set, takes each report instead of an HTTP push: a
	// processor without a sidecar stores its own.
	Send func(ctx context.Context, r *Report) error
}

// RunReporter pushes a report every interval until ctx ends, then a last
// one. A report that fails is not lost: its counts go into the next one.
func RunReporter(ctx context.Context, cfg ReporterConfig) {
	if cfg.Interval <= 0 {
		cfg.Interval = 5 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Client == nil {
		cfg.Client = &http.Client{Timeout: 10 * time.Second}
	}
	send := cfg.Send
	if send == nil {
		send = func(ctx context.Context, r *Report) error { return post(ctx, cfg, r) }
	}
	var sent Totals // what the sidecar has acknowledged
	var pending []ReportAnswer
	var patterns pendingPatterns
	t := time.NewTicker(cfg.Interval)
	defer t.Stop()
	failures := 0
	for {
		final := false
		select {
		case <-ctx.Done():
			final = true
		case <-t.C:
		}
		now := cfg.Totals()
		r := diff(now, sent)
		r.Reporter, r.Kind, r.Programs, r.Time, r.IntervalSeconds = cfg.Name, cfg.Kind, cfg.Programs(), time.Now().UTC(), cfg.Interval.Seconds()
		if cfg.Answers != nil {
			pending = append(pending, cfg.Answers()...)
			if over := len(pending) - 10*MaxReportAnswers; over > 0 {
				cfg.Logger.Warn("teacher answers queued past the bound; the oldest are not passed on", "dropped", over)
				pending = pending[over:]
			}
			r.Answers = pending[:min(len(pending), MaxReportAnswers)]
		}
		if cfg.Patterns != nil {
			patterns.add(cfg.Patterns())
			r.Patterns, r.PatternsDropped = patterns.report()
		}
		// A send is never cut short by shutdown: a report the sidecar took
		// but the reporter saw fail would be carried over and counted twice.
		pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		err := send(pctx, &r)
		cancel()
		if err != nil {
			failures++
			if failures == 1 || failures%12 == 0 {
				cfg.Logger.Warn("metrics report failed; counts carry over to the next one", "url", cfg.URL, "failures", failures, "err", err)
			}
		} else {
			failures = 0
			sent = now
			pending = pending[len(r.Answers):]
			patterns = pendingPatterns{}
		}
		if final {
			return
		}
	}
}

// pendingPatterns are the patterns not yet acknowledged, merged by program
// and ID.
type pendingPatterns struct {
	byKey   map[[2]string]*ReportPattern
	dropped int64
}

func (pp *pendingPatterns) add(ps []ReportPattern, dropped int64) {
	if pp.byKey == nil {
		pp.byKey = map[[2]string]*ReportPattern{}
	}
	pp.dropped += dropped
	for _, p := range ps {
		if p.Validate() != nil { // would cost the whole report: count it instead
			pp.dropped += max(p.Count, 0)
			continue
		}
		k := [2]string{p.Program, p.ID}
		if q, ok := pp.byKey[k]; ok {
			// Weigh the label share and novelty by the counts.
			total := float64(q.Count + p.Count)
			if total > 0 {
				q.Share = (q.Share*float64(q.Count) + p.Share*float64(p.Count)) / total
				q.Novelty = (q.Novelty*float64(q.Count) + p.Novelty*float64(p.Count)) / total
			}
			q.Count += p.Count
			q.Template, q.Label = p.Template, p.Label
			continue
		}
		if len(pp.byKey) >= 4*MaxReportPatterns { // a long outage: keep the map small
			pp.dropped += p.Count
			continue
		}
		p := p
		pp.byKey[k] = &p
	}
}

// report returns the largest MaxReportPatterns patterns; the others'
// counts are reported as dropped, so none is lost without a trace.
func (pp *pendingPatterns) report() ([]ReportPattern, int64) {
	out := make([]ReportPattern, 0, len(pp.byKey))
	for _, p := range pp.byKey {
		out = append(out, *p)
	}
	slices.SortFunc(out, func(a, b ReportPattern) int {
		return cmp.Or(cmp.Compare(b.Count, a.Count), cmp.Compare(a.Program, b.Program), cmp.Compare(a.ID, b.ID))
	})
	dropped := pp.dropped
	if len(out) > MaxReportPatterns {
		for _, p := range out[MaxReportPatterns:] {
			dropped += p.Count
		}
		out = out[:MaxReportPatterns]
	}
	return out, dropped
}

func diff(now, sent Totals) Report {
	r := Report{
		Decisions: map[string]map[string]int64{},
		Records:   now.Records - sent.Records, DeadLetters: now.DeadLetters - sent.DeadLetters, Retries: now.Retries - sent.Retries,
		LatencyP50Ms: now.LatencyP50Ms, LatencyP99Ms: now.LatencyP99Ms, MeanBatch: now.MeanBatch,
		InferenceMeanMs: now.InferenceMeanMs, InferenceP99Ms: now.InferenceP99Ms,
	}
	r.Escalations = since(now.Escalations, sent.Escalations)
	r.Novel = since(now.Novel, sent.Novel)
	for p, byLabel := range now.Decisions {
		d := map[string]int64{}
		for l, n := range byLabel {
			d[l] = n - sent.Decisions[p][l]
		}
		r.Decisions[p] = d
	}
	return r
}

// since is now - sent per key, nil when now is empty.
func since(now, sent map[string]int64) map[string]int64 {
	if len(now) == 0 {
		return nil
	}
	d := make(map[string]int64, len(now))
	for k, n := range now {
		d[k] = n - sent[k]
	}
	return d
}

func post(ctx context.Context, cfg ReporterConfig, r *Report) error {
	body, err := json.Marshal(r)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(cfg.URL, "/")+"/v1/report", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	if cfg.Token != "" {
		req.Header.Set("Authorization", "Bearer "+cfg.Token)
	}
	resp, err := cfg.Client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("%s: %s", resp.Status, strings.TrimSpace(string(msg)))
	}
	return nil
}
