package teacher_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pawlogs/paw/teacher"
	"github.com/pawlogs/paw/teacher/teachertest"
)

var task = teacher.Task{Description: "Is this a real error?", Labels: []string{"error", "ok"},
	Examples: []teacher.Example{{Text: "disk failed", Label: "error"}, {Text: "all good", Label: "ok"}}}

func newClient(t *testing.T, baseURL string, b *teacher.Budget, cacheDir string) *teacher.Client {
	t.Helper()
	c, err := teacher.New(teacher.Config{Endpoint: teacher.Endpoint{BaseURL: baseURL, Model: teachertest.Model}, CacheDir: cacheDir, Budget: b, Timeout: 5 * time.Second}, task)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestLabel(t *testing.T) {
	tests := []struct {
		name     string
		rule     func(string) string
		line     string
		want     teacher.Answer
		requests int
	}{
		{"asked", teachertest.ErrorRule, "db connection failed", teacher.Answer{Label: "error", How: teacher.Asked}, 1},
		{"case and punctuation", func(string) string { return "**OK**." }, "x", teacher.Answer{Label: "ok", How: teacher.Asked}, 1},
		{"re-asked, then dropped", func(string) string { return "maybe" }, "x", teacher.Answer{How: teacher.Dropped}, 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ts := teachertest.NewServer(t, tc.rule)
			c := newClient(t, ts.BaseURL(), teacher.NewBudget(10, 0, false), t.TempDir())
			a, err := c.Label(context.Background(), tc.line)
			if err != nil {
				t.Fatal(err)
			}
			if a.Label != tc.want.Label || a.How != tc.want.How || len(a.Key) != 64 || ts.Requests() != tc.requests {
				t.Fatalf("answer %+v after %d requests, want %+v after %d", a, ts.Requests(), tc.want, tc.requests)
			}
		})
	}
}

func TestCacheAndRetries(t *testing.T) {
	ts := teachertest.NewServer(t, teachertest.ErrorRule)
	dir := t.TempDir()
	ts.FailNext(2)
	c := newClient(t, ts.BaseURL(), teacher.NewBudget(10, 0, false), dir)
	a, err := c.Label(context.Background(), "request refused")
	if err != nil || a.How != teacher.Asked || a.Label != "error" || ts.Requests() != 3 {
		t.Fatalf("%+v, %v after %d requests: want the third attempt to answer", a, err, ts.Requests())
	}
	// A new client with the same cache folder asks nothing.
	again := newClient(t, ts.BaseURL(), teacher.NewBudget(10, 0, false), dir)
	b, err := again.Label(context.Background(), "request refused")
	if err != nil || b.How != teacher.Cached || b.Label != "error" || b.Key != a.Key || ts.Requests() != 3 {
		t.Fatalf("%+v, %v after %d requests: want a cache hit", b, err, ts.Requests())
	}
}

func TestBudgetIsNeverExceeded(t *testing.T) {
	ts := teachertest.NewServer(t, teachertest.ErrorRule)
	c := newClient(t, ts.BaseURL(), teacher.NewBudget(7, 0, false), "")
	var wg sync.WaitGroup
	var mu sync.Mutex
	how := map[teacher.How]int{}
	for i := 0; i < 40; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a, err := c.Label(context.Background(), strings.Repeat("x", i+1))
			if err != nil {
				t.Error(err)
			}
			mu.Lock()
			how[a.How]++
			mu.Unlock()
		}()
	}
	wg.Wait()
	if ts.Requests() != 7 || how[teacher.Asked] != 7 || how[teacher.OverBudget] != 33 {
		t.Fatalf("%d requests, answers %v: want 7 asked and 33 over budget", ts.Requests(), how)
	}
}

func TestRateWithoutWaitingRefuses(t *testing.T) {
	ts := teachertest.NewServer(t, teachertest.ErrorRule)
	// Two calls per second, bucket of two: a burst of five gets two.
	c := newClient(t, ts.BaseURL(), teacher.NewBudget(100, 2, false), "")
	asked := 0
	for i := 0; i < 5; i++ {
		a, err := c.Label(context.Background(), strings.Repeat("y", i+1))
		if err != nil {
			t.Fatal(err)
		}
		if a.How == teacher.Asked {
			asked++
		}
	}
	if asked != 2 {
		t.Fatalf("%d of a burst of 5 asked at 2 calls/s, want 2", asked)
	}
}

func TestUnreachableNamesTheEndpoint(t *testing.T) {
	c, err := teacher.New(teacher.Config{Endpoint: teacher.Endpoint{BaseURL: "http://127.0.0.1:1/v1", Model: "m"}, Budget: teacher.NewBudget(5, 0, false), Retries: -1}, task)
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Label(context.Background(), "x")
	if err == nil || !strings.Contains(err.Error(), "http://127.0.0.1:1/v1") || !strings.Contains(err.Error(), "unreachable") {
		t.Fatalf("error %v: want one naming the endpoint", err)
	}
}

func TestNewRefusesBadConfig(t *testing.T) {
	b := teacher.NewBudget(1, 0, false)
	tests := []struct {
		name string
		cfg  teacher.Config
		want string
	}{
		{"url", teacher.Config{Endpoint: teacher.Endpoint{BaseURL: "localhost:11434", Model: "m"}, Budget: b}, "base_url"},
		{"model", teacher.Config{Endpoint: teacher.Endpoint{BaseURL: "http://h/v1"}, Budget: b}, "model"},
		{"budget", teacher.Config{Endpoint: teacher.Endpoint{BaseURL: "http://h/v1", Model: "m"}}, "budget"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := teacher.New(tc.cfg, task); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
		})
	}
}

// TestLabelEach: every line is asked about once and handed over, at most
// concurrency at a time; done returning false or a cancelled context stop
// the asking.
func TestLabelEach(t *testing.T) {
	lines := make([]string, 40)
	for i := range lines {
		lines[i] = fmt.Sprintf("job %d failed", i)
		if i%2 == 1 {
			lines[i] = fmt.Sprintf("job %d done", i)
		}
	}
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name        string
		ctx         context.Context
		concurrency int
		stopAfter   int // done returns false after this many answers; 0: never
		asked       int
	}{
		{"all, 4 at a time", context.Background(), 4, 0, 40},
		{"all, one at a time", context.Background(), 1, 0, 40},
		{"stopped by done", context.Background(), 1, 3, 3},
		{"cancelled", cancelled, 4, 0, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var inFlight, most atomic.Int32
			ts := teachertest.NewServer(t, func(line string) string {
				n := inFlight.Add(1)
				for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
				}
				time.Sleep(time.Millisecond) // let calls overlap
				inFlight.Add(-1)
				return teachertest.ErrorRule(line)
			})
			c := newClient(t, ts.BaseURL(), teacher.NewBudget(1000, 0, false), "")
			seen := map[int]bool{}
			c.LabelEach(tc.ctx, lines, tc.concurrency, func(i int, a teacher.Answer, err error) bool {
				if err != nil || a.Label != teachertest.ErrorRule(lines[i]) || seen[i] {
					t.Errorf("line %d: %+v %v (seen %v)", i, a, err, seen[i])
				}
				seen[i] = true
				return tc.stopAfter == 0 || len(seen) < tc.stopAfter
			})
			if len(seen) != tc.asked || ts.Requests() != tc.asked || int(most.Load()) > tc.concurrency {
				t.Fatalf("%d answers, %d requests, %d at once; want %d, at most %d at once", len(seen), ts.Requests(), most.Load(), tc.asked, tc.concurrency)
			}
		})
	}
}
