// Package metrics keeps paw's decision metrics: an embedded time-series
// store (tstorage) owned by one process, the reports processors and
// plugins push to the sidecar, and the reporter that pushes them.
package metrics

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/nakabonne/tstorage"

	"github.com/pawlogs/paw/internal/atomicfile"
)

// Point is one value of one series at one time.
type Point struct {
	Metric string
	Labels map[string]string
	Value  float64
	Time   time.Time
}

// Sample is a series value at a time (Unix milliseconds).
type Sample struct {
	T int64   `json:"t"`
	V float64 `json:"v"`
}

// Series is a query result: one series' samples, summed per step.
type Series struct {
	Metric  string            `json:"metric"`
	Labels  map[string]string `json:"labels"`
	Samples []Sample          `json:"samples"`
}

// Query selects series of Metric whose labels include Match, between From
// and To, summed into Step buckets (0: raw points).
type Query struct {
	Metric   string
	Match    map[string]string
	From, To time.Time
	Step     time.Duration
}

// Store is the embedded store. tstorage finds a series only by its exact
// labels, so the store keeps an index of the series it has seen
// (series.json beside the data) to answer label-matching queries.
type Store struct {
	ts        tstorage.Storage
	dir       string
	retention time.Duration
	now       func() time.Time

	mu     sync.Mutex
	series map[string]seriesKey
}

type seriesKey struct {
	Metric string            `json:"metric"`
	Labels map[string]string `json:"labels"`
}

func (k seriesKey) id() string {
	names := make([]string, 0, len(k.Labels))
	for n := range k.Labels {
		names = append(names, n)
	}
	sort.Strings(names)
	var b strings.Builder
	b.WriteString(k.Metric)
	for _, n := range names {
		fmt.Fprintf(&b, "\x00%s=%s", n, k.Labels[n])
	}
	return b.String()
}

func (k seriesKey) labels() []tstorage.Label {
	out := make([]tstorage.Label, 0, len(k.Labels))
	for n, v := range k.Labels {
		out = append(out, tstorage.Label{Name: n, Value: v})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// DefaultRetention keeps two weeks, tstorage's default.
const DefaultRetention = 14 * 24 * time.Hour

// Open opens (or creates) a store in dir; "" keeps it in memory. Points
// older than retention are neither stored nor returned.
func Open(dir string, retention time.Duration) (*Store, error) {
	if retention <= 0 {
		retention = DefaultRetention
	}
	opts := []tstorage.Option{
		tstorage.WithTimestampPrecision(tstorage.Milliseconds),
		tstorage.WithRetention(retention),
		tstorage.WithPartitionDuration(time.Hour),
		tstorage.WithLogger(nopLogger{}),
	}
	s := &Store{dir: dir, retention: retention, now: time.Now, series: map[string]seriesKey{}}
	if dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("metrics store: %w", err)
		}
		opts = append(opts, tstorage.WithDataPath(filepath.Join(dir, "data")))
		if err := s.loadIndex(); err != nil {
			return nil, err
		}
	}
	ts, err := tstorage.NewStorage(opts...)
	if err != nil {
		return nil, fmt.Errorf("metrics store %s: %w", dir, err)
	}
	s.ts = ts
	return s, nil
}

type nopLogger struct{}

func (nopLogger) Printf(string, ...interface{}) {}

func (s *Store) indexPath() string { return filepath.Join(s.dir, "series.json") }

func (s *Store) loadIndex() error {
	data, err := os.ReadFile(s.indexPath())
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("metrics store: %w", err)
	}
	var keys []seriesKey
	if err := json.Unmarshal(data, &keys); err != nil {
		return fmt.Errorf("metrics store %s: %w", s.indexPath(), err)
	}
	for _, k := range keys {
		s.series[k.id()] = k
	}
	return nil
}

// Add stores points; points older than the retention are dropped.
func (s *Store) Add(points []Point) error {
	cutoff := s.now().Add(-s.retention)
	rows := make([]tstorage.Row, 0, len(points))
	newSeries := false
	s.mu.Lock()
	for _, p := range points {
		if p.Time.Before(cutoff) {
			continue
		}
		k := seriesKey{Metric: p.Metric, Labels: p.Labels}
		if _, ok := s.series[k.id()]; !ok {
			s.series[k.id()] = k
			newSeries = true
		}
		rows = append(rows, tstorage.Row{Metric: p.Metric, Labels: k.labels(), DataPoint: tstorage.DataPoint{Value: p.Value, Timestamp: p.Time.UnixMilli()}})
	}
	var err error
	if newSeries && s.dir != "" {
		err = s.saveIndexLocked()
	}
	s.mu.Unlock()
	if err != nil {
		return err
	}
	if len(rows) == 0 {
		return nil
	}
	// tstorage files a row older than its head partition's first row into
	// an older partition, or drops it; in time order, a batch is whole.
	sort.SliceStable(rows, func(i, j int) bool { return rows[i].Timestamp < rows[j].Timestamp })
	if err := s.ts.InsertRows(rows); err != nil {
		return fmt.Errorf("metrics store: %w", err)
	}
	return nil
}

func (s *Store) saveIndexLocked() error {
	keys := make([]seriesKey, 0, len(s.series))
	for _, k := range s.series {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i].id() < keys[j].id() })
	data, err := json.Marshal(keys)
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(s.indexPath(), data)
}

// Query returns the matching series, sorted by labels.
func (s *Store) Query(q Query) ([]Series, error) {
	if q.To.IsZero() {
		q.To = s.now()
	}
	if cutoff := s.now().Add(-s.retention); q.From.Before(cutoff) {
		q.From = cutoff
	}
	s.mu.Lock()
	var keys []seriesKey
	for _, k := range s.series {
		if k.Metric == q.Metric && matches(k.Labels, q.Match) {
			keys = append(keys, k)
		}
	}
	s.mu.Unlock()
	sort.Slice(keys, func(i, j int) bool { return keys[i].id() < keys[j].id() })
	out := make([]Series, 0, len(keys))
	for _, k := range keys {
		pts, err := s.ts.Select(k.Metric, k.labels(), q.From.UnixMilli(), q.To.UnixMilli()+1)
		if err != nil && !errors.Is(err, tstorage.ErrNoDataPoints) {
			return nil, fmt.Errorf("metrics query %s: %w", q.Metric, err)
		}
		out = append(out, Series{Metric: k.Metric, Labels: k.Labels, Samples: bucket(pts, q.From, q.Step)})
	}
	return out, nil
}

func matches(labels, want map[string]string) bool {
	for n, v := range want {
		if labels[n] != v {
			return false
		}
	}
	return true
}

// bucket sums points into steps aligned on from; each sample is stamped
// with its step's start.
func bucket(pts []*tstorage.DataPoint, from time.Time, step time.Duration) []Sample {
	sort.Slice(pts, func(i, j int) bool { return pts[i].Timestamp < pts[j].Timestamp })
	out := []Sample{}
	if step <= 0 {
		for _, p := range pts {
			out = append(out, Sample{T: p.Timestamp, V: p.Value})
		}
		return out
	}
	base, w := from.UnixMilli(), step.Milliseconds()
	for _, p := range pts {
		t := base + (p.Timestamp-base)/w*w
		if n := len(out); n > 0 && out[n-1].T == t {
			out[n-1].V += p.Value
		} else {
			out = append(out, Sample{T: t, V: p.Value})
		}
	}
	return out
}

// Close flushes the store to disk.
func (s *Store) Close() error {
	if err := s.ts.Close(); err != nil {
		return fmt.Errorf("metrics store: %w", err)
	}
	return nil
}
