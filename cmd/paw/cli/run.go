package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"unicode/utf8"

	"github.com/pawlogs/paw/runtime"
)

// maxRecord bounds one stdin record. The featurizer reads only the first
// max_bytes of a record, but the record itself is passed through whole.
const maxRecord = 64 << 20

func runRun(e *env, args []string) error {
	fs := newFlags(e, "run")
	rf := addRuntimeFlags(fs)
	pipelinePath := fs.String("pipeline", "", "pipeline YAML instead of a single program")
	keep := fs.String("keep", "", "keep records with this label (default: the program's positive label)")
	asJSON := fs.Bool("json", false, "write every kept record as JSON with its tags")
	inputExpr := fs.String("input", "", "override the input selector: a field path, a template, or - for the whole line")
	strict := fs.Bool("strict", false, "exit 1 when any record is unreadable (default: only when all are)")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	var (
		ort *runtime.Env
		pl  *runtime.Pipeline
	)
	switch {
	case *pipelinePath != "" && len(pos) == 0:
		cfg, err := runtime.LoadPipelineConfig(*pipelinePath)
		if err != nil {
			return err
		}
		if *inputExpr != "" {
			cfg.Input = selector(*inputExpr)
		}
		var opts runtime.PipelineOptions
		if opts, ort, err = rf.open(); err != nil {
			return err
		}
		if pl, err = runtime.OpenPipeline(ort, cfg, opts); err != nil {
			ort.Close()
			return err
		}
	case *pipelinePath == "" && len(pos) == 1:
		var stepErr error
		steps := func(p *runtime.Program) []runtime.Step {
			name := p.Name()
			steps := tagAll(p)
			label := *keep
			if label == "" {
				label = p.Manifest.Positive
			}
			switch {
			case label != "":
				steps = append([]runtime.Step{{Filter: &runtime.FilterStep{Program: name, Keep: []string{label}}}}, steps...)
			case !*asJSON:
				stepErr = usagef("program %s has no positive label: give --keep LABEL or --json", name)
			}
			return steps
		}
		var in *string
		if *inputExpr != "" {
			sel := selector(*inputExpr)
			in = &sel
		}
		if ort, pl, err = rf.openProgram(pos[0], in, steps); err != nil {
			return err
		}
		if stepErr != nil {
			pl.Close()
			ort.Close()
			return stepErr
		}
	default:
		return usagef("give one program or --pipeline")
	}
	defer ort.Close()
	defer pl.Close()
	stats, err := streamRecords(e.ctx, pl, e.stdin, e.stdout, rf.maxBatch, *asJSON, func(line int, err error) {
		fmt.Fprintf(e.stderr, "paw run: line %d: %v (skipped: not classified, not written)\n", line, err)
	})
	fmt.Fprintf(e.stderr, "paw run: %d records, %d kept, %d dropped, %d unreadable (skipped)\n", stats.records, stats.kept, stats.dropped, stats.unreadable)
	switch {
	case err != nil:
		return err
	case stats.unreadable > 0 && stats.unreadable == stats.records:
		return fmt.Errorf("every record was unreadable: check the input selector (--input, or the pipeline's input) against the records")
	case *strict && stats.unreadable > 0:
		return fmt.Errorf("%d unreadable records (--strict)", stats.unreadable)
	}
	return nil
}

func selector(expr string) string {
	if expr == "-" {
		return ""
	}
	return expr
}

type runStats struct {
	records, kept, dropped, unreadable int
}

// streamRecords reads newline-separated records, scores them with several
// chunks in flight and writes kept ones in input order.
func streamRecords(ctx context.Context, pl *runtime.Pipeline, in io.Reader, out io.Writer, chunk int, asJSON bool, bad func(line int, err error)) (runStats, error) {
	type job struct {
		recs  [][]byte
		first int
		outs  []runtime.Outcome
		err   error
		done  chan struct{}
	}
	var stats runStats
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	jobs := make(chan *job, 4*defaultWorkers())
	readErr := make(chan error, 1)
	go func() {
		defer close(jobs)
		br := bufio.NewReaderSize(in, 1<<20)
		line := 0
		for {
			j := &job{first: line + 1, done: make(chan struct{})}
			var err error
			for len(j.recs) < chunk {
				var rec []byte
				rec, err = readRecord(br)
				if rec != nil {
					j.recs = append(j.recs, rec)
					line++
				}
				if err != nil {
					break
				}
			}
			if len(j.recs) > 0 {
				go func() {
					j.outs, j.err = pl.Process(ctx, j.recs)
					close(j.done)
				}()
				select {
				case jobs <- j:
				case <-ctx.Done():
					<-j.done
					readErr <- ctx.Err()
					return
				}
			}
			if err != nil {
				if errors.Is(err, io.EOF) {
					err = nil
				}
				readErr <- err
				return
			}
		}
	}()
	bw := bufio.NewWriterSize(out, 1<<16)
	defer bw.Flush()
	var firstErr error
	for j := range jobs {
		<-j.done
		if firstErr != nil {
			continue
		}
		if j.err != nil {
			firstErr = j.err
			cancel()
			continue
		}
		for i, o := range j.outs {
			stats.records++
			switch {
			case o.Err != nil:
				stats.unreadable++
				bad(j.first+i, o.Err)
			case !o.Keep:
				stats.dropped++
			default:
				stats.kept++
				if err := writeRecord(bw, j.recs[i], o, asJSON); err != nil {
					firstErr = err
					cancel()
				}
			}
		}
	}
	if err := <-readErr; firstErr == nil && err != nil && !errors.Is(err, context.Canceled) {
		firstErr = err
	}
	return stats, firstErr
}

// readRecord returns the next line without its terminator. A line longer
// than maxRecord is an error rather than unbounded memory.
func readRecord(br *bufio.Reader) ([]byte, error) {
	var rec []byte
	for {
		frag, err := br.ReadSlice('\n')
		rec = append(rec, frag...)
		if len(rec) > maxRecord {
			return nil, fmt.Errorf("record longer than %d bytes", maxRecord)
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if n := len(rec); n > 0 && rec[n-1] == '\n' {
			rec = rec[:n-1]
			if n := len(rec); n > 0 && rec[n-1] == '\r' {
				rec = rec[:n-1]
			}
			return rec, err
		}
		if len(rec) == 0 {
			return nil, err
		}
		return rec, err
	}
}

// writeRecord writes a kept record: verbatim, or as JSON with its tags.
func writeRecord(w *bufio.Writer, rec []byte, o runtime.Outcome, asJSON bool) error {
	if !asJSON {
		w.Write(rec)
		return w.WriteByte('\n')
	}
	obj := map[string]any{}
	if err := json.Unmarshal(rec, &obj); err != nil || obj == nil {
		obj = map[string]any{}
		if utf8.Valid(rec) {
			obj["line"] = string(rec)
		} else {
			// JSON cannot hold raw bytes; keep them exactly, base64-encoded.
			obj["line_base64"] = rec
		}
	}
	for _, t := range o.Tags {
		obj[t.Program+".label"] = t.Label
		obj[t.Program+".score"] = round4(t.Score)
		obj[t.Program+".novelty"] = round4(t.Novelty)
		if t.By != "" {
			obj[t.Program+".by"] = t.By
		}
	}
	if o.Destination != "" {
		obj["paw.destination"] = o.Destination
	}
	b, err := json.Marshal(obj)
	if err != nil {
		return err
	}
	w.Write(b)
	return w.WriteByte('\n')
}

func round4(f float32) float64 {
	return float64(int64(float64(f)*10000+0.5)) / 10000
}
