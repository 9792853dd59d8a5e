package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/pawlogs/paw/compiler"
	"github.com/pawlogs/paw/evaluate"
	"github.com/pawlogs/paw/runtime"
)

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// runTest runs a spec's tests through ONNX Runtime: for a spec it compiles
// in memory first, for a program it reads the spec stored inside.
func runTest(e *env, args []string) error {
	fs := newFlags(e, "test")
	rf := addRuntimeFlags(fs)
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("want one spec or program")
	}
	path := pos[0]
	var art *runtime.Artifact
	var spec *compiler.Spec
	if strings.HasSuffix(path, ".paw") {
		if art, err = runtime.ReadArtifactFile(path); err != nil {
			return err
		}
		if spec, err = compiler.ParseSpec(path+"!spec.yaml", art.Spec, compiler.LoadOptions{NoFiles: true}); err != nil {
			return err
		}
	} else {
		if spec, err = compiler.LoadSpec(path, compiler.LoadOptions{}); err != nil {
			return err
		}
		res, err := compiler.Compile(e.ctx, spec, nil)
		if res == nil {
			return err
		}
		if art, err = runtime.DecodeArtifact(res.Artifact); err != nil {
			return err
		}
	}
	if len(spec.Tests) == 0 {
		return fmt.Errorf("%s has no tests", path)
	}
	opts, ort, err := rf.open()
	if err != nil {
		return err
	}
	defer ort.Close()
	pl, err := singlePipeline(ort, art, opts, nil, tagAll)
	if err != nil {
		return err
	}
	defer pl.Close()
	p := pl.Programs()[0]
	texts := make([][]byte, len(spec.Tests))
	for i, t := range spec.Tests {
		texts[i] = []byte(t.Text)
	}
	outs, err := pl.ProcessTexts(e.ctx, texts)
	if err != nil {
		return err
	}
	conf := evaluate.NewConfusion(p.Labels())
	var failing []compiler.TestFailure
	for i, t := range spec.Tests {
		tag := outs[i].Tags[0]
		if err := conf.Add(t.Label, tag.Label); err != nil {
			return err
		}
		if tag.Label != t.Label {
			failing = append(failing, compiler.TestFailure{Text: t.Text, Want: t.Label, Got: tag.Label, Score: tag.Score})
		}
	}
	r := conf.Report()
	fmt.Fprintf(e.stdout, "program %s (%s) on %d tests, via onnx runtime (%s)\n", p.Name(), runtime.ShortID(art.ID), r.N, opts.Program.Device)
	r.WriteText(indent{e.stdout, "  "}, p.Labels())
	writeFailing(e.stdout, failing)
	min := 1.0
	if spec.MinTestAccuracy != nil {
		min = *spec.MinTestAccuracy
	}
	if r.Accuracy < min {
		return fmt.Errorf("test accuracy %.4f is below %.4f", r.Accuracy, min)
	}
	fmt.Fprintf(e.stdout, "PASS accuracy %.4f >= %.4f\n", r.Accuracy, min)
	return nil
}
