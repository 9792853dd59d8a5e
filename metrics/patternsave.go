package metrics

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"time"

	"github.com/pawlogs/paw/internal/bounded"
)

// A pattern board is kept across restarts as one JSON snapshot
// (patterns.json beside the store's data): without it, every pattern
// would come back "new" after a restart, and a day of counts would be
// lost. The snapshot is read with the board's own bounds, so a damaged or
// hostile file cannot make the board bigger than reports could.

// maxSnapshotBytes bounds a snapshot file: the board's worst case (about
// 46 MB in memory) takes less as JSON of its counts, plus the templates.
const maxSnapshotBytes = 64 << 20

type boardSnapshot struct {
	Version  int                        `json:"version"`
	Evicted  int64                      `json:"evicted"`
	Programs map[string]programSnapshot `json:"programs"`
}

type programSnapshot struct {
	First    time.Time         `json:"first"`
	Patterns []patternSnapshot `json:"patterns"`
}

type patternSnapshot struct {
	ReportPattern
	FirstSeen time.Time  `json:"first_seen"`
	LastSeen  time.Time  `json:"last_seen"`
	Buckets   [][2]int64 `json:"buckets"` // [Unix minute, count], oldest first
}

// WriteSnapshot writes the board as JSON, programs and patterns in sorted
// order, so the same board always gives the same bytes.
func (b *PatternBoard) WriteSnapshot(w io.Writer) error {
	b.mu.Lock()
	snap := boardSnapshot{Version: 1, Evicted: b.evicted, Programs: map[string]programSnapshot{}}
	for _, name := range slices.Sorted(maps.Keys(b.programs)) {
		pp := b.programs[name]
		ps := programSnapshot{First: pp.first.UTC()}
		for _, id := range slices.Sorted(maps.Keys(pp.byID)) {
			p := pp.byID[id]
			s := patternSnapshot{ReportPattern: p.ReportPattern, FirstSeen: p.firstSeen.UTC(), LastSeen: p.lastSeen.UTC(), Buckets: make([][2]int64, len(p.buckets))}
			for i, c := range p.buckets {
				s.Buckets[i] = [2]int64{c.minute, c.n}
			}
			ps.Patterns = append(ps.Patterns, s)
		}
		snap.Programs[name] = ps
	}
	b.mu.Unlock()
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return enc.Encode(snap)
}

// ReadSnapshot replaces the board's patterns with a snapshot's. It refuses
// a snapshot over maxSnapshotBytes, one with a pattern a report could not
// carry, unsorted or negative counts, or more patterns or buckets than the
// board keeps; the board is then left as it was.
func (b *PatternBoard) ReadSnapshot(r io.Reader) error {
	data, err := bounded.ReadAll(r, maxSnapshotBytes, 0)
	if errors.Is(err, bounded.ErrTooLarge) {
		return fmt.Errorf("pattern snapshot over %d bytes", maxSnapshotBytes)
	}
	if err != nil {
		return err
	}
	var snap boardSnapshot
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&snap); err != nil {
		return fmt.Errorf("pattern snapshot: %w", err)
	}
	if snap.Version != 1 {
		return fmt.Errorf("pattern snapshot version %d: want 1", snap.Version)
	}
	programs := map[string]*programPatterns{}
	n := 0
	for name, ps := range snap.Programs {
		pp := &programPatterns{first: ps.First, byID: map[string]*boardPattern{}}
		for _, s := range ps.Patterns {
			if err := s.check(name); err != nil {
				return fmt.Errorf("pattern snapshot: program %.40q: %w", name, err)
			}
			if _, dup := pp.byID[s.ID]; dup {
				return fmt.Errorf("pattern snapshot: program %.40q: pattern %q twice", name, s.ID)
			}
			if n++; n > maxBoardPatterns {
				return fmt.Errorf("pattern snapshot: over %d patterns", maxBoardPatterns)
			}
			p := &boardPattern{ReportPattern: s.ReportPattern, firstSeen: s.FirstSeen, lastSeen: s.LastSeen, buckets: make([]patternCount, len(s.Buckets))}
			for i, c := range s.Buckets {
				p.buckets[i] = patternCount{minute: c[0], n: c[1]}
			}
			pp.byID[s.ID] = p
		}
		programs[name] = pp
	}
	b.mu.Lock()
	b.programs, b.n, b.evicted = programs, n, max(snap.Evicted, 0)
	b.mu.Unlock()
	return nil
}

// check is what Add would have made of reports: a valid pattern of the
// program it is filed under, with at most a day of sorted, non-negative
// minute counts.
func (s *patternSnapshot) check(program string) error {
	if err := s.Validate(); err != nil {
		return err
	}
	switch {
	case s.Program != program:
		return fmt.Errorf("pattern %q is %.40q's", s.ID, s.Program)
	case len(s.Buckets) > maxPatternBuckets:
		return fmt.Errorf("pattern %q: %d minute buckets, want at most %d", s.ID, len(s.Buckets), maxPatternBuckets)
	}
	if !slices.IsSortedFunc(s.Buckets, func(a, b [2]int64) int { return cmp.Compare(a[0], b[0]) }) {
		return fmt.Errorf("pattern %q: minute buckets out of order", s.ID)
	}
	for i, c := range s.Buckets {
		if c[1] < 0 || i > 0 && c[0] == s.Buckets[i-1][0] {
			return fmt.Errorf("pattern %q: bucket %d: a negative count or a minute twice", s.ID, i)
		}
	}
	return nil
}
