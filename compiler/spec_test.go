package compiler

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pawlogs/paw/internal/yamlconf"
	"github.com/pawlogs/paw/runtime"
)

const goodSpec = `name: t
description: is it an error
labels: [error, ok]
positive: error
examples:
  - {text: "disk failed", label: error}
  - {text: "write failed", label: error}
  - {text: "all good", label: ok}
  - {text: "request done", label: ok}
`

func TestParseSpecErrors(t *testing.T) {
	tests := []struct {
		name, yaml, want string
	}{
		{"malformed yaml", "name: t\nlabels: [a, b\n", "s.yaml:"},
		{"unknown key", goodSpec + "colour: blue\n", `s.yaml:10:1: unknown field "colour"`},
		{"wrong type", strings.Replace(goodSpec, "labels: [error, ok]", "labels: 5", 1), "s.yaml:3:9:"},
		{"duplicate key", goodSpec + "name: u\n", "s.yaml:10:1:"},
		{"undeclared label", goodSpec + "  - {text: x, label: maybe}\n", `s.yaml:10:22: label "maybe" is not declared`},
		{"too few examples", strings.Replace(goodSpec, "  - {text: \"request done\", label: ok}\n", "", 1), `s.yaml:3:17: label "ok" has 1 example, needs at least 2`},
		{"empty text", goodSpec + "  - {text: \"  \", label: ok}\n", "s.yaml:10:12: example text is empty"},
		{"bad name", strings.Replace(goodSpec, "name: t", "name: Bad Name", 1), `s.yaml:1:7: name "Bad Name" must be a slug`},
		{"no description", strings.Replace(goodSpec, "description: is it an error\n", "", 1), "description is required"},
		{"learn out of range", goodSpec + "learn: {min_new_answers: -1}\n", "s.yaml:10:9: learn: min_new_answers"},
		{"too many labels", strings.Replace(goodSpec, "[error, ok]", "[error, ok"+strings.Repeat(", x", 300)+"]", 1), "s.yaml:3:9: 302 labels: at most 256"},
		{"one label", strings.Replace(goodSpec, "[error, ok]", "[error]", 1), "labels needs at least 2"},
		{"duplicate label", strings.Replace(goodSpec, "[error, ok]", "[error, ok, ok]", 1), `s.yaml:3:21: label "ok" is declared twice`},
		{"positive not a label", strings.Replace(goodSpec, "positive: error", "positive: nope", 1), `s.yaml:4:11: positive label "nope"`},
		{"conflicting example", goodSpec + "  - {text: \"disk failed\", label: ok}\n", "example text appears with two labels"},
		{"test leaks example", goodSpec + "tests:\n  - {text: \"disk failed\", label: error}\n", "s.yaml:11:12: test text is also an example"},
		{"min accuracy without tests", goodSpec + "min_test_accuracy: 0.9\n", "min_test_accuracy is set but there are no tests"},
		{"min accuracy range", goodSpec + "tests:\n  - {text: x, label: ok}\nmin_test_accuracy: 1.5\n", "s.yaml:12:20: min_test_accuracy 1.5"},
		{"unknown interpreter", goodSpec + "interpreter: gpt\n", `s.yaml:10:14: unknown interpreter "gpt"`},
		{"option range", goodSpec + "options: {dim: 100000}\n", "s.yaml:10:16: options.dim 100000"},
		{"model too large", goodSpec + "options: {dim: 256, bucket_bits: 22}\n", "s.yaml:10:11: options: 2^bucket_bits × dim = 1073741824 embedding values"},
		{"model too large at default dim", goodSpec + "options: {bucket_bits: 21}\n", "more than the 16777216 allowed"},
		{"bad input", goodSpec + "input: 'a..b'\n", "s.yaml:10:8: input:"},
		{"no examples", "name: t\ndescription: d\nlabels: [a, b]\n", "no examples"},
		{"not a mapping", "- a\n- b\n", "want a mapping"},
		{"escape examples_file", goodSpec + "examples_file: ../secret.jsonl\n", "leaves the spec's folder"},
		{"absolute examples_file", goodSpec + "examples_file: /etc/passwd\n", "is absolute"},
		{"missing examples_file", goodSpec + "examples_file: nope.jsonl\n", "cannot be read"},
		{"misspelt key", strings.Replace(goodSpec, "labels:", "lables:", 1), `unknown field "lables" (did you mean "labels"?)`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseSpec("s.yaml", []byte(tc.yaml), LoadOptions{})
			if err == nil {
				t.Fatal("accepted")
			}
			var ye yamlconf.Errors
			if !errors.As(err, &ye) {
				t.Fatalf("error %T is not located: %v", err, err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestExamplesFile(t *testing.T) {
	dir := t.TempDir()
	spec := strings.Replace(goodSpec, "examples:", "examples_file: ex.jsonl\nexamples:", 1)
	write := func(name, data string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("s.yaml", spec)
	write("ex.jsonl", `{"text": "cpu on fire", "label": "error"}`+"\n\n"+`{"text": "fine", "label": "ok"}`+"\n")
	s, err := LoadSpec(filepath.Join(dir, "s.yaml"), LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Examples) != 6 || s.ExamplesFile != "" {
		t.Fatalf("got %d examples (file %q), want 6 inlined", len(s.Examples), s.ExamplesFile)
	}
	write("ex.jsonl", `{"text": "x", "label": "error"}`+"\n"+`{"text": "y", "label": "error", "extra": 1}`+"\n"+`{"text": 5}`+"\n")
	_, err = LoadSpec(filepath.Join(dir, "s.yaml"), LoadOptions{})
	for _, want := range []string{"ex.jsonl:2:1: examples_file: json: unknown field", "ex.jsonl:3:"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v, want %q", err, want)
		}
	}
	// A file outside the folder is refused unless allowed.
	outside := t.TempDir()
	os.WriteFile(filepath.Join(outside, "o.jsonl"), []byte(`{"text": "far away failure", "label": "error"}`+"\n"), 0o644)
	rel, _ := filepath.Rel(dir, filepath.Join(outside, "o.jsonl"))
	write("s.yaml", strings.Replace(goodSpec, "examples:", "examples_file: "+rel+"\nexamples:", 1))
	if _, err := LoadSpec(filepath.Join(dir, "s.yaml"), LoadOptions{}); err == nil || !strings.Contains(err.Error(), "leaves the spec's folder") {
		t.Fatalf("escape not refused: %v", err)
	}
	if _, err := LoadSpec(filepath.Join(dir, "s.yaml"), LoadOptions{AllowOutside: true}); err != nil {
		t.Fatalf("escape with AllowOutside: %v", err)
	}
	// A symlink inside the folder that points out is refused too.
	os.Symlink(filepath.Join(outside, "o.jsonl"), filepath.Join(dir, "link.jsonl"))
	write("s.yaml", strings.Replace(goodSpec, "examples:", "examples_file: link.jsonl\nexamples:", 1))
	if _, err := LoadSpec(filepath.Join(dir, "s.yaml"), LoadOptions{}); err == nil || !strings.Contains(err.Error(), "resolves outside") {
		t.Fatalf("symlink escape not refused: %v", err)
	}
	if _, err := ParseSpec("s.yaml", []byte(spec), LoadOptions{NoFiles: true}); err == nil || !strings.Contains(err.Error(), "not allowed here") {
		t.Fatalf("NoFiles did not refuse examples_file: %v", err)
	}
}

func FuzzParseSpec(f *testing.F) {
	f.Add([]byte(goodSpec))
	f.Add([]byte(goodSpec + "tests:\n  - {text: x, label: ok}\nmin_test_accuracy: 0.5\n"))
	f.Add([]byte(goodSpec + "interpreter: encoder-v1\nencoder: {name: minilm, max_tokens: 64, pooling: cls, normalize: true}\n"))
	f.Add([]byte("name: [\n"))
	f.Add([]byte("- 1\n"))
	f.Add([]byte("name: t\nexamples: {a: 1}\n"))
	f.Add([]byte("name: t\ndescription: d\nlabels:\n  error: a failure, or lost connection\n  ok: all fine\npositive: error\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := ParseSpec("s.yaml", data, LoadOptions{NoFiles: true})
		if err != nil {
			var ye yamlconf.Errors
			if !errors.As(err, &ye) {
				t.Fatalf("unlocated error %T: %v", err, err)
			}
			return
		}
		if len(s.Labels) < 2 || len(s.Examples) == 0 && !s.describesEveryLabel() {
			t.Fatalf("accepted an unusable spec: %+v", s)
		}
		// Its keywords are ones the runtime accepts.
		m := runtime.Manifest{Labels: s.Labels, Interpreter: runtime.InterpreterHashnetV1, Featurizer: runtime.DefaultFeaturizerConfig(), Keywords: s.keywords()}
		if _, err := runtime.NewKeywordMatcher(&m); err != nil {
			t.Fatalf("keywords %q: %v", m.Keywords, err)
		}
	})
}
