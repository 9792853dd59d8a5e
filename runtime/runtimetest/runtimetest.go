// Package runtimetest builds programs for tests without the compiler, so
// that a package's tests exercise that package alone.
package runtimetest

import (
	"fmt"
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
	model, err := g.Encode("test")
	if err != nil {
		t.Fatal(err)
	}
	m := runtime.Manifest{FormatVersion: runtime.FormatVersion, Name: "t", Labels: labels, Interpreter: runtime.InterpreterHashnetV1,
		Featurizer: cfg, Model: runtime.ModelShape{Buckets: g.Rows, Dim: dim, Temperature: 1}}
	data, err := runtime.EncodeArtifact(&m, []byte("name: t\n"), model)
	if err != nil {
		t.Fatal(err)
	}
	a, err := runtime.DecodeArtifact(data)
	if err != nil {
		t.Fatal(err)
	}
	return a
}
