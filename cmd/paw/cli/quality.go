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
	"slices"
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
	loghub := fset.String("loghub", "../shared/data/loghub", "Loghub-2k folder with *_structured.csv, for the template benchmark")
	only := fset.String("only", "", "run one part: fewshot, cross (its cross-system and description-only tables), templates or replay (default: all)")
	if _, err := parse(fset, args); err != nil {
		return err
	}
	if *only == "templates" {
		return (&quality{e: e}).templateQuality(*loghub)
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
	opts, ort, err := rf.open()
	if err != nil {
		return err
	}
	defer ort.Close()
	q := &quality{e: e, ort: ort, opts: opts, perLabel: *perLabel, chunk: rf.maxBatch}
	if *only == "replay" {
		return q.replayQuality(systems, bySys, *perLabel)
	}

	if *only != "cross" {
		if err := q.fewShotTables(systems, bySys, *seeds); err != nil {
			return err
		}
	}

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
	fmt.Fprintf(e.stdout, "\ncross-system: %d examples per label from each training system, F1 of \"error\" on all lines of the others (est: at their EM-estimated base rates;\nwith descriptions, the eval lines are the spec's samples, so the compiler estimates the rates and the program's keywords weigh them);\nthe label descriptions are %q\n", *perLabel, qualityDescriptions)
	for _, dir := range [][2][]string{{a, b}, {b, a}} {
		for _, described := range []bool{false, true} {
			var f1s, ests, levels, kws, novR, novW, novA []float64
			for seed := 1; seed <= *seeds; seed++ {
				var train, eval []qrow
				for _, s := range dir[0] {
					t, _ := splitFewShot(bySys[s], *perLabel, uint64(seed))
					train = append(train, t...)
				}
				for _, s := range dir[1] {
					eval = append(eval, bySys[s]...)
				}
				r, err := q.scoreSpec(train, eval, uint64(seed), described)
				if err != nil {
					return err
				}
				f1s, ests, levels, kws = append(f1s, r.paw), append(ests, r.pawEst), append(levels, r.level), append(kws, r.keyword)
				novR, novW, novA = append(novR, r.novRight), append(novW, r.novWrong), append(novA, r.novAUC)
			}
			m, sd := meanSD(f1s)
			me, _ := meanSD(ests)
			lm, _ := meanSD(levels)
			km, _ := meanSD(kws)
			with := "examples"
			if described {
				with = "+descriptions"
			}
			nr, _ := meanSD(novR)
			nw, _ := meanSD(novW)
			na, _ := meanSD(novA)
			fmt.Fprintf(e.stdout, "train %-28s %-13s eval %-28s paw F1 %.4f (sd %.3f, min %.3f) est %.4f  level %.4f  keyword %.4f  novelty right %.3f wrong %.3f AUC(wrong) %.3f\n",
				strings.Join(dir[0], ","), with, strings.Join(dir[1], ","), m, sd, slices.Min(f1s), me, lm, km, nr, nw, na)
		}
	}

	fmt.Fprintf(e.stdout, "\ndescriptions only (no examples): F1 of \"error\" on every line of each system (est: with those lines as samples)\n")
	var sumD, sumK float64
	for _, sys := range systems {
		r, err := q.scoreSpec(nil, bySys[sys], 1, true)
		if err != nil {
			return err
		}
		sumD, sumK = sumD+r.paw, sumK+r.keyword
		fmt.Fprintf(e.stdout, "%-10s paw F1 %.4f  est %.4f  keyword %.4f\n", sys, r.paw, r.pawEst, r.keyword)
	}
	fmt.Fprintf(e.stdout, "%-10s paw F1 %.4f              keyword %.4f\n", "MEAN", sumD/float64(len(systems)), sumK/float64(len(systems)))
	if *only == "fewshot" || *only == "cross" {
		return nil
	}
	if err := q.replayQuality(systems, bySys, *perLabel); err != nil {
		return err
	}
	return q.templateQuality(*loghub)
}

// fewShotTables prints the few-shot tables, without descriptions and
// with them.
func (q *quality) fewShotTables(systems []string, bySys map[string][]qrow, seeds int) error {
	fmt.Fprintf(q.e.stdout, "few-shot real-error: %d examples per label, %d seeds, F1 of \"error\" on the rest of each system (ONNX Runtime)\n", q.perLabel, seeds)
	fmt.Fprintf(q.e.stdout, "paw F1 at the balanced training mix, and at each system's own base rates estimated by EM from paw's scores of the unlabelled eval lines (est);\nmin is the worst seed; ECE (10 bins) at each; AUC of P(error)\n")
	if err := q.fewShotTable(systems, bySys, seeds, false); err != nil {
		return err
	}
	fmt.Fprintf(q.e.stdout, "\nthe same, each spec describing its labels (est: the eval lines are its samples)\n")
	return q.fewShotTable(systems, bySys, seeds, true)
}

