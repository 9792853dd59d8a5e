package compiler

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pawlogs/paw/runtime"
	"github.com/pawlogs/paw/runtime/encodertest"
	"github.com/pawlogs/paw/teacher/teachertest"
)

// TestEncoderWithTeacher compiles an encoder-v1 program from a teacher's
// labels: the head trains on embeddings of the labelled sample, and
// fidelity is measured through the encoder.
func TestEncoderWithTeacher(t *testing.T) {
	ts := teachertest.NewServer(t, teachertest.ErrorRule)
	path := writeTeacherSpec(t, ts.BaseURL(), "", 600)
	dir := filepath.Dir(path)
	words := append(strings.Fields("connection request call cache job user health sync db queue disk auth cpu after ms id"), encodertest.DefaultWords...)
	if _, err := encodertest.Write(filepath.Join(dir, "encoders", "tiny"), encodertest.Options{Seed: 3, Words: words}); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	data = bytes.Replace(data, []byte("samples_file:"), []byte("interpreter: encoder-v1\nencoder: {name: tiny, dir: encoders, max_tokens: 48, normalize: true}\nsamples_file:"), 1)
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	res, err := compileSpecFile(t, path)
	if err != nil {
		t.Fatal(err)
	}
	m, prov := res.Manifest, res.Manifest.Teacher
	t.Logf("encoder-v1 from a teacher: %d examples, train accuracy %.3f, fidelity %.3f on %d held-out lines, %d calls for %d templates",
		m.Metrics.Examples, m.Metrics.TrainAccuracy, prov.Fidelity, prov.Holdout, res.Teacher.Calls, res.Teacher.Clusters)
	if m.Interpreter != runtime.InterpreterEncoderV1 || m.Encoder == nil || prov == nil || prov.Holdout == 0 || res.Teacher.Calls != res.Teacher.Clusters {
		t.Fatalf("manifest %+v, teacher %+v", m, res.Teacher)
	}
	if prov.Fidelity < 0.9 {
		t.Fatalf("fidelity %.3f: a head on even a random encoder should follow a template rule", prov.Fidelity)
	}
}

func TestEncoderSpecValidation(t *testing.T) {
	tests := []struct {
		name, extra string
		opts        LoadOptions
		want        string
	}{
		{"unknown interpreter", "interpreter: gpt-v9\n", LoadOptions{}, `unknown interpreter "gpt-v9"`},
		{"no encoder", "interpreter: encoder-v1\n", LoadOptions{}, "needs an encoder"},
		{"encoder on hashnet", "encoder: {name: minilm}\n", LoadOptions{}, "encoder is for interpreter: encoder-v1"},
		{"path as name", "interpreter: encoder-v1\nencoder: {name: ../minilm}\n", LoadOptions{}, "encoder.name"},
		{"pooling", "interpreter: encoder-v1\nencoder: {name: minilm, pooling: max}\n", LoadOptions{}, `s.yaml:11:34: encoder.pooling "max"`},
		{"max tokens", "interpreter: encoder-v1\nencoder: {name: minilm, max_tokens: 1}\n", LoadOptions{}, "encoder.max_tokens 1"},
		{"dir over the network", "interpreter: encoder-v1\nencoder: {name: minilm, dir: /models}\n", LoadOptions{NoFiles: true}, "encoder.dir is not allowed here"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseSpec("s.yaml", []byte(goodSpec+tc.extra), tc.opts)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
		})
	}
	s, err := ParseSpec("specs/s.yaml", []byte(goodSpec+"interpreter: encoder-v1\nencoder: {name: minilm, dir: ../models}\n"), LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join("models", "minilm"); s.encoderFolder() != want {
		t.Fatalf("encoder folder %q, want %q (relative to the spec)", s.encoderFolder(), want)
	}
}
