package runtime

import (
	"fmt"
	"math"
	"sync"

	ort "github.com/yalue/onnxruntime_go"
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
}

// Program is a loaded artifact ready to run. Run is safe for concurrent use.
type Program struct {
	ID       string
	Manifest Manifest
	Spec     []byte

	env      *Env
	opts     ProgramOptions
	model    []byte
	feat     *Featurizer
	mu       sync.Mutex
	idle     []*session
	created  int
	released chan struct{}
	closed   bool
	toks     sync.Pool // *Tokens for TemplateKey
}

// session is one ORT session with its own input and output buffers.
type session struct {
	s       *ort.DynamicAdvancedSession
	ids     []int64
	weights []float32
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
// so a model ONNX Runtime cannot load, or a missing execution provider, is
// reported here and not on the first record.
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
	feat, err := NewFeaturizer(a.Manifest.Featurizer)
	if err != nil {
		return nil, err
	}
	p := &Program{
		ID: a.ID, Manifest: a.Manifest, Spec: a.Spec,
		env: env, opts: opts, model: a.Model, feat: feat,
		released: make(chan struct{}, 1),
	}
	s, err := p.newSession()
	if err != nil {
		return nil, err
	}
	p.idle = append(p.idle, s)
	p.created = 1
	return p, nil
}

// TemplateKey identifies text's template: records with equal keys differ
// only in what the featurizer masks (numbers, ids, addresses, times), so
// they get the same decision.
func (p *Program) TemplateKey(text []byte) uint64 {
	t, _ := p.toks.Get().(*Tokens)
	if t == nil {
		t = p.feat.NewTokens()
	}
	key := p.feat.Scan(text, t)
	p.toks.Put(t)
	return key
}

// Featurizer returns the program's featurizer.
func (p *Program) Featurizer() *Featurizer { return p.feat }

// Labels returns the output labels in model order.
func (p *Program) Labels() []string { return p.Manifest.Labels }

// Name returns the program's name.
func (p *Program) Name() string { return p.Manifest.Name }

func (p *Program) newSession() (*session, error) {
	so, err := p.env.sessionOptions(p.opts.Device, 1)
	if err != nil {
		return nil, err
	}
	defer so.Destroy()
	s, err := ort.NewDynamicAdvancedSessionWithONNXData(p.model, []string{InputIDs, InputWeights}, []string{OutputProbs}, so)
	if err != nil {
		return nil, fmt.Errorf("%w: onnx runtime cannot load model.onnx: %v", ErrCorrupt, err)
	}
	n := p.opts.MaxBatch * p.feat.cfg.MaxFeatures
	return &session{
		s:       s,
		ids:     make([]int64, n),
		weights: make([]float32, n),
		probs:   make([]float32, p.opts.MaxBatch*len(p.Manifest.Labels)),
	}, nil
}

func (p *Program) acquire() (*session, error) {
	for {
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			return nil, fmt.Errorf("program %s is closed", p.Manifest.Name)
		}
		if n := len(p.idle); n > 0 {
			s := p.idle[n-1]
			p.idle = p.idle[:n-1]
			p.mu.Unlock()
			return s, nil
		}
		if p.created < p.opts.Sessions {
			p.created++
			p.mu.Unlock()
			s, err := p.newSession()
			if err != nil {
				p.mu.Lock()
				p.created--
				p.mu.Unlock()
			}
			return s, err
		}
		p.mu.Unlock()
		<-p.released
	}
}

func (p *Program) release(s *session) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		s.s.Destroy()
		return
	}
	p.idle = append(p.idle, s)
	p.mu.Unlock()
	select {
	case p.released <- struct{}{}:
	default:
	}
}

// Run scores a batch of featurized records. out receives len(feats) rows of
// len(Labels()) probabilities. feats must come from this program's
// featurizer (or one with the same config).
func (p *Program) Run(feats []*Features, out []float32) error {
	n := len(feats)
	k := len(p.Manifest.Labels)
	if n == 0 {
		return nil
	}
	if n > p.opts.MaxBatch {
		return fmt.Errorf("batch of %d exceeds max_batch %d", n, p.opts.MaxBatch)
	}
	if len(out) < n*k {
		return fmt.Errorf("output buffer holds %d values, need %d", len(out), n*k)
	}
	s, err := p.acquire()
	if err != nil {
		return err
	}
	defer p.release(s)
	// The feature width of this batch is its longest record, not the
	// configured maximum: short lines make cheap batches.
	width := 1
	for _, f := range feats {
		width = max(width, f.Len)
	}
	for i, f := range feats {
		row := i * width
		copy(s.ids[row:row+width], f.IDs[:width])
		copy(s.weights[row:row+width], f.Weights[:width])
	}
	shape := ort.NewShape(int64(n), int64(width))
	idsT, err := ort.NewTensor(shape, s.ids)
	if err != nil {
		return fmt.Errorf("ids tensor: %w", err)
	}
	defer idsT.Destroy()
	wT, err := ort.NewTensor(shape, s.weights)
	if err != nil {
		return fmt.Errorf("weights tensor: %w", err)
	}
	defer wT.Destroy()
	outT, err := ort.NewTensor(ort.NewShape(int64(n), int64(k)), s.probs)
	if err != nil {
		return fmt.Errorf("probs tensor: %w", err)
	}
	defer outT.Destroy()
	if err := s.s.Run([]ort.Value{idsT, wT}, []ort.Value{outT}); err != nil {
		return fmt.Errorf("run %s: %w", p.Manifest.Name, err)
	}
	copy(out[:n*k], s.probs[:n*k])
	return nil
}

// Close destroys the program's sessions. Runs in flight finish first.
func (p *Program) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil
	}
	p.closed = true
	var first error
	for _, s := range p.idle {
		if err := s.s.Destroy(); err != nil && first == nil {
			first = err
		}
	}
	p.idle = nil
	close(p.released)
	return first
}

// Decide returns the argmax label index and its probability.
func Decide(probs []float32) (int, float32) {
	best, bp := 0, float32(math.Inf(-1))
	for i, v := range probs {
		if v > bp {
			best, bp = i, v
		}
	}
	return best, bp
}
