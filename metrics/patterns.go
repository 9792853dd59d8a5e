package metrics

import (
	"cmp"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"
)

// ReportPattern is one log pattern a reporter saw for one program since its
// previous report, from the records it sampled (runtime.PatternCount).
type ReportPattern struct {
	Program  string `json:"program"`
	ID       string `json:"id"`
	Template string `json:"template"`
	// Count estimates the records behind the sample.
	Count   int64   `json:"count"`
	Label   string  `json:"label"`
	Share   float64 `json:"share"`
	Novelty float64 `json:"novelty"`
}

// Pattern limits: what one report carries, and what a PatternBoard keeps.
const (
	MaxReportPatterns     = 500
	maxPatternTemplate    = 1024
	maxBoardPatterns      = 2000
	patternBucket         = time.Minute
	maxPatternBuckets     = 24 * 60 // a day of minutes per pattern
	newPatternGracePeriod = 2 * time.Minute
)

// Validate reports a pattern a sidecar would refuse.
func (p *ReportPattern) Validate() error {
	switch {
	case !validName(p.Program) || !validName(p.Label):
		return fmt.Errorf("program %.40q, label %.40q: want names of 1 to %d characters", p.Program, p.Label, maxNameLen)
	case p.ID == "" || len(p.ID) > 32:
		return fmt.Errorf("id %.40q: want 1 to 32 characters", p.ID)
	case p.Template == "" || len(p.Template) > maxPatternTemplate:
		return fmt.Errorf("template of %d bytes: want 1 to %d", len(p.Template), maxPatternTemplate)
	case p.Count < 0 || !(p.Share >= 0 && p.Share <= 1) || !(p.Novelty >= 0 && p.Novelty <= 1):
		return fmt.Errorf("count %d, share %v, novelty %v: want a count >= 0 and shares in [0, 1]", p.Count, p.Share, p.Novelty)
	}
	return nil
}

// PatternBoard keeps the log patterns reporters send, per program, in
// minute buckets over the last day: the dashboard's pattern view. It holds
// at most maxBoardPatterns patterns (the least recently reported is
// dropped first) of at most a day of buckets each, about 46 MB at worst.
// A Store on disk keeps it across restarts (patterns.json: SavePatterns,
// Close); one in memory starts empty, the patterns come back with the
// next reports and none is flagged new for their first minutes. Safe for
// concurrent use.
type PatternBoard struct {
	mu       sync.Mutex
	programs map[string]*programPatterns
	n        int
	evicted  int64 // patterns dropped to stay within maxBoardPatterns
}

type programPatterns struct {
	first time.Time // the program's first pattern report here
	byID  map[string]*boardPattern
}

type boardPattern struct {
	ReportPattern
	firstSeen, lastSeen time.Time      // report times
	buckets             []patternCount // by minute, oldest first
}

type patternCount struct {
	minute int64 // Unix minutes
	n      int64
}

// NewPatternBoard returns an empty board.
func NewPatternBoard() *PatternBoard {
	return &PatternBoard{programs: map[string]*programPatterns{}}
}

// Add files a report's patterns at the report's time.
func (b *PatternBoard) Add(r *Report) {
	if len(r.Patterns) == 0 {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	// Report times, not arrival: a reporter that catches up after an
	// outage files its patterns when they were seen.
	at := r.Time
	minute := at.Unix() / 60
	for _, rp := range r.Patterns {
		pp := b.programs[rp.Program]
		if pp == nil {
			pp = &programPatterns{first: at, byID: map[string]*boardPattern{}}
			b.programs[rp.Program] = pp
		}
		p := pp.byID[rp.ID]
		if p == nil {
			if b.n >= maxBoardPatterns {
				b.evictLocked()
			}
			p = &boardPattern{firstSeen: at}
			pp.byID[rp.ID] = p
			b.n++
		}
		if at.Before(pp.first) {
			pp.first = at
		}
		if at.Before(p.firstSeen) {
			p.firstSeen = at
		}
		if !at.Before(p.lastSeen) { // the latest template, label and novelty
			p.ReportPattern, p.lastSeen = rp, at
		}
		// Usually the last minute or a new one; a late report goes in its own.
		i, found := slices.BinarySearchFunc(p.buckets, minute, func(c patternCount, m int64) int { return cmp.Compare(c.minute, m) })
		if found {
			p.buckets[i].n += rp.Count
		} else {
			p.buckets = slices.Insert(p.buckets, i, patternCount{minute, rp.Count})
		}
		if over := len(p.buckets) - maxPatternBuckets; over > 0 {
			p.buckets = slices.Delete(p.buckets, 0, over)
		}
	}
}

func (b *PatternBoard) evictLocked() {
	var oldest *boardPattern
	var in *programPatterns
	for _, pp := range b.programs {
		for _, p := range pp.byID {
			if oldest == nil || p.lastSeen.Before(oldest.lastSeen) {
				oldest, in = p, pp
			}
		}
	}
	delete(in.byID, oldest.ID)
	b.n--
	b.evicted++
}

// Evicted is how many patterns the board dropped to stay within its bound.
func (b *PatternBoard) Evicted() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.evicted
}

