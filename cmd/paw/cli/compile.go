package cli

import (
	"errors"
	"fmt"
	"io"
	"path/filepath"
	goruntime "runtime"
	"strings"
	"sync"
	"time"

	"github.com/pawlogs/paw/compiler"
	"github.com/pawlogs/paw/internal/atomicfile"
	"github.com/pawlogs/paw/runtime"
)

func compilerVersion() string { return compiler.Version }

func defaultWorkers() int { return goruntime.GOMAXPROCS(0) }

func runCompile(e *env, args []string) error {
	fs := newFlags(e, "compile")
	out := fs.String("o", "", "output .paw file (one spec)")
	outDir := fs.String("out-dir", "", "output folder: writes NAME.paw for each spec")
	allowOutside := fs.Bool("allow-outside", false, "let examples_file leave the spec's folder")
	quiet := fs.Bool("q", false, "print only the program ID")
	specs, err := parse(fs, args)
	if err != nil {
		return err
	}
	switch {
	case len(specs) == 0:
		return usagef("no spec given")
	case *out != "" && *outDir != "":
		return usagef("-o and --out-dir are exclusive")
	case *out != "" && len(specs) > 1:
		return usagef("-o takes one spec; use --out-dir for several")
	case *out == "" && *outDir == "":
		return usagef("give -o OUT.paw or --out-dir DIR")
	}
	names := map[string]string{}
	failed := 0
	for _, path := range specs {
		spec, err := compiler.LoadSpec(path, compiler.LoadOptions{AllowOutside: *allowOutside})
		if err != nil {
			fmt.Fprintln(e.stderr, err)
			failed++
			continue
		}
		if prev, dup := names[spec.Name]; dup {
			fmt.Fprintf(e.stderr, "%s: program name %q is already used by %s\n", path, spec.Name, prev)
			failed++
			continue
		}
		names[spec.Name] = path
		dest := *out
		if dest == "" {
			dest = filepath.Join(*outDir, spec.Name+".paw")
		}
		if err := compileOne(e, path, dest, spec, *quiet); err != nil {
			fmt.Fprintf(e.stderr, "%s: %v\n", path, err)
			failed++
		}
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d specs failed", failed, len(specs))
	}
	return nil
}

func compileOne(e *env, path, dest string, spec *compiler.Spec, quiet bool) error {
	start := time.Now()
	prog := newProgress(e.stderr, spec.Name)
	res, err := compiler.Compile(e.ctx, spec, prog.update)
	prog.done()
	if res != nil {
		for _, w := range res.Warnings {
			fmt.Fprintf(e.stderr, "%s: warning: %s\n", path, w)
		}
	}
	var acc *compiler.TestAccuracyError
	if err != nil && !errors.As(err, &acc) {
		return err
	}
	if !quiet {
		writeReport(e.stdout, path, dest, res, time.Since(start), acc == nil)
	}
	if acc != nil {
		return err // the artifact is not written: it failed its own tests
	}
	if err := atomicfile.WriteFile(dest, res.Artifact); err != nil {
		return err
	}
	if quiet {
		fmt.Fprintln(e.stdout, res.ID)
	}
	return nil
}

