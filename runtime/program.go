package runtime

import (
	"errors"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"

	ort "github.com/yalue/onnxruntime_go"

	"github.com/pawlogs/paw/runtime/graph"
)

// ProgramOptions configure how a program is executed. Zero values take the
// defaults.
type ProgramOptions struct {
	// Device is the execution provider. Default: cpu.
	Device Device
	// Sessions is how many ONNX Runtime sessions may run this program at
	// once; each runs single-threaded, so this is the parallelism. Default: 1.
	Sessions int
	// MaxBatch is the largest batch Run accepts. Default: DefaultMaxBatch.
	MaxBatch int
	// EncoderDir holds the encoders encoder-v1 programs reference, one
	// folder each. Default: DefaultEncoderDir().
	EncoderDir string
	// TrialTimeout bounds the trial inference every program runs before
	// it can go live. Default: DefaultTrialTimeout.
	TrialTimeout time.Duration

	noTrial    bool // tests load graphs that are meant to hang
	denseTable bool // tests run the artifact's own graph: to compare, or one paw did not write
}

// DefaultTrialTimeout is ample for paw's graphs, which score a record in
// microseconds.
const DefaultTrialTimeout = 5 * time.Second

// Program is a loaded artifact ready to run. Run is safe for concurrent use.
type Program struct {
	ID       string
	Manifest Manifest
	Spec     []byte

	env   *Env
	opts  ProgramOptions
	model []byte      // the graph sessions load
	rows  *rowIndex   // hashnet-v1: buckets to rows of model's compact table
	feat  *Featurizer // hashnet-v1
	enc   *Encoder    // encoder-v1
	pool  *sessionPool[*session]
	toks  sync.Pool // *Tokens (hashnet-v1) or *[]int64 (encoder-v1) for templateKey
	done  atomic.Bool
	nov   *noveltyData
	kw    *keywordEvidence // hashnet-v1 with label descriptions

	// Runs share one RunOptions, so Abort can stop them all. runMu is held
	// shared by each run, so Close destroys it only once none is in flight;
	// optsMu lets Abort reach it without waiting for those runs.
	runMu   sync.RWMutex
	optsMu  sync.Mutex
	runOpts *ort.RunOptions
	aborted atomic.Bool
}

// session is one ORT session with its own input and output buffers.
type session struct {
	s       *ort.DynamicAdvancedSession
	ids     []int64   // hashnet-v1
	weights []float32 // hashnet-v1
	emb     []float32 // encoder-v1
	probs   []float32
}

// LoadProgram reads, checks and prepares a program file.
func LoadProgram(env *Env, path string, opts ProgramOptions) (*Program, error) {
	a, err := ReadArtifactFile(path)
	if err != nil {
		return nil, err
	}
	p, err := NewProgram(env, a, opts)
	if err != nil {
		return nil, fmt.Errorf("program %s: %w", path, err)
	}
	return p, nil
}

// NewProgram prepares a decoded artifact. It creates one session right away,
// so a model ONNX Runtime cannot load, a missing execution provider, or an
// encoder-v1 program's missing or different encoder, is reported here and
// not on the first record.
func NewProgram(env *Env, a *Artifact, opts ProgramOptions) (*Program, error) {
	if opts.Device.Provider == "" {
		opts.Device.Provider = "cpu"
	}
	if opts.Sessions <= 0 {
		opts.Sessions = 1
	}
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = DefaultMaxBatch
	}
	if opts.TrialTimeout <= 0 {
		opts.TrialTimeout = DefaultTrialTimeout
	}
	p := &Program{ID: a.ID, Manifest: a.Manifest, Spec: a.Spec, env: env, opts: opts, model: a.Model}
	var err error
	if p.nov, err = newNoveltyData(a); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	switch a.Manifest.Interpreter {
	case InterpreterEncoderV1:
		if p.enc, err = openEncoderFor(env, a.Manifest.Encoder, opts); err != nil {
			return nil, err
		}
	default:
		if p.feat, err = NewFeaturizer(a.Manifest.Featurizer); err != nil {
			return nil, err
		}
		p.kw = newKeywordEvidence(&a.Manifest, p.feat)
		if !opts.denseTable {
			if p.model, p.rows, err = compactHashnet(a.Model, "paw-interpreter"); err != nil {
				return nil, fmt.Errorf("%w: %v", ErrCorrupt, err)
			}
		}
	}
	if p.runOpts, err = ort.NewRunOptions(); err != nil {
		if p.enc != nil {
			p.enc.Close()
		}
		return nil, fmt.Errorf("run options: %w", err)
	}
	if p.pool, err = newSessionPool(opts.Sessions, p.newSession, func(s *session) error { return s.s.Destroy() }); err != nil {
		p.runOpts.Destroy()
		if p.enc != nil {
			p.enc.Close()
		}
		return nil, err
	}
	if !opts.noTrial {
		if err := p.trial(); err != nil {
			p.Close()
			return nil, fmt.Errorf("%w: trial inference: %v", ErrCorrupt, err)
		}
	}
	if p.feat != nil {
		// The trial proved the graph loads. A batcher that fuses this
		// program with others never runs it alone, so it holds no session
		// until it does.
		p.pool.shrink()
	}
	return p, nil
}

