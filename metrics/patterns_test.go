package metrics

import (
	"fmt"
	"testing"
	"time"
)

func TestPendingPatterns(t *testing.T) {
	tests := []struct {
		name        string
		adds        [][]ReportPattern
		dropped     []int64
		wantCounts  []int64 // the reported patterns' counts, largest first
		wantDropped int64
		wantShare   float64 // of the first reported pattern
	}{
		{
			name: "merged by program and ID, shares weighed by counts",
			adds: [][]ReportPattern{
				{{Program: "p", ID: "1", Template: "a <*>", Label: "x", Count: 30, Share: 1}},
				{{Program: "p", ID: "1", Template: "a <*> b", Label: "x", Count: 10, Share: 0.6}, {Program: "q", ID: "1", Template: "a", Label: "x", Count: 5, Share: 1}},
			},
			dropped:    []int64{2, 3},
			wantCounts: []int64{40, 5}, wantDropped: 5, wantShare: 0.9,
		},
		{
			name: "an invalid pattern is counted, not sent",
			adds: [][]ReportPattern{{
				{Program: "p", ID: "1", Template: "", Label: "x", Count: 7},
				{Program: "p", ID: "2", Template: "b", Label: "x", Count: 1, Share: 1},
			}},
			dropped:    []int64{0},
			wantCounts: []int64{1}, wantDropped: 7, wantShare: 1,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var pp pendingPatterns
			for i, ps := range tc.adds {
				pp.add(ps, tc.dropped[i])
			}
			got, dropped := pp.report()
			var counts []int64
			for _, p := range got {
				counts = append(counts, p.Count)
			}
			if fmt.Sprint(counts) != fmt.Sprint(tc.wantCounts) || dropped != tc.wantDropped || got[0].Share != tc.wantShare {
				t.Fatalf("counts %v dropped %d share %v, want %v, %d, %v", counts, dropped, got[0].Share, tc.wantCounts, tc.wantDropped, tc.wantShare)
			}
		})
	}
	// Past MaxReportPatterns the smallest go into the dropped count, and
	// past four times that (an outage) new ones are not even kept.
	var pp pendingPatterns
	var ps []ReportPattern
	for i := range 5 * MaxReportPatterns {
		ps = append(ps, ReportPattern{Program: "p", ID: fmt.Sprint(i), Template: "t", Label: "x", Count: int64(i + 1)})
	}
	pp.add(ps, 0)
	got, dropped := pp.report()
	kept := int64(4 * MaxReportPatterns) // the first 2000 of counts 1..2000
	wantDropped := kept*(kept+1)/2 - (kept-MaxReportPatterns+1+kept)*MaxReportPatterns/2 + (5*MaxReportPatterns*(5*MaxReportPatterns+1)/2 - kept*(kept+1)/2)
	if len(got) != MaxReportPatterns || got[0].Count != kept || dropped != wantDropped {
		t.Fatalf("%d patterns, largest %d, dropped %d: want %d, %d, %d", len(got), got[0].Count, dropped, MaxReportPatterns, kept, wantDropped)
	}
}

func TestPatternBoard(t *testing.T) {
	b := NewPatternBoard()
	at := func(min int) time.Time { return t0.Add(time.Duration(min) * time.Minute) }
	report := func(min int, ps ...ReportPattern) {
		b.Add(&Report{Time: at(min), Patterns: ps})
	}
	p := func(id string, n int64) ReportPattern {
		return ReportPattern{Program: "errs", ID: id, Template: "t" + id, Label: "ok", Count: n, Share: 1}
	}
	for m := range 60 {
		report(m, p("old", 10))
	}
	report(50, p("late", 3))
	report(40, p("late", 2)) // out of order: filed in its own minute
	report(0, p("first", 1))
	tests := []struct {
		name     string
		from, to int
		want     string
	}{
		// "late" appeared 40 minutes after the program: new in any window
		// that starts before it; "first" came with the program.
		{"whole hour", 0, 59, "[old:600:false late:5:true first:1:false]"},
		{"last half hour", 30, 59, "[old:300:false late:5:true]"},
		{"after it", 45, 59, "[old:150:false late:3:false]"},
		{"before anything", -30, -1, "[]"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			for _, w := range b.Top(at(tc.from), at(tc.to), 10, "")["errs"] {
				got = append(got, fmt.Sprintf("%s:%d:%v", w.ID, w.Count, w.New))
			}
			if s := fmt.Sprint(got); s != tc.want {
				t.Fatalf("top %s, want %s", s, tc.want)
			}
		})
	}
	if other := b.Top(at(0), at(59), 10, "other"); len(other) != 0 {
		t.Fatalf("program=other gave %v", other)
	}
	// Bounded: a flood of distinct patterns evicts the least recently
	// reported, and a day of buckets is the most a pattern keeps.
	for i := range maxBoardPatterns + 10 {
		report(60+i%5, p(fmt.Sprint("flood", i), 1))
	}
	// 3 patterns before the flood, so 13 too many.
	if b.n != maxBoardPatterns || b.Evicted() != 13 {
		t.Fatalf("%d patterns kept, %d evicted: want %d and 13", b.n, b.Evicted(), maxBoardPatterns)
	}
	for m := range maxPatternBuckets + 100 {
		report(100+m, p("long", 1))
	}
	if n := len(b.programs["errs"].byID["long"].buckets); n != maxPatternBuckets {
		t.Fatalf("%d buckets, want %d", n, maxPatternBuckets)
	}
}