// WindowPattern is a pattern's count over a window.
type WindowPattern struct {
	ID       string  `json:"id"`
	Template string  `json:"template"`
	Count    int64   `json:"count"`
	Label    string  `json:"label"`
	Share    float64 `json:"share"`
	Novelty  float64 `json:"novelty"`
	// New: first reported within the window, and not in the first minutes
	// this board heard of the program (when every pattern is new to it).
	New       bool      `json:"new"`
	FirstSeen time.Time `json:"first_seen"`
}

// Top returns each program's limit largest patterns over [from, to], or
// only program's when it is not "".
func (b *PatternBoard) Top(from, to time.Time, limit int, program string) map[string][]WindowPattern {
	b.mu.Lock()
	defer b.mu.Unlock()
	lo, hi := from.Unix()/60, to.Unix()/60
	out := map[string][]WindowPattern{}
	for name, pp := range b.programs {
		if program != "" && name != program {
			continue
		}
		var ps []WindowPattern
		for _, p := range pp.byID {
			var n int64
			for _, c := range p.buckets {
				if c.minute >= lo && c.minute <= hi {
					n += c.n
				}
			}
			if n == 0 {
				continue
			}
			isNew := !p.firstSeen.Before(from) && p.firstSeen.After(pp.first.Add(newPatternGracePeriod))
			ps = append(ps, WindowPattern{ID: p.ID, Template: p.Template, Count: n, Label: p.Label, Share: p.Share, Novelty: p.Novelty, New: isNew, FirstSeen: p.firstSeen.UTC()})
		}
		slices.SortFunc(ps, func(a, b WindowPattern) int { return cmp.Or(cmp.Compare(b.Count, a.Count), cmp.Compare(a.ID, b.ID)) })
		if len(ps) > limit {
			ps = ps[:limit]
		}
		if len(ps) > 0 {
			out[name] = ps
		}
	}
	return out
}

// PatternsHandler answers GET /v1/patterns?program=&from=&to=&limit=:
// each program's largest patterns over the window (default: every
// program, the last hour, 10 per program, at most 100), and how many
// patterns the board has evicted.
func PatternsHandler(b *PatternBoard) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v := r.URL.Query()
		from, err := parseTime(v.Get("from"), time.Now().Add(-time.Hour))
		if err != nil {
			writeJSONError(w, http.StatusBadRequest, "from: "+err.Error())
			return
		}
		to, err := parseTime(v.Get("to"), time.Now())
		if err != nil {
			writeJSONError(w, http.StatusBadRequest, "to: "+err.Error())
			return
		}
		limit := 10
		if s := v.Get("limit"); s != "" {
			if limit, err = strconv.Atoi(s); err != nil || limit < 1 || limit > 100 {
				writeJSONError(w, http.StatusBadRequest, fmt.Sprintf("limit %q: want 1 to 100", s))
				return
			}
		}
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetEscapeHTML(false) // templates read <*>, not \u003c*\u003e
		enc.Encode(map[string]any{"from": from.UTC(), "to": to.UTC(), "programs": b.Top(from, to, limit, v.Get("program")), "evicted": b.Evicted()})
	})
}
