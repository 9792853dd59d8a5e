package sidecar

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/pawlogs/paw/compiler"
	"github.com/pawlogs/paw/internal/answerlog"
	"github.com/pawlogs/paw/metrics"
	"github.com/pawlogs/paw/runtime"
)

// learner keeps each program's answer log (the labels the teacher or a
// person gave to lines it escalated) and says when enough new ones have
// come for the program to be compiled again with them.
type learner struct {
	logs     *answerlog.Dir
	minNew   int
	interval time.Duration

	mu   sync.Mutex
	used map[string]int                   // answers the published program was compiled with
	last map[string]time.Time             // when the program last learned
	spec map[string]*compiler.LearnConfig // a spec's own learn settings
}

func newLearner(cfg Config) *learner {
	return &learner{logs: answerlog.NewDir(cfg.AnswersDir), minNew: cfg.LearnMinAnswers, interval: cfg.LearnInterval,
		used: map[string]int{}, last: map[string]time.Time{}, spec: map[string]*compiler.LearnConfig{}}
}

// log opens a program's log; name is a spec's validated slug.
func (l *learner) log(name string) (*answerlog.Log, error) { return l.logs.Log(name) }

// setSpec notes a spec's learn settings.
func (l *learner) setSpec(name string, c *compiler.LearnConfig) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.spec[name] = c
}

// answers is what a compile of the program learns from; it notes how many.
func (l *learner) answers(name string) []compiler.Answer {
	lg, err := l.log(name)
	if err != nil {
		return nil
	}
	all := lg.All()
	l.mu.Lock()
	l.used[name], l.last[name] = len(all), time.Now()
	l.mu.Unlock()
	return all
}

// due reports whether the program should learn now.
func (l *learner) due(name string, total int) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	minNew, interval := l.minNew, l.interval
	if c := l.spec[name]; c != nil {
		if c.MinNewAnswers > 0 {
			minNew = c.MinNewAnswers
		}
		if c.Interval > 0 {
			interval = c.Interval
		}
	}
	return total-l.used[name] >= minNew && time.Since(l.last[name]) >= interval
}

func (l *learner) close() { l.logs.Close() }

// takeAnswers logs the teacher answers a report carries, under their
// programs, and starts the recompiles that are due; it returns how many it
// refused (an unpublished program, or a label the program lacks).
func (b *builder) takeAnswers(in []metrics.ReportAnswer) (refused int) {
	byProgram := map[string][]compiler.Answer{}
	now := time.Now().UTC()
	for _, a := range in {
		_, labels, _, ok := b.publishedProgram(a.Program)
		if !ok || !slices.Contains(labels, a.Label) {
			refused++
			continue
		}
		byProgram[a.Program] = append(byProgram[a.Program], answerlog.NewAnswer(a.Line, a.Label, compiler.ByModel, a.ProgramID, now))
	}
	for _, name := range slices.Sorted(maps.Keys(byProgram)) {
		lg, err := b.learn.log(name)
		if err == nil {
			err = lg.Append(byProgram[name]...)
		}
		if err != nil {
			b.log.Error("answers from a report not logged", "program", name, "err", err)
			refused += len(byProgram[name])
			continue
		}
		if b.learn.due(name, lg.Len()) {
			if file, _, _, ok := b.publishedProgram(name); ok {
				b.trigger(b.ctx(), file)
			}
		}
	}
	return refused
}

// answerRequest is POST /v1/programs/{name}/answers.
type answerRequest struct {
	Answers []struct {
		Line  string `json:"line"`
		Label string `json:"label"`
		// By is model (a teacher) or person. Default: person.
		By string `json:"by"`
	} `json:"answers"`
}

// maxAnswersPerRequest bounds one request.
const maxAnswersPerRequest = 10000

