package processor

import (
	"context"
	"maps"
	"path/filepath"
	"slices"
	"time"

	"github.com/pawlogs/paw/compiler"
	"github.com/pawlogs/paw/internal/answerlog"
	"github.com/pawlogs/paw/internal/lifecycle"
)

// answersEvery is how often a standalone processor appends the teacher's
// answers to its logs; each append is synced, once per program.
const answersEvery = 2 * time.Second

// answersDir is where this processor keeps the teacher's answers: "" when
// it reports to a sidecar, which keeps them, or asks no teacher.
func (p *Processor) answersDir() string {
	if p.cfg.Report.URL != "" || len(p.pl.TeacherCounts()) == 0 {
		return ""
	}
	if p.cfg.AnswersDir != "" {
		return p.cfg.resolve(p.cfg.AnswersDir)
	}
	return filepath.Join(p.pl.Config().Dir(), ".answers")
}

// keepAnswers appends the teacher's answers to each program's answer log
// in dir every answersEvery, and once more when ctx ends (after the
// drain), so a standalone processor loses none it was given.
func (p *Processor) keepAnswers(ctx context.Context, dir string) {
	logs := answerlog.NewDir(dir)
	defer logs.Close()
	save := func() {
		byProgram := map[string][]compiler.Answer{}
		now := time.Now().UTC()
		for _, a := range p.pl.TakeTeacherAnswers() {
			byProgram[a.Program] = append(byProgram[a.Program], answerlog.NewAnswer(a.Line, a.Label, compiler.ByModel, a.ProgramID, now))
		}
		for _, name := range slices.Sorted(maps.Keys(byProgram)) {
			lg, err := logs.Log(name)
			if err == nil {
				err = lg.Append(byProgram[name]...)
			}
			if err != nil {
				p.log.Error("teacher answers not kept", "program", name, "answers", len(byProgram[name]), "dir", dir, "err", err)
			}
		}
	}
	lifecycle.Every(ctx, answersEvery, save)
	save()
}
