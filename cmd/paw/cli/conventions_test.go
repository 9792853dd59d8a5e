package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The CLI behaves like a Unix tool: help and version on stdout with exit
// 0, usage errors on stderr with exit 2, every command documented.
func TestCLIConventions(t *testing.T) {
	tests := []struct {
		name       string
		args       []string
		code       int
		out, errs  string
		notOut     string
		emptyError bool
	}{
		{"--version", []string{"--version"}, 0, "paw ", "", "", true},
		{"-v", []string{"-v"}, 0, "paw ", "", "", true},
		{"--help to stdout", []string{"--help"}, 0, "commands:", "", "", true},
		{"help run", []string{"help", "run"}, 0, "usage: paw run", "", "", true},
		{"no arguments", nil, 2, "", "commands:", "commands:", false},
		{"compile --help names SPEC", []string{"compile", "--help"}, 0, "arguments:\n  SPEC.yaml...", "", "", true},
		{"inspect --help", []string{"inspect", "--help"}, 0, "example:\n  paw inspect", "", "", true},
		{"misspelt command", []string{"compil"}, 2, "", `did you mean "compile"?`, "", false},
		{"misspelt flag", []string{"run", "x.paw", "--kep", "error"}, 2, "", "did you mean --keep?", "usage:", false},
		{"completion", []string{"completion", "bash"}, 0, "complete -o filenames -F _paw paw", "", "", true},
		{"completion shell", []string{"completion", "tcsh"}, 2, "", "unknown shell", "", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errs := paw(t, "", tc.args...)
			if code != tc.code || !strings.Contains(out, tc.out) || !strings.Contains(errs, tc.errs) {
				t.Fatalf("exit %d (want %d)\nstdout:\n%s\nstderr:\n%s", code, tc.code, out, errs)
			}
			if tc.notOut != "" && strings.Contains(out, tc.notOut) {
				t.Fatalf("stdout has %q:\n%s", tc.notOut, out)
			}
			if tc.emptyError && errs != "" {
				t.Fatalf("stderr not empty: %s", errs)
			}
		})
	}
	// Every command has a help text with a synopsis, arguments and an
	// example.
	for _, tl := range []tool{pawTool(), devTool()} {
		for _, c := range tl.commands() {
			h, ok := helps[c.name]
			if _, both := findCommand(pawTool(), c.name); both && tl.name != "paw" {
				continue // paw's own, as its help says (version)
			}
			if !ok || h.synopsis == "" || h.args == "" || !strings.Contains(h.example, tl.name+" "+c.name) {
				t.Errorf("%s command %s: help %+v", tl.name, c.name, h)
			}
		}
	}
}

func TestRunExitStatus(t *testing.T) {
	dir := programs(t)
	prog := filepath.Join(dir, "real-error.paw")
	// A wrong field name: every record unreadable is a failure, said so.
	code, _, errs := paw(t, "plain 1\nplain 2\n", "run", prog, "--input", "log")
	if code != 1 || !strings.Contains(errs, "every record was unreadable") || strings.Contains(errs, "passed to stderr") {
		t.Fatalf("exit %d: %s", code, errs)
	}
	code, _, errs = paw(t, "{\"log\": \"disk failed\"}\nplain\n", "run", prog, "--input", "log")
	if code != 0 || !strings.Contains(errs, "1 unreadable (skipped)") {
		t.Fatalf("exit %d: %s", code, errs)
	}
	if code, _, errs = paw(t, "{\"log\": \"disk failed\"}\nplain\n", "run", prog, "--input", "log", "--strict"); code != 1 {
		t.Fatalf("--strict: exit %d: %s", code, errs)
	}
}

// A spec that fails its own tests is reported, and no file is written or
// claimed.
func TestCompileFailingTestsWritesNothing(t *testing.T) {
	dir := t.TempDir()
	spec := filepath.Join(dir, "flipped.yaml")
	os.WriteFile(spec, []byte(`name: flipped
description: is it an error
labels: [error, ok]
examples:
  - {text: "disk failed", label: error}
  - {text: "write failed", label: error}
  - {text: "all good", label: ok}
  - {text: "request done", label: ok}
tests:
  - {text: "disk failed badly", label: ok}
  - {text: "all good here", label: error}
min_test_accuracy: 0.9
`), 0o644)
	out := filepath.Join(dir, "flipped.paw")
	code, stdout, errs := paw(t, "", "compile", spec, "-o", out)
	if code != 1 || !strings.Contains(stdout, "artifact  not written") || strings.Contains(stdout, "artifact  "+out) {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, errs)
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Fatalf("%s exists: %v", out, err)
	}
}

// The measurement tools are pawdev's, not paw's, and follow the same
// conventions.
func TestPawdevIsApart(t *testing.T) {
	tests := []struct {
		name     string
		dev      bool
		args     []string
		code     int
		out, err string
	}{
		{"paw has no quality", false, []string{"quality"}, 2, "", `unknown command "quality"`},
		{"paw has no bench-kafka", false, []string{"bench-kafka"}, 2, "", `unknown command "bench-kafka"`},
		{"pawdev --help", true, []string{"--help"}, 0, "usage: pawdev COMMAND", ""},
		{"pawdev quality --help", true, []string{"quality", "--help"}, 0, "usage: pawdev quality", ""},
		{"pawdev --version", true, []string{"--version"}, 0, "paw ", ""},
		{"pawdev misspelt", true, []string{"qualty"}, 2, "", `did you mean "quality"?`},
		{"pawdev has no compile", true, []string{"compile"}, 2, "", `pawdev: unknown command "compile"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			run := paw
			if tc.dev {
				run = func(t *testing.T, _ string, args ...string) (int, string, string) { return pawdev(t, args...) }
			}
			code, out, errs := run(t, "", tc.args...)
			if code != tc.code || !strings.Contains(out, tc.out) || !strings.Contains(errs, tc.err) {
				t.Fatalf("exit %d (want %d)\nstdout:\n%s\nstderr:\n%s", code, tc.code, out, errs)
			}
		})
	}
}