// trial scores one record before the program can go live, within
// TrialTimeout, and checks that the output is a probability per label: a
// program that cannot run, runs too long or answers nonsense is refused
// here, while the program it would replace keeps running.
func (p *Program) trial() error {
	out := make([]float32, len(p.Manifest.Labels))
	timer := time.AfterFunc(p.opts.TrialTimeout, p.terminate)
	var err error
	if p.enc != nil {
		err = p.RunEmbeddings(make([]float32, p.enc.Ref.Dim), 1, out)
	} else {
		f := p.feat.NewFeatures()
		p.feat.Featurize([]byte("paw trial: connection to 10.0.0.7:5432 refused after 3 retries"), &f)
		err = p.Run([]*Features{&f}, out)
	}
	if !timer.Stop() {
		return fmt.Errorf("did not finish within %s", p.opts.TrialTimeout)
	}
	if err != nil {
		return err
	}
	var sum float64
	for i, v := range out {
		if !(v >= 0 && v <= 1) {
			return fmt.Errorf("label %s scored %v, not a probability", p.Manifest.Labels[i], v)
		}
		sum += float64(v)
	}
	if math.Abs(sum-1) > 1e-3 {
		return fmt.Errorf("probabilities sum to %v, not 1", sum)
	}
	return nil
}

// Abort stops the runs in flight and fails every later one, so a shutdown
// cannot wait on inference. The program is unusable afterwards.
func (p *Program) Abort() {
	p.aborted.Store(true)
	p.terminate()
}

// terminate stops the runs in flight, if the program is still open (a
// failed trial may have closed it already).
func (p *Program) terminate() {
	p.optsMu.Lock()
	if p.runOpts != nil {
		p.runOpts.Terminate()
	}
	p.optsMu.Unlock()
}

// templateKey identifies text's template: records with equal keys get the
// same decision. For hashnet-v1 they differ only in what the featurizer
// masks (numbers, ids, addresses, times); for encoder-v1 they have the same
// tokens.
func (p *Program) templateKey(text []byte) uint64 {
	if p.enc != nil {
		buf, _ := p.toks.Get().(*[]int64)
		if buf == nil {
			buf = new([]int64)
		}
		*buf = p.enc.Tokenize((*buf)[:0], text)
		key := hashIDs(*buf)
		p.toks.Put(buf)
		return key
	}
	t, _ := p.toks.Get().(*Tokens)
	if t == nil {
		t = p.feat.NewTokens()
	}
	key := p.feat.Scan(text, t)
	p.toks.Put(t)
	return key
}

// Featurizer returns a hashnet-v1 program's featurizer (nil for encoder-v1).
func (p *Program) Featurizer() *Featurizer { return p.feat }

// Encoder returns an encoder-v1 program's encoder (nil for hashnet-v1).
func (p *Program) Encoder() *Encoder { return p.enc }

// Labels returns the output labels in model order.
func (p *Program) Labels() []string { return p.Manifest.Labels }

// Name returns the program's name.
func (p *Program) Name() string { return p.Manifest.Name }

// ProgramInfo is what GET /v1/programs says of one program, in paw serve
// and a standalone processor alike; the dashboard reads it.
type ProgramInfo struct {
	Name string `json:"name"`
	// ID is the running (or published) artifact's; empty before a
	// sidecar's first successful compile.
	ID string `json:"id,omitempty"`
	// Status is ok for a running program; a sidecar also says error (the
	// spec is broken and the last good program stays) or pending.
	Status string `json:"status"`
	// Positive is the label whose rate the drift check follows.
	Positive string          `json:"positive,omitempty"`
	Metrics  *CompileMetrics `json:"metrics,omitempty"`
}

