package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// paw runs the CLI in-process and returns exit code, stdout and stderr.
func paw(t *testing.T, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := Main(context.Background(), args, strings.NewReader(stdin), &out, &errb)
	return code, out.String(), errb.String()
}

// pawdev runs pawdev's command line as paw does paw's.
func pawdev(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := DevMain(context.Background(), args, strings.NewReader(""), &out, &errb)
	return code, out.String(), errb.String()
}

// programs compiles the shipped specs once per test into a temp folder.
func programs(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	specs, _ := filepath.Glob("../../../configs/filters/*.yaml")
	args := append([]string{"compile", "--out-dir", dir}, specs...)
	code, out, errs := paw(t, "", args...)
	if code != 0 {
		t.Fatalf("compile exit %d\n%s\n%s", code, out, errs)
	}
	for _, want := range []string{"program real-error", "test accuracy", "precision", "confusion"} {
		if !strings.Contains(out, want) {
			t.Fatalf("compile report lacks %q:\n%s", want, out)
		}
	}
	return dir
}

func TestCLIEndToEnd(t *testing.T) {
	dir := programs(t)
	prog := filepath.Join(dir, "real-error.paw")

	code, out, errs := paw(t, "", "test", prog)
	if code != 0 || !strings.Contains(out, "PASS") {
		t.Fatalf("test: exit %d\n%s%s", code, out, errs)
	}
	code, out, _ = paw(t, "", "inspect", prog)
	if code != 0 || !strings.Contains(out, `"compiler_version"`) || !strings.Contains(out, `"spec_sha256"`) {
		t.Fatalf("inspect: exit %d\n%s", code, out)
	}

	input := "2026-01-01T00:00:00Z ERROR payment failed: upstream timeout, order lost\nGET /healthz 200 0.2ms\n"
	code, out, errs = paw(t, input, "run", prog)
	if code != 0 || !strings.Contains(out, "payment failed") || strings.Contains(out, "healthz") {
		t.Fatalf("run kept the wrong lines (exit %d):\n%s\n%s", code, out, errs)
	}
	code, out, _ = paw(t, input, "run", prog, "--json", "--keep", "benign")
	var rec map[string]any
	if code != 0 || json.Unmarshal([]byte(strings.TrimSpace(out)), &rec) != nil || rec["real-error.label"] != "benign" {
		t.Fatalf("run --json: exit %d: %s", code, out)
	}

	data := filepath.Join(t.TempDir(), "d.jsonl")
	os.WriteFile(data, []byte(`{"text": "FATAL db connection refused, shutting down", "label": "error"}
{"text": "INFO user logged in", "label": "benign"}
{"text": "kernel: Out of memory: Killed process 12", "label": "error"}
`), 0o644)
	code, out, errs = paw(t, "", "eval", prog, "--data", data, "--json")
	var rep map[string]any
	if code != 0 || json.Unmarshal([]byte(out), &rep) != nil {
		t.Fatalf("eval --json: exit %d: %s %s", code, out, errs)
	}
	requireKeys(t, "eval --json", rep, "n", "accuracy", "macro_f1", "per_label", "confusion")
	if rep["n"].(float64) != 3 {
		t.Errorf("eval n = %v, want 3", rep["n"])
	}
	pl := rep["per_label"].(map[string]any)["error"].(map[string]any)
	requireKeys(t, "per_label.error", pl, "precision", "recall", "f1", "support")

	code, out, errs = paw(t, "", "bench", prog, "--duration", "300ms", "--json")
	var b map[string]any
	if code != 0 || json.Unmarshal([]byte(out), &b) != nil {
		t.Fatalf("bench: exit %d: %s %s", code, out, errs)
	}
	requireKeys(t, "bench --json", b, "lines_per_sec", "batch_p50_ms", "batch_p99_ms", "allocs_per_line", "threads")
	if b["lines_per_sec"].(float64) <= 0 {
		t.Errorf("bench measured no lines")
	}

	pipe := filepath.Join(t.TempDir(), "p.yaml")
	os.WriteFile(pipe, []byte("programs_dir: "+dir+"\ninput: log\nsteps:\n  - tag: {programs: [real-error, security-event]}\n  - route: {program: security-event, routes: {auth_failure: sec}, default: logs}\n"), 0o644)
	code, out, errs = paw(t, `{"log": "sshd[1]: Failed password for invalid user admin from 203.0.113.5 port 22 ssh2"}`+"\nnot json\n", "run", "--pipeline", pipe, "--json")
	if code != 0 || !strings.Contains(out, `"paw.destination":"sec"`) || !strings.Contains(errs, "line 2: record is not a JSON object") {
		t.Fatalf("pipeline run: exit %d\n%s\n%s", code, out, errs)
	}
}

