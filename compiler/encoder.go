package compiler

import (
	"context"
	"fmt"
	"math"
	"path/filepath"

	"github.com/pawlogs/paw/runtime"
	"github.com/pawlogs/paw/runtime/graph"
	"github.com/pawlogs/paw/runtime/patterns"
)

// EncoderSpec names the frozen sentence encoder an encoder-v1 program runs
// on: the folder Name under Dir, holding model.onnx and tokenizer.json.
// Run time looks for the same folder name under its encoders folder, and
// checks that the files are the ones compiled against.
type EncoderSpec struct {
	// Name is the encoder's folder name, e.g. minilm. Required.
	Name string `yaml:"name" json:"name"`
	// Dir holds encoder folders, relative to the spec. Default:
	// $PAW_ENCODERS, else ~/.local/share/paw/encoders.
	Dir string `yaml:"dir,omitempty" json:"dir,omitempty"`
	// How the encoder is run: max_tokens, pooling, normalize, output.
	runtime.EncoderSettings `yaml:",inline"`
}

// encoderBatch is how many texts are embedded per encoder run at compile
// time.
const encoderBatch = 64

// trainEncoderHead embeds the training texts with the frozen encoder and
// trains a softmax head on the embeddings, with a cross-validated
// temperature folded in.
func trainEncoderHead(ctx context.Context, spec *Spec, train []Example, progress Progress) (*trained, error) {
	es := spec.Encoder
	env, err := runtime.OpenEnv("")
	if err != nil {
		return nil, fmt.Errorf("encoder-v1 compiles with ONNX Runtime: %w", err)
	}
	enc, err := runtime.LoadEncoder(env, spec.encoderFolder(), es.EncoderSettings,
		runtime.ProgramOptions{MaxBatch: encoderBatch})
	if err != nil {
		env.Close()
		return nil, err
	}
	closeAll := func() { enc.Close(); env.Close() }
	dim := enc.Ref.Dim
	embed := func(texts []string, out []float32) error {
		seqs := make([][]int64, 0, encoderBatch)
		for lo := 0; lo < len(texts); lo += encoderBatch {
			if err := ctx.Err(); err != nil {
				return err
			}
			hi := min(lo+encoderBatch, len(texts))
			seqs = seqs[:0]
			for _, t := range texts[lo:hi] {
				seqs = append(seqs, enc.Tokenize(nil, []byte(t)))
			}
			if err := enc.Embed(seqs, out[lo*dim:hi*dim]); err != nil {
				return err
			}
			progress("embed", hi, len(texts))
		}
		return nil
	}
	index := map[string]int{}
	for i, l := range spec.Labels {
		index[l] = i
	}
	texts := make([]string, len(train))
	labels := make([]int, len(train))
	counts := make([]int, len(spec.Labels))
	for i, e := range train {
		texts[i], labels[i] = e.Text, index[e.Label]
		counts[labels[i]]++
	}
	keys := make([]uint64, len(texts))
	miner := patterns.New(patterns.Config{})
	for i, t := range texts {
		ids := enc.Tokenize(nil, []byte(t))
		keys[i] = runtime.TokenKey(ids)
		miner.Add(enc.Text(ids)) // as novelty reads records
	}
	x := make([]float32, len(train)*dim)
	if err := embed(texts, x); err != nil {
		closeAll()
		return nil, err
	}
	opt := spec.headOptions()
	folds := spec.calibrationFolds(counts)
	temperature, ece, err := calibrate(labels, counts, folds, opt.seed, func(k int, trainIdx, held []int) ([][]float32, error) {
		h := fitHead(x, labels, trainIdx, dim, len(counts), opt)
		z := make([][]float32, len(held))
		for j, i := range held {
			z[j] = h.logits(x[i*dim:(i+1)*dim], make([]float32, len(counts)))
		}
		return z, ctx.Err()
	})
	if err != nil {
		closeAll()
		return nil, err
	}
	all := make([]int, len(train))
	for i := range all {
		all[i] = i
	}
	h := fitHead(x, labels, all, dim, len(counts), opt)
	w := h.weights(1 / temperature)
	ev := make([]float32, dim)
	p32 := make([]float32, len(counts))
	var embedErr error
	rates, warnings, err := spec.applyBaseRates(w.Bias, func(text string, probs []float64) {
		if err := embed([]string{text}, ev); err != nil {
			embedErr = err
		}
		w.Forward(ev, p32)
		for k, v := range p32 {
			probs[k] = float64(v)
		}
	}, nil)
	if err == nil {
		err = embedErr
	}
	if err != nil {
		closeAll()
		return nil, err
	}
	model, err := w.Encode(Version)
	if err != nil {
		closeAll()
		return nil, fmt.Errorf("build onnx: %w", err)
	}
	ref := enc.Ref
	ref.Name = es.Name
	probs := make([]float32, len(counts))
	acc := accuracy(labels, func(i int) []float32 { w.Forward(x[i*dim:(i+1)*dim], probs); return probs })
	v := make([]float32, dim)
	return &trained{
		predict: func(text string, probs []float32) error {
			if err := embed([]string{text}, v); err != nil {
				return err
			}
			w.Forward(v, probs)
			return nil
		},
		model: model, encoder: &ref, close: closeAll, trainAccuracy: acc, rates: rates, warnings: warnings, cvECE: ece,
		templates: runtime.EncodeTemplateKeys(keys),
		patterns:  runtime.NoveltyPatterns(miner),
		shape:     runtime.ModelShape{Dim: dim, Temperature: round6(temperature)},
	}, nil
}

