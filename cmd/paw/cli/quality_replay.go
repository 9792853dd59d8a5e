package cli

import (
	"fmt"

	"github.com/pawlogs/paw/compiler"
	"github.com/pawlogs/paw/internal/replay"
	"github.com/pawlogs/paw/runtime"
	"github.com/pawlogs/paw/teacher"
	"github.com/pawlogs/paw/teacher/teachertest"
)

// replayQuality measures the learning loop on each system: 16 examples per
// label from the first half of its lines (file order), the second half
// replayed, with a teacher that answers from the file's labels; the full
// loop, the cascade without learning, and the frozen program side by side.
func (q *quality) replayQuality(systems []string, bySys map[string][]qrow, perLabel int) error {
	fmt.Fprintf(q.e.stdout, "\nlearning loop: %d examples per label from the first half of each system (file order), the second half replayed;\nescalate below %.2f or novelty above %.2f to a teacher answering from the labels, recompile every %d answers\n",
		perLabel, replay.DefaultBelow, replay.DefaultNovelAbove, replay.DefaultLearnEvery)
	fmt.Fprintf(q.e.stdout, "%-10s %-9s %7s %7s %9s %7s %9s %6s %7s %8s\n", "system", "mode", "f1", "program", "prog last", "calls", "templates", "calls%", "recomp", "max s")
	type sums struct{ f1, prog, last, callShare float64 }
	total := map[string]*sums{"loop": {}, "cascade": {}, "frozen": {}}
	for _, sys := range systems {
		rows := bySys[sys]
		half := len(rows) / 2
		train, _ := splitFewShot(rows[:half], perLabel, 1)
		var stream []replay.Record
		labels := map[string]string{}
		for _, r := range rows[half:] {
			stream = append(stream, replay.Record{Text: r.Text, Label: r.Label})
			labels[r.Text] = r.Label
		}
		ts := teachertest.Start(func(line string) string { return labels[line] })
		for _, mode := range []string{"loop", "cascade", "frozen"} {
			spec := &compiler.Spec{Name: "real-error", Description: "Is this log line a real error that an on-call engineer should look at?",
				Labels: []string{"error", "benign"}, Positive: "error", Interpreter: runtime.InterpreterHashnetV1, Options: compiler.Options{Seed: 1}}
			for _, r := range train {
				spec.Examples = append(spec.Examples, compiler.Example{Text: r.Text, Label: r.Label})
			}
			cfg := replay.Config{Spec: spec, Env: q.ort}
			switch mode {
			case "loop":
				cfg.Teacher, cfg.LearnEvery = teacher.Config{Endpoint: teacher.Endpoint{BaseURL: ts.BaseURL(), Model: teachertest.Model}}, replay.DefaultLearnEvery
			case "cascade":
				cfg.Teacher = teacher.Config{Endpoint: teacher.Endpoint{BaseURL: ts.BaseURL(), Model: teachertest.Model}}
			}
			r, err := replay.Run(q.e.ctx, cfg, stream)
			if err != nil {
				ts.Close()
				return fmt.Errorf("%s %s: %w", sys, mode, err)
			}
			share := float64(r.TeacherCalls) / float64(max(r.Templates, 1))
			t := total[mode]
			t.f1, t.prog, t.last, t.callShare = t.f1+r.F1, t.prog+r.F1Program, t.last+r.F1ProgramLastQuarter, t.callShare+share
			fmt.Fprintf(q.e.stdout, "%-10s %-9s %7.4f %7.4f %9.4f %7d %9d %5.1f%% %7d %8.2f\n", sys, mode, r.F1, r.F1Program, r.F1ProgramLastQuarter, r.TeacherCalls, r.Templates, 100*share, r.Recompiles, r.RecompileSeconds)
		}
		ts.Close()
	}
	n := float64(len(systems))
	for _, mode := range []string{"loop", "cascade", "frozen"} {
		t := total[mode]
		fmt.Fprintf(q.e.stdout, "%-10s %-9s %7.4f %7.4f %9.4f %7s %9s %5.1f%%\n", "MEAN", mode, t.f1/n, t.prog/n, t.last/n, "", "", 100*t.callShare/n)
	}
	return nil
}
