package metrics

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"reflect"
	"sync"
	"testing"
	"time"
)

var t0 = time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)

func openAt(t *testing.T, dir string, retention time.Duration) *Store {
	t.Helper()
	s, err := Open(dir, retention)
	if err != nil {
		t.Fatal(err)
	}
	s.now = func() time.Time { return t0.Add(time.Hour) }
	return s
}

func decisions(program, label string, v float64, at time.Time) Point {
	return Point{Metric: MetricDecisions, Labels: map[string]string{"program": program, "label": label, "reporter": "r1"}, Value: v, Time: at}
}

func TestStoreQueryReopenRetention(t *testing.T) {
	dir := t.TempDir()
	s := openAt(t, dir, 24*time.Hour)
	var pts []Point
	for i := 0; i < 60; i++ {
		at := t0.Add(time.Duration(i) * 10 * time.Second)
		pts = append(pts, decisions("errs", "error", 1, at), decisions("errs", "ok", 3, at), decisions("other", "x", 100, at))
	}
	pts = append(pts, decisions("errs", "error", 1000, t0.Add(-48*time.Hour))) // past retention
	if err := s.Add(pts); err != nil {
		t.Fatal(err)
	}
	q := Query{Metric: MetricDecisions, Match: map[string]string{"program": "errs"}, From: t0.Add(-72 * time.Hour), To: t0.Add(10 * time.Minute), Step: time.Minute}
	check := func(s *Store, when string) {
		t.Helper()
		got, err := s.Query(q)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 2 || got[0].Labels["label"] != "error" || got[1].Labels["label"] != "ok" {
			t.Fatalf("%s: series %+v", when, got)
		}
		// 6 points of 10s per minute bucket; the old point is gone.
		for _, sr := range got {
			per := map[string]float64{"error": 6, "ok": 18}[sr.Labels["label"]]
			if len(sr.Samples) != 10 {
				t.Fatalf("%s: %s has %d buckets, want 10: %+v", when, sr.Labels["label"], len(sr.Samples), sr.Samples)
			}
			for i, smp := range sr.Samples {
				if smp.V != per || smp.T != t0.Add(time.Duration(i)*time.Minute).UnixMilli() {
					t.Fatalf("%s: bucket %d = %+v, want %v at %v", when, i, smp, per, t0.Add(time.Duration(i)*time.Minute))
				}
			}
		}
	}
	check(s, "before closing")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2 := openAt(t, dir, 24*time.Hour)
	defer s2.Close()
	check(s2, "after reopening")
}

func TestReporterPushesDeltasAndKeepsFailedCounts(t *testing.T) {
	var mu sync.Mutex
	var got []Report
	fail := true
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if r.Header.Get("Authorization") != "Bearer tok" {
			http.Error(w, "token", 401)
			return
		}
		if fail { // the first push fails: its counts must arrive later
			fail = false
			http.Error(w, "down", 503)
			return
		}
		var rep Report
		if err := json.NewDecoder(r.Body).Decode(&rep); err != nil {
			t.Error(err)
		}
		got = append(got, rep)
	}))
	defer srv.Close()
	var tmu sync.Mutex
	total := int64(0)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		RunReporter(ctx, ReporterConfig{URL: srv.URL, Token: "tok", Name: "p1", Kind: "processor", Interval: 20 * time.Millisecond,
			Programs: func() map[string]string { return map[string]string{"errs": "id1"} },
			Totals: func() Totals {
				tmu.Lock()
				defer tmu.Unlock()
				total += 10
				return Totals{Records: total, Decisions: map[string]map[string]int64{"errs": {"error": total / 10}}}
			}})
	}()
	time.Sleep(200 * time.Millisecond)
	cancel()
	<-done
	mu.Lock()
	defer mu.Unlock()
	var records, errs int64
	for _, r := range got {
		if err := r.Validate(time.Now()); err != nil {
			t.Fatal(err)
		}
		records += r.Records
		errs += r.Decisions["errs"]["error"]
	}
	if records != total || errs != total/10 || !reflect.DeepEqual(got[0].Programs, map[string]string{"errs": "id1"}) {
		t.Fatalf("sidecar received %d records and %d errors over %d reports; the reporter counted %d", records, errs, len(got), total)
	}
}
