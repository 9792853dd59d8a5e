package cli

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"math/rand/v2"
	"os"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/pawlogs/paw/compiler"
	"github.com/pawlogs/paw/runtime"
)

// qrow is one line of the labelled Loghub data (../shared/data/labeled).
type qrow struct {
	System string  `json:"system"`
	Text   string  `json:"text"`
	Level  *string `json:"level"`
	Label  string  `json:"label"`
}

var keywordRE = regexp.MustCompile(`(?i)error|fail|fatal|exception`)

// levelSaysError is the Level-field baseline of the data README:
// ERROR-or-worse severities predict "error".
func levelSaysError(level *string) bool {
	if level == nil {
		return false
	}
	switch strings.ToUpper(*level) {
	case "ERROR", "FATAL", "SEVERE", "CRITICAL", "CRIT", "ALERT", "EMERG", "E", "F", "A":
		return true
	}
	return false
}

// f1 of the positive class.
type f1count struct{ tp, fp, fn int }

func (c *f1count) add(pred, gold bool) {
	switch {
	case pred && gold:
		c.tp++
	case pred && !gold:
		c.fp++
	case !pred && gold:
		c.fn++
	}
}

func (c f1count) f1() float64 {
	if 2*c.tp+c.fp+c.fn == 0 {
		return 0
	}
	return 2 * float64(c.tp) / float64(2*c.tp+c.fp+c.fn)
}

func runQuality(e *env, args []string) error {
	fset := newFlags(e, "quality")
	rf := addRuntimeFlags(fset)
	data := fset.String("data", "../shared/data/labeled/real-error.jsonl", "labelled Loghub JSONL")
	seeds := fset.Int("seeds", 5, "random seeds per system")
	perLabel := fset.Int("per-label", 16, "examples per label")
	minErrors := fset.Int("min-errors", 50, "systems need this many error lines")
	if _, err := parse(fset, args); err != nil {
		return err
	}
	rows, err := readQualityRows(*data)
	if errors.Is(err, fs.ErrNotExist) {
		fmt.Fprintf(e.stdout, "SKIP quality: %s not found (it lives in ../shared, absent from a fresh clone)\n", *data)
		return nil
	}
	if err != nil {
		return err
	}
	bySys := map[string][]qrow{}
	for _, r := range rows {
		bySys[r.System] = append(bySys[r.System], r)
	}
	var systems []string
	for s, rs := range bySys {
		n := 0
		for _, r := range rs {
			if r.Label == "error" {
				n++
			}
		}
		if n >= *minErrors {
			systems = append(systems, s)
		}
	}
	sort.Strings(systems)
	opts, err := rf.options()
	if err != nil {
		return err
	}
	ort, err := runtime.OpenEnv(rf.ortLib)
	if err != nil {
		return err
	}
	defer ort.Close()
	q := &quality{e: e, ort: ort, opts: opts, perLabel: *perLabel, chunk: rf.maxBatch}

	fmt.Fprintf(e.stdout, "few-shot real-error: %d examples per label, %d seeds, F1 of \"error\" on the rest of each system (ONNX Runtime)\n", *perLabel, *seeds)
	fmt.Fprintf(e.stdout, "%-10s %6s %6s  %-15s %8s %8s %7s %9s\n", "system", "train", "eval", "paw F1 (sd)", "level", "keyword", "ECE", "compile")
	var sumPaw, sumLevel, sumKw, sumECE float64
	for _, sys := range systems {
		var f1s []float64
		var level, kw, cal float64
		var took time.Duration
		var nEval int
		for seed := 1; seed <= *seeds; seed++ {
			train, eval := splitFewShot(bySys[sys], *perLabel, uint64(seed))
			r, err := q.score(train, eval, uint64(seed))
			if err != nil {
				return fmt.Errorf("%s seed %d: %w", sys, seed, err)
			}
			f1s = append(f1s, r.paw)
			level += r.level / float64(*seeds)
			kw += r.keyword / float64(*seeds)
			cal += r.ece / float64(*seeds)
			took += r.compile
			nEval = len(eval)
		}
		mean, sd := meanSD(f1s)
		sumPaw += mean
		sumLevel += level
		sumKw += kw
		sumECE += cal
		fmt.Fprintf(e.stdout, "%-10s %6d %6d  %.4f (%.3f)  %8.4f %8.4f %7.4f %8.2fs\n", sys, 2**perLabel, nEval, mean, sd, level, kw, cal, took.Seconds()/float64(*seeds))
	}
	n := float64(len(systems))
	fmt.Fprintf(e.stdout, "%-10s %6s %6s  %.4f          %8.4f %8.4f %7.4f\n", "MEAN", "", "", sumPaw/n, sumLevel/n, sumKw/n, sumECE/n)

	// Cross-system: examples from half of the systems, evaluation on the
	// other half (alternating in sorted order), both ways.
	var a, b []string
	for i, s := range systems {
		if i%2 == 0 {
			a = append(a, s)
		} else {
			b = append(b, s)
		}
	}
	fmt.Fprintf(e.stdout, "\ncross-system: %d examples per label from each training system, F1 of \"error\" on all lines of the others\n", *perLabel)
	for _, dir := range [][2][]string{{a, b}, {b, a}} {
		var f1s, levels, kws []float64
		for seed := 1; seed <= *seeds; seed++ {
			var train, eval []qrow
			for _, s := range dir[0] {
				t, _ := splitFewShot(bySys[s], *perLabel, uint64(seed))
				train = append(train, t...)
			}
			for _, s := range dir[1] {
				eval = append(eval, bySys[s]...)
			}
			r, err := q.score(train, eval, uint64(seed))
			if err != nil {
				return err
			}
			f1s, levels, kws = append(f1s, r.paw), append(levels, r.level), append(kws, r.keyword)
		}
		m, sd := meanSD(f1s)
		lm, _ := meanSD(levels)
		km, _ := meanSD(kws)
		fmt.Fprintf(e.stdout, "train %-28s eval %-28s paw F1 %.4f (sd %.3f)  level %.4f  keyword %.4f\n", strings.Join(dir[0], ","), strings.Join(dir[1], ","), m, sd, lm, km)
	}
	return nil
}

