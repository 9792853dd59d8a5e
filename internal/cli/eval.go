package cli

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"

	"github.com/pawlogs/paw/evaluate"
	"github.com/pawlogs/paw/runtime"
)

// maxDataLine bounds one JSONL line of evaluation or benchmark data.
const maxDataLine = 16 << 20

// labelled is one line of evaluation data.
type labelled struct {
	text, label string
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
	data := fs.String("data", "", "labelled JSONL data")
	textField := fs.String("text-field", "text", "JSON field holding the text")
	labelField := fs.String("label-field", "label", "JSON field holding the gold label")
	asJSON := fs.Bool("json", false, "print one JSON object")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 || *data == "" {
		return usagef("want one program and --data")
	}
	rows, err := readLabelled(*data, *textField, *labelField)
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
	conf := evaluate.NewConfusion(p.Labels())
	for i, r := range rows {
		if err := conf.Add(r.label, outs[i].Tags[0].Label); err != nil {
			return fmt.Errorf("%s record %d: %w", *data, i+1, err)
		}
	}
	rep := conf.Report()
	if *asJSON {
		return writeJSON(e.stdout, rep)
	}
	fmt.Fprintf(e.stdout, "program %s (%s) on %s\n", p.Name(), runtime.ShortID(p.ID), *data)
	rep.WriteText(e.stdout, p.Labels())
	return nil
}
