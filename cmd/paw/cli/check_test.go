package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCheckFlags: `paw process --check` and `paw serve --check` validate
// and exit, contacting no broker and serving nothing, with exit 1 and a
// located error when something is wrong.
func TestCheckFlags(t *testing.T) {
	progs := programs(t)
	dir := t.TempDir()
	write := func(name, data string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	write("good.yaml", "programs_dir: "+progs+"\ninput: log\nsteps:\n  - filter: {program: real-error, keep: [error]}\n")
	write("badlabel.yaml", "programs_dir: "+progs+"\nsteps:\n  - filter: {program: real-error, keep: [nope]}\n")
	// The broker is a closed port: --check must not need it.
	proc := func(pipeline string) string {
		return write("proc-"+pipeline, "brokers: [127.0.0.1:1]\ngroup_id: g\ntopics: [in]\npipeline: "+pipeline+"\noutput_topic: out\ndlq_topic: dlq\n")
	}
	specs := t.TempDir()
	os.WriteFile(filepath.Join(specs, "bad.yaml"), []byte("name: x\nlabels: [a, b\n"), 0o644)
	tests := []struct {
		name string
		args []string
		code int
		want string // in stdout when code is 0, in stderr otherwise
	}{
		{"process ok", []string{"process", "--config", proc("good.yaml"), "--check"}, 0, "pipeline " + filepath.Join(dir, "good.yaml") + ": steps 1, programs real-error "},
		{"process bad label", []string{"process", "--config", proc("badlabel.yaml"), "--check"}, 1, "badlabel.yaml:3:"},
		{"process bad config", []string{"process", "--config", write("broken.yaml", "brokers: [a\n"), "--check"}, 1, "broken.yaml:"},
		{"serve ok", []string{"serve", "--check", "--specs", "../../../configs/filters", "--programs", progs}, 0, "ok: 3 specs (noise, real-error, security-event)"},
		{"serve bad spec", []string{"serve", "--check", "--specs", specs, "--programs", progs}, 1, "bad.yaml:2:"},
		{"serve no folder", []string{"serve", "--check", "--specs", filepath.Join(dir, "none"), "--programs", progs}, 1, "specs folder"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errs := paw(t, "", tc.args...)
			got := out
			if tc.code != 0 {
				got = errs
			}
			if code != tc.code || !strings.Contains(got, tc.want) {
				t.Fatalf("exit %d, want %d; want %q in\n%s\nstderr:\n%s", code, tc.code, tc.want, out, errs)
			}
		})
	}
}
