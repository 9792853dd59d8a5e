package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pawlogs/paw/runtime/encodertest"
)

const encoderSpecYAML = `name: enc-errors
description: Is this log line a real error?
labels: [error, ok]
positive: error
interpreter: encoder-v1
encoder: {name: tiny, dir: encoders, max_tokens: 64, normalize: true}
examples:
  - {label: error, text: "connection to db failed"}
  - {label: error, text: "request timed out"}
  - {label: error, text: "disk is corrupt"}
  - {label: error, text: "worker crashed"}
  - {label: error, text: "login denied for user"}
  - {label: error, text: "fatal exception in job"}
  - {label: ok, text: "job finished"}
  - {label: ok, text: "user login ok"}
  - {label: ok, text: "connection accepted"}
  - {label: ok, text: "cache loaded"}
  - {label: ok, text: "server started"}
  - {label: ok, text: "request completed"}
`

func TestCLIEncoderV1(t *testing.T) {
	dir := t.TempDir()
	if _, err := encodertest.Write(filepath.Join(dir, "encoders", "tiny"), encodertest.Options{Seed: 9}); err != nil {
		t.Fatal(err)
	}
	spec := filepath.Join(dir, "enc.yaml")
	if err := os.WriteFile(spec, []byte(encoderSpecYAML), 0o644); err != nil {
		t.Fatal(err)
	}
	prog := filepath.Join(dir, "enc-errors.paw")
	code, out, errs := paw(t, "", "compile", spec, "-o", prog)
	if code != 0 || !strings.Contains(out, "encoder-v1") || !strings.Contains(out, "tiny") {
		t.Fatalf("compile: exit %d\n%s\n%s", code, out, errs)
	}
	t.Setenv("PAW_ENCODERS", filepath.Join(dir, "encoders"))
	code, out, errs = paw(t, "connection to db failed\njob finished\n", "run", prog)
	if code != 0 || !strings.Contains(out, "connection to db failed") || strings.Contains(out, "job finished") {
		t.Fatalf("run: exit %d\n%s\n%s", code, out, errs)
	}
	// A different encoder under the same name is refused, with the reason.
	if _, err := encodertest.Write(filepath.Join(dir, "encoders", "tiny"), encodertest.Options{Seed: 10}); err != nil {
		t.Fatal(err)
	}
	code, _, errs = paw(t, "job finished\n", "run", prog)
	if code == 0 || !strings.Contains(errs, "refusing a different encoder") {
		t.Fatalf("run on another encoder: exit %d\n%s", code, errs)
	}
}