// Info is the running program's ProgramInfo.
func (p *Program) Info() ProgramInfo {
	m := p.Manifest.Metrics
	return ProgramInfo{Name: p.Name(), ID: p.ID, Status: "ok", Positive: p.Manifest.Positive, Metrics: &m}
}

func (p *Program) newSession() (*session, error) {
	so, err := p.env.sessionOptions(p.opts.Device, 1)
	if err != nil {
		return nil, err
	}
	defer so.Destroy()
	inputs := []string{graph.InputIDs, graph.InputWeights}
	if p.enc != nil {
		inputs = []string{graph.InputEmbedding}
	}
	s, err := ort.NewDynamicAdvancedSessionWithONNXData(p.model, inputs, []string{graph.OutputProbs}, so)
	if err != nil {
		return nil, fmt.Errorf("%w: onnx runtime cannot load model.onnx: %v", ErrCorrupt, err)
	}
	batch := runRows(p.opts.MaxBatch)
	sess := &session{s: s, probs: make([]float32, batch*len(p.Manifest.Labels))}
	if p.enc != nil {
		sess.emb = make([]float32, batch*p.enc.Ref.Dim)
	} else {
		n := batch * runWidth(p.feat.cfg.MaxFeatures)
		sess.ids, sess.weights = make([]int64, n), make([]float32, n)
	}
	return sess, nil
}

func (p *Program) acquire() (*session, error) {
	s, err := p.pool.acquire()
	if errors.Is(err, errPoolClosed) {
		return nil, fmt.Errorf("program %s is closed", p.Manifest.Name)
	}
	return s, err
}

// checkBatch validates a Run (onFeatures) or RunEmbeddings call: the
// program's interpreter and the sizes.
func (p *Program) checkBatch(n int, out []float32, onFeatures bool) error {
	switch {
	case onFeatures && p.feat == nil:
		return fmt.Errorf("program %s is %s: run it on embeddings", p.Name(), p.Manifest.Interpreter)
	case !onFeatures && p.enc == nil:
		return fmt.Errorf("program %s is %s: run it on features", p.Name(), p.Manifest.Interpreter)
	}
	k := len(p.Manifest.Labels)
	if n > p.opts.MaxBatch {
		return fmt.Errorf("batch of %d exceeds max_batch %d", n, p.opts.MaxBatch)
	}
	if len(out) < n*k {
		return fmt.Errorf("output buffer holds %d values, need %d", len(out), n*k)
	}
	return nil
}

// Run scores a batch of featurized records with a hashnet-v1 program. out
// receives len(feats) rows of len(Labels()) probabilities. feats must come
// from this program's featurizer (or one with the same config).
func (p *Program) Run(feats []*Features, out []float32) error {
	n := len(feats)
	if n == 0 {
		return nil
	}
	if err := p.checkBatch(n, out, true); err != nil {
		return err
	}
	s, err := p.acquire()
	if err != nil {
		return err
	}
	defer p.pool.release(s)
	idsT, wT, err := batchInputs(feats, p.rows, s.ids, s.weights)
	if err != nil {
		return err
	}
	defer idsT.Destroy()
	defer wT.Destroy()
	return p.runGraph(s, n, idsT, wT, out)
}

// ONNX Runtime's kernels read a batch of one record, and a width that is
// not a multiple of their vectors, by other paths than the rest, and the
// sums they make can differ in the last bit: a record would score by its
// company in the batch. Batches run with at least minRunBatch rows and a
// width rounded up to runWidthStep features (AVX-512 holds 16 floats),
// the rest padding; TestBatchOfOneScoresAsInABatch checks every line.
const (
	minRunBatch  = 2
	runWidthStep = 16
)

// runRows is how many rows a batch of n records runs as.
func runRows(n int) int { return max(n, minRunBatch) }

// runWidth is the width a batch whose longest record has n features runs
// at.
func runWidth(n int) int { return (max(n, 1) + runWidthStep - 1) / runWidthStep * runWidthStep }

