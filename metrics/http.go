package metrics

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"
)

// QueryHandler answers GET /v1/metrics/query?metric=&program=&label=
// &reporter=&from=&to=&step=: times are RFC 3339 or Unix milliseconds
// (default: the last hour), step a duration (default: raw points).
func QueryHandler(store *Store) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v := r.URL.Query()
		q := Query{Metric: v.Get("metric"), Match: map[string]string{}}
		if q.Metric == "" {
			writeJSONError(w, http.StatusBadRequest, "metric is required")
			return
		}
		for _, l := range []string{"program", "label", "reporter"} {
			if s := v.Get(l); s != "" {
				q.Match[l] = s
			}
		}
		var err error
		if q.From, err = parseTime(v.Get("from"), time.Now().Add(-time.Hour)); err != nil {
			writeJSONError(w, http.StatusBadRequest, "from: "+err.Error())
			return
		}
		if q.To, err = parseTime(v.Get("to"), time.Now()); err != nil {
			writeJSONError(w, http.StatusBadRequest, "to: "+err.Error())
			return
		}
		if s := v.Get("step"); s != "" {
			if q.Step, err = time.ParseDuration(s); err != nil || q.Step <= 0 {
				writeJSONError(w, http.StatusBadRequest, fmt.Sprintf("step %q: want a positive duration", s))
				return
			}
		}
		series, err := store.Query(q)
		if err != nil {
			writeJSONError(w, http.StatusInternalServerError, err.Error())
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"metric": q.Metric, "from": q.From.UTC(), "to": q.To.UTC(), "step": q.Step.String(), "series": series})
	})
}

func parseTime(s string, def time.Time) (time.Time, error) {
	if s == "" {
		return def, nil
	}
	if ms, err := strconv.ParseInt(s, 10, 64); err == nil {
		return time.UnixMilli(ms), nil
	}
	return time.Parse(time.RFC3339, s)
}

func writeJSONError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(map[string]string{"error": msg})
}

//go:embed dashboard.html
var dashboard []byte

// MountDashboard serves on mux the dashboard (GET /) and every API its page
// reads: the query API and the patterns from store, the fleet, and
// GET /v1/programs from programs, the one part each server knows itself
// (paw serve its specs, a standalone processor the programs it runs).
// published, if set, gives the fleet view the IDs programs should run.
func MountDashboard(mux *http.ServeMux, store *Store, fleet *Fleet, published func() map[string]string, programs http.Handler) {
	mux.Handle("GET /{$}", DashboardHandler())
	mux.Handle("GET /v1/metrics/query", QueryHandler(store))
	mux.Handle("GET /v1/patterns", PatternsHandler(store.Patterns()))
	mux.Handle("GET /v1/fleet", FleetHandler(fleet, published))
	mux.Handle("GET /v1/programs", programs)
}

// DashboardHandler serves the dashboard: one chart per program of its
// decisions by label over time, the program IDs each reporter runs, and
// the programs' compile-time test metrics where the server has them. The
// page reads /v1/metrics/query, /v1/fleet and /v1/programs, passing on the
// access_token of its own URL.
func DashboardHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Content-Security-Policy", "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'")
		w.Write(dashboard)
	})
}
