// Package dataplane holds what the Kafka processor and the Fluent Bit
// plugin must do alike: the dead-letter reasons they attach and the way
// they report a failed delivery.
package dataplane

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/segmentio/kafka-go"

	"github.com/pawlogs/paw/metrics"
	"github.com/pawlogs/paw/runtime"
)

// Dead-letter reasons, attached to every record set aside.
const (
	ReasonTooLarge     = "too_large"
	ReasonNotJSON      = "not_json"
	ReasonFieldMissing = "field_missing"
	ReasonNotString    = "not_string"
	ReasonInvalidUTF8  = "invalid_utf8"
	ReasonRejected     = "rejected"
)

// ErrTooLarge marks a record over a data plane's size limit.
var ErrTooLarge = runtime.ErrTooLarge

// Reason classifies why a record could not be processed.
func Reason(err error) string {
	switch {
	case errors.Is(err, ErrTooLarge):
		return ReasonTooLarge
	case errors.Is(err, runtime.ErrNotJSON):
		return ReasonNotJSON
	case errors.Is(err, runtime.ErrFieldMissing):
		return ReasonFieldMissing
	case errors.Is(err, runtime.ErrNotString):
		return ReasonNotString
	case errors.Is(err, runtime.ErrInvalidUTF8):
		return ReasonInvalidUTF8
	default:
		return ReasonRejected
	}
}

// DeliveryError summarises a failed Kafka write: kafka-go's WriteErrors
// repeats the cause once per message (a 79 KB log line for 976 records),
// so it becomes a count and the first cause.
func DeliveryError(err error, sent int) error {
	var we kafka.WriteErrors
	if !errors.As(err, &we) {
		return fmt.Errorf("kafka: %w", err)
	}
	var first error
	for _, e := range we {
		if e != nil {
			first = e
			break
		}
	}
	return &deliveryError{failed: we.Count(), sent: sent, first: first}
}

type deliveryError struct {
	failed, sent int
	first        error
}

func (e *deliveryError) Error() string {
	return fmt.Sprintf("kafka: %d of %d records not delivered; first error: %v", e.failed, e.sent, e.first)
}

func (e *deliveryError) Unwrap() error { return e.first }

// TeacherAnswers passes a pipeline's teacher answers on with its metrics
// reports (metrics.ReporterConfig.Answers), for the sidecar's answer logs.
func TeacherAnswers(pl *runtime.Pipeline) func() []metrics.ReportAnswer {
	return func() []metrics.ReportAnswer {
		as := pl.TakeTeacherAnswers()
		out := make([]metrics.ReportAnswer, len(as))
		for i, a := range as {
			out[i] = metrics.ReportAnswer{Program: a.Program, ProgramID: a.ProgramID, Line: a.Line, Label: a.Label}
		}
		return out
	}
}

// Patterns passes a pipeline's sampled log patterns on with its metrics
// reports (metrics.ReporterConfig.Patterns), for the dashboard. It starts
// the sampling, so call it before records flow.
func Patterns(pl *runtime.Pipeline) func() ([]metrics.ReportPattern, int64) {
	pl.CollectPatterns()
	return func() ([]metrics.ReportPattern, int64) {
		ps, dropped := pl.TakePatterns()
		out := make([]metrics.ReportPattern, len(ps))
		for i, p := range ps {
			out[i] = metrics.ReportPattern{Program: p.Program, ID: strconv.FormatUint(p.ID, 16), Template: p.Template,
				Count: p.Count, Label: p.Label, Share: p.Share, Novelty: p.Novelty}
		}
		return out, dropped
	}
}

// Totals are a data plane's counts for its metrics reports: the
// pipeline's decisions, escalations, novel records and inference times,
// with the data plane's own records, dead letters and retries; batches is
// how many batches (chunks) the records came in.
func Totals(pl *runtime.Pipeline, records, deadLetters, retries, batches int64) metrics.Totals {
	t := metrics.Totals{Decisions: pl.Decisions(), Escalations: pl.Escalations(), Novel: pl.Novel(), Records: records, DeadLetters: deadLetters, Retries: retries}
	if batches > 0 {
		t.MeanBatch = float64(records) / float64(batches)
	}
	bc := pl.Stats()
	t.InferenceMeanMs, t.InferenceP99Ms = float64(bc.InferenceMean)/1e6, float64(bc.InferenceP99)/1e6
	return t
}
