package runtime

import (
	"math"
	"sync/atomic"
	"time"
)

// Latencies is a fine-grained log-bucket histogram (buckets about 5%
// wide, 1µs to hours) for quantiles: Prometheus histogram buckets are too
// coarse for a p99 worth reporting. Safe for concurrent use; the zero value
// is ready.
type Latencies struct {
	counts [latencyBuckets]atomic.Uint64
	max    atomic.Int64
	sum    atomic.Int64
	n      atomic.Int64
}

const (
	latencyBuckets = 400
	latencyBase    = float64(time.Microsecond)
	latencyGrowth  = 1.05
)

// Observe records one duration.
func (l *Latencies) Observe(d time.Duration) {
	i := 0
	if float64(d) > latencyBase {
		i = int(math.Log(float64(d)/latencyBase)/math.Log(latencyGrowth)) + 1
	}
	if i >= latencyBuckets {
		i = latencyBuckets - 1
	}
	l.counts[i].Add(1)
	l.sum.Add(int64(d))
	l.n.Add(1)
	for {
		cur := l.max.Load()
		if int64(d) <= cur || l.max.CompareAndSwap(cur, int64(d)) {
			break
		}
	}
}

// Mean is the average of the recorded durations.
func (l *Latencies) Mean() time.Duration {
	n := l.n.Load()
	if n == 0 {
		return 0
	}
	return time.Duration(l.sum.Load() / n)
}

// Quantile returns the upper bound of the bucket holding quantile q.
func (l *Latencies) Quantile(q float64) time.Duration {
	var total uint64
	for i := range l.counts {
		total += l.counts[i].Load()
	}
	if total == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(total)))
	var seen uint64
	for i := range l.counts {
		seen += l.counts[i].Load()
		if seen >= rank {
			upper := time.Duration(latencyBase * math.Pow(latencyGrowth, float64(i)))
			return min(upper, time.Duration(l.max.Load()))
		}
	}
	return time.Duration(l.max.Load())
}
