// Package runtimetest builds programs for tests without the compiler, so
// that a package's tests exercise that package alone.
package runtimetest

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/pawlogs/paw/runtime"
	"github.com/pawlogs/paw/runtime/graph"
)

// Hashnet wraps a hashnet-v1 graph as a decoded artifact named "t", with
// labels l0, l1, ... unless given, the featurizer cfg, and dim as the
// manifest's embedding width (the table's own width when unfolded).
func Hashnet(t testing.TB, g *graph.Hashnet, labels []string, dim int, cfg runtime.FeaturizerConfig) *runtime.Artifact {
	t.Helper()
	if labels == nil {
		for i := range g.Bias {
			labels = append(labels, fmt.Sprintf("l%d", i))
		}
	}
	m := runtime.Manifest{Name: "t", Labels: labels, Featurizer: cfg, Model: runtime.ModelShape{Dim: dim}}
	a, err := runtime.DecodeArtifact(encode(t, g, m))
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// encode writes g as a hashnet-v1 artifact with manifest m, whose format,
// interpreter, buckets and temperature it sets.
func encode(t testing.TB, g *graph.Hashnet, m runtime.Manifest) []byte {
	t.Helper()
	model, err := g.Encode("runtimetest")
	if err != nil {
		t.Fatal(err)
	}
	m.FormatVersion, m.Interpreter = runtime.FormatVersion, runtime.InterpreterHashnetV1
	m.Model.Buckets, m.Model.Temperature = g.Rows, 1
	data, err := runtime.EncodeArtifact(&m, []byte("name: "+m.Name+"\n"), model)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// Example is one labelled line of a test program.
type Example struct{ Text, Label string }

// Spec is a test program. Its examples vote for their labels; no training
// happens, so a package's tests get a working program without the
// compiler.
type Spec struct {
	Name     string
	Labels   []string // default: error, ok
	Positive string   // default: the first label
	Input    string
	Examples []Example
	// Featurizer: the zero value takes runtime.DefaultFeaturizerConfig.
	Featurizer runtime.FeaturizerConfig
	// Seed changes the artifact, not its behaviour or its featurizer:
	// another program ID that still shares a featurizer group.
	Seed uint64
	// Dim, when more than zero, writes an unfolded graph (a table Dim wide
	// and a head), as the compiler does when labels >= dim; otherwise the
	// table is folded.
	Dim int
	// Keywords and KeywordRates, when set, are the manifest's: the
	// program mixes its keywords' verdict in by novelty.
	Keywords     map[string][]string
	KeywordRates map[string]runtime.KeywordRates
}

// Errors is the spec most runtime tests use: "ERROR request N failed with
// exception timeout" is an error, "INFO request N completed in Mms" is ok.
func Errors(name string, seed uint64) Spec {
	s := Spec{Name: name, Seed: seed}
	for i := 0; i < 8; i++ {
		s.Examples = append(s.Examples,
			Example{fmt.Sprintf("ERROR request %d failed with exception timeout", i), "error"},
			Example{fmt.Sprintf("INFO request %d completed in %dms", i, i*7), "ok"})
	}
	return s
}

// scale makes a line made of one label's features a confident decision
// for it (about 0.99), as a compiled program's would be.
const scale = 8

// Build writes the artifact. A bucket's value for a label is the share of
// that label's examples with the feature, less its mean share over the
// labels, times scale: features of one label push to it, shared ones
// cancel. Every row an example touched also gets a tiny constant, equal
// for every label (so no decision changes), to count as trained for
// novelty; the seed sets it.
func Build(t testing.TB, s Spec) []byte {
	t.Helper()
	if s.Labels == nil {
		s.Labels = []string{"error", "ok"}
	}
	if s.Positive == "" {
		s.Positive = s.Labels[0]
	}
	cfg := s.Featurizer
	if cfg.Kind == "" {
		cfg = runtime.DefaultFeaturizerConfig()
	}
	feat, err := runtime.NewFeaturizer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	l := len(s.Labels)
	index := map[string]int{}
	for i, name := range s.Labels {
		index[name] = i
	}
	counts := make([]float64, l)
	share := map[int64][]float64{}
	f := feat.NewFeatures()
	for _, e := range s.Examples {
		k, ok := index[e.Label]
		if !ok {
			t.Fatalf("example %q: label %q is not one of %v", e.Text, e.Label, s.Labels)
		}
		counts[k]++
		feat.Featurize([]byte(e.Text), &f)
		seen := map[int64]bool{}
		for _, id := range f.IDs[:f.Len] {
			if seen[id] {
				continue
			}
			seen[id] = true
			if share[id] == nil {
				share[id] = make([]float64, l)
			}
			share[id][k]++
		}
	}
	rows := cfg.Buckets()
	width := l
	if s.Dim > 0 {
		width = s.Dim
	}
	g := &graph.Hashnet{Rows: rows, Width: width, Table: make([]float32, rows*width), Bias: make([]float32, l)}
	if s.Dim > 0 {
		g.Head = make([]float32, width*l)
		for k := 0; k < min(width, l); k++ {
			g.Head[k*l+k] = 1
		}
	}
	// The bias is the labels' log shares of the examples, centred: a line
	// of nothing the examples had goes to the commonest label.
	var meanLog float64
	for _, c := range counts {
		meanLog += math.Log(max(c, 0.5)) / float64(l)
	}
	for k, c := range counts {
		g.Bias[k] = float32(math.Log(max(c, 0.5)) - meanLog)
	}
	for id, sh := range share {
		var mean float64
		for k := range sh {
			if counts[k] > 0 {
				sh[k] /= counts[k]
			}
			mean += sh[k] / float64(l)
		}
		for k := 0; k < min(width, l); k++ {
			g.Table[int(id)*width+k] = float32(scale*(sh[k]-mean) + 1e-3*float64(1+s.Seed))
		}
	}
	dim := s.Dim
	if dim == 0 {
		dim = l + 1 // folded: the compiler folds when labels < dim
	}
	return encode(t, g, runtime.Manifest{
		Name: s.Name, Description: s.Name, Labels: s.Labels, Positive: s.Positive, Input: s.Input, Featurizer: cfg,
		Model: runtime.ModelShape{Dim: dim}, CompilerVersion: "runtimetest", Metrics: runtime.CompileMetrics{Examples: len(s.Examples)},
		Keywords: s.Keywords, KeywordRates: s.KeywordRates,
	})
}

// Program is Build, decoded.
func Program(t testing.TB, s Spec) *runtime.Artifact {
	t.Helper()
	a, err := runtime.DecodeArtifact(Build(t, s))
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// SharedLines reads every raw line, every parsed content and every
// labelled text of the shared data folder dir (76,000 lines: ../shared),
// or skips t when it is absent.
func SharedLines(t *testing.T, dir string) [][]byte {
	files, _ := filepath.Glob(filepath.Join(dir, "data/loghub/*/*.log"))
	labeled, err := os.ReadFile(filepath.Join(dir, "data/labeled/real-error.jsonl"))
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
	structured, _ := filepath.Glob(filepath.Join(dir, "data/loghub/*/*_structured.csv"))
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

// Env opens ONNX Runtime ($PAW_ORT_LIB, then the default path) for a
// test, closed with it.
func Env(t testing.TB) *runtime.Env {
	t.Helper()
	env, err := runtime.OpenEnv("")
	if err != nil {
		t.Fatalf("%v", err)
	}
	t.Cleanup(func() { env.Close() })
	return env
}

// Lines are n synthetic log lines of one template, every variable
// different.
func Lines(n int) [][]byte {
	lines := make([][]byte, n)
	for i := range lines {
		lines[i] = []byte(fmt.Sprintf("2026-03-04T09:00:%02d.%03dZ INFO [orders-api] request %d completed path=/api/v1/orders/%d status=200 duration=%dms", i%60, i%1000, i, i*7, i%300))
	}
	return lines
}

// LoghubLines reads the Loghub sample logs of the shared data folder dir
// (../shared), if present.
func LoghubLines(dir string) [][]byte {
	files, _ := filepath.Glob(filepath.Join(dir, "data/loghub/*/*.log"))
	var lines [][]byte
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, l := range bytes.Split(data, []byte("\n")) {
			if len(l) > 0 {
				lines = append(lines, l)
			}
		}
	}
	return lines
}

// Pipeline parses yaml as a pipeline file and runs it over progs, which it
// then owns; it is closed when the test ends.
func Pipeline(t testing.TB, yaml string, progs ...*runtime.Program) *runtime.Pipeline {
	t.Helper()
	closeAll := func() {
		for _, p := range progs {
			p.Close()
		}
	}
	cfg, err := runtime.ParsePipelineConfig("p.yaml", []byte(yaml))
	if err != nil {
		closeAll()
		t.Fatal(err)
	}
	pl, err := runtime.NewPipeline(cfg, progs, runtime.BatcherConfig{})
	if err != nil {
		closeAll()
		t.Fatal(err)
	}
	t.Cleanup(func() { pl.Close() })
	return pl
}

// Batcher runs progs as one program set with cfg; it is closed when the
// test ends, before progs are if they were loaded first. Closing it
// earlier is harmless.
func Batcher(t testing.TB, cfg runtime.BatcherConfig, progs ...*runtime.Program) *runtime.Batcher {
	t.Helper()
	set, err := runtime.NewProgramSet(progs...)
	if err != nil {
		t.Fatal(err)
	}
	b, err := runtime.NewBatcher(set, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	return b
}
