package e2e

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/pawlogs/paw/compiler"
	"github.com/pawlogs/paw/runtime"
	"github.com/pawlogs/paw/runtime/encodertest"
	"github.com/pawlogs/paw/runtime/runtimetest"
)

// encoderSpec is an encoder-v1 spec over the tiny encoder "tiny" in dir.
func encoderSpec(dir string, seed uint64) *compiler.Spec {
	spec := &compiler.Spec{Name: "errs", Description: "real errors", Labels: []string{"error", "ok"}, Positive: "error",
		Interpreter: runtime.InterpreterEncoderV1, Encoder: &compiler.EncoderSpec{Name: "tiny", Dir: dir, EncoderSettings: runtime.EncoderSettings{MaxTokens: 64, Normalize: true}}}
	spec.Options.Seed = seed
	errs := []string{"connection to db failed", "request timed out", "disk is corrupt", "worker crashed", "login denied", "fatal exception in job", "cache lost after crash", "unable to reach server"}
	oks := []string{"job finished", "user login ok", "connection accepted", "cache loaded", "server started", "request completed", "worker is running", "session saved"}
	for i := range errs {
		spec.Examples = append(spec.Examples, compiler.Example{Text: errs[i], Label: "error"}, compiler.Example{Text: oks[i], Label: "ok"})
	}
	return spec
}

func TestEncoderCompileRunReload(t *testing.T) {
	env := runtimetest.Env(t)
	root := t.TempDir()
	if _, err := encodertest.Write(filepath.Join(root, "tiny"), encodertest.Options{Seed: 5}); err != nil {
		t.Fatal(err)
	}
	res, err := compiler.Compile(context.Background(), encoderSpec(root, 1), nil)
	if err != nil {
		t.Fatal(err)
	}
	again, err := compiler.Compile(context.Background(), encoderSpec(root, 1), nil)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(res.Artifact, again.Artifact) {
		t.Fatal("two compiles of one encoder-v1 spec differ")
	}
	m := res.Manifest
	t.Logf("encoder-v1: train accuracy %.3f, temperature %.3f, %d bytes, encoder %+v", m.Metrics.TrainAccuracy, m.Model.Temperature, len(res.Artifact), *m.Encoder)
	if m.Interpreter != runtime.InterpreterEncoderV1 || m.Encoder.Name != "tiny" || m.Metrics.TrainAccuracy < 0.9 {
		t.Fatalf("manifest %+v", m)
	}
	// A pipeline folder with the program, naming the encoders folder
	// relative to itself.
	pdir := t.TempDir()
	if err := os.WriteFile(filepath.Join(pdir, "errs.paw"), res.Artifact, 0o644); err != nil {
		t.Fatal(err)
	}
	rel, err := filepath.Rel(pdir, root)
	if err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(pdir, "pipeline.yaml")
	if err := os.WriteFile(cfgPath, []byte("encoders_dir: "+rel+"\nsteps:\n  - tag: {programs: [errs]}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := runtime.LoadPipelineConfig(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	pl, err := runtime.OpenPipeline(env, cfg, runtime.PipelineOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer pl.Close()
	texts := [][]byte{[]byte("connection to db failed"), []byte("job finished"), []byte("server crashed"), []byte("session loaded")}
	outs, err := pl.ProcessTexts(context.Background(), texts)
	if err != nil {
		t.Fatal(err)
	}
	if outs[0].Tags[0].Label != "error" || outs[1].Tags[0].Label != "ok" || outs[0].Tags[0].ID != res.ID {
		t.Fatalf("training examples misread: %+v %+v", outs[0].Tags, outs[1].Tags)
	}
	// Hot reload: another seed gives another program on the same encoder,
	// published into the folder and reloaded from there.
	other, err := compiler.Compile(context.Background(), encoderSpec(root, 2), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(pdir, "errs.paw"), other.Artifact, 0o644); err != nil {
		t.Fatal(err)
	}
	if id, changed, err := pl.Reload(context.Background(), "errs"); err != nil || !changed || id != other.ID {
		t.Fatalf("reload: %s %v %v", id, changed, err)
	}
	outs, err = pl.ProcessTexts(context.Background(), texts)
	if err != nil {
		t.Fatal(err)
	}
	if outs[0].Tags[0].ID != other.ID || other.ID == res.ID {
		t.Fatalf("after reload the tag says %s, want %s", outs[0].Tags[0].ID, other.ID)
	}
}

// TestEncoderNovelty: an encoder-v1 program's novelty is 0 for a training
// line, and for one of its patterns with other values (its token ids
// differ); in between for a line with another word; 1 for a line like
// none of them.
func TestEncoderNovelty(t *testing.T) {
	env := runtimetest.Env(t)
	root := t.TempDir()
	if _, err := encodertest.Write(filepath.Join(root, "tiny"), encodertest.Options{Seed: 5}); err != nil {
		t.Fatal(err)
	}
	spec := encoderSpec(root, 1)
	spec.Examples = append(spec.Examples,
		compiler.Example{Text: "worker 12 crashed at step 7 of job 3", Label: "error"},
		compiler.Example{Text: "job 4 finished in 30 ms", Label: "ok"})
	res, err := compiler.Compile(context.Background(), spec, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("patterns %q", res.Manifest.Patterns)
	if len(res.Manifest.Patterns) == 0 {
		t.Fatal("no patterns in the manifest")
	}
	art, err := runtime.DecodeArtifact(res.Artifact)
	if err != nil {
		t.Fatal(err)
	}
	p, err := runtime.NewProgram(env, art, runtime.ProgramOptions{EncoderDir: root})
	if err != nil {
		t.Fatal(err)
	}
	pl := runtimetest.Pipeline(t, "steps:\n  - tag: {programs: [errs]}\n", p)
	tests := []struct {
		line     string
		min, max float32
	}{
		{"job finished", 0, 0},
		{"worker 831 crashed at step 2 of job 95", 0, 0},
		{"job 77 finished in 5 ms", 0, 0},
		{"worker 831 crashed at stage 2 of job 95", 0.16, 0.17}, // one of six words
		{"zebra quokka narwhal", 1, 1},
	}
	for _, tc := range tests {
		outs, err := pl.ProcessTexts(context.Background(), [][]byte{[]byte(tc.line)})
		if err != nil {
			t.Fatal(err)
		}
		if n := outs[0].Tags[0].Novelty; n < tc.min || n > tc.max {
			t.Errorf("novelty of %q: %v, want %v..%v", tc.line, n, tc.min, tc.max)
		}
	}
}
