package teacher

import (
	"context"
	"errors"
	"sync"
	"time"
)

// ErrOverBudget is returned (wrapped) when a call is not allowed: the total
// is spent, or, for a budget that does not wait, the rate is.
var ErrOverBudget = errors.New("teacher budget spent")

// Budget bounds calls to a teacher: a total that is never exceeded and a
// rate in calls per second. Safe for concurrent use; clients may share one.
type Budget struct {
	max      int64
	perSec   float64
	wait     bool
	mu       sync.Mutex
	used     int64
	tokens   float64
	refilled time.Time
}

// NewBudget allows maxCalls calls in all (0: none) at perSecond (0: no rate
// limit). The rate is a token bucket holding up to one second of calls. With
// wait, a call beyond the rate waits for its turn (compile time: pace the
// labelling); without, it is refused (run time: records must not wait on
// the teacher, the local decision stands).
func NewBudget(maxCalls int, perSecond float64, wait bool) *Budget {
	return &Budget{max: int64(maxCalls), perSec: perSecond, wait: wait, tokens: max(1, perSecond), refilled: time.Now()}
}

// Used is the number of calls taken so far.
func (b *Budget) Used() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.used
}

// take reserves one call, waiting for the rate if the budget waits.
func (b *Budget) take(ctx context.Context) error {
	b.mu.Lock()
	if b.used >= b.max {
		b.mu.Unlock()
		return ErrOverBudget
	}
	var delay time.Duration
	if b.perSec > 0 {
		now := time.Now()
		b.tokens = min(max(1, b.perSec), b.tokens+now.Sub(b.refilled).Seconds()*b.perSec)
		b.refilled = now
		if b.tokens < 1 {
			if !b.wait {
				b.mu.Unlock()
				return ErrOverBudget
			}
			delay = time.Duration((1 - b.tokens) / b.perSec * float64(time.Second))
		}
		b.tokens-- // reserved now, even if it is only usable after delay
	}
	b.used++
	b.mu.Unlock()
	if delay > 0 {
		t := time.NewTimer(delay)
		defer t.Stop()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
	return nil
}