// batchInputs packs feats into ids (mapped through rows, when set) and
// weights, as rows of the batch's width, and wraps them as the graph's
// inputs. The width follows the batch's longest record, not the
// configured maximum: short lines make cheap batches. ids and weights hold
// runRows(len(feats)) rows of runWidth(MaxFeatures).
func batchInputs(feats []*Features, rows *rowIndex, ids []int64, weights []float32) (idsT *ort.Tensor[int64], wT *ort.Tensor[float32], err error) {
	longest := 0
	for _, f := range feats {
		longest = max(longest, f.Len)
	}
	batch, width := runRows(len(feats)), runWidth(longest)
	pad := int64(0) // the padding id's row: zero, and weighted 0
	if rows != nil {
		pad = rows.row(0)
	}
	for i := range batch {
		row, n := i*width, 0
		if i < len(feats) {
			f := feats[i]
			n = f.Len
			if rows == nil {
				copy(ids[row:row+n], f.IDs[:n])
			} else {
				for j, id := range f.IDs[:n] {
					ids[row+j] = rows.row(id)
				}
			}
			copy(weights[row:row+n], f.Weights[:n])
		}
		for j := row + n; j < row+width; j++ {
			ids[j], weights[j] = pad, 0
		}
	}
	n := batch * width
	shape := ort.NewShape(int64(batch), int64(width))
	if idsT, err = ort.NewTensor(shape, ids[:n]); err != nil {
		return nil, nil, fmt.Errorf("ids tensor: %w", err)
	}
	if wT, err = ort.NewTensor(shape, weights[:n]); err != nil {
		idsT.Destroy()
		return nil, nil, fmt.Errorf("weights tensor: %w", err)
	}
	return idsT, wT, nil
}

// RunEmbeddings scores n pooled encoder embeddings (n rows of the
// encoder's Dim) with an encoder-v1 program's head.
func (p *Program) RunEmbeddings(emb []float32, n int, out []float32) error {
	if n == 0 {
		return nil
	}
	if err := p.checkBatch(n, out, false); err != nil {
		return err
	}
	dim := p.enc.Ref.Dim
	if len(emb) < n*dim {
		return fmt.Errorf("%d embedding values for %d rows of %d", len(emb), n, dim)
	}
	s, err := p.acquire()
	if err != nil {
		return err
	}
	defer p.pool.release(s)
	copy(s.emb, emb[:n*dim])
	batch := runRows(n)
	clear(s.emb[n*dim : batch*dim]) // padding
	embT, err := ort.NewTensor(ort.NewShape(int64(batch), int64(dim)), s.emb[:batch*dim])
	if err != nil {
		return fmt.Errorf("embedding tensor: %w", err)
	}
	defer embT.Destroy()
	return p.runGraph(s, n, embT, nil, out)
}

// runGraph runs the session on its inputs (b may be nil) into out.
func (p *Program) runGraph(s *session, n int, a, b ort.Value, out []float32) error {
	k := len(p.Manifest.Labels)
	batch := runRows(n)
	outT, err := ort.NewTensor(ort.NewShape(int64(batch), int64(k)), s.probs[:batch*k])
	if err != nil {
		return fmt.Errorf("probs tensor: %w", err)
	}
	defer outT.Destroy()
	inputs := []ort.Value{a}
	if b != nil {
		inputs = append(inputs, b)
	}
	p.runMu.RLock()
	defer p.runMu.RUnlock()
	if p.runOpts == nil || p.aborted.Load() {
		return fmt.Errorf("run %s: %w", p.Manifest.Name, ErrAborted)
	}
	if err := s.s.RunWithOptions(inputs, []ort.Value{outT}, p.runOpts); err != nil {
		if p.aborted.Load() {
			return fmt.Errorf("run %s: %w", p.Manifest.Name, ErrAborted)
		}
		return fmt.Errorf("run %s: %w", p.Manifest.Name, err)
	}
	copy(out[:n*k], s.probs[:n*k])
	return nil
}

// Close destroys the program's sessions (and its encoder's). Runs in flight
// finish first.
func (p *Program) Close() error {
	if p.done.Swap(true) {
		return nil // a shared encoder must lose this holder once
	}
	err := p.pool.close()
	p.runMu.Lock()
	p.optsMu.Lock()
	if p.runOpts != nil {
		err = errors.Join(err, p.runOpts.Destroy())
		p.runOpts = nil
	}
	p.optsMu.Unlock()
	p.runMu.Unlock()
	if p.enc != nil {
		err = errors.Join(err, p.enc.Close())
	}
	return err
}

// ErrAborted is returned by runs of a program that was aborted or closed.
var ErrAborted = errors.New("inference aborted")

// MaxScore is the highest score a decision reports: no program is
// certain of a line, and a score of exactly 1 would say it was.
const MaxScore = 0.9999

// Decide returns the argmax label index and its probability, at most
// MaxScore.
func Decide(probs []float32) (int, float32) {
	best, bp := 0, float32(math.Inf(-1))
	for i, v := range probs {
		if v > bp {
			best, bp = i, v
		}
	}
	return best, min(bp, MaxScore)
}
