// Package metrics keeps paw's decision metrics: an embedded time-series
// store (tstorage) owned by one process, the reports processors and
// plugins push to the sidecar, and the reporter that pushes them.
package metrics

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/nakabonne/tstorage"

	"github.com/pawlogs/paw/internal/atomicfile"
	"github.com/pawlogs/paw/internal/lifecycle"
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
// (series.jsonl beside the data) to answer label-matching queries.
type Store struct {
	ts        tstorage.Storage
	patterns  *PatternBoard
	dir       string
	retention time.Duration
	now       func() time.Time

	// MaxSeries bounds the series the store keeps, and
	// MaxSeriesPerReporter those of one reporter; a report that would pass
	// either is refused whole with ErrSeriesLimit. Defaults:
	// DefaultMaxSeries, DefaultMaxSeriesPerReporter.
	MaxSeries            int
	MaxSeriesPerReporter int
	// Quarantined lists what Open moved aside because tstorage could not
	// read it (a partition truncated by a full disk, say), for the caller
	// to log.
	Quarantined []string

	mu          sync.Mutex
	series      map[string]seriesKey // by id
	perReporter map[string]int
	index       *os.File // series.jsonl, appended to as series appear
}

// Series limits: each series costs an index line and a tstorage series.
const (
	DefaultMaxSeries            = 100_000
	DefaultMaxSeriesPerReporter = 10_000
)

// ErrSeriesLimit is returned by Add for a report with more new series than
// the store may keep.
var ErrSeriesLimit = errors.New("series limit reached")

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
	s := &Store{dir: dir, retention: retention, now: time.Now, patterns: NewPatternBoard(), series: map[string]seriesKey{}, perReporter: map[string]int{},
		MaxSeries: DefaultMaxSeries, MaxSeriesPerReporter: DefaultMaxSeriesPerReporter}
	if dir == "" {
		ts, err := tstorage.NewStorage(opts...)
		if err != nil {
			return nil, fmt.Errorf("metrics store: %w", err)
		}
		s.ts = ts
		return s, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("metrics store: %w", err)
	}
	opts = append(opts, tstorage.WithDataPath(s.dataPath()))
	if err := s.loadIndex(); err != nil {
		return nil, err
	}
	ts, err := tstorage.NewStorage(opts...)
	// What tstorage cannot read is moved aside, a step at a time, so that
	// one damaged file never keeps the sidecar from starting.
	for step := 0; err != nil && step < len(quarantineSteps); step++ {
		moved, qerr := quarantineSteps[step](s)
		if qerr != nil {
			s.index.Close()
			return nil, fmt.Errorf("metrics store %s: %w (and quarantine failed: %v)", dir, err, qerr)
		}
		if len(moved) > 0 {
			s.Quarantined = append(s.Quarantined, moved...)
			ts, err = tstorage.NewStorage(opts...)
		}
	}
	if err != nil {
		s.index.Close()
		return nil, fmt.Errorf("metrics store %s: %w", dir, err)
	}
	s.ts = ts
	if err := s.loadPatterns(); err != nil {
		s.ts.Close()
		s.index.Close()
		return nil, err
	}
	return s, nil
}

func (s *Store) dataPath() string { return filepath.Join(s.dir, "data") }

func (s *Store) patternsPath() string { return filepath.Join(s.dir, "patterns.json") }

// loadPatterns reads the pattern board's snapshot, if any; one the board
// refuses is moved aside (Quarantined) and the board starts empty.
func (s *Store) loadPatterns() error {
	f, err := os.Open(s.patternsPath())
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("metrics store: %w", err)
	}
	rerr := s.patterns.ReadSnapshot(f)
	f.Close()
	if rerr == nil {
		return nil
	}
	moved, err := s.quarantine(s.patternsPath())
	if err != nil {
		return fmt.Errorf("metrics store: %v (and quarantine failed: %w)", rerr, err)
	}
	s.Quarantined = append(s.Quarantined, moved)
	return nil
}

// SavePatternsEvery saves the pattern board every interval until ctx
// ends, so that a crash loses one interval of patterns at most; a failed
// save is logged, and the next one tries again.
func (s *Store) SavePatternsEvery(ctx context.Context, interval time.Duration, log *slog.Logger) {
	if s.dir == "" {
		return
	}
	lifecycle.Every(ctx, interval, func() {
		if err := s.SavePatterns(); err != nil {
			log.Warn("patterns not saved", "err", err)
		}
	})
}

