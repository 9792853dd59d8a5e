package cli

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pawlogs/paw/internal/replay"
	"github.com/pawlogs/paw/teacher/teachertest"
)

func TestReplayCommand(t *testing.T) {
	dir := t.TempDir()
	var data strings.Builder
	for i := 0; i < 200; i++ {
		text, label := fmt.Sprintf("kernel: Out of memory: Killed process %d (java)", i), "error"
		if i%2 == 1 {
			text, label = fmt.Sprintf("cron[%d]: session opened for user root", i), "benign"
		}
		fmt.Fprintf(&data, "{\"text\": %q, \"label\": %q}\n", text, label)
	}
	path := filepath.Join(dir, "d.jsonl")
	os.WriteFile(path, []byte(data.String()), 0o644)
	ts := teachertest.NewServer(t, func(line string) string {
		if strings.Contains(line, "Killed") {
			return "error"
		}
		return "benign"
	})
	code, out, errs := paw(t, "", "replay", "../../../configs/filters/real-error.yaml", "--data", path, "--teacher-url", ts.BaseURL(), "--teacher-model", teachertest.Model, "--json")
	var rep replay.Report
	if code != 0 || json.Unmarshal([]byte(out), &rep) != nil {
		t.Fatalf("exit %d\n%s\n%s", code, out, errs)
	}
	if rep.N != 200 || rep.Templates != 2 || rep.TeacherCalls > 2 || rep.F1 < 0.99 || !strings.Contains(errs, "paw replay: 200 of 200 records") {
		t.Fatalf("report %+v\n%s", rep, errs)
	}
}
