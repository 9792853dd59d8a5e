package cli

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/pawlogs/paw/compiler"
	"github.com/pawlogs/paw/evaluate"
	"github.com/pawlogs/paw/runtime"
)

// maxDataLine bounds one JSONL line of evaluation or benchmark data.
const maxDataLine = 16 << 20

// labelled is one line of evaluation data.
type labelled struct {
	text, label string
}

// labelledFlags are the flags of the commands that read labelled JSONL.
type labelledFlags struct{ data, textField, labelField *string }

func addLabelledFlags(fs *flag.FlagSet, dataHelp string) labelledFlags {
	return labelledFlags{
		data:       fs.String("data", "", dataHelp),
		textField:  fs.String("text-field", "text", "JSON field holding the text"),
		labelField: fs.String("label-field", "label", "JSON field holding the gold label"),
	}
}

func (l labelledFlags) read() ([]labelled, error) {
	return readLabelled(*l.data, *l.textField, *l.labelField)
}

// readLabelled reads JSONL with the text and label at the given fields.
func readLabelled(path, textField, labelField string) ([]labelled, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open data: %w", err)
	}
	defer f.Close()
	var out []labelled
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), maxDataLine)
	line := 0
	for sc.Scan() {
		line++
		if len(sc.Bytes()) == 0 {
			continue
		}
		var obj map[string]any
		if err := json.Unmarshal(sc.Bytes(), &obj); err != nil || obj == nil {
			return nil, fmt.Errorf("%s:%d: not a JSON object: --data takes JSON lines such as {%q: \"disk failed\", %q: \"error\"}", path, line, textField, labelField)
		}
		text, ok1 := obj[textField].(string)
		label, ok2 := obj[labelField].(string)
		if !ok1 || !ok2 {
			return nil, fmt.Errorf("%s:%d: want string fields %q and %q", path, line, textField, labelField)
		}
		out = append(out, labelled{text, label})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s:%d: %w", path, line+1, err)
	}
	return out, nil
}

func runEval(e *env, args []string) error {
	fs := newFlags(e, "eval")
	rf := addRuntimeFlags(fs)
	lf := addLabelledFlags(fs, "labelled JSONL data")
	data := lf.data
	asJSON := fs.Bool("json", false, "print one JSON object")
	rates := fs.String("base-rates", "program", "score at the program's base rates (program), at the file's own, estimated by EM (estimate), or at given ones (error=0.05,benign=0.95)")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 || *data == "" {
		return usagef("want one program and --data")
	}
	rows, err := lf.read()
	if err != nil {
		return err
	}
	ort, pl, err := rf.openProgram(pos[0], nil, tagAll)
	if err != nil {
		return err
	}
	defer ort.Close()
	defer pl.Close()
	texts := make([][]byte, len(rows))
	for i, r := range rows {
		texts[i] = []byte(r.text)
	}
	outs, err := processParallel(e.ctx, pl, texts, rf.maxBatch)
	if err != nil {
		return err
	}
	p := pl.Programs()[0]
	labels := p.Labels()
	decided, used, doubt, err := decideAtRates(outs, labels, p.Manifest.BaseRates, *rates)
	if err != nil {
		return err
	}
	if doubt != "" {
		fmt.Fprintln(e.stderr, "paw eval: warning:", doubt)
	}
	conf := evaluate.NewConfusion(labels)
	for i, r := range rows {
		if err := conf.Add(r.label, decided[i]); err != nil {
			return fmt.Errorf("%s record %d: %w", *data, i+1, err)
		}
	}
	rep := conf.Report()
	nov := noveltyOf(outs, rows, decided)
	if *asJSON {
		return writeJSON(e.stdout, struct {
			evaluate.Report
			BaseRates map[string]float64 `json:"base_rates,omitempty"`
			Novelty   noveltyStats       `json:"novelty"`
		}{rep, used, nov})
	}
	fmt.Fprintf(e.stdout, "program %s (%s) on %s\n", p.Name(), runtime.ShortID(p.ID), *data)
	if used != nil {
		var parts []string
		for _, l := range labels {
			parts = append(parts, fmt.Sprintf("%s %.4f", l, used[l]))
		}
		fmt.Fprintf(e.stdout, "base rates (%s): %s\n", *rates, strings.Join(parts, ", "))
	}
	rep.WriteText(e.stdout, labels)
	fmt.Fprintf(e.stdout, "novelty: mean %.4f; %.1f%% of records above %.1f; mean %.4f on right decisions, %.4f on wrong ones\n",
		nov.Mean, 100*nov.NovelShare, runtime.NovelThreshold, nov.MeanRight, nov.MeanWrong)
	return nil
}