// SavePatterns writes the pattern board's snapshot (atomically) for the
// next Open; a store in memory has nowhere to keep it. Close saves it too.
func (s *Store) SavePatterns() error {
	if s.dir == "" {
		return nil
	}
	var buf bytes.Buffer
	if err := s.patterns.WriteSnapshot(&buf); err != nil {
		return fmt.Errorf("metrics store: patterns: %w", err)
	}
	if err := atomicfile.WriteFile(s.patternsPath(), buf.Bytes()); err != nil {
		return fmt.Errorf("metrics store: patterns: %w", err)
	}
	return nil
}

// quarantineSteps move ever more of the data aside: partitions whose
// metadata does not decode, then the write-ahead log, then everything.
var quarantineSteps = []func(s *Store) ([]string, error){
	func(s *Store) ([]string, error) {
		dirs, err := os.ReadDir(s.dataPath())
		if err != nil {
			return nil, err
		}
		var moved []string
		for _, d := range dirs {
			if !d.IsDir() || !strings.HasPrefix(d.Name(), "p-") {
				continue
			}
			meta, err := os.ReadFile(filepath.Join(s.dataPath(), d.Name(), "meta.json"))
			if err == nil && json.Valid(meta) {
				continue
			}
			m, err := s.quarantine(filepath.Join(s.dataPath(), d.Name()))
			if err != nil {
				return moved, err
			}
			moved = append(moved, m)
		}
		return moved, nil
	},
	func(s *Store) ([]string, error) { return s.quarantineIfExists(filepath.Join(s.dataPath(), "wal")) },
	func(s *Store) ([]string, error) { return s.quarantineIfExists(s.dataPath()) },
}

func (s *Store) quarantineIfExists(path string) ([]string, error) {
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	m, err := s.quarantine(path)
	if err != nil {
		return nil, err
	}
	return []string{m}, nil
}

// quarantine moves path under <dir>/quarantine, keeping it for a person to
// look at, and returns where it went.
func (s *Store) quarantine(path string) (string, error) {
	q := filepath.Join(s.dir, "quarantine")
	if err := os.MkdirAll(q, 0o755); err != nil {
		return "", err
	}
	dst := filepath.Join(q, fmt.Sprintf("%s-%d", filepath.Base(path), time.Now().UnixNano()))
	if err := os.Rename(path, dst); err != nil {
		return "", err
	}
	return dst, nil
}

type nopLogger struct{}

func (nopLogger) Printf(string, ...interface{}) {}

// The series index is series.jsonl: one JSON line per series, appended
// when it first appears (series.json, the whole index rewritten on every
// new series, is still read).
func (s *Store) indexPath() string   { return filepath.Join(s.dir, "series.jsonl") }
func (s *Store) legacyIndex() string { return filepath.Join(s.dir, "series.json") }

func (s *Store) loadIndex() error {
	if data, err := os.ReadFile(s.legacyIndex()); err == nil {
		var keys []seriesKey
		if json.Unmarshal(data, &keys) == nil {
			for _, k := range keys {
				s.remember(k)
			}
		}
	}
	f, err := os.OpenFile(s.indexPath(), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("metrics store: %w", err)
	}
	data, err := io.ReadAll(f)
	if err != nil {
		f.Close()
		return fmt.Errorf("metrics store %s: %w", s.indexPath(), err)
	}
	// A line torn by a crash or a full disk is dropped: its series' points
	// stay in tstorage, only label matching loses it.
	good := 0
	for len(data[good:]) > 0 {
		line := data[good:]
		end := bytes.IndexByte(line, '\n')
		if end < 0 {
			break
		}
		var k seriesKey
		if json.Unmarshal(line[:end], &k) == nil && k.Metric != "" {
			s.remember(k)
		}
		good += end + 1
	}
	if good < len(data) {
		if err := f.Truncate(int64(good)); err != nil {
			f.Close()
			return fmt.Errorf("metrics store %s: %w", s.indexPath(), err)
		}
	}
	if _, err := f.Seek(int64(good), io.SeekStart); err != nil {
		f.Close()
		return fmt.Errorf("metrics store %s: %w", s.indexPath(), err)
	}
	s.index = f
	return nil
}

