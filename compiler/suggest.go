package compiler

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"sort"

	"github.com/pawlogs/paw/runtime"
	"github.com/pawlogs/paw/runtime/patterns"
)

// Suggestion is an unlabelled line worth labelling: the program is unsure
// of it.
type Suggestion struct {
	Text string
	// Label is the program's guess, to be corrected.
	Label string
	// Probs are the program's probabilities, in label order.
	Probs []float32
	// Uncertainty is 1 minus the margin between the two likeliest labels.
	Uncertainty float64
	Template    string
}

// Suggest picks at most n of the scored lines the program is least sure
// about, one per mined pattern (runtime/patterns) and kind of line within
// it, so the picks are diverse: labelling them teaches the program the
// most per example. Ties keep input order.
func Suggest(texts [][]byte, decisions []runtime.Decision, labels []string, maxBytes, n int) []Suggestion {
	miner := patterns.New(patterns.Config{MaxLineBytes: maxBytes})
	mined := make([]*patterns.Pattern, len(texts))
	for i, t := range texts {
		mined[i] = miner.Add(string(t))
	}
	order := make([]int, len(texts))
	unc := make([]float64, len(texts))
	for i := range texts {
		order[i] = i
		unc[i] = 1 - margin(decisions[i].Probs)
	}
	sort.SliceStable(order, func(a, b int) bool { return unc[order[a]] > unc[order[b]] })
	seen := map[string]bool{}
	var out []Suggestion
	for _, i := range order {
		if len(out) == n {
			break
		}
		key := miner.KindKey(mined[i], string(texts[i]))
		if seen[key] {
			continue
		}
		seen[key] = true
		out = append(out, Suggestion{Text: string(texts[i]), Label: decisions[i].Label, Probs: decisions[i].Probs, Uncertainty: unc[i], Template: mined[i].String()})
	}
	return out
}

// margin is the difference between the two largest probabilities.
func margin(p []float32) float64 {
	first, second := math.Inf(-1), math.Inf(-1)
	for _, v := range p {
		f := float64(v)
		switch {
		case f > first:
			first, second = f, first
		case f > second:
			second = f
		}
	}
	if math.IsInf(second, -1) {
		return 1
	}
	return first - second
}

// WriteSuggestions writes a YAML snippet of examples to paste into the
// spec after correcting the labels. Texts are JSON strings, which YAML
// reads as double-quoted scalars.
func WriteSuggestions(w io.Writer, program string, labels []string, ss []Suggestion) error {
	fmt.Fprintf(w, "# paw suggest: %d lines %s is least sure about, one per template.\n", len(ss), program)
	fmt.Fprintf(w, "# Check each label (one of %v), then add them to the spec's examples and recompile.\n", labels)
	fmt.Fprintln(w, "examples:")
	for _, s := range ss {
		text, err := json.Marshal(s.Text)
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "  - {label: %s, text: %s}  #", s.Label, text)
		for k, l := range labels {
			fmt.Fprintf(w, " %s=%.2f", l, s.Probs[k])
		}
		fmt.Fprintln(w)
	}
	return nil
}