// noveltyStats summarise how unlike the program's training data the
// records were, and whether its mistakes were on the unlike ones.
type noveltyStats struct {
	Mean       float64 `json:"mean"`
	NovelShare float64 `json:"novel_share"` // above runtime.NovelThreshold
	MeanRight  float64 `json:"mean_right"`
	MeanWrong  float64 `json:"mean_wrong"`
}

func noveltyOf(outs []runtime.Outcome, rows []labelled, decided []string) noveltyStats {
	var st noveltyStats
	var nRight, nWrong, novel float64
	for i, o := range outs {
		v := float64(o.Tags[0].Novelty)
		st.Mean += v
		if v > runtime.NovelThreshold {
			novel++
		}
		if decided[i] == rows[i].label {
			st.MeanRight, nRight = st.MeanRight+v, nRight+1
		} else {
			st.MeanWrong, nWrong = st.MeanWrong+v, nWrong+1
		}
	}
	if n := float64(len(outs)); n > 0 {
		st.Mean, st.NovelShare = st.Mean/n, novel/n
	}
	if nRight > 0 {
		st.MeanRight /= nRight
	}
	if nWrong > 0 {
		st.MeanWrong /= nWrong
	}
	return st
}

// decideAtRates re-decides each record at other base rates than the
// program's own (compiled: the manifest's, nil for the training mix):
// "program" keeps the decisions, "estimate" estimates the file's rates by
// EM, and "a=0.1,b=0.9" states them. It returns the labels, the rates
// used (nil for "program") and, for an estimate compiler.Doubtful calls
// untrustworthy, why.
func decideAtRates(outs []runtime.Outcome, labels []string, compiled map[string]float64, mode string) ([]string, map[string]float64, string, error) {
	decided := make([]string, len(outs))
	if mode == "program" {
		for i, o := range outs {
			decided[i] = o.Tags[0].Label
		}
		return decided, nil, "", nil
	}
	var from []float64
	if compiled != nil {
		from = make([]float64, len(labels))
		for i, l := range labels {
			from[i] = compiled[l]
		}
	}
	post := make([][]float64, len(outs))
	for i, o := range outs {
		post[i] = make([]float64, len(labels))
		for j, v := range o.Tags[0].Probs {
			post[i][j] = float64(v)
		}
	}
	var to []float64
	var doubt string
	if mode == "estimate" {
		to = compiler.EstimatePrior(post, from)
		if cc, doubtful := compiler.Doubtful(compiler.Reweight(post, from, nil), to); doubtful {
			doubt = fmt.Sprintf("the estimated rates (%s) stray from the program's own decisions (%s), and its scores sit near its threshold: these lines are too unlike its training data for EM to be trusted",
				compiler.Shares(labels, to), compiler.Shares(labels, cc))
		}
	} else {
		to = make([]float64, len(labels))
		for _, kv := range strings.Split(mode, ",") {
			k, v, ok := strings.Cut(kv, "=")
			j := slices.Index(labels, strings.TrimSpace(k))
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if !ok || j < 0 || err != nil || !(f > 0 && f < 1) {
				return nil, nil, "", usagef("--base-rates %q: want program, estimate, or label=share,... over the labels %v", mode, labels)
			}
			to[j] = f
		}
		for j, f := range to {
			if f == 0 {
				return nil, nil, "", usagef("--base-rates %q: no share for label %q", mode, labels[j])
			}
		}
	}
	used := map[string]float64{}
	for j, l := range labels {
		used[l] = math.Round(to[j]*1e4) / 1e4
	}
	for i, q := range compiler.Reweight(post, from, to) {
		best := 0
		for j := range q {
			if q[j] > q[best] {
				best = j
			}
		}
		decided[i] = labels[best]
	}
	return decided, used, doubt, nil
}
