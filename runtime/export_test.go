package runtime

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// WithDenseTable makes NewProgram load the artifact's own graph, over its
// whole table, for tests that compare it with the compact one.
func WithDenseTable(o ProgramOptions) ProgramOptions {
	o.denseTable = true
	return o
}

// Fused reports whether some of a batcher's programs run as one graph.
func (b *Batcher) Fused() bool {
	for _, f := range b.fused {
		if f != nil {
			return true
		}
	}
	return false
}

// SharedLines reads every raw line, every parsed content and every
// labelled text of ../shared (76,000
// lines), or skips t when ../shared is absent.
func SharedLines(t *testing.T) [][]byte {
	files, _ := filepath.Glob("../../shared/data/loghub/*/*.log")
	labeled, err := os.ReadFile("../../shared/data/labeled/real-error.jsonl")
	if len(files) == 0 || err != nil {
		t.Skip("../shared is absent")
	}
	var lines [][]byte
	for _, name := range files {
		data, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		lines = append(lines, bytes.Split(bytes.TrimSuffix(data, []byte("\n")), []byte("\n"))...)
	}
	structured, _ := filepath.Glob("../../shared/data/loghub/*/*_structured.csv")
	for _, name := range structured {
		data, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		rows, err := csv.NewReader(bytes.NewReader(data)).ReadAll()
		if err != nil || len(rows) == 0 {
			t.Fatalf("%s: %v", name, err)
		}
		col := slices.Index(rows[0], "Content")
		for _, r := range rows[1:] {
			lines = append(lines, []byte(r[col]))
		}
	}
	for _, l := range bytes.Split(bytes.TrimSuffix(labeled, []byte("\n")), []byte("\n")) {
		var rec struct{ Text string }
		if err := json.Unmarshal(l, &rec); err != nil {
			t.Fatal(err)
		}
		lines = append(lines, []byte(rec.Text))
	}
	return lines
}

// ResolveORTLib finds the ONNX Runtime library as OpenEnv("") does.
var ResolveORTLib = resolveORTLib

// Featurizations is the number of distinct featurizations per record.
func (s *ProgramSet) Featurizations() int { return len(s.groups) }