// fewShotTable prints each system's few-shot scores, its specs
// describing their labels or not.
func (q *quality) fewShotTable(systems []string, bySys map[string][]qrow, seeds int, described bool) error {
	fmt.Fprintf(q.e.stdout, "%-10s %5s %5s  %-14s %-21s %6s %6s %6s %7s %7s %7s %8s\n", "system", "train", "eval", "paw F1 (sd)", "paw F1 est (sd, min)", "rate", "est", "AUC", "ECE", "ECE est", "level", "keyword")
	var sumPaw, sumEst, sumLevel, sumKw, sumECE, sumECEEst, sumAUC float64
	worst := 1.0
	for _, sys := range systems {
		var f1s, ests []float64
		var level, kw, cal, calEst, rate, area float64
		var nEval, nErr int
		for seed := 1; seed <= seeds; seed++ {
			train, eval := splitFewShot(bySys[sys], q.perLabel, uint64(seed))
			r, err := q.scoreSpec(train, eval, uint64(seed), described)
			if err != nil {
				return fmt.Errorf("%s seed %d: %w", sys, seed, err)
			}
			f1s, ests = append(f1s, r.paw), append(ests, r.pawEst)
			k := float64(seeds)
			level += r.level / k
			kw += r.keyword / k
			cal += r.ece / k
			calEst += r.eceEst / k
			rate += r.rateEst / k
			area += r.auc / k
			nEval, nErr = len(eval), 0
			for _, x := range eval {
				if x.Label == "error" {
					nErr++
				}
			}
		}
		mean, sd := meanSD(f1s)
		me, sde := meanSD(ests)
		lo := slices.Min(ests)
		worst = min(worst, lo)
		sumPaw, sumEst, sumLevel, sumKw, sumECE, sumECEEst, sumAUC = sumPaw+mean, sumEst+me, sumLevel+level, sumKw+kw, sumECE+cal, sumECEEst+calEst, sumAUC+area
		fmt.Fprintf(q.e.stdout, "%-10s %5d %5d  %.4f (%.3f) %.4f (%.3f, %.3f) %6.3f %6.3f %6.3f %7.4f %7.4f %7.4f %8.4f\n", sys, 2*q.perLabel, nEval, mean, sd, me, sde, lo,
			float64(nErr)/float64(nEval), rate, area, cal, calEst, level, kw)
	}
	n := float64(len(systems))
	fmt.Fprintf(q.e.stdout, "%-10s %5s %5s  %.4f         %.4f (min %.3f)   %6s %6s %6.3f %7.4f %7.4f %7.4f %8.4f\n", "MEAN", "", "", sumPaw/n, sumEst/n, worst, "", "", sumAUC/n, sumECE/n, sumECEEst/n, sumLevel/n, sumKw/n)
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
	// At the eval lines' own base rates, estimated by EM from paw's
	// posteriors (the lines' labels unseen): F1, ECE and the rate found.
	pawEst, eceEst, rateEst float64
	auc                     float64 // ranking by P(error), prior-free
	// Novelty of right and wrong decisions (at the estimated rates), and
	// the AUC of novelty for "the decision is wrong".
	novRight, novWrong, novAUC float64
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

// qualityDescriptions are the label descriptions of the issue that asked
// for them, written before any measurement: the words an on-call engineer
// would use, not Loghub's.
var qualityDescriptions = map[string]string{
	"error":  "a failure, crash, exception, timeout, refused or lost connection, or data at risk",
	"benign": "routine, informational, successful or already-recovered events",
}

// scoreSpec compiles a spec from train (with the label descriptions when
// described), runs it through ONNX Runtime on eval, and scores the two
// baselines on the same lines.
func (q *quality) scoreSpec(train, eval []qrow, seed uint64, described bool) (qresult, error) {
	spec := &compiler.Spec{
		Name:        "real-error",
		Description: "Is this log line a real error that an on-call engineer should look at?",
		Labels:      []string{"error", "benign"},
		Positive:    "error",
		Interpreter: runtime.InterpreterHashnetV1,
		Options:     compiler.Options{Seed: seed},
	}
	if described {
		spec.LabelDescriptions = qualityDescriptions
	}
	for _, r := range train {
		spec.Examples = append(spec.Examples, compiler.Example{Text: r.Text, Label: r.Label})
	}
	start := time.Now()
	outs, err := q.runSpec(spec, eval)
	if err != nil {
		return qresult{}, err
	}
	took := time.Since(start)
	var paw, level, kw, est f1count
	confs := make([]float32, len(eval))
	correct := make([]bool, len(eval))
	post := make([][]float64, len(eval))
	gold := make([]bool, len(eval))
	for i, r := range eval {
		gold[i] = r.Label == "error"
		confs[i], correct[i] = outs[i].Tags[0].Score, outs[i].Tags[0].Label == r.Label
		post[i] = []float64{float64(outs[i].Tags[0].Probs[0]), float64(outs[i].Tags[0].Probs[1])}
		paw.add(outs[i].Tags[0].Label == "error", gold[i])
		level.add(levelSaysError(r.Level), gold[i])
		kw.add(keywordRE.MatchString(r.Text), gold[i])
	}
	prior := compiler.EstimatePrior(post, nil)
	estPost := compiler.Reweight(post, nil, prior)
	if described {
		// The eval lines are the program's samples, as a samples_file
		// would hold them: the compiler estimates the rates (EM on its
		// model's posteriors) and folds them in, and the keywords weigh
		// them where they find nothing, which no reweighting of the
		// output can stand in for.
		spec.Samples = make([]string, len(eval))
		for i, r := range eval {
			spec.Samples[i] = r.Text
		}
		estOuts, err := q.runSpec(spec, eval)
		if err != nil {
			return qresult{}, err
		}
		for i := range estPost {
			estPost[i] = []float64{float64(estOuts[i].Tags[0].Probs[0]), float64(estOuts[i].Tags[0].Probs[1])}
		}
	}
	estConfs := make([]float32, len(eval))
	estCorrect := make([]bool, len(eval))
	pErr := make([]float64, len(eval))
	nov := make([]float64, len(eval))
	wrong := make([]bool, len(eval))
	var sumRight, sumWrong, nRight, nWrong float64
	for i, q := range estPost {
		isErr := q[0] > q[1]
		est.add(isErr, gold[i])
		estConfs[i], estCorrect[i] = float32(max(q[0], q[1])), isErr == gold[i]
		pErr[i] = post[i][0]
		nov[i], wrong[i] = float64(outs[i].Tags[0].Novelty), isErr != gold[i]
		if wrong[i] {
			sumWrong, nWrong = sumWrong+nov[i], nWrong+1
		} else {
			sumRight, nRight = sumRight+nov[i], nRight+1
		}
	}
	r := qresult{paw: paw.f1(), level: level.f1(), keyword: kw.f1(), ece: ece(confs, correct), compile: took,
		pawEst: est.f1(), eceEst: ece(estConfs, estCorrect), rateEst: prior[0], auc: auc(pErr, gold), novAUC: auc(nov, wrong)}
	if nRight > 0 {
		r.novRight = sumRight / nRight
	}
	if nWrong > 0 {
		r.novWrong = sumWrong / nWrong
	}
	return r, nil
}

// runSpec compiles spec and tags the eval lines with it.
func (q *quality) runSpec(spec *compiler.Spec, eval []qrow) ([]runtime.Outcome, error) {
	res, err := compiler.Compile(q.e.ctx, spec, nil)
	if err != nil {
		return nil, err
	}
	art, err := runtime.DecodeArtifact(res.Artifact)
	if err != nil {
		return nil, err
	}
	pl, err := singlePipeline(q.ort, art, q.opts, nil, tagAll)
	if err != nil {
		return nil, err
	}
	defer pl.Close()
	texts := make([][]byte, len(eval))
	for i, r := range eval {
		texts[i] = []byte(r.Text)
	}
	return processParallel(q.e.ctx, pl, texts, q.chunk)
}

// auc is the area under the ROC curve of scores for the positives: the
// chance a random positive outscores a random negative (ties count half).
func auc(scores []float64, pos []bool) float64 {
	idx := make([]int, len(scores))
	for i := range idx {
		idx[i] = i
	}
	sort.Slice(idx, func(a, b int) bool { return scores[idx[a]] < scores[idx[b]] })
	var rankSum, nPos float64
	for i := 0; i < len(idx); {
		j := i
		for j < len(idx) && scores[idx[j]] == scores[idx[i]] {
			j++
		}
		mid := float64(i+j+1) / 2 // average 1-based rank of the tie
		for k := i; k < j; k++ {
			if pos[idx[k]] {
				rankSum += mid
				nPos++
			}
		}
		i = j
	}
	nNeg := float64(len(scores)) - nPos
	if nPos == 0 || nNeg == 0 {
		return 0
	}
	return (rankSum - nPos*(nPos+1)/2) / (nPos * nNeg)
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
