package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestReadmeDemoBlock runs what make demo runs and checks that every line
// of the README's demo block (but "..." and the "==" headers the Makefile
// echoes) appears in that output, in order.
func TestReadmeDemoBlock(t *testing.T) {
	readme, err := os.ReadFile("../../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(readme), "## What `make demo` prints")
	if !ok {
		t.Fatal("README has no demo section")
	}
	_, rest, _ = strings.Cut(rest, "```\n")
	block, _, _ := strings.Cut(rest, "```")

	root := "../../.."
	progs := t.TempDir()
	specs, _ := filepath.Glob(filepath.Join(root, "configs/filters/*.yaml"))
	var out strings.Builder
	run := func(stdin string, args ...string) {
		code, stdout, stderr := paw(t, stdin, args...)
		if code != 0 {
			t.Fatalf("paw %v: exit %d\n%s", args, code, stderr)
		}
		out.WriteString(stdout)
		out.WriteString(stderr)
	}
	run("", append([]string{"compile", "--out-dir", progs}, specs...)...)
	sample, err := os.ReadFile(filepath.Join(root, "configs/samples/app.log"))
	if err != nil {
		t.Fatal(err)
	}
	run(string(sample), "run", filepath.Join(progs, "real-error.paw"))
	run(string(sample), "run", filepath.Join(progs, "security-event.paw"), "--json", "--keep", "auth_failure")
	pipe, err := os.ReadFile(filepath.Join(root, "configs/pipeline.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	pipeFile := filepath.Join(t.TempDir(), "pipeline.yaml")
	os.WriteFile(pipeFile, []byte(strings.Replace(string(pipe), "programs_dir: ../build/programs", "programs_dir: "+progs, 1)), 0o644)
	run(string(sample), "run", "--pipeline", pipeFile, "--input", "-", "--json")

	got := strings.ReplaceAll(out.String(), progs, "build/programs")
	at := 0
	for _, line := range strings.Split(block, "\n") {
		if line == "" || line == "..." || strings.HasPrefix(line, "== ") {
			continue
		}
		i := strings.Index(got[at:], line+"\n")
		if i < 0 {
			t.Fatalf("README demo line not in the output (in order):\n%s\n\noutput:\n%s", line, got)
		}
		at += i + len(line)
	}
}