// answersHandler takes answers for a published program into its log, and
// starts a recompile when enough have come.
func answersHandler(cfg Config, b *builder) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		name := r.PathValue("name")
		file, labels, id, ok := b.publishedProgram(name)
		if !ok {
			writeError(w, http.StatusNotFound, APIError{Error: fmt.Sprintf("no published program %q", name)})
			return
		}
		var req answerRequest
		dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, cfg.MaxBodyBytes))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				writeError(w, http.StatusRequestEntityTooLarge, APIError{Error: "answers too large"})
				return
			}
			writeError(w, http.StatusBadRequest, APIError{Error: "answers: " + err.Error()})
			return
		}
		if len(req.Answers) == 0 || len(req.Answers) > maxAnswersPerRequest {
			writeError(w, http.StatusUnprocessableEntity, APIError{Error: fmt.Sprintf("send 1 to %d answers", maxAnswersPerRequest)})
			return
		}
		now := time.Now().UTC()
		as := make([]compiler.Answer, len(req.Answers))
		for i, a := range req.Answers {
			by := a.By
			if by == "" {
				by = compiler.ByPerson
			}
			switch {
			case !slices.Contains(labels, a.Label):
				writeError(w, http.StatusUnprocessableEntity, APIError{Error: fmt.Sprintf("answer %d: label %q is not one of program %s's labels %v", i, a.Label, name, labels)})
				return
			case by != compiler.ByPerson && by != compiler.ByModel:
				writeError(w, http.StatusUnprocessableEntity, APIError{Error: fmt.Sprintf("answer %d: by %q: want person or model", i, by)})
				return
			case a.Line == "" || len(a.Line) > 64<<10:
				writeError(w, http.StatusUnprocessableEntity, APIError{Error: fmt.Sprintf("answer %d: line must be 1 to 65536 bytes", i)})
				return
			}
			as[i] = answerlog.NewAnswer(a.Line, a.Label, by, id, now)
		}
		lg, err := b.learn.log(name)
		if err == nil {
			err = lg.Append(as...)
		}
		if err != nil {
			writeError(w, http.StatusInternalServerError, APIError{Error: err.Error()})
			return
		}
		total := lg.Len()
		learning := b.learn.due(name, total)
		if learning {
			b.trigger(b.ctx(), file)
		}
		writeJSON(w, http.StatusOK, map[string]any{"accepted": len(as), "answers": total, "learning": learning})
	}
}

// answersListHandler serves GET /v1/programs/{name}/answers: the program's
// answer log, oldest first.
func answersListHandler(b *builder) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		name := r.PathValue("name")
		if _, _, _, ok := b.publishedProgram(name); !ok {
			writeError(w, http.StatusNotFound, APIError{Error: fmt.Sprintf("no published program %q", name)})
			return
		}
		lg, err := b.learn.log(name)
		if err != nil {
			writeError(w, http.StatusInternalServerError, APIError{Error: err.Error()})
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"program": name, "answers": lg.All()})
	}
}

// holdoutAnswers splits answers for a learned compile: by masked template,
// sorted, every fifth one (once there are ten templates) is held out, to
// check that learning did not make the program worse on answers it did
// not train on.
func holdoutAnswers(as []compiler.Answer) (train, held []compiler.Answer) {
	byKey := map[string][]compiler.Answer{}
	for _, a := range as {
		k := runtime.Normalize([]byte(a.Line), runtime.DefaultMaxBytes)
		byKey[k] = append(byKey[k], a)
	}
	keys := slices.Sorted(maps.Keys(byKey))
	for i, k := range keys {
		if len(keys) >= 10 && i%5 == 4 {
			held = append(held, byKey[k]...)
		} else {
			train = append(train, byKey[k]...)
		}
	}
	return train, held
}

// errLearnedWorse refuses a learned program that does worse than the
// published one on the held-out answers.
var errLearnedWorse = errors.New("the learned program does worse on held-out answers")