// writeReport prints what a compile made; written says whether the
// artifact is saved (a program that fails its tests is not).
func writeReport(w io.Writer, path, dest string, res *compiler.Result, took time.Duration, written bool) {
	m := res.Manifest
	fmt.Fprintf(w, "program %s\n", m.Name)
	fmt.Fprintf(w, "  id        %s\n", res.ID)
	fmt.Fprintf(w, "  spec      %s\n", path)
	if written {
		fmt.Fprintf(w, "  artifact  %s (%s)\n", dest, humanBytes(len(res.Artifact)))
	} else {
		fmt.Fprintf(w, "  artifact  not written: the program fails its tests (%s would have been %s)\n", dest, humanBytes(len(res.Artifact)))
	}
	fmt.Fprintf(w, "  labels    %s\n", joinLabels(m.Labels))
	if e := m.Encoder; e != nil {
		fmt.Fprintf(w, "  encoder   %s on %s: dim %d, %s pooling, %d tokens, model.onnx sha256 %s\n", m.Interpreter, e.Name, e.Dim, e.Pooling, e.MaxTokens, e.ModelSHA256[:16])
	}
	fmt.Fprintf(w, "  compiled  in %.2fs: %d examples, temperature %.3f\n", took.Seconds(), m.Metrics.Examples, m.Model.Temperature)
	if l := m.Learned; l != nil {
		fmt.Fprintf(w, "  learned   %d of the examples are answers given after the first compile (set %s)\n", l.Answers, l.Digest[:12])
	}
	if len(m.BaseRates) > 0 {
		var parts []string
		for _, l := range m.Labels {
			parts = append(parts, fmt.Sprintf("%s %.4f", l, m.BaseRates[l]))
		}
		fmt.Fprintf(w, "  base rates %s (%s)\n", strings.Join(parts, ", "), m.BaseRatesSource)
	} else {
		fmt.Fprintf(w, "  base rates the training mix (balanced): give base_rates or samples_file\n")
	}
	if len(m.Keywords) > 0 {
		var parts []string
		for _, l := range m.Labels {
			if ps, ok := m.Keywords[l]; ok {
				r := m.KeywordRates[l]
				noun := "phrases"
				if len(ps) == 1 {
					noun = "phrase"
				}
				parts = append(parts, fmt.Sprintf("%s %d %s (in %.0f%% of its lines, %.0f%% of others')", l, len(ps), noun, 100*r.Hit, 100*r.False))
			}
		}
		fmt.Fprintf(w, "  keywords  %s\n", strings.Join(parts, ", "))
	}
	if m.Metrics.Examples == 0 {
		fmt.Fprintf(w, "  no examples: the keywords decide every line\n")
	} else {
		fmt.Fprintf(w, "  train accuracy %.4f", m.Metrics.TrainAccuracy)
		if m.Metrics.CalibrationECE > 0 {
			fmt.Fprintf(w, ", calibration error %.4f (ECE, 10 bins, cross-validated)", m.Metrics.CalibrationECE)
		}
		fmt.Fprintln(w)
	}
	if tp, st := m.Teacher, res.Teacher; tp != nil && st != nil {
		fmt.Fprintf(w, "  teacher   %s at %s: %d sampled lines in %d patterns, %d labelled\n", tp.Model, tp.BaseURL, st.Sampled, st.Clusters, st.Labelled)
		fmt.Fprintf(w, "            %d calls (%d saved by asking once per pattern), %d from the cache, %d set by examples, %d dropped, %d over budget\n",
			st.Calls, st.Saved, st.CacheHits, st.Overridden, st.Dropped, st.OverBudget)
		fmt.Fprintf(w, "  fidelity  %.4f on %d held-out lines", tp.Fidelity, tp.Holdout)
		for _, l := range m.Labels {
			if f, ok := tp.FidelityLabels[l]; ok {
				fmt.Fprintf(w, ", %s %.4f", l, f)
			}
		}
		fmt.Fprintln(w)
	}
	if t := m.Metrics.Test; t != nil {
		fmt.Fprintf(w, "  test accuracy  %.4f on %d tests\n", t.Accuracy, t.N)
		t.WriteText(indent{w, "    "}, m.Labels)
	} else {
		fmt.Fprintln(w, "  no tests")
	}
	writeFailing(w, res.Failing)
}

func writeFailing(w io.Writer, failing []compiler.TestFailure) {
	if len(failing) == 0 {
		return
	}
	fmt.Fprintf(w, "  failing tests (%d):\n", len(failing))
	for _, f := range failing {
		fmt.Fprintf(w, "    want %s, got %s (%.2f): %q\n", f.Want, f.Got, f.Score, f.Text)
	}
}

// indent prefixes every line written through it.
type indent struct {
	w      io.Writer
	prefix string
}

func (i indent) Write(p []byte) (int, error) {
	lines := strings.SplitAfter(string(p), "\n")
	for _, l := range lines {
		if l == "" {
			continue
		}
		if _, err := io.WriteString(i.w, i.prefix+l); err != nil {
			return 0, err
		}
	}
	return len(p), nil
}

func humanBytes(n int) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.2f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

// progress prints compile progress to stderr once a compile has run for a
// second, at most twice a second, so short compiles stay quiet.
type progress struct {
	mu         sync.Mutex
	w          io.Writer
	name       string
	start      time.Time
	last       time.Time
	shown      bool
	stage      string
	stageStart time.Time
}

func newProgress(w io.Writer, name string) *progress {
	return &progress{w: w, name: name, start: time.Now()}
}

func (p *progress) update(stage string, done, total int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := time.Now()
	if stage != p.stage {
		p.stage, p.stageStart = stage, now
	}
	if now.Sub(p.start) < time.Second || now.Sub(p.last) < 500*time.Millisecond {
		return
	}
	p.last, p.shown = now, true
	pct := 0
	if total > 0 {
		pct = 100 * done / total
	}
	eta := ""
	if done > 0 && done < total {
		// The stage's rate so far, applied to what is left of it.
		left := time.Duration(float64(now.Sub(p.stageStart)) / float64(done) * float64(total-done))
		eta = fmt.Sprintf(", ETA %s", left.Round(time.Second))
	}
	fmt.Fprintf(p.w, "\rcompiling %s: %s %3d%% (%d/%d, %.1fs%s)   ", p.name, stage, pct, done, total, now.Sub(p.start).Seconds(), eta)
}

func (p *progress) done() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.shown {
		fmt.Fprintln(p.w)
	}
}

func runInspect(e *env, args []string) error {
	fs := newFlags(e, "inspect")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("want one program")
	}
	a, err := runtime.ReadArtifactFile(pos[0])
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "id: %s\n", a.ID)
	m := a.Manifest
	if m.Templates != "" {
		// The keys are for the interpreter; a person wants their count.
		m.Templates = fmt.Sprintf("(%d template keys)", len(m.Templates)*6/8/8)
	}
	return writeJSON(e.stdout, m)
}