func TestCLIBadInput(t *testing.T) {
	dir := programs(t)
	prog := filepath.Join(dir, "real-error.paw")
	huge := strings.Repeat("x", 1<<20)
	inputs := map[string]string{
		"empty":        "",
		"binary":       "\x00\x01\x02\xff\xfe\x7f\x00\x00",
		"invalid utf8": "ERROR \xc3\x28 failed \xff\n",
		"1MiB line":    huge + " ERROR failed\n" + "INFO ok\n",
		"no newline":   "ERROR disk failed",
	}
	for name, in := range inputs {
		t.Run(name, func(t *testing.T) {
			code, _, errs := paw(t, in, "run", prog, "--json", "--keep", "error")
			if code != 0 {
				t.Fatalf("exit %d: %s", code, errs)
			}
			lines := strings.Count(in, "\n")
			if len(in) > 0 && !strings.HasSuffix(in, "\n") {
				lines++
			}
			if want := "paw run: " + itoa(lines) + " records"; !strings.Contains(errs, want) {
				t.Fatalf("stderr %q does not account for %d records", errs, lines)
			}
		})
	}

	// Refusals: a corrupt program, a bad spec, an unknown command.
	bad := filepath.Join(t.TempDir(), "bad.paw")
	os.WriteFile(bad, []byte("PK\x03\x04 not really"), 0o644)
	if code, _, errs := paw(t, "", "run", bad); code != 1 || !strings.Contains(errs, "invalid artifact") {
		t.Fatalf("corrupt program: exit %d: %s", code, errs)
	}
	spec := filepath.Join(t.TempDir(), "s.yaml")
	os.WriteFile(spec, []byte("name: x\nlabels: [a, b\n"), 0o644)
	if code, _, errs := paw(t, "", "compile", spec, "-o", filepath.Join(t.TempDir(), "x.paw")); code != 1 || !strings.Contains(errs, spec+":") {
		t.Fatalf("bad spec: exit %d: %s", code, errs)
	}
	// Errors that say what to do.
	plain := filepath.Join(t.TempDir(), "plain.txt")
	os.WriteFile(plain, []byte("not json\n"), 0o644)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"eval", prog, "--data", plain}, "--data takes JSON lines"},
		{[]string{"run", "../../../configs/filters/noise.yaml"}, "this is a spec: compile it first, paw compile"},
		{[]string{"run", prog, "--ort-lib", "/bin/true"}, "onnx runtime"},
	} {
		if code, _, errs := paw(t, "", tc.args...); code == 0 || !strings.Contains(errs, tc.want) {
			t.Errorf("paw %v: exit %d: %s", tc.args, code, errs)
		}
	}
	// A label the program lacks, given as a flag: an error, not a panic.
	if code, _, errs := paw(t, "ERROR x\n", "run", prog, "--keep", "nope"); code != 1 || !strings.Contains(errs, `program real-error has no label "nope"`) {
		t.Fatalf("--keep nope: exit %d: %s", code, errs)
	}
	if code, _, _ := paw(t, "", "frobnicate"); code != 2 {
		t.Fatalf("unknown command: exit %d, want 2", code)
	}
	if code, _, _ := paw(t, "", "compile"); code != 2 {
		t.Fatalf("compile without spec: exit %d, want 2", code)
	}
}

func requireKeys(t *testing.T, what string, m map[string]any, keys ...string) {
	t.Helper()
	for _, k := range keys {
		if _, ok := m[k]; !ok {
			t.Errorf("%s lacks %q", what, k)
		}
	}
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}

// A spec of label descriptions alone: the report says what its keywords
// are and that they decide, and paw run keeps what they call an error.
func TestCLIDescribedSpec(t *testing.T) {
	dir := t.TempDir()
	spec := filepath.Join(dir, "errs.yaml")
	if err := os.WriteFile(spec, []byte(`name: errs
description: Is this log line a real error?
labels:
  error: a failure, crash, exception, or lost connection
  benign: routine or successful events
positive: error
`), 0o644); err != nil {
		t.Fatal(err)
	}
	prog := filepath.Join(dir, "errs.paw")
	code, out, errs := paw(t, "", "compile", "-o", prog, spec)
	if code != 0 {
		t.Fatalf("compile exit %d\n%s%s", code, out, errs)
	}
	for _, want := range []string{
		"keywords  error 6 phrases (in 50% of its lines, 5% of others'), benign 4 phrases (in 20% of its lines, 5% of others')",
		"no examples: the keywords decide every line",
	} {
		if !strings.Contains(out, want) {
			t.Fatalf("compile report lacks %q:\n%s", want, out)
		}
	}
	in := "2026-01-01 ERROR worker CRASHED, connection lost\nbackup finished successfully\nuser logged in\njava.io.IOException: stream closed\n"
	code, out, errs = paw(t, in, "run", prog)
	if code != 0 || out != "2026-01-01 ERROR worker CRASHED, connection lost\njava.io.IOException: stream closed\n" {
		t.Fatalf("run exit %d, kept:\n%s%s", code, out, errs)
	}
}