// checkLearned compares a learned program with the published one on the
// held-out answers, each counted as the truth for its line. hashnet-v1
// programs are scored in Go; encoder-v1 ones, which need their encoder,
// through ONNX Runtime (encoders is the folder of the spec's encoder).
func checkLearned(res *compiler.Result, published []byte, held []compiler.Answer, encoders string) error {
	if len(held) == 0 || published == nil {
		return nil
	}
	old, err := runtime.DecodeArtifact(published)
	if err != nil || !slices.Equal(old.Manifest.Labels, res.Manifest.Labels) || old.Manifest.Interpreter != res.Manifest.Interpreter {
		return nil // another interpreter or other labels: nothing to compare
	}
	var before, after float64
	if res.Weights != nil {
		og, err := runtime.ReadHashnet(old)
		if err != nil {
			return nil
		}
		learned, err := runtime.DecodeArtifact(res.Artifact)
		if err != nil {
			return fmt.Errorf("decode the learned program: %w", err)
		}
		published := func(f *runtime.Features, probs []float32) { og.Forward(f.IDs[:f.Len], f.Weights[:f.Len], probs) }
		before, after = hashnetAccuracy(published, old, held), hashnetAccuracy(res.Weights.Forward, learned, held)
	} else {
		if before, err = runAccuracy(published, encoders, held); err != nil {
			return fmt.Errorf("score the published program on held-out answers: %w", err)
		}
		if after, err = runAccuracy(res.Artifact, encoders, held); err != nil {
			return fmt.Errorf("score the learned program on held-out answers: %w", err)
		}
	}
	if after < before {
		return fmt.Errorf("%w: %.4f against the published program's %.4f on %d answers; the published program stays", errLearnedWorse, after, before, len(held))
	}
	return nil
}

// hashnetAccuracy scores a hashnet-v1 program a in Go, its keywords
// included: forward is the published graph's reference, or the learned
// weights' own forward pass.
func hashnetAccuracy(forward func(f *runtime.Features, probs []float32), a *runtime.Artifact, held []compiler.Answer) float64 {
	m := a.Manifest
	feat, err := runtime.NewFeaturizer(m.Featurizer)
	if err != nil {
		return 0
	}
	judge, err := runtime.NewJudge(a)
	if err != nil {
		return 0
	}
	f := feat.NewFeatures()
	probs := make([]float32, len(m.Labels))
	right := 0
	for _, ans := range held {
		feat.Featurize([]byte(ans.Line), &f)
		forward(&f, probs)
		if judge != nil {
			judge.Judge([]byte(ans.Line), &f, probs)
		}
		if best, _ := runtime.Decide(probs); m.Labels[best] == ans.Label {
			right++
		}
	}
	return float64(right) / float64(len(held))
}

// runAccuracy runs a program as a data plane would, through ONNX Runtime.
func runAccuracy(artifact []byte, encoders string, held []compiler.Answer) (float64, error) {
	a, err := runtime.DecodeArtifact(artifact)
	if err != nil {
		return 0, err
	}
	env, err := runtime.OpenEnv("")
	if err != nil {
		return 0, err
	}
	defer env.Close()
	p, err := runtime.NewProgram(env, a, runtime.ProgramOptions{EncoderDir: encoders})
	if err != nil {
		return 0, err
	}
	defer p.Close()
	set, err := runtime.NewProgramSet(p)
	if err != nil {
		return 0, err
	}
	b, err := runtime.NewBatcher(set, runtime.BatcherConfig{TemplateCache: -1})
	if err != nil {
		return 0, err
	}
	defer b.Close()
	texts := make([][]byte, len(held))
	for i, h := range held {
		texts[i] = []byte(h.Line)
	}
	results, err := b.Classify(context.Background(), texts...)
	if err != nil {
		return 0, err
	}
	right := 0
	for i, r := range results {
		if r.Decisions[0].Label == held[i].Label {
			right++
		}
	}
	return float64(right) / float64(len(held)), nil
}
