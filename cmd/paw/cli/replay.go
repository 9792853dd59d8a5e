package cli

import (
	"fmt"

	"github.com/pawlogs/paw/compiler"
	"github.com/pawlogs/paw/internal/replay"
	"github.com/pawlogs/paw/runtime"
	"github.com/pawlogs/paw/teacher"
)

func runReplay(e *env, args []string) error {
	fs := newFlags(e, "replay")
	ortLib := ortLibFlag(fs)
	lf := addLabelledFlags(fs, "labelled JSONL, replayed in its order")
	data := lf.data
	teacherURL := fs.String("teacher-url", "", "OpenAI-compatible API root of the teacher (none: the frozen program)")
	teacherModel := fs.String("teacher-model", "", "the teacher's model")
	below := fs.Float64("below", replay.DefaultBelow, "escalate decisions scoring below this")
	novelAbove := fs.Float64("novel-above", replay.DefaultNovelAbove, "escalate decisions more novel than this (negative: off)")
	learnEvery := fs.Int("learn-every", replay.DefaultLearnEvery, "recompile after this many new answers (0: never, the cascade alone)")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 || *data == "" {
		return usagef("want one spec and --data")
	}
	spec, err := compiler.LoadSpec(pos[0], compiler.LoadOptions{})
	if err != nil {
		return err
	}
	rows, err := lf.read()
	if err != nil {
		return err
	}
	records := make([]replay.Record, len(rows))
	for i, r := range rows {
		records[i] = replay.Record{Text: r.text, Label: r.label}
	}
	env, err := runtime.OpenEnv(*ortLib)
	if err != nil {
		return err
	}
	defer env.Close()
	cfg := replay.Config{Spec: spec, Env: env, Below: *below, NovelAbove: *novelAbove, LearnEvery: *learnEvery,
		Progress: func(done, total, recompiles int) {
			if done%1000 < 64 || done == total {
				fmt.Fprintf(e.stderr, "paw replay: %d of %d records, %d recompiles\n", done, total, recompiles)
			}
		}}
	if *teacherURL != "" {
		cfg.Teacher = teacher.Config{Endpoint: teacher.Endpoint{BaseURL: *teacherURL, Model: *teacherModel}}
	}
	rep, err := replay.Run(e.ctx, cfg, records)
	if err != nil {
		return err
	}
	if *asJSON {
		return writeJSON(e.stdout, rep)
	}
	fmt.Fprintf(e.stdout, "%d records: f1 %.4f as emitted, %.4f by the program (%.4f over the last quarter)\n", rep.N, rep.F1, rep.F1Program, rep.F1ProgramLastQuarter)
	fmt.Fprintf(e.stdout, "%d escalated, %d teacher calls for %d templates, %d recompiles (longest %.2fs)\n", rep.Escalated, rep.TeacherCalls, rep.Templates, rep.Recompiles, rep.RecompileSeconds)
	return nil
}
