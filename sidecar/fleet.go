package sidecar

import (
	"encoding/json"
	"errors"
	"net/http"
	"sort"
	"sync"
	"time"

	"github.com/pawlogs/paw/metrics"
)

// fleet is what the sidecar knows of the processors and plugins that
// report to it: which program IDs each runs, and when it last reported.
type fleet struct {
	mu        sync.Mutex
	reporters map[string]*Reporter
	now       func() time.Time
}

// Reporter is one processor or plugin instance in the fleet view.
type Reporter struct {
	Name     string            `json:"name"`
	Kind     string            `json:"kind"`
	Programs map[string]string `json:"programs"`
	LastSeen time.Time         `json:"last_seen"`
	Interval float64           `json:"interval_seconds"`
	// Stale: no report for three intervals.
	Stale bool `json:"stale"`
	// Current: every program it runs has the ID the sidecar publishes,
	// how a rollout is watched.
	Current bool `json:"current"`
}

func (f *fleet) seen(r *metrics.Report) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reporters[r.Reporter] = &Reporter{Name: r.Reporter, Kind: r.Kind, Programs: r.Programs, LastSeen: f.now().UTC(), Interval: r.IntervalSeconds}
}

func (f *fleet) list(published map[string]string) []Reporter {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]Reporter, 0, len(f.reporters))
	for _, r := range f.reporters {
		c := *r
		interval := time.Duration(c.Interval * float64(time.Second))
		if interval <= 0 {
			interval = 5 * time.Second
		}
		c.Stale = f.now().Sub(c.LastSeen) > 3*interval
		c.Current = true
		for name, id := range c.Programs {
			if published[name] != id {
				c.Current = false
			}
		}
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// reportHandler stores a pushed report.
func reportHandler(cfg Config, store *metrics.Store, f *fleet) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var rep metrics.Report
		dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, cfg.MaxBodyBytes))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&rep); err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				writeError(w, http.StatusRequestEntityTooLarge, APIError{Error: "report too large"})
				return
			}
			writeError(w, http.StatusBadRequest, APIError{Error: "report: " + err.Error()})
			return
		}
		if err := rep.Validate(); err != nil {
			writeError(w, http.StatusUnprocessableEntity, APIError{Error: "report: " + err.Error()})
			return
		}
		if err := store.Add(rep.Points()); err != nil {
			writeError(w, http.StatusInternalServerError, APIError{Error: err.Error()})
			return
		}
		f.seen(&rep)
		w.WriteHeader(http.StatusNoContent)
	}
}