type quality struct {
	e        *env
	ort      *runtime.Env
	opts     runtime.PipelineOptions
	perLabel int
	chunk    int
}

type qresult struct {
	paw, level, keyword float64
	ece                 float64 // expected calibration error of paw's scores
	compile             time.Duration
}

// ece bins predictions by confidence (10 bins) and averages |accuracy -
// confidence| weighted by bin size: 0 means a 0.9 is right 90% of the time.
func ece(conf []float32, correct []bool) float64 {
	var n, hit [10]int
	var sum [10]float64
	for i, c := range conf {
		b := min(int(c*10), 9)
		n[b]++
		sum[b] += float64(c)
		if correct[i] {
			hit[b]++
		}
	}
	var e float64
	for b := range n {
		if n[b] > 0 {
			e += math.Abs(float64(hit[b])/float64(n[b])-sum[b]/float64(n[b])) * float64(n[b]) / float64(len(conf))
		}
	}
	return e
}

// score compiles a spec from train, runs it through ONNX Runtime on eval,
// and scores the two baselines on the same lines.
func (q *quality) score(train, eval []qrow, seed uint64) (qresult, error) {
	spec := &compiler.Spec{
		Name:        "real-error",
		Description: "Is this log line a real error that an on-call engineer should look at?",
		Labels:      []string{"error", "benign"},
		Positive:    "error",
		Interpreter: runtime.InterpreterHashnetV1,
		Options:     compiler.Options{Seed: seed},
	}
	for _, r := range train {
		spec.Examples = append(spec.Examples, compiler.Example{Text: r.Text, Label: r.Label})
	}
	start := time.Now()
	res, err := compiler.Compile(q.e.ctx, spec, nil)
	if err != nil {
		return qresult{}, err
	}
	took := time.Since(start)
	art, err := runtime.DecodeArtifact(res.Artifact)
	if err != nil {
		return qresult{}, err
	}
	pl, err := singlePipeline(q.ort, art, q.opts, nil, tagAll)
	if err != nil {
		return qresult{}, err
	}
	defer pl.Close()
	texts := make([][]byte, len(eval))
	for i, r := range eval {
		texts[i] = []byte(r.Text)
	}
	outs, err := processParallel(q.e.ctx, pl, texts, q.chunk)
	if err != nil {
		return qresult{}, err
	}
	var paw, level, kw f1count
	confs := make([]float32, len(eval))
	correct := make([]bool, len(eval))
	for i, r := range eval {
		gold := r.Label == "error"
		confs[i], correct[i] = outs[i].Tags[0].Score, outs[i].Tags[0].Label == r.Label
		paw.add(outs[i].Tags[0].Label == "error", gold)
		level.add(levelSaysError(r.Level), gold)
		kw.add(keywordRE.MatchString(r.Text), gold)
	}
	return qresult{paw: paw.f1(), level: level.f1(), keyword: kw.f1(), ece: ece(confs, correct), compile: took}, nil
}

// splitFewShot draws perLabel seeded-random lines of each label for
// training; the rest are for evaluation.
func splitFewShot(rows []qrow, perLabel int, seed uint64) (train, eval []qrow) {
	rng := rand.New(rand.NewPCG(seed, 7))
	taken := map[string]int{}
	used := make([]bool, len(rows))
	for _, i := range rng.Perm(len(rows)) {
		if l := rows[i].Label; taken[l] < perLabel {
			taken[l]++
			used[i] = true
			train = append(train, rows[i])
		}
	}
	for i, r := range rows {
		if !used[i] {
			eval = append(eval, r)
		}
	}
	return train, eval
}

func meanSD(xs []float64) (float64, float64) {
	var m float64
	for _, x := range xs {
		m += x
	}
	m /= float64(len(xs))
	var v float64
	for _, x := range xs {
		v += (x - m) * (x - m)
	}
	return m, math.Sqrt(v / float64(len(xs)))
}

func readQualityRows(path string) ([]qrow, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var rows []qrow
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), maxDataLine)
	for line := 1; sc.Scan(); line++ {
		var r qrow
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			return nil, fmt.Errorf("%s:%d: %w", path, line, err)
		}
		rows = append(rows, r)
	}
	return rows, sc.Err()
}
