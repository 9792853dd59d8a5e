package compiler

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"sort"
	"testing"
	"time"

	"github.com/pawlogs/paw/runtime"
)

type row struct{ System, Text, Label string }

func TestExperiment(t *testing.T) {
	if os.Getenv("PAW_EXP") == "" { t.Skip() }
	f, err := os.Open("../../shared/data/labeled/real-error.jsonl")
	if err != nil { t.Skip(err) }
	var rows []row
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() { var r row; json.Unmarshal(sc.Bytes(), &r); rows = append(rows, r) }
	bySys := map[string][]row{}
	for _, r := range rows { bySys[r.System] = append(bySys[r.System], r) }
	var systems []string
	for s, rs := range bySys { n := 0; for _, r := range rs { if r.Label == "error" { n++ } }; if n >= 50 { systems = append(systems, s) } }
	sort.Strings(systems)
	cfg := runtime.DefaultFeaturizerConfig()
	fz, _ := runtime.NewFeaturizer(cfg)
	var opt TrainOptions
	fmt.Sscan(os.Getenv("PAW_DIM"), &opt.Dim)
	fmt.Sscan(os.Getenv("PAW_EPOCHS"), &opt.Epochs)
	fmt.Sscan(os.Getenv("PAW_LR"), &opt.LearningRate)
	fmt.Sscan(os.Getenv("PAW_L2"), &opt.L2)
	total := 0.0; cnt := 0
	start := time.Now()
	for _, sys := range systems {
		sum := 0.0
		for seed := uint64(1); seed <= 5; seed++ {
			rs := bySys[sys]
			rng := rand.New(rand.NewPCG(seed, 7))
			perm := rng.Perm(len(rs))
			used := map[int]bool{}
			var train []sample
			cnts := []int{0, 0}
			for _, lab := range []string{"benign", "error"} {
				k := 0
				for _, i := range perm { if k < 16 && rs[i].Label == lab { used[i] = true; k++; ft := fz.NewFeatures(); fz.Featurize([]byte(rs[i].Text), &ft); l := 0; if lab == "error" { l = 1 }; train = append(train, sample{ft, l}); cnts[l]++ } }
			}
			o := opt; o.Seed = seed
			tr := newTrainer(cfg.Buckets(), 2, cnts, o)
			tr.fit(context.Background(), train, nil)
			tp, fp, fn := 0, 0, 0
			z := make([]float32, 2)
			ft := fz.NewFeatures()
			for i, r := range rs {
				if used[i] { continue }
				fz.Featurize([]byte(r.Text), &ft)
				tr.logits(&ft, z)
				pred := z[1] > z[0]
				gold := r.Label == "error"
				switch { case pred && gold: tp++; case pred && !gold: fp++; case !pred && gold: fn++ }
			}
			f1 := 2 * float64(tp) / float64(2*tp+fp+fn)
			sum += f1
		}
		fmt.Printf("%-10s F1=%.3f\n", sys, sum/5)
		total += sum / 5; cnt++
	}
	fmt.Printf("MEAN F1=%.4f  (%v)\n", total/float64(cnt), time.Since(start))
}
