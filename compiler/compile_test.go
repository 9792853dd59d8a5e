package compiler

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"testing"

	"github.com/pawlogs/paw/runtime"
)

// synthSpec builds a spec of n examples over three labels from templates
// with random variables, like real log lines.
func synthSpec(n int, seed uint64) *Spec {
	rng := rand.New(rand.NewPCG(seed, 1))
	templates := map[string][]string{
		"error": {"ERROR charge failed for order %d: upstream timeout after %ds", "FATAL could not connect to db at 10.0.%d.%d: connection refused", "disk /dev/sd%c I/O error, sector %d"},
		"warn":  {"WARN disk usage at %d%% on /var/lib/%c", "WARN slow query took %dms on shard %d", "WARN retrying request %d (attempt %d)"},
		"info":  {"INFO order %d created for customer %d", "GET /api/v1/items/%d 200 %dms", "user %d logged in from 198.51.100.%d"},
	}
	s := &Spec{Name: "synth", Description: "severity", Labels: []string{"error", "warn", "info"}}
	labels := s.Labels
	for i := 0; i < n; i++ {
		l := labels[i%3]
		t := templates[l][rng.IntN(3)]
		s.Examples = append(s.Examples, Example{Text: fmt.Sprintf(t, rng.IntN(100000), 'a'+rng.IntN(20)), Label: l})
	}
	for i := 0; i < 30; i++ {
		l := labels[i%3]
		t := templates[l][rng.IntN(3)]
		s.Tests = append(s.Tests, Example{Text: fmt.Sprintf(t, 100000+rng.IntN(100000), 'a'+rng.IntN(20)), Label: l})
	}
	return s
}

func TestCompileIsDeterministic(t *testing.T) {
	a, err := Compile(context.Background(), synthSpec(60, 1), nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Compile(context.Background(), synthSpec(60, 1), nil)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.Artifact, b.Artifact) || a.ID != b.ID {
		t.Fatal("the same spec compiled to different bytes")
	}
	s := synthSpec(60, 1)
	s.Options.Seed = 2
	c, err := Compile(context.Background(), s, nil)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(a.Artifact, c.Artifact) {
		t.Fatal("a different seed gave identical bytes: the seed is not used")
	}
}

func TestCompileShippedSpecs(t *testing.T) {
	paths, _ := filepath.Glob("../configs/filters/*.yaml")
	if len(paths) < 3 {
		t.Fatalf("want at least 3 specs in configs/filters, found %d", len(paths))
	}
	for _, p := range paths {
		t.Run(filepath.Base(p), func(t *testing.T) {
			s, err := LoadSpec(p, LoadOptions{})
			if err != nil {
				t.Fatal(err)
			}
			res, err := Compile(context.Background(), s, nil)
			if err != nil {
				t.Fatalf("%v (failing: %+v)", err, res.Failing)
			}
			a, err := runtime.DecodeArtifact(res.Artifact)
			if err != nil {
				t.Fatal(err)
			}
			reparsed, err := ParseSpec("spec.yaml", a.Spec, LoadOptions{NoFiles: true})
			if err != nil {
				t.Fatalf("the normalized spec does not parse: %v", err)
			}
			if len(reparsed.Examples) != len(s.Examples) || len(reparsed.Tests) != len(s.Tests) {
				t.Fatal("the normalized spec lost examples or tests")
			}
			// Recompiling the normalized spec gives the same program.
			again, err := Compile(context.Background(), reparsed, nil)
			if err != nil || !bytes.Equal(again.Artifact, res.Artifact) {
				t.Fatalf("normalized spec recompiles to other bytes (err %v)", err)
			}
		})
	}
}

func TestCompileMinTestAccuracy(t *testing.T) {
	s := synthSpec(30, 3)
	// Mislabel the tests so they cannot pass.
	for i := range s.Tests {
		s.Tests[i].Label = s.Labels[(i+1)%3]
	}
	min := 0.9
	s.MinTestAccuracy = &min
	res, err := Compile(context.Background(), s, nil)
	var acc *TestAccuracyError
	if !errors.As(err, &acc) {
		t.Fatalf("err = %v, want TestAccuracyError", err)
	}
	if res == nil || len(acc.Failing) == 0 || len(acc.Failing) != len(res.Failing) || acc.Failing[0].Text == "" {
		t.Fatalf("failing tests not listed: %+v", acc)
	}
}

func TestArtifactSize200(t *testing.T) {
	res, err := Compile(context.Background(), synthSpec(200, 5), nil)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(res.Artifact); n > 4<<20 {
		t.Fatalf("artifact is %d bytes, target <= 4 MiB", n)
	}
	if res.Manifest.Metrics.Test.Accuracy < 0.9 {
		t.Fatalf("test accuracy %.3f on a separable synthetic task", res.Manifest.Metrics.Test.Accuracy)
	}
}

func TestCalibrationTemperature(t *testing.T) {
	res, err := Compile(context.Background(), synthSpec(90, 7), nil)
	if err != nil {
		t.Fatal(err)
	}
	if temp := res.Manifest.Model.Temperature; temp <= 0.05 || temp >= 20 {
		t.Fatalf("temperature %v hit the search bounds", temp)
	}
}

func BenchmarkCompile200(b *testing.B) {
	s := synthSpec(200, 9)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, err := Compile(context.Background(), s, nil); err != nil {
			b.Fatal(err)
		}
	}
}
