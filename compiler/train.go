package compiler

import (
	"context"
	"math"
	"math/rand/v2"

	"github.com/pawlogs/paw/runtime"
	"github.com/pawlogs/paw/runtime/graph"
)

// TrainOptions control hashnet-v1 training. Zero values take the defaults.
type TrainOptions struct {
	// Seed makes training reproducible. Default: 1.
	Seed uint64
	// Epochs over the training set. Default: 60.
	Epochs int
	// Dim is the embedding width. Default: 16.
	Dim int
	// LearningRate for Adam. Default: 0.05.
	LearningRate float64
	// L2 penalty on touched embedding rows and the head. Default: 1e-4.
	L2 float64
	// BatchSize of each Adam step. Default: 16.
	BatchSize int
}

// Training defaults, chosen by measurement on the few-shot protocol
// (make quality).
const (
	DefaultSeed         = 1
	DefaultEpochs       = 60
	DefaultDim          = 16
	DefaultLearningRate = 0.05
	DefaultL2           = 1e-4
	DefaultBatchSize    = 16
)

func (o TrainOptions) withDefaults() TrainOptions {
	if o.Seed == 0 {
		o.Seed = DefaultSeed
	}
	if o.Epochs == 0 {
		o.Epochs = DefaultEpochs
	}
	if o.Dim == 0 {
		o.Dim = DefaultDim
	}
	if o.LearningRate == 0 {
		o.LearningRate = DefaultLearningRate
	}
	if o.L2 == 0 {
		o.L2 = DefaultL2
	}
	if o.BatchSize == 0 {
		o.BatchSize = DefaultBatchSize
	}
	return o
}

// sample is one featurized training example; weight scales its loss
// (0 counts as 1).
type sample struct {
	feat   runtime.Features
	label  int
	weight float32
}

// trainer holds parameters and Adam state. Embedding rows start at zero and
// only rows that occur in training ever change, which keeps the artifact
// small after compression; so Adam's moments are kept for those rows only
// (rowState), not as two more dense tables.
type trainer struct {
	opt     TrainOptions
	w       HashnetWeights
	classW  []float32
	rowMV   map[int64][]float32 // per touched row: m then v, 2*Dim values
	mH, vH  []float32
	mB, vB  []float32
	step    int
	rng     *rand.Rand
	scratch trainScratch
}

type trainScratch struct {
	x, z, dz, dx []float32
	gE           map[int64][]float32
	gH, gB       []float32
}

func newTrainer(buckets, labels int, counts []int, opt TrainOptions) *trainer {
	opt = opt.withDefaults()
	d := opt.Dim
	t := &trainer{
		opt: opt,
		w: HashnetWeights{
			Buckets: buckets, Dim: d, Labels: labels,
			Embedding: make([]float32, buckets*d),
			Head:      make([]float32, d*labels),
			Bias:      make([]float32, labels),
		},
		rowMV: map[int64][]float32{},
		mH:    make([]float32, d*labels), vH: make([]float32, d*labels),
		mB: make([]float32, labels), vB: make([]float32, labels),
		rng: rand.New(rand.NewPCG(opt.Seed, 0x70617721)),
	}
	scale := 1 / math.Sqrt(float64(d))
	for i := range t.w.Head {
		t.w.Head[i] = float32(t.rng.NormFloat64() * scale)
	}
	// Balanced class weights: each class contributes equally to the loss,
	// whatever its share of the examples.
	t.classW = make([]float32, labels)
	total, present := 0, 0
	for _, c := range counts {
		total += c
		if c > 0 {
			present++
		}
	}
	for k, c := range counts {
		if c > 0 {
			t.classW[k] = float32(total) / float32(present*c)
		}
	}
	t.scratch = trainScratch{
		x: make([]float32, d), z: make([]float32, labels), dz: make([]float32, labels), dx: make([]float32, d),
		gE: map[int64][]float32{}, gH: make([]float32, d*labels), gB: make([]float32, labels),
	}
	return t
}

// fit runs the epochs; progress, if set, is called after each one.
func (t *trainer) fit(ctx context.Context, data []sample, progress func(epoch int)) error {
	order := make([]int, len(data))
	for i := range order {
		order[i] = i
	}
	for e := 0; e < t.opt.Epochs; e++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		t.rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
		for s := 0; s < len(order); s += t.opt.BatchSize {
			end := min(s+t.opt.BatchSize, len(order))
			t.batch(data, order[s:end])
		}
		if progress != nil {
			progress(e + 1)
		}
	}
	return nil
}

func (t *trainer) batch(data []sample, idx []int) {
	sc := &t.scratch
	w := &t.w
	clear(sc.gH)
	clear(sc.gB)
	for k, g := range sc.gE {
		clear(g)
		sc.gE[k] = g
	}
	for _, i := range idx {
		s := &data[i]
		w.Pool(&s.feat, sc.x)
		w.Logits(sc.x, sc.z)
		copy(sc.dz, sc.z)
		graph.Softmax(sc.dz)
		cw := t.classW[s.label]
		if s.weight > 0 {
			cw *= s.weight
		}
		for k := range sc.dz {
			if k == s.label {
				sc.dz[k] -= 1
			}
			sc.dz[k] *= cw
		}
		clear(sc.dx)
		for d := 0; d < w.Dim; d++ {
			for k := 0; k < w.Labels; k++ {
				sc.gH[d*w.Labels+k] += sc.x[d] * sc.dz[k]
				sc.dx[d] += w.Head[d*w.Labels+k] * sc.dz[k]
			}
		}
		for k := range sc.dz {
			sc.gB[k] += sc.dz[k]
		}
		for j := 0; j < s.feat.Len; j++ {
			id := s.feat.IDs[j]
			g, ok := sc.gE[id]
			if !ok {
				g = make([]float32, w.Dim)
				sc.gE[id] = g
			}
			wt := s.feat.Weights[j]
			for d := range g {
				g[d] += wt * sc.dx[d]
			}
		}
	}
	inv := 1 / float32(len(idx))
	t.step++
	lr := t.opt.LearningRate
	l2 := float32(t.opt.L2)
	adam(w.Head, sc.gH, t.mH, t.vH, inv, l2, lr, t.step)
	adam(w.Bias, sc.gB, t.mB, t.vB, inv, 0, lr, t.step)
	for id, g := range sc.gE {
		mv, ok := t.rowMV[id]
		if !ok {
			mv = make([]float32, 2*w.Dim)
			t.rowMV[id] = mv
		}
		lo, hi := int(id)*w.Dim, int(id+1)*w.Dim
		adam(w.Embedding[lo:hi], g, mv[:w.Dim], mv[w.Dim:], inv, l2, lr, t.step)
	}
}

// adam applies one Adam update to p from gradient g scaled by inv.
func adam(p, g, m, v []float32, inv, l2 float32, lr float64, step int) {
	const b1, b2, eps = 0.9, 0.999, 1e-8
	c1 := 1 - math.Pow(b1, float64(step))
	c2 := 1 - math.Pow(b2, float64(step))
	a := float32(lr * math.Sqrt(c2) / c1)
	for i := range p {
		gi := g[i]*inv + l2*p[i]
		m[i] = b1*m[i] + (1-b1)*gi
		v[i] = b2*v[i] + (1-b2)*gi*gi
		p[i] -= a * m[i] / (float32(math.Sqrt(float64(v[i]))) + eps)
	}
}

// logits evaluates the current model on one sample.
func (t *trainer) logits(f *runtime.Features, z []float32) {
	t.w.Pool(f, t.scratch.x)
	t.w.Logits(t.scratch.x, z)
}
