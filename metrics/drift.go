package metrics

import (
	"fmt"
	"math"
	"time"
)

// DriftConfig says when a program's positive rate has drifted: its rate
// over the last Window differs from its rate over the Baseline before it
// by more than Band (absolute), with at least MinRecords in the window.
type DriftConfig struct {
	Window     time.Duration // default 5m
	Baseline   time.Duration // default 1h
	Band       float64       // default 0.15
	MinRecords float64       // default 100
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
