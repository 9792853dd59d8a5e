package sidecar

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pawlogs/paw/metrics"
)

// chromium runs headless Chromium with the flags this sandbox needs and
// returns its output.
func chromium(t *testing.T, args ...string) string {
	t.Helper()
	bin, err := exec.LookPath("chromium")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("chromium is missing: .ci/run installs it")
		}
		t.Skip("chromium is not installed (apt-get install chromium; .ci/run installs it)")
	}
	base := []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
		"--disable-sync", "--no-first-run", "--user-data-dir=" + t.TempDir(), "--virtual-time-budget=10000"}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, append(base, args...)...).Output()
	if err != nil {
		t.Fatalf("chromium %v: %v", args, err)
	}
	return string(out)
}

// TestDashboardInChromium feeds known decisions, renders the dashboard in
// a real headless Chromium, checks each chart's series against what was
// fed, and saves a screenshot (build/test-artifacts/dashboard.png).
func TestDashboardInChromium(t *testing.T) {
	spec := specYAML("errs", 1) + "tests:\n  - {label: error, text: \"ERROR request 77 failed with exception timeout\"}\n  - {label: ok, text: \"INFO request 78 completed in 3ms\"}\n"
	s := startServer(t, "tok", map[string]string{"errs.yaml": spec})
	id := s.waitFor("published", func(ps map[string]Program) bool { return ps["errs.yaml"].Status == "ok" })["errs.yaml"].ID
	now := time.Now().UTC()
	want := map[string]map[string]float64{"errs": {}, "noise": {}}
	for i := 0; i < 30; i++ {
		at := now.Add(-time.Duration(30-i) * time.Minute)
		dec := map[string]map[string]int64{
			"errs":  {"error": int64(5 + i%7), "ok": int64(100 + 3*i)},
			"noise": {"noise": int64(40 - i), "signal": int64(60 + i)},
		}
		for p, byLabel := range dec {
			for l, n := range byLabel {
				want[p][l] += float64(n)
			}
		}
		// Two patterns all along, and one that appears in the last five
		// minutes: the dashboard must flag it new.
		pats := []metrics.ReportPattern{
			{Program: "errs", ID: "a1", Template: "ERROR request <*> failed with exception <*>", Count: dec["errs"]["error"], Label: "error", Share: 1, Novelty: 0.1},
			{Program: "errs", ID: "b2", Template: "INFO request <*> completed in <*>", Count: dec["errs"]["ok"], Label: "ok", Share: 0.98, Novelty: 0.05},
		}
		if i >= 25 {
			pats = append(pats, metrics.ReportPattern{Program: "errs", ID: "c3", Template: "WARN disk <*> is <*>% full", Count: 4, Label: "ok", Share: 0.75, Novelty: 0.9})
		}
		if code, body := s.report(metrics.Report{Reporter: "proc-a", Kind: "processor", Time: at, IntervalSeconds: 60,
			Programs: map[string]string{"errs": id, "noise": "0123456789abcdef"}, Decisions: dec, Records: 1,
			Escalations: map[string]int64{"errs": 2}, Novel: map[string]int64{"errs": 3}, Patterns: pats}); code != 204 {
			t.Fatalf("%d %s", code, body)
		}
	}
	// A program named like an Object.prototype member, reported once a
	// minute ago: its chart must exist and show its single point.
	want["constructor"] = map[string]float64{"hit": 7, "miss": 3}
	if code, body := s.report(metrics.Report{Reporter: "proc-b", Kind: "processor", Time: now.Add(-time.Minute), IntervalSeconds: 60,
		Programs: map[string]string{"constructor": "fedcba9876543210"}, Decisions: map[string]map[string]int64{"constructor": {"hit": 7, "miss": 3}}}); code != 204 {
		t.Fatalf("%d %s", code, body)
	}
	url := fmt.Sprintf("http://%s/?access_token=tok&range_minutes=60", s.addr)
	dom := chromium(t, "--dump-dom", url)
	if !strings.Contains(dom, `data-rendered="true"`) {
		t.Fatalf("the dashboard did not render:\n%s", dom)
	}
	lines := regexp.MustCompile(`<path class="line"[^>]*data-label="([^"]+)"[^>]*data-points="(\d+)"[^>]*data-total="([\d.]+)"`)
	marks := regexp.MustCompile(`<circle class="pt" cx="([\d.]+)" cy="([\d.]+)" r="3" fill="[^"]+" data-label="([^"]+)"`)
	totals := regexp.MustCompile(`<tr class="total" data-label="([^"]+)" data-total="([\d.]+)"`)
	points := map[string]int{"errs": 30, "noise": 30, "constructor": 1}
	for program, labels := range want {
		i := strings.Index(dom, `data-program="`+program+`"`)
		if i < 0 {
			t.Fatalf("no chart for %s", program)
		}
		section := dom[i:]
		if j := strings.Index(section[1:], `<section`); j >= 0 {
			section = section[:j+1]
		}
		got := map[string]float64{}
		for _, m := range lines.FindAllStringSubmatch(section, -1) {
			total, _ := strconv.ParseFloat(m[3], 64)
			if n, _ := strconv.Atoi(m[2]); n < points[program]-1 {
				t.Errorf("%s/%s: %d points in the line, want %d", program, m[1], n, points[program])
			}
			got[m[1]] = total
		}
		// What is drawn: one visible mark per point, inside the plot area
		// (x 48..888, y 10..192 of the 900x220 view box).
		drawn := map[string]int{}
		for _, m := range marks.FindAllStringSubmatch(section, -1) {
			x, _ := strconv.ParseFloat(m[1], 64)
			y, _ := strconv.ParseFloat(m[2], 64)
			if x < 48 || x > 888 || y < 10 || y > 192 {
				t.Errorf("%s/%s: mark at (%v, %v) is outside the plot", program, m[3], x, y)
			}
			drawn[m[3]]++
		}
		shown := map[string]float64{}
		for _, m := range totals.FindAllStringSubmatch(section, -1) {
			shown[m[1]], _ = strconv.ParseFloat(m[2], 64)
		}
		for label, total := range labels {
			if got[label] != total || shown[label] != total {
				t.Errorf("%s/%s: chart sums to %v and the table shows %v, fed %v", program, label, got[label], shown[label], total)
			}
			if n := drawn[label]; n < points[program]-1 || n > points[program] {
				t.Errorf("%s/%s: %d marks drawn, want %d", program, label, n, points[program])
			}
		}
	}
	// Rendered elements only: the page's own script mentions these words.
	if !strings.Contains(dom, `data-reporter="proc-a" data-program-id="`+id+`"`) || !strings.Contains(dom, `<span class="badge ok">current</span>`) ||
		!strings.Contains(dom, `<span class="badge old">older</span>`) || !strings.Contains(dom, `data-test-accuracy="1.000"`) {
		t.Error("the fleet rows or the compile metrics are missing")
	}
	var errsDecided float64
	for _, n := range want["errs"] {
		errsDecided += n
	}
	if rate := fmt.Sprintf(`data-escalation-rate="%.4f"`, 60/errsDecided); !strings.Contains(dom, rate) {
		t.Errorf("the escalation rate is missing or wrong: want %s", rate)
	}
	if rate := fmt.Sprintf(`data-novel-rate="%.4f"`, 90/errsDecided); !strings.Contains(dom, rate) {
		t.Errorf("the novel rate is missing or wrong: want %s", rate)
	}

	// The pattern table: largest first, the fed totals, only the late one
	// flagged new.
	rows := regexp.MustCompile(`<tr class="pattern" data-pattern-id="([^"]+)" data-label="([^"]+)" data-count="(\d+)" data-new="(true|false)">`).FindAllStringSubmatch(dom, -1)
	var gotRows []string
	for _, m := range rows {
		gotRows = append(gotRows, strings.Join(m[1:], " "))
	}
	wantRows := []string{fmt.Sprintf("b2 ok %d false", int64(want["errs"]["ok"])), fmt.Sprintf("a1 error %d false", int64(want["errs"]["error"])), "c3 ok 20 true"}
	if !slices.Equal(gotRows, wantRows) {
		t.Errorf("pattern rows %q, want %q", gotRows, wantRows)
	}
	if !strings.Contains(dom, "WARN disk &lt;*&gt; is &lt;*&gt;% full") {
		t.Error("the new pattern's template is not shown")
	}

	shot, err := filepath.Abs("../build/test-artifacts/dashboard.png")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(shot), 0o755); err != nil {
		t.Fatal(err)
	}
	chromium(t, "--screenshot="+shot, "--window-size=860,1000", "--hide-scrollbars", url)
	if fi, err := os.Stat(shot); err != nil || fi.Size() < 10_000 {
		t.Fatalf("screenshot %s: %v", shot, err)
	}
	t.Logf("screenshot: %s", shot)
}
