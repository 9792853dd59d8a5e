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

	"github.com/pawlogs/paw/internal/drain"
	"github.com/pawlogs/paw/runtime/patterns"
)

// structuredLog is a Loghub *_structured.csv: each line's content and its
// reference event.
type structuredLog struct {
	system   string
	contents []string
	events   []string
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
	fmt.Fprintf(q.e.stdout, "\ntemplates: grouping accuracy on Loghub-2k content (a line is right when its group holds exactly its reference event's lines)\n")
	fmt.Fprintf(q.e.stdout, "%-12s %7s %7s %8s %8s %8s\n", "system", "paw GA", "Drain", "paw #", "Drain #", "ref #")
	rows := groupingAccuracies(logs)
	var sumPaw, sumDrain float64
	worst := rows[0]
	for _, r := range rows {
		sumPaw, sumDrain = sumPaw+r.paw, sumDrain+r.drain
		if r.paw < worst.paw {
			worst = r
		}
		fmt.Fprintf(q.e.stdout, "%-12s %7.4f %7.4f %8d %8d %8d\n", r.system, r.paw, r.drain, r.pawN, r.drainN, r.refN)
	}
	n := float64(len(rows))
	fmt.Fprintf(q.e.stdout, "%-12s %7.4f %7.4f   (paw's worst system: %s %.4f)\n", "MEAN", sumPaw/n, sumDrain/n, worst.system, worst.paw)
	return nil
}

// gaRow is one system's grouping accuracy, paw's and Drain's, with the
// groups each made and the reference's.
type gaRow struct {
	system             string
	paw, drain         float64
	pawN, drainN, refN int
}

func groupingAccuracies(logs []structuredLog) []gaRow {
	var rows []gaRow
	for _, sl := range logs {
		m := patterns.New(patterns.Config{})
		d := drain.New(4, 0.5)
		joined := make([]*patterns.Pattern, len(sl.contents))
		dpred := make([]string, len(sl.contents))
		clusterID := map[*drain.Cluster]string{}
		for i, c := range sl.contents {
			joined[i] = m.Add(c)
			dc := d.Add(c)
			if _, ok := clusterID[dc]; !ok {
				clusterID[dc] = strconv.Itoa(len(clusterID))
			}
			dpred[i] = clusterID[dc]
		}
		pred := make([]string, len(joined))
		for i, p := range joined {
			pred[i] = patterns.Key(p)
		}
		rows = append(rows, gaRow{system: sl.system, paw: drain.GroupingAccuracy(pred, sl.events), drain: drain.GroupingAccuracy(dpred, sl.events),
			pawN: distinct(pred), drainN: distinct(dpred), refN: distinct(sl.events)})
	}
	return rows
}

func distinct(xs []string) int {
	m := map[string]bool{}
	for _, x := range xs {
		m[x] = true
	}
	return len(m)
}
