package replay

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/pawlogs/paw/compiler"
	"github.com/pawlogs/paw/runtime"
	"github.com/pawlogs/paw/teacher"
	"github.com/pawlogs/paw/teacher/teachertest"
)

// A stream whose later half holds a kind of error the examples never
// showed: the frozen program misses it, the cascade asks the teacher once
// per template, and the loop learns it.
func TestReplayLearns(t *testing.T) {
	env, err := runtime.OpenEnv("")
	if err != nil {
		t.Fatal(err)
	}
	defer env.Close()
	spec := func() *compiler.Spec {
		s := &compiler.Spec{Name: "errs", Description: "real errors", Labels: []string{"error", "ok"}, Positive: "error"}
		for i := 0; i < 8; i++ {
			s.Examples = append(s.Examples,
				compiler.Example{Text: fmt.Sprintf("ERROR request %d failed with exception timeout", i), Label: "error"},
				compiler.Example{Text: fmt.Sprintf("INFO request %d completed in %dms", i, i*7), Label: "ok"})
		}
		return s
	}
	var stream []Record
	for i := 0; i < 600; i++ {
		switch i % 4 {
		case 0:
			stream = append(stream, Record{fmt.Sprintf("ERROR request %d failed with exception timeout", 100+i), "error"})
		case 1:
			stream = append(stream, Record{fmt.Sprintf("INFO request %d completed in %dms", 100+i, i), "ok"})
		case 2:
			stream = append(stream, Record{fmt.Sprintf("kernel: Out of memory: Killed process %d (java) total-vm:%dkB", i, i*9), "error"})
		default:
			stream = append(stream, Record{fmt.Sprintf("cron[%d]: session opened for user root by (uid=0)", i), "ok"})
		}
	}
	rule := func(line string) string {
		if strings.Contains(line, "failed") || strings.Contains(line, "Killed") {
			return "error"
		}
		return "ok"
	}
	ts := teachertest.NewServer(t, rule)
	run := func(tc teacher.Config, learn int) *Report {
		r, err := Run(context.Background(), Config{Spec: spec(), Env: env, Teacher: tc, LearnEvery: learn}, stream)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%+v", *r)
		return r
	}
	tc := teacher.Config{Endpoint: teacher.Endpoint{BaseURL: ts.BaseURL(), Model: teachertest.Model}}
	frozen, cascade, loop := run(teacher.Config{}, 0), run(tc, 0), run(tc, 2)
	if frozen.TeacherCalls != 0 || cascade.TeacherCalls == 0 || cascade.TeacherCalls > cascade.Templates {
		t.Fatalf("calls: frozen %d, cascade %d for %d templates", frozen.TeacherCalls, cascade.TeacherCalls, cascade.Templates)
	}
	if !(cascade.F1 > frozen.F1) || loop.Recompiles == 0 || !(loop.F1ProgramLastQuarter > frozen.F1ProgramLastQuarter) {
		t.Fatalf("f1: frozen %.3f, cascade %.3f; the loop recompiled %d times, its program's last quarter %.3f (frozen %.3f)",
			frozen.F1, cascade.F1, loop.Recompiles, loop.F1ProgramLastQuarter, frozen.F1ProgramLastQuarter)
	}
}
