package cli

import (
	"context"
	"encoding/json"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestMain lets this test binary stand in for the paw binary when a
// command starts itself as a child (bench-kafka starts `paw process`).
func TestMain(m *testing.M) {
	if os.Getenv("PAW_TEST_AS_PAW") == "1" {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		code := Main(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
		stop()
		os.Exit(code)
	}
	os.Exit(m.Run())
}

func TestBenchKafkaSmoke(t *testing.T) {
	t.Setenv("PAW_TEST_AS_PAW", "1")
	dir := programs(t)
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	code, out, errs := pawdev(t, "bench-kafka", "--paw", self, "--program", filepath.Join(dir, "real-error.paw"),
		"--records", "3000", "--partitions", "2", "--rounds", "2", "--live-rate", "2000", "--live-for", "500ms", "--json")
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, out, errs)
	}
	var res []KafkaBenchResult
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if len(res) != len(benchModes)+2 {
		t.Fatalf("%d results, want %d", len(res), len(benchModes)+2)
	}
	for _, r := range res {
		if r.Mode == "filter" && len(r.RoundRecordsPerSec) != 2 {
			t.Errorf("filter: want both rounds listed, got %v", r.RoundRecordsPerSec)
		}
		if r.RecordsPerSec <= 0 || r.PeakRSSMiB <= 0 || r.Records <= 0 {
			t.Errorf("%s: %+v", r.Mode, r)
		}
		if r.Mode == "filter" && (r.Dropped == 0 || r.Output == 0 || r.Output+r.Dropped != int64(r.Records)) {
			t.Errorf("filter did not account for every record: %+v", r)
		}
	}
}

// pawdev's bench-kafka runs paw's processor: the binary named, else one it
// finds, else a clear error.
func TestPawBinary(t *testing.T) {
	if got, err := pawBinary("/opt/paw"); got != "/opt/paw" || err != nil {
		t.Fatalf("named: %q %v", got, err)
	}
	dir := t.TempDir()
	t.Setenv("PATH", dir)
	if _, err := pawBinary(""); err == nil || !strings.Contains(err.Error(), "make build") {
		t.Fatalf("none to find: %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "paw"), []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if got, err := pawBinary(""); got != filepath.Join(dir, "paw") || err != nil {
		t.Fatalf("on $PATH: %q %v", got, err)
	}
}
