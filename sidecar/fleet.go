package sidecar

import (
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pawlogs/paw/metrics"
)

// reportHandler stores a pushed report. Refused reports are counted by
// reason in paw_sidecar_reports_refused_total.
func reportHandler(cfg Config, store *metrics.Store, f *metrics.Fleet, b *builder, refused *prometheus.CounterVec) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		refuse := func(code int, reason, msg string) {
			refused.WithLabelValues(reason).Inc()
			writeError(w, code, APIError{Error: msg})
		}
		var rep metrics.Report
		dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, cfg.MaxBodyBytes))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&rep); err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				refuse(http.StatusRequestEntityTooLarge, "too_large", "report too large")
				return
			}
			refuse(http.StatusBadRequest, "invalid", "report: "+err.Error())
			return
		}
		if err := rep.Validate(time.Now()); err != nil {
			refuse(http.StatusUnprocessableEntity, "invalid", "report: "+err.Error())
			return
		}
		if err := store.AddReport(&rep); err != nil {
			if errors.Is(err, metrics.ErrSeriesLimit) {
				refuse(http.StatusUnprocessableEntity, "series_limit", "report: "+err.Error())
				return
			}
			refuse(http.StatusInternalServerError, "store", err.Error())
			return
		}
		f.Seen(&rep)
		if n := b.takeAnswers(rep.Answers); n > 0 {
			refused.WithLabelValues("answer").Add(float64(n))
		}
		w.WriteHeader(http.StatusNoContent)
	}
}

// newRefusedCounter counts refused reports by reason.
func newRefusedCounter(reg prometheus.Registerer) *prometheus.CounterVec {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "paw_sidecar_reports_refused_total", Help: "Reports refused, by reason (invalid, too_large, series_limit, store), and answers in reports refused (answer: an unknown program or label)."}, []string{"reason"})
	reg.MustRegister(c)
	for _, r := range []string{"invalid", "too_large", "series_limit", "store", "answer"} {
		c.WithLabelValues(r)
	}
	return c
}
