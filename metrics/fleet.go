package metrics

import (
	"encoding/json"
	"net/http"
	"sort"
	"sync"
	"time"
)

// Fleet is what a metrics store's owner knows of the processors and
// plugins that report to it: which program IDs each runs, and when it last
// reported. Safe for concurrent use.
type Fleet struct {
	mu      sync.Mutex
	members map[string]*Member
	now     func() time.Time
}

// Member is one processor or plugin instance in the fleet view.
type Member struct {
	Name     string            `json:"name"`
	Kind     string            `json:"kind"`
	Programs map[string]string `json:"programs"`
	LastSeen time.Time         `json:"last_seen"`
	Interval float64           `json:"interval_seconds"`
	// Stale: no report for three intervals.
	Stale bool `json:"stale"`
	// Current: every program it runs has the ID the sidecar publishes,
	// how a rollout is watched.
	Current bool `json:"current"`
}

// maxMembers bounds the fleet view; reporter names come from the network.
const maxMembers = 10_000

// Seen records a report. A new reporter beyond maxMembers replaces the one
// heard from least recently.
func (f *Fleet) Seen(r *Report) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.members[r.Reporter]; !ok && len(f.members) >= maxMembers {
		var oldest *Member
		for _, m := range f.members {
			if oldest == nil || m.LastSeen.Before(oldest.LastSeen) {
				oldest = m
			}
		}
		delete(f.members, oldest.Name)
	}
	f.members[r.Reporter] = &Member{Name: r.Reporter, Kind: r.Kind, Programs: r.Programs, LastSeen: f.clock().UTC(), Interval: r.IntervalSeconds}
}

// List returns the members, sorted by name; published maps each program
// to the ID it should run (nil: every member is current).
func (f *Fleet) List(published map[string]string) []Member {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]Member, 0, len(f.members))
	for _, r := range f.members {
		c := *r
		interval := time.Duration(c.Interval * float64(time.Second))
		if interval <= 0 {
			interval = 5 * time.Second
		}
		c.Stale = f.clock().Sub(c.LastSeen) > 3*interval
		c.Current = true
		for name, id := range c.Programs {
			if published != nil && published[name] != id {
				c.Current = false
			}
		}
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// SetClock replaces time.Now, for tests.
func (f *Fleet) SetClock(now func() time.Time) { f.now = now }

// NewFleet returns an empty fleet.
func NewFleet() *Fleet { return &Fleet{members: map[string]*Member{}} }

func (f *Fleet) clock() time.Time {
	if f.now != nil {
		return f.now()
	}
	return time.Now()
}

// FleetHandler serves GET /v1/fleet.
func FleetHandler(f *Fleet, published func() map[string]string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var pub map[string]string
		if published != nil {
			pub = published()
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(f.List(pub))
	})
}