// encoderFolder is the encoder's folder: as validated, or, for a spec
// built in code, from Dir (default the encoders folder) and Name.
// EncodersDir is the folder holding the spec's encoder folder (its
// encoder.dir, resolved, or the default): ProgramOptions.EncoderDir for
// running its encoder-v1 programs; "" for a spec without an encoder.
func (s *Spec) EncodersDir() string {
	if s.Encoder == nil {
		return ""
	}
	return filepath.Dir(s.encoderFolder())
}

func (s *Spec) encoderFolder() string {
	if s.encoderPath != "" {
		return s.encoderPath
	}
	dir := s.Encoder.Dir
	if dir == "" {
		dir = runtime.DefaultEncoderDir()
	}
	return filepath.Join(dir, s.Encoder.Name)
}

// headOptions are the head's training settings, from the spec's options.
type headOptions struct {
	seed   uint64
	epochs int
	lr, l2 float64
}

func (s *Spec) headOptions() headOptions {
	t := s.trainOptions()
	o := headOptions{seed: t.Seed, epochs: 300, lr: 0.05, l2: t.L2}
	if s.Options.Epochs != 0 {
		o.epochs = s.Options.Epochs
	}
	if s.Options.LearningRate != 0 {
		o.lr = s.Options.LearningRate
	}
	return o
}

// head is a softmax regression in float64, trained full-batch with Adam on
// a class-balanced log loss: deterministic, and exact enough that the
// float32 ONNX head agrees with it.
type head struct {
	dim, labels int
	w, b        []float64 // dim x labels, labels
}

func fitHead(x []float32, labels, idx []int, dim, k int, o headOptions) *head {
	h := &head{dim: dim, labels: k, w: make([]float64, dim*k), b: make([]float64, k)}
	counts := make([]int, k)
	for _, i := range idx {
		counts[labels[i]]++
	}
	cw := make([]float64, k)
	for c, n := range counts {
		if n > 0 {
			cw[c] = float64(len(idx)) / float64(k*n)
		}
	}
	params := len(h.w) + len(h.b)
	g, m, v := make([]float64, params), make([]float64, params), make([]float64, params)
	z := make([]float64, k)
	const b1, b2, eps = 0.9, 0.999, 1e-8
	for step := 1; step <= o.epochs; step++ {
		clear(g)
		for _, i := range idx {
			xi := x[i*dim : (i+1)*dim]
			copy(z, h.b)
			for d, xv := range xi {
				for c := 0; c < k; c++ {
					z[c] += float64(xv) * h.w[d*k+c]
				}
			}
			softmax64(z)
			y := labels[i]
			for c := 0; c < k; c++ {
				dz := z[c] * cw[y]
				if c == y {
					dz -= cw[y]
				}
				dz /= float64(len(idx))
				g[len(h.w)+c] += dz
				for d, xv := range xi {
					g[d*k+c] += dz * float64(xv)
				}
			}
		}
		for j := range h.w {
			g[j] += o.l2 * h.w[j]
		}
		c1, c2 := 1-math.Pow(b1, float64(step)), 1-math.Pow(b2, float64(step))
		for j := 0; j < params; j++ {
			m[j] = b1*m[j] + (1-b1)*g[j]
			v[j] = b2*v[j] + (1-b2)*g[j]*g[j]
			delta := o.lr * (m[j] / c1) / (math.Sqrt(v[j]/c2) + eps)
			if j < len(h.w) {
				h.w[j] -= delta
			} else {
				h.b[j-len(h.w)] -= delta
			}
		}
	}
	return h
}

func (h *head) logits(x []float32, z []float32) []float32 {
	for c := 0; c < h.labels; c++ {
		s := h.b[c]
		for d, xv := range x {
			s += float64(xv) * h.w[d*h.labels+c]
		}
		z[c] = float32(s)
	}
	return z
}

// weights are the head as the runtime runs it, logits scaled by scale (the
// inverse temperature).
func (h *head) weights(scale float64) *graph.Head {
	w := &graph.Head{Dim: h.dim, Labels: h.labels, W: make([]float32, len(h.w)), Bias: make([]float32, len(h.b))}
	for i, v := range h.w {
		w.W[i] = float32(v * scale)
	}
	for i, v := range h.b {
		w.Bias[i] = float32(v * scale)
	}
	return w
}

func softmax64(z []float64) {
	m := math.Inf(-1)
	for _, v := range z {
		m = math.Max(m, v)
	}
	var sum float64
	for i, v := range z {
		z[i] = math.Exp(v - m)
		sum += z[i]
	}
	for i := range z {
		z[i] /= sum
	}
}
