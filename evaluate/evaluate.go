// Package evaluate computes classification quality: accuracy, per-label
// precision, recall and F1, macro F1 and the confusion matrix. The compiler
// reports it at compile time, the CLI's eval command on held-out data.
package evaluate

import (
	"fmt"
	"io"
)

// LabelMetrics is one label's one-vs-rest quality.
type LabelMetrics struct {
	Precision float64 `json:"precision"`
	Recall    float64 `json:"recall"`
	F1        float64 `json:"f1"`
	Support   int     `json:"support"`
}

// Report is the quality of predictions against gold labels.
type Report struct {
	N        int                     `json:"n"`
	Accuracy float64                 `json:"accuracy"`
	MacroF1  float64                 `json:"macro_f1"`
	PerLabel map[string]LabelMetrics `json:"per_label"`
	// Confusion[gold][predicted] counts records.
	Confusion map[string]map[string]int `json:"confusion"`
	labels    []string
}

// Confusion accumulates gold/predicted pairs over a fixed label set.
type Confusion struct {
	labels []string
	index  map[string]int
	m      [][]int
}

// NewConfusion starts an empty matrix over labels, in the order given.
func NewConfusion(labels []string) *Confusion {
	c := &Confusion{labels: labels, index: map[string]int{}, m: make([][]int, len(labels))}
	for i, l := range labels {
		c.index[l] = i
		c.m[i] = make([]int, len(labels))
	}
	return c
}

// Add records one prediction. Labels outside the set are an error.
func (c *Confusion) Add(gold, pred string) error {
	g, ok := c.index[gold]
	if !ok {
		return fmt.Errorf("gold label %q is not one of %v", gold, c.labels)
	}
	p, ok := c.index[pred]
	if !ok {
		return fmt.Errorf("predicted label %q is not one of %v", pred, c.labels)
	}
	c.m[g][p]++
	return nil
}

// Report computes the metrics. A label never predicted has precision 0; one
// never present has recall 0 (both with F1 0), so macro F1 never flatters.
func (c *Confusion) Report() Report {
	r := Report{PerLabel: map[string]LabelMetrics{}, Confusion: map[string]map[string]int{}, labels: c.labels}
	correct := 0
	for i := range c.labels {
		for j := range c.labels {
			r.N += c.m[i][j]
		}
		correct += c.m[i][i]
	}
	if r.N > 0 {
		r.Accuracy = float64(correct) / float64(r.N)
	}
	for i, l := range c.labels {
		tp, fp, fn := c.m[i][i], 0, 0
		row := map[string]int{}
		for j, l2 := range c.labels {
			row[l2] = c.m[i][j]
			if j != i {
				fn += c.m[i][j]
				fp += c.m[j][i]
			}
		}
		r.Confusion[l] = row
		m := LabelMetrics{Support: tp + fn}
		if tp+fp > 0 {
			m.Precision = float64(tp) / float64(tp+fp)
		}
		if tp+fn > 0 {
			m.Recall = float64(tp) / float64(tp+fn)
		}
		if 2*tp+fp+fn > 0 {
			m.F1 = 2 * float64(tp) / float64(2*tp+fp+fn)
		}
		r.PerLabel[l] = m
		r.MacroF1 += m.F1
	}
	if len(c.labels) > 0 {
		r.MacroF1 /= float64(len(c.labels))
	}
	return r
}

// Labels is the label order of the report.
func (r Report) Labels() []string { return r.labels }

// WriteText prints the report as aligned tables.
func (r Report) WriteText(w io.Writer, labels []string) {
	width := 5
	for _, l := range labels {
		width = max(width, len(l))
	}
	fmt.Fprintf(w, "n=%d  accuracy=%.4f  macro_f1=%.4f\n", r.N, r.Accuracy, r.MacroF1)
	fmt.Fprintf(w, "%-*s  %9s  %9s  %9s  %7s\n", width, "label", "precision", "recall", "f1", "support")
	for _, l := range labels {
		m := r.PerLabel[l]
		fmt.Fprintf(w, "%-*s  %9.4f  %9.4f  %9.4f  %7d\n", width, l, m.Precision, m.Recall, m.F1, m.Support)
	}
	fmt.Fprintf(w, "confusion (rows gold, columns predicted):\n%-*s", width, "")
	for _, l := range labels {
		fmt.Fprintf(w, "  %*s", width, l)
	}
	fmt.Fprintln(w)
	for _, g := range labels {
		fmt.Fprintf(w, "%-*s", width, g)
		for _, p := range labels {
			fmt.Fprintf(w, "  %*d", width, r.Confusion[g][p])
		}
		fmt.Fprintln(w)
	}
}
