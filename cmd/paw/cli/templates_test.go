package cli

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
)

func TestTemplatesCommand(t *testing.T) {
	var in strings.Builder
	for i := 0; i < 30; i++ {
		fmt.Fprintf(&in, "ERROR request %d failed with exception timeout\n", i)
		if i%3 == 0 {
			fmt.Fprintf(&in, "INFO user u%d logged in from 10.0.0.%d\n", i, i)
		}
	}
	code, out, errs := paw(t, in.String(), "templates", "-")
	if code != 0 || !strings.Contains(out, "40 lines, 2 patterns") || !strings.Contains(out, "     30  75.0%  ERROR request <*> failed with exception timeout") {
		t.Fatalf("exit %d\n%s\n%s", code, out, errs)
	}
	code, out, _ = paw(t, in.String(), "templates", "-", "--json")
	var rep struct {
		Lines int `json:"lines"`
		Top   []templateOut
	}
	if code != 0 || json.Unmarshal([]byte(out), &rep) != nil || rep.Lines != 40 || len(rep.Top) != 2 || rep.Top[1].Count != 10 {
		t.Fatalf("--json: exit %d: %s", code, out)
	}
	code, out, _ = paw(t, in.String(), "templates", "-", "--lines-json")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	var first struct{ Line, Template, TemplateID string }
	if code != 0 || len(lines) != 40 || json.Unmarshal([]byte(lines[0]), &first) != nil || first.Line != "ERROR request 0 failed with exception timeout" {
		t.Fatalf("--lines-json: exit %d: %d lines: %s", code, len(lines), lines[0])
	}
	prog := filepath.Join(programs(t), "real-error.paw")
	code, out, errs = paw(t, in.String(), "templates", "-", "--program", prog, "--json")
	if code != 0 || json.Unmarshal([]byte(out), &rep) != nil || rep.Top[0].Label != "error" || rep.Top[1].Label != "benign" {
		t.Fatalf("--program: exit %d: %s %s", code, out, errs)
	}
}
