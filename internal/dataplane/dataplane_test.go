package dataplane

import (
	"errors"
	"fmt"
	"strings"
	"syscall"
	"testing"

	"github.com/segmentio/kafka-go"

	"github.com/pawlogs/paw/runtime"
	"github.com/pawlogs/paw/runtime/runtimetest"
)

func TestReason(t *testing.T) {
	tests := []struct {
		err  error
		want string
	}{
		{fmt.Errorf("x: %w", ErrTooLarge), ReasonTooLarge},
		{runtime.ErrNotJSON, ReasonNotJSON},
		{fmt.Errorf("%w: log", runtime.ErrFieldMissing), ReasonFieldMissing},
		{runtime.ErrNotString, ReasonNotString},
		{runtime.ErrInvalidUTF8, ReasonInvalidUTF8},
		{errors.New("other"), ReasonRejected},
	}
	for _, tc := range tests {
		if got := Reason(tc.err); got != tc.want {
			t.Errorf("Reason(%v) = %s, want %s", tc.err, got, tc.want)
		}
	}
}

// 976 failed messages make one short line, not one cause per message.
func TestDeliveryErrorIsSummarised(t *testing.T) {
	we := make(kafka.WriteErrors, 976)
	for i := range we {
		we[i] = fmt.Errorf("dial tcp 127.0.0.1:9092: %w", syscall.ECONNREFUSED)
	}
	err := DeliveryError(we, 976)
	msg := err.Error()
	if len(msg) > 200 || !strings.Contains(msg, "976 of 976 records not delivered; first error: dial tcp 127.0.0.1:9092: connection refused") {
		t.Fatalf("%d bytes: %s", len(msg), msg)
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Error("the first cause is not unwrapped")
	}
	if got := DeliveryError(errors.New("boom"), 3).Error(); got != "kafka: boom" {
		t.Errorf("plain error: %s", got)
	}
}

func TestTotals(t *testing.T) {
	pl := runtimetest.Pipeline(t, "steps: []\n")
	tests := []struct {
		records, dead, retries, batches int64
		mean                            float64
	}{
		{0, 0, 0, 0, 0},
		{1000, 3, 2, 4, 250},
	}
	for _, tc := range tests {
		got := Totals(pl, tc.records, tc.dead, tc.retries, tc.batches)
		if got.Records != tc.records || got.DeadLetters != tc.dead || got.Retries != tc.retries || got.MeanBatch != tc.mean {
			t.Errorf("Totals(%+v) = %+v", tc, got)
		}
	}
}
