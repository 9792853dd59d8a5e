package compiler

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/pawlogs/paw/runtime"
)

func TestSuggestPicksUncertainDiverseLines(t *testing.T) {
	texts := [][]byte{
		[]byte("ERROR disk 1 failed"),         // sure
		[]byte("WARN retry 7 of request 9"),   // unsure
		[]byte("WARN retry 8 of request 10"),  // unsure, same template as the line above
		[]byte("INFO user \"bob\" logged in"), // a little unsure
		[]byte("DEBUG cache warm"),            // sure
	}
	decisions := []runtime.Decision{
		{Label: "error", Probs: []float32{0.98, 0.02}},
		{Label: "ok", Probs: []float32{0.49, 0.51}},
		{Label: "error", Probs: []float32{0.50, 0.50}},
		{Label: "ok", Probs: []float32{0.30, 0.70}},
		{Label: "ok", Probs: []float32{0.01, 0.99}},
	}
	tests := []struct {
		n    int
		want []string
	}{
		{1, []string{"WARN retry 8 of request 10"}},
		{2, []string{"WARN retry 8 of request 10", "INFO user \"bob\" logged in"}},
		{10, []string{"WARN retry 8 of request 10", "INFO user \"bob\" logged in", "ERROR disk 1 failed", "DEBUG cache warm"}},
	}
	for _, tc := range tests {
		ss := Suggest(texts, decisions, []string{"error", "ok"}, 4096, tc.n)
		var got []string
		for _, s := range ss {
			got = append(got, s.Text)
		}
		if strings.Join(got, "|") != strings.Join(tc.want, "|") {
			t.Errorf("n=%d: %q, want %q", tc.n, got, tc.want)
		}
	}
	// The snippet is YAML a spec accepts as examples.
	var buf bytes.Buffer
	if err := WriteSuggestions(&buf, "errs", []string{"error", "ok"}, Suggest(texts, decisions, []string{"error", "ok"}, 4096, 10)); err != nil {
		t.Fatal(err)
	}
	spec, err := ParseSpec("s.yaml", append([]byte("name: errs\ndescription: d\nlabels: [error, ok]\n"), buf.Bytes()...), LoadOptions{NoFiles: true})
	if err != nil {
		t.Fatalf("%v\n%s", err, buf.String())
	}
	if len(spec.Examples) != 4 || spec.Examples[1].Text != "INFO user \"bob\" logged in" {
		t.Fatalf("examples %+v", spec.Examples)
	}
}

// TestSuggestPicksEachKind: two kinds of one pattern ("critical" and
// "normal" temperature lines) are each suggested, the least sure line of
// each.
func TestSuggestPicksEachKind(t *testing.T) {
	var texts [][]byte
	var decisions []runtime.Decision
	for i, state := range []string{"critical", "normal", "critical", "normal"} {
		texts = append(texts, fmt.Appendf(nil, "%d gige7 gige temperature %d 1 %s", 480000+i, 1146100000+i, state))
		p := []float32{0.6, 0.55, 0.5, 0.45}[i] // the least sure: 2, then 1 and 3
		decisions = append(decisions, runtime.Decision{Label: "ok", Probs: []float32{p, 1 - p}})
	}
	var got []string
	for _, s := range Suggest(texts, decisions, []string{"error", "ok"}, 4096, 10) {
		got = append(got, s.Text)
	}
	if want := []string{string(texts[2]), string(texts[1])}; !slices.Equal(got, want) {
		t.Fatalf("suggested %q, want %q", got, want)
	}
}
