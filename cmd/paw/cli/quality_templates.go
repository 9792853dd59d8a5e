package cli

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/pawlogs/paw/internal/drain"
	"github.com/pawlogs/paw/runtime"
	"github.com/pawlogs/paw/runtime/patterns"
)

// structuredLog is a Loghub *_structured.csv: each line's content and its
// reference event; and the whole lines of the log beside it, when they
// match the CSV's rows.
type structuredLog struct {
	system   string
	contents []string
	events   []string
	lines    []string
}

func readStructured(dir string) ([]structuredLog, error) {
	paths, err := filepath.Glob(filepath.Join(dir, "*", "*_structured.csv"))
	if err != nil {
		return nil, err
	}
	if len(paths) == 0 {
		return nil, fs.ErrNotExist
	}
	slices.Sort(paths)
	var out []structuredLog
	for _, p := range paths {
		f, err := os.Open(p)
		if err != nil {
			return nil, err
		}
		r := csv.NewReader(f)
		head, err := r.Read()
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		ci, ei := slices.Index(head, "Content"), slices.Index(head, "EventId")
		if ci < 0 || ei < 0 {
			f.Close()
			return nil, fmt.Errorf("%s: no Content or EventId column", p)
		}
		sl := structuredLog{system: filepath.Base(filepath.Dir(p))}
		for {
			rec, err := r.Read()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				f.Close()
				return nil, fmt.Errorf("%s: %w", p, err)
			}
			sl.contents = append(sl.contents, rec[ci])
			sl.events = append(sl.events, rec[ei])
		}
		f.Close()
		if raw, err := os.ReadFile(strings.TrimSuffix(p, "_structured.csv")); err == nil {
			lines := strings.Split(strings.TrimSuffix(string(raw), "\n"), "\n")
			if len(lines) == len(sl.contents) {
				for i, l := range lines {
					lines[i] = strings.TrimSuffix(l, "\r")
				}
				sl.lines = lines
			}
		}
		out = append(out, sl)
	}
	return out, nil
}

// templateQuality is the grouping-accuracy benchmark of Loghub-2k: paw's
// miner against Drain (depth 4, similarity 0.5) on every system with a
// structured CSV, in the same run, on the lines' content.
func (q *quality) templateQuality(dir string) error {
	logs, err := readStructured(dir)
	if errors.Is(err, fs.ErrNotExist) {
		fmt.Fprintf(q.e.stdout, "SKIP templates: no %s/*/*_structured.csv\n", dir)
		return nil
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(q.e.stdout, "\ntemplates: grouping accuracy on Loghub-2k content (a line is right when its group holds exactly its reference event's lines);\nkeyed: the miner fed the featurizer's template keys, as a pipeline's pattern tally feeds it; raw: paw and Drain on the whole lines, headers included\n")
	fmt.Fprintf(q.e.stdout, "%-12s %7s %7s %7s %8s %8s %8s %8s %9s\n", "system", "paw GA", "keyed", "Drain", "paw #", "Drain #", "ref #", "paw raw", "Drain raw")
	rows := groupingAccuracies(logs)
	var sumPaw, sumKeyed, sumDrain, sumRaw, sumDrainRaw float64
	worst := rows[0]
	for _, r := range rows {
		sumPaw, sumKeyed, sumDrain, sumRaw, sumDrainRaw = sumPaw+r.paw, sumKeyed+r.keyed, sumDrain+r.drain, sumRaw+r.pawRaw, sumDrainRaw+r.drainRaw
		if r.paw < worst.paw {
			worst = r
		}
		fmt.Fprintf(q.e.stdout, "%-12s %7.4f %7.4f %7.4f %8d %8d %8d %8.4f %9.4f\n", r.system, r.paw, r.keyed, r.drain, r.pawN, r.drainN, r.refN, r.pawRaw, r.drainRaw)
	}
	n := float64(len(rows))
	fmt.Fprintf(q.e.stdout, "%-12s %7.4f %7.4f %7.4f %26s %8.4f %9.4f   (paw's worst system: %s %.4f)\n", "MEAN", sumPaw/n, sumKeyed/n, sumDrain/n, "", sumRaw/n, sumDrainRaw/n, worst.system, worst.paw)
	return nil
}

// gaRow is one system's grouping accuracy, paw's and Drain's, with the
// groups each made and the reference's.
type gaRow struct {
	system             string
	paw, drain         float64
	keyed              float64 // paw's miner fed the featurizer's template keys
	pawN, drainN, refN int
	// On the whole lines (0 when the log's lines are not at hand).
	pawRaw, drainRaw float64
}

func groupingAccuracies(logs []structuredLog) []gaRow {
	var rows []gaRow
	for _, sl := range logs {
		pred, dpred := groupLines(sl.contents)
		r := gaRow{system: sl.system, paw: drain.GroupingAccuracy(pred, sl.events), drain: drain.GroupingAccuracy(dpred, sl.events),
			keyed: drain.GroupingAccuracy(groupKeyed(sl.contents), sl.events),
			pawN:  distinct(pred), drainN: distinct(dpred), refN: distinct(sl.events)}
		if sl.lines != nil {
			pred, dpred = groupLines(sl.lines)
			r.pawRaw, r.drainRaw = drain.GroupingAccuracy(pred, sl.events), drain.GroupingAccuracy(dpred, sl.events)
		}
		rows = append(rows, r)
	}
	return rows
}

// groupLines is each line's group by paw's miner and by Drain.
func groupLines(lines []string) (paw, dr []string) {
	m := patterns.New(patterns.Config{})
	d := drain.New(4, 0.5)
	joined := make([]*patterns.Pattern, len(lines))
	dr = make([]string, len(lines))
	clusterID := map[*drain.Cluster]string{}
	for i, l := range lines {
		joined[i] = m.Add(l)
		dc := d.Add(l)
		if _, ok := clusterID[dc]; !ok {
			clusterID[dc] = strconv.Itoa(len(clusterID))
		}
		dr[i] = clusterID[dc]
	}
	paw = make([]string, len(joined))
	for i, p := range joined {
		paw[i] = patterns.Key(p)
	}
	return paw, dr
}

// groupKeyed is each line's group by paw's miner fed the template keys of
// the default featurizer, as a pipeline's pattern tally feeds it.
func groupKeyed(lines []string) []string {
	f, err := runtime.NewFeaturizer(runtime.DefaultFeaturizerConfig())
	if err != nil {
		panic(err) // the default configuration is valid
	}
	toks := f.NewTokens()
	m := patterns.New(patterns.Config{})
	joined := make([]*patterns.Pattern, len(lines))
	for i, l := range lines {
		b := []byte(l)
		joined[i], _ = m.AddKeyed(b, f.Scan(b, toks))
	}
	out := make([]string, len(joined))
	for i, p := range joined {
		out[i] = patterns.Key(p)
	}
	return out
}

func distinct(xs []string) int {
	m := map[string]bool{}
	for _, x := range xs {
		m[x] = true
	}
	return len(m)
}
