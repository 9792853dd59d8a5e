package evaluate

import (
	"math"
	"testing"
)

func TestReport(t *testing.T) {
	c := NewConfusion([]string{"error", "ok", "never"})
	pairs := [][2]string{{"error", "error"}, {"error", "error"}, {"error", "ok"}, {"ok", "ok"}, {"ok", "error"}, {"ok", "ok"}}
	for _, p := range pairs {
		if err := c.Add(p[0], p[1]); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Add("error", "unknown"); err == nil {
		t.Fatal("a label outside the set was accepted")
	}
	r := c.Report()
	near := func(got, want float64) bool { return math.Abs(got-want) < 1e-9 }
	tests := []struct {
		name      string
		got, want float64
	}{
		{"accuracy", r.Accuracy, 4.0 / 6},
		{"error precision", r.PerLabel["error"].Precision, 2.0 / 3},
		{"error recall", r.PerLabel["error"].Recall, 2.0 / 3},
		{"ok f1", r.PerLabel["ok"].F1, 2.0 / 3},
		{"never f1", r.PerLabel["never"].F1, 0},
		{"macro f1", r.MacroF1, (2.0/3 + 2.0/3 + 0) / 3},
	}
	for _, tc := range tests {
		if !near(tc.got, tc.want) {
			t.Errorf("%s = %v, want %v", tc.name, tc.got, tc.want)
		}
	}
	if r.N != 6 || r.Confusion["ok"]["error"] != 1 || r.PerLabel["error"].Support != 3 {
		t.Errorf("counts wrong: %+v", r)
	}
}