// remember adds k to the in-memory index.
func (s *Store) remember(k seriesKey) {
	id := k.id()
	if _, ok := s.series[id]; ok {
		return
	}
	s.series[id] = k
	s.perReporter[k.Labels["reporter"]]++
}

// Add stores points; points older than the retention are dropped. It
// stores all of them or none: a report refused for its series, or for an
// index that cannot be written, can be sent again whole.
func (s *Store) Add(points []Point) error {
	cutoff := s.now().Add(-s.retention)
	rows := make([]tstorage.Row, 0, len(points))
	var fresh []seriesKey
	newPer := map[string]int{}
	s.mu.Lock()
	seen := map[string]bool{}
	for _, p := range points {
		if p.Time.Before(cutoff) {
			continue
		}
		k := seriesKey{Metric: p.Metric, Labels: p.Labels}
		if id := k.id(); s.series[id].Metric == "" && !seen[id] {
			seen[id] = true
			fresh = append(fresh, k)
			newPer[k.Labels["reporter"]]++
		}
		rows = append(rows, tstorage.Row{Metric: p.Metric, Labels: k.labels(), DataPoint: tstorage.DataPoint{Value: p.Value, Timestamp: p.Time.UnixMilli()}})
	}
	if err := s.admitLocked(fresh, newPer); err != nil {
		s.mu.Unlock()
		return err
	}
	s.mu.Unlock()
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

// admitLocked checks new series against the limits and appends them to the
// index (synced) before any point is stored.
func (s *Store) admitLocked(fresh []seriesKey, newPer map[string]int) error {
	if len(fresh) == 0 {
		return nil
	}
	if n := len(s.series) + len(fresh); n > s.MaxSeries {
		return fmt.Errorf("%w: %d new series would make %d, more than the store's %d", ErrSeriesLimit, len(fresh), n, s.MaxSeries)
	}
	for r, n := range newPer {
		if have := s.perReporter[r]; have+n > s.MaxSeriesPerReporter {
			return fmt.Errorf("%w: reporter %q has %d series and sends %d new, more than %d per reporter", ErrSeriesLimit, r, have, n, s.MaxSeriesPerReporter)
		}
	}
	if s.index != nil {
		var buf bytes.Buffer
		for _, k := range fresh {
			line, err := json.Marshal(k)
			if err != nil {
				return err
			}
			buf.Write(line)
			buf.WriteByte('\n')
		}
		if _, err := s.index.Write(buf.Bytes()); err != nil {
			return fmt.Errorf("metrics index: %w", err)
		}
		if err := s.index.Sync(); err != nil {
			return fmt.Errorf("metrics index: %w", err)
		}
	}
	for _, k := range fresh {
		s.remember(k)
	}
	return nil
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
	ids := make([]string, len(keys))
	for i, k := range keys {
		ids[i] = k.id()
	}
	sort.Sort(byID{keys, ids})
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

// byID sorts keys by their precomputed ids.
type byID struct {
	keys []seriesKey
	ids  []string
}

func (b byID) Len() int           { return len(b.keys) }
func (b byID) Less(i, j int) bool { return b.ids[i] < b.ids[j] }
func (b byID) Swap(i, j int) {
	b.keys[i], b.keys[j] = b.keys[j], b.keys[i]
	b.ids[i], b.ids[j] = b.ids[j], b.ids[i]
}

// Close flushes the store to disk, the pattern board included.
func (s *Store) Close() error {
	err := errors.Join(s.SavePatterns(), s.ts.Close())
	if s.index != nil {
		err = errors.Join(err, s.index.Close())
	}
	if err != nil {
		return fmt.Errorf("metrics store: %w", err)
	}
	return nil
}

// AddReport stores a report's points and files its patterns.
func (s *Store) AddReport(r *Report) error {
	if err := s.Add(r.Points()); err != nil {
		return err
	}
	s.patterns.Add(r)
	return nil
}

// Patterns is the store's pattern board.
func (s *Store) Patterns() *PatternBoard { return s.patterns }
