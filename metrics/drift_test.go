package metrics

import (
	"testing"
	"time"
)

func TestCheckDrift(t *testing.T) {
	now := t0.Add(2 * time.Hour)
	tests := []struct {
		name          string
		recentPos     int64 // of 100 decisions per minute in the last 5 minutes
		baselinePos   int64 // of 100 per minute before
		perMinute     int64
		wantDrifting  bool
		wantRecentMin float64
	}{
		{"stable", 10, 10, 100, false, 0.1},
		{"positive rate jumps", 60, 10, 100, true, 0.6},
		{"positive rate drops", 0, 40, 100, true, 0},
		{"within the band", 20, 10, 100, false, 0.2},
		{"too few records to tell", 60, 10, 10, false, 0.6},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := openAt(t, "", 0)
			s.now = func() time.Time { return now }
			defer s.Close()
			var pts []Point
			for m := 65; m >= 1; m-- { // oldest first, as reports arrive
				at := now.Add(-time.Duration(m) * time.Minute)
				pos := tc.baselinePos
				if m <= 5 { // inside the 5-minute window (its start included)
					pos = tc.recentPos
				}
				pos = pos * tc.perMinute / 100
				pts = append(pts, decisions("errs", "error", float64(pos), at), decisions("errs", "ok", float64(tc.perMinute-pos), at))
			}
			if err := s.Add(pts); err != nil {
				t.Fatal(err)
			}
			d, err := CheckDrift(s, "errs", "error", now, DriftConfig{})
			if err != nil {
				t.Fatal(err)
			}
			if d.Drifting != tc.wantDrifting || d.Recent < tc.wantRecentMin-1e-9 || d.Recent > tc.wantRecentMin+1e-9 {
				t.Fatalf("%+v, want drifting %v and recent rate %v", d, tc.wantDrifting, tc.wantRecentMin)
			}
		})
	}
}
