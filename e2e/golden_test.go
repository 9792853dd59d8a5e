package e2e

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math"
	"testing"

	"github.com/pawlogs/paw/compiler"
	"github.com/pawlogs/paw/runtime"
	"github.com/pawlogs/paw/runtime/runtimetest"
)

// compileErrors compiles the small binary spec the golden scores were
// pinned with; seeds give different artifacts with the same behaviour.
func compileErrors(t testing.TB, name string, seed uint64) []byte {
	t.Helper()
	spec := &compiler.Spec{Name: name, Description: "errors", Labels: []string{"error", "ok"}, Positive: "error"}
	spec.Options.Seed = seed
	for i := 0; i < 8; i++ {
		spec.Examples = append(spec.Examples,
			compiler.Example{Text: fmt.Sprintf("ERROR request %d failed with exception timeout", i), Label: "error"},
			compiler.Example{Text: fmt.Sprintf("INFO request %d completed in %dms", i, i*7), Label: "ok"})
	}
	res, err := compiler.Compile(context.Background(), spec, nil)
	if err != nil {
		t.Fatal(err)
	}
	return res.Artifact
}

func errorsProgram(t testing.TB, name string) *runtime.Artifact {
	t.Helper()
	a, err := runtime.DecodeArtifact(compileErrors(t, name, 0))
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// loadProgram decodes and loads an artifact, closed with the test.
func loadProgram(t testing.TB, env *runtime.Env, artifact []byte) *runtime.Program {
	t.Helper()
	a, err := runtime.DecodeArtifact(artifact)
	if err != nil {
		t.Fatal(err)
	}
	p, err := runtime.NewProgram(env, a, runtime.ProgramOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// TestScoresGolden pins what a program decides on every line of ../shared
// (skipped when absent): the bits of all 76,000 lines' probabilities,
// hashed. The featurizer, the compact table and the batch layout may
// change how fast a line is scored, never what it scores; the pinned hash
// was computed by commit 8572a0c, before them.
func TestScoresGolden(t *testing.T) {
	lines := runtimetest.SharedLines(t, "../../shared")
	p, err := runtime.NewProgram(runtimetest.Env(t), errorsProgram(t, "err"), runtime.ProgramOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	f, k := p.Featurizer(), len(p.Labels())
	h := sha256.New()
	feats := make([]*runtime.Features, runtime.DefaultMaxBatch)
	for i := range feats {
		ft := f.NewFeatures()
		feats[i] = &ft
	}
	probs := make([]float32, runtime.DefaultMaxBatch*k)
	var b [4]byte
	for lo := 0; lo < len(lines); lo += runtime.DefaultMaxBatch {
		batch := lines[lo:min(lo+runtime.DefaultMaxBatch, len(lines))]
		for i, l := range batch {
			f.Featurize(l, feats[i])
		}
		if err := p.Run(feats[:len(batch)], probs); err != nil {
			t.Fatal(err)
		}
		for _, v := range probs[:len(batch)*k] {
			binary.LittleEndian.PutUint32(b[:], math.Float32bits(v))
			h.Write(b[:])
		}
	}
	const want = "00177687986e142d0be578a87a812bc8f679b4aa6ac67f1d30318c858c856e28"
	if got := hex.EncodeToString(h.Sum(nil)); got != want {
		t.Fatalf("scores of %d lines changed: hash %s, want %s", len(lines), got, want)
	}
}
