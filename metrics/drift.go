package metrics

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"sort"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pawlogs/paw/internal/lifecycle"
)

// DriftConfig says when a program's positive rate has drifted: its rate
// over the last Window differs from its rate over the Baseline before it
// by more than Band (absolute), with at least MinRecords in the window.
type DriftConfig struct {
	Window     time.Duration `yaml:"window"`      // default 5m
	Baseline   time.Duration `yaml:"baseline"`    // default 1h
	Band       float64       `yaml:"band"`        // default 0.15
	MinRecords float64       `yaml:"min_records"` // default 100
}

func (c DriftConfig) withDefaults() DriftConfig {
	if c.Window <= 0 {
		c.Window = 5 * time.Minute
	}
	if c.Baseline <= 0 {
		c.Baseline = time.Hour
	}
	if c.Band <= 0 {
		c.Band = 0.15
	}
	if c.MinRecords <= 0 {
		c.MinRecords = 100
	}
	return c
}

// Drift is one program's check.
type Drift struct {
	Program, Positive  string
	Recent, Baseline   float64 // positive rates
	RecentN, BaselineN float64 // decisions counted
	Drifting           bool
}

// CheckDrift compares a program's recent positive rate with its baseline,
// over every reporter's decisions.
func CheckDrift(s *Store, program, positive string, now time.Time, cfg DriftConfig) (Drift, error) {
	cfg = cfg.withDefaults()
	d := Drift{Program: program, Positive: positive}
	rate := func(from, to time.Time) (float64, float64, error) {
		series, err := s.Query(Query{Metric: MetricDecisions, Match: map[string]string{"program": program}, From: from, To: to.Add(-time.Millisecond)})
		if err != nil {
			return 0, 0, err
		}
		var pos, all float64
		for _, sr := range series {
			for _, smp := range sr.Samples {
				all += smp.V
				if sr.Labels["label"] == positive {
					pos += smp.V
				}
			}
		}
		if all == 0 {
			return 0, 0, nil
		}
		return pos / all, all, nil
	}
	var err error
	if d.Recent, d.RecentN, err = rate(now.Add(-cfg.Window), now.Add(time.Millisecond)); err != nil {
		return d, fmt.Errorf("drift %s: %w", program, err)
	}
	if d.Baseline, d.BaselineN, err = rate(now.Add(-cfg.Window-cfg.Baseline), now.Add(-cfg.Window)); err != nil {
		return d, fmt.Errorf("drift %s: %w", program, err)
	}
	d.Drifting = d.RecentN >= cfg.MinRecords && d.BaselineN >= cfg.MinRecords && math.Abs(d.Recent-d.Baseline) > cfg.Band
	return d, nil
}

// NewDriftGauge registers paw_drift{program}.
func NewDriftGauge(reg prometheus.Registerer) *prometheus.GaugeVec {
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "paw_drift",
		Help: "1 while a program's recent positive rate is outside the band around its baseline."}, []string{"program"})
	if reg != nil {
		reg.MustRegister(g)
	}
	return g
}

// DriftWatch configures WatchDrift. Zero values take the defaults.
type DriftWatch struct {
	Config DriftConfig
	// Interval between checks. Default: 30s.
	Interval time.Duration
	// Programs maps each program to check to its positive label.
	Programs func() map[string]string
	Gauge    *prometheus.GaugeVec
	Logger   *slog.Logger
	// OnCheck, if set, receives every check.
	OnCheck func(program string, d Drift)
}

// WatchDrift checks every program's drift each interval until ctx ends,
// setting the gauge and logging when a program starts or stops drifting:
// the signal that it is time to add examples and recompile.
func WatchDrift(ctx context.Context, s *Store, w DriftWatch) {
	if w.Interval <= 0 {
		w.Interval = 30 * time.Second
	}
	if w.Logger == nil {
		w.Logger = slog.Default()
	}
	was := map[string]bool{}
	lifecycle.Every(ctx, w.Interval, func() { w.check(s, was) })
}

// check checks every program's drift once; was holds whether each was
// drifting at the last check.
func (w *DriftWatch) check(s *Store, was map[string]bool) {
	targets := w.Programs()
	names := make([]string, 0, len(targets))
	for n := range targets {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		d, err := CheckDrift(s, name, targets[name], time.Now(), w.Config)
		if err != nil {
			w.Logger.Warn("drift check", "program", name, "err", err)
			continue
		}
		if w.OnCheck != nil {
			w.OnCheck(name, d)
		}
		v := 0.0
		if d.Drifting {
			v = 1
		}
		if w.Gauge != nil {
			w.Gauge.WithLabelValues(name).Set(v)
		}
		switch {
		case d.Drifting && !was[name]:
			w.Logger.Warn("program drifting: its positive rate left the band around its baseline; add examples and recompile",
				"program", name, "positive", d.Positive, "recent", fmt.Sprintf("%.3f", d.Recent), "baseline", fmt.Sprintf("%.3f", d.Baseline))
		case !d.Drifting && was[name]:
			w.Logger.Info("program back within its drift band", "program", name)
		}
		was[name] = d.Drifting
	}
}
