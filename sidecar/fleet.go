package sidecar

import (
	"encoding/json"
	"errors"
	"net/http"

	"github.com/pawlogs/paw/metrics"
)

// reportHandler stores a pushed report.
func reportHandler(cfg Config, store *metrics.Store, f *metrics.Fleet) http.HandlerFunc {
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
		f.Seen(&rep)
		w.WriteHeader(http.StatusNoContent)
	}
}
