package cli

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"os"
	"slices"
	"strconv"

	"github.com/pawlogs/paw/runtime"
	"github.com/pawlogs/paw/runtime/patterns"
)

// templateStats is what paw templates knows of one pattern: its lines
// and, with --program, the program's decisions on them.
type templateStats struct {
	p        *patterns.Pattern
	labels   map[string]int
	score    float64
	novelty  float64
	examples int
}

// templateOut is one pattern in the report.
type templateOut struct {
	ID      string  `json:"template_id"`
	Pattern string  `json:"template"`
	Count   int     `json:"count"`
	Share   float64 `json:"share"`
	Example string  `json:"example"`
	// With --program: the label most of its lines get, and the means.
	Label   string  `json:"label,omitempty"`
	Score   float64 `json:"mean_score,omitempty"`
	Novelty float64 `json:"mean_novelty,omitempty"`
}

func templateID(key string) string {
	h := fnv.New64a()
	h.Write([]byte(key))
	return strconv.FormatUint(h.Sum64(), 16)
}

func runTemplates(e *env, args []string) error {
	fs := newFlags(e, "templates")
	rf := addRuntimeFlags(fs)
	asJSON := fs.Bool("json", false, "print the patterns as one JSON object")
	linesJSON := fs.Bool("lines-json", false, "print one JSON object per input line: {line, template, template_id} (the pattern as of that line)")
	program := fs.String("program", "", "a program: add each pattern's label, mean score and mean novelty")
	top := fs.Int("top", 50, "print the largest N patterns (0: all)")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("want one FILE, or - for stdin")
	}
	in := e.stdin
	if pos[0] != "-" {
		f, err := os.Open(pos[0])
		if err != nil {
			return err
		}
		defer f.Close()
		in = f
	}
	var pl *runtime.Pipeline
	if *program != "" {
		ort, p, err := rf.openProgram(*program, nil, tagAll)
		if err != nil {
			return err
		}
		defer ort.Close()
		defer p.Close()
		pl = p
	}
	miner := patterns.New(patterns.Config{})
	stats := map[*patterns.Pattern]*templateStats{}
	out := bufio.NewWriterSize(e.stdout, 1<<16)
	defer out.Flush()
	br := bufio.NewReaderSize(in, 1<<20)
	var chunk [][]byte
	var chunkPat []*patterns.Pattern
	total := 0
	flush := func() error {
		if pl == nil || len(chunk) == 0 {
			chunk, chunkPat = chunk[:0], chunkPat[:0]
			return nil
		}
		outs, err := processParallel(e.ctx, pl, chunk, rf.maxBatch)
		if err != nil {
			return err
		}
		for i, o := range outs {
			st := stats[chunkPat[i]]
			if o.Err != nil || len(o.Tags) == 0 {
				continue
			}
			t := o.Tags[0]
			if st.labels == nil {
				st.labels = map[string]int{}
			}
			st.labels[t.Label]++
			st.score += float64(t.Score)
			st.novelty += float64(t.Novelty)
			st.examples++
		}
		chunk, chunkPat = chunk[:0], chunkPat[:0]
		return nil
	}
	for {
		rec, rerr := readRecord(br)
		if rec != nil {
			total++
			p := miner.Add(string(rec))
			if stats[p] == nil {
				stats[p] = &templateStats{p: p}
			}
			if *linesJSON {
				b, _ := json.Marshal(struct {
					Line       string `json:"line"`
					Template   string `json:"template"`
					TemplateID string `json:"template_id"`
				}{string(rec), p.String(), templateID(patterns.Key(p))})
				out.Write(append(b, '\n'))
			}
			if pl != nil {
				chunk, chunkPat = append(chunk, rec), append(chunkPat, p)
				if len(chunk) == 4096 {
					if err := flush(); err != nil {
						return err
					}
				}
			}
			if total%100000 == 0 {
				fmt.Fprintf(e.stderr, "paw templates: %d lines, %d patterns\n", total, len(stats))
			}
		}
		if rerr != nil {
			if !errors.Is(rerr, io.EOF) {
				return rerr
			}
			break
		}
	}
	if err := flush(); err != nil {
		return err
	}
	if *linesJSON {
		return nil
	}
	// Patterns merge at the end (variable runs of different lengths):
	// gather their lines' stats by the merged key.
	byKey := map[string]*templateStats{}
	for p, st := range stats {
		k := patterns.Key(p)
		agg := byKey[k]
		if agg == nil {
			agg = &templateStats{labels: map[string]int{}}
			byKey[k] = agg
		}
		for l, n := range st.labels {
			agg.labels[l] += n
		}
		agg.score += st.score
		agg.novelty += st.novelty
		agg.examples += st.examples
	}
	var report []templateOut
	for _, p := range miner.Patterns() {
		k := patterns.Key(p)
		t := templateOut{ID: templateID(k), Pattern: p.String(), Count: p.Count, Share: float64(p.Count) / float64(max(total, 1)), Example: p.Example}
		if agg := byKey[k]; agg != nil && agg.examples > 0 {
			best := ""
			for _, l := range sortedLabels(agg.labels) {
				if best == "" || agg.labels[l] > agg.labels[best] {
					best = l
				}
			}
			t.Label, t.Score, t.Novelty = best, agg.score/float64(agg.examples), agg.novelty/float64(agg.examples)
		}
		report = append(report, t)
	}
	if *top > 0 && len(report) > *top {
		report = report[:*top]
	}
	if *asJSON {
		return writeJSON(out, struct {
			Lines    int           `json:"lines"`
			Patterns int           `json:"patterns"`
			Evicted  int           `json:"evicted"`
			Top      []templateOut `json:"top"`
		}{total, len(miner.Patterns()), miner.Evicted(), report})
	}
	fmt.Fprintf(out, "%d lines, %d patterns", total, len(miner.Patterns()))
	if miner.Evicted() > 0 {
		fmt.Fprintf(out, " (%d evicted to stay within the bound)", miner.Evicted())
	}
	fmt.Fprintln(out)
	for _, t := range report {
		fmt.Fprintf(out, "%7d %5.1f%%  %s\n", t.Count, 100*t.Share, t.Pattern)
		if t.Label != "" {
			fmt.Fprintf(out, "               %s, mean score %.2f, novelty %.2f\n", t.Label, t.Score, t.Novelty)
		}
		fmt.Fprintf(out, "               e.g. %s\n", t.Example)
	}
	return nil
}

func sortedLabels(m map[string]int) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
