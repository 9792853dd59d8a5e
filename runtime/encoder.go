package runtime

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"

	ort "github.com/yalue/onnxruntime_go"

	"github.com/pawlogs/paw/runtime/tokenizer"
)

// InterpreterEncoderV1 runs a frozen sentence encoder (an ONNX export such
// as MiniLM or BGE-small, with its tokenizer.json) and a small trained head
// on its pooled embedding. The artifact holds the head and references the
// encoder by SHA-256; the encoder itself is installed next to paw.
const InterpreterEncoderV1 = "encoder-v1"

// Files of an encoder folder, as Hugging Face Optimum exports them.
const (
	encoderModelFile     = "model.onnx"
	encoderTokenizerFile = "tokenizer.json"
)

// EnvEncoders names the variable that overrides DefaultEncoderDir.
const EnvEncoders = "PAW_ENCODERS"

// Pooling turns an encoder's per-token output into one vector.
const (
	PoolMean = "mean" // average of the tokens the attention mask keeps
	PoolCLS  = "cls"  // the first token's vector
	PoolNone = "none" // the encoder's output is already one vector per record
)

// EncoderRef is how an encoder-v1 artifact names its encoder: a folder name
// under the encoders folder, and the digests the files there must have.
type EncoderRef struct {
	Name            string `json:"name"`
	ModelSHA256     string `json:"model_sha256"`
	TokenizerSHA256 string `json:"tokenizer_sha256"`
	Output          string `json:"output"`
	Dim             int    `json:"dim"`
	MaxTokens       int    `json:"max_tokens"`
	Pooling         string `json:"pooling"`
	Normalize       bool   `json:"normalize"`
}

// Validate checks an EncoderRef read from a manifest.
func (r *EncoderRef) Validate() error {
	hexOK := func(s string) bool {
		b, err := hex.DecodeString(s)
		return err == nil && len(b) == sha256.Size
	}
	switch {
	case r.Name == "" || r.Name != filepath.Base(r.Name) || r.Name == "." || r.Name == "..":
		return fmt.Errorf("encoder name %q: want a folder name", r.Name)
	case !hexOK(r.ModelSHA256) || !hexOK(r.TokenizerSHA256):
		return errors.New("encoder digests must be hex SHA-256")
	case r.Output == "":
		return errors.New("encoder output is empty")
	case r.Dim < 1 || r.Dim > 1<<16:
		return fmt.Errorf("encoder dim %d out of range", r.Dim)
	case r.MaxTokens < 2 || r.MaxTokens > 1<<14:
		return fmt.Errorf("encoder max_tokens %d out of range", r.MaxTokens)
	case !slices.Contains([]string{PoolMean, PoolCLS, PoolNone}, r.Pooling):
		return fmt.Errorf("encoder pooling %q: want mean, cls or none", r.Pooling)
	}
	return nil
}

// DefaultEncoderDir is $PAW_ENCODERS, else $XDG_DATA_HOME/paw/encoders
// (~/.local/share/paw/encoders).
func DefaultEncoderDir() string {
	if d := os.Getenv(EnvEncoders); d != "" {
		return d
	}
	return filepath.Join(filepath.Dir(filepath.Dir(DefaultORTLibPath())), "encoders")
}

// EncoderSettings choose how an encoder is run; zero values take the
// defaults.
type EncoderSettings struct {
	// MaxTokens cuts longer records. Default: 128.
	MaxTokens int `yaml:"max_tokens,omitempty" json:"max_tokens,omitempty"`
	// Pooling: mean, cls; none when the encoder outputs one vector per
	// record. Default: mean for per-token outputs.
	Pooling string `yaml:"pooling,omitempty" json:"pooling,omitempty"`
	// Normalize scales embeddings to unit length, as sentence-transformers
	// models expect.
	Normalize bool `yaml:"normalize,omitempty" json:"normalize,omitempty"`
	// Output names the encoder output to read. Default: last_hidden_state
	// if present, else sentence_embedding, else the first output.
	Output string `yaml:"output,omitempty" json:"output,omitempty"`
}

// Settings are the settings an artifact's encoder was compiled with.
func (r *EncoderRef) Settings() EncoderSettings {
	return EncoderSettings{MaxTokens: r.MaxTokens, Pooling: r.Pooling, Normalize: r.Normalize, Output: r.Output}
}

// encoderInputs are the inputs paw knows how to feed.
var encoderInputs = []string{"input_ids", "attention_mask", "token_type_ids"}

// Encoder is a frozen encoder with its tokenizer. Embed is safe for
// concurrent use.
type Encoder struct {
	Ref    EncoderRef
	tok    *tokenizer.Tokenizer
	env    *Env
	dev    Device
	model  []byte
	inputs []string // the model's inputs, in its order
	max    int      // rows per Embed call
	pool   *sessionPool[*encSession]
	key    *encoderKey // set when shared by programs (openEncoderFor)
	refs   int         // programs holding a shared encoder; under ortState
}

// encoderKey is what makes two programs' encoders the same one: the files
// (by digest, in one folder) run the same way on the same device.
type encoderKey struct {
	ref EncoderRef
	dir string
	dev Device
}

type encSession struct {
	s                *ort.DynamicAdvancedSession
	ids, mask, types []int64
}

// LoadEncoder opens the encoder in dir (model.onnx and tokenizer.json) and
// describes it in Ref: its digests, output and width. The compiler uses it;
// programs open their encoder with openEncoderFor.
func LoadEncoder(env *Env, dir string, set EncoderSettings, opts ProgramOptions) (*Encoder, error) {
	model, err := os.ReadFile(filepath.Join(dir, encoderModelFile))
	if err != nil {
		return nil, fmt.Errorf("encoder %s: %w", dir, err)
	}
	tokPath := filepath.Join(dir, encoderTokenizerFile)
	tokData, err := os.ReadFile(tokPath)
	if err != nil {
		return nil, fmt.Errorf("encoder %s: %w", dir, err)
	}
	tok, err := tokenizer.Parse(tokData)
	if err != nil {
		return nil, fmt.Errorf("encoder %s: %s: %w", dir, encoderTokenizerFile, err)
	}
	if set.MaxTokens == 0 {
		set.MaxTokens = 128
	}
	abs, _ := filepath.Abs(dir)
	e := &Encoder{
		Ref: EncoderRef{Name: filepath.Base(abs), ModelSHA256: sha256Hex(model), TokenizerSHA256: sha256Hex(tokData),
			MaxTokens: set.MaxTokens, Normalize: set.Normalize},
		tok: tok, env: env, dev: opts.Device, model: model, max: opts.MaxBatch,
	}
	if e.max <= 0 {
		e.max = DefaultMaxBatch
	}
	ins, outs, err := ort.GetInputOutputInfoWithONNXData(model)
	if err != nil {
		return nil, fmt.Errorf("encoder %s: onnx runtime cannot read %s: %w", dir, encoderModelFile, err)
	}
	for _, in := range ins {
		if !slices.Contains(encoderInputs, in.Name) {
			return nil, fmt.Errorf("encoder %s: input %q is not one paw feeds (%v)", dir, in.Name, encoderInputs)
		}
		e.inputs = append(e.inputs, in.Name)
	}
	if !slices.Contains(e.inputs, "input_ids") {
		return nil, fmt.Errorf("encoder %s: the model has no input_ids input", dir)
	}
	var out *ort.InputOutputInfo
	for _, want := range []string{set.Output, "last_hidden_state", "sentence_embedding"} {
		for i := range outs {
			if want != "" && outs[i].Name == want && out == nil {
				out = &outs[i]
			}
		}
	}
	if set.Output != "" && (out == nil || out.Name != set.Output) {
		return nil, fmt.Errorf("encoder %s: the model has no output %q", dir, set.Output)
	}
	if out == nil && len(outs) > 0 {
		out = &outs[0]
	}
	if out == nil {
		return nil, fmt.Errorf("encoder %s: the model has no outputs", dir)
	}
	e.Ref.Output = out.Name
	switch rank := len(out.Dimensions); {
	case rank == 3:
		e.Ref.Pooling = set.Pooling
		if e.Ref.Pooling == "" {
			e.Ref.Pooling = PoolMean
		}
		if e.Ref.Pooling == PoolNone {
			return nil, fmt.Errorf("encoder %s: output %s is per token: pooling must be mean or cls", dir, out.Name)
		}
	case rank == 2:
		if set.Pooling != "" && set.Pooling != PoolNone {
			return nil, fmt.Errorf("encoder %s: output %s is already pooled: pooling must be none", dir, out.Name)
		}
		e.Ref.Pooling = PoolNone
	default:
		return nil, fmt.Errorf("encoder %s: output %s has rank %d, want 2 or 3", dir, out.Name, rank)
	}
	if e.pool, err = newSessionPool(opts.Sessions, e.newSession, func(s *encSession) error { return s.s.Destroy() }); err != nil {
		return nil, fmt.Errorf("encoder %s: %w", dir, err)
	}
	// A probe run finds the width and shows the model runs at all.
	probe := e.tok.Encode(nil, "paw", e.Ref.MaxTokens)
	dim, err := e.embed([][]int64{probe}, nil)
	if err != nil {
		e.Close()
		return nil, fmt.Errorf("encoder %s: probe run: %w", dir, err)
	}
	e.Ref.Dim = dim
	return e, nil
}

// openEncoderFor opens the encoder an artifact references, from
// opts.EncoderDir (default DefaultEncoderDir()), and refuses files whose
// digests differ from the ones the program was compiled against.
func openEncoderFor(env *Env, ref *EncoderRef, opts ProgramOptions) (*Encoder, error) {
	if ref == nil {
		return nil, fmt.Errorf("%w: encoder-v1 program without an encoder reference", ErrCorrupt)
	}
	root := opts.EncoderDir
	if root == "" {
		root = DefaultEncoderDir()
	}
	dir := filepath.Join(root, ref.Name)
	key := encoderKey{ref: *ref, dir: dir, dev: opts.Device}
	if e := sharedEncoder(key); e != nil {
		return e, nil
	}
	e, err := LoadEncoder(env, dir, ref.Settings(), opts)
	if err != nil {
		return nil, fmt.Errorf("%w (install the encoder the program was compiled with in %s, or set %s)", err, dir, EnvEncoders)
	}
	mismatch := func(file, got, want string) error {
		e.Close()
		return fmt.Errorf("encoder %s: %s has SHA-256 %s, the program was compiled against %s: refusing a different encoder", dir, file, got, want)
	}
	switch {
	case e.Ref.ModelSHA256 != ref.ModelSHA256:
		return nil, mismatch(encoderModelFile, e.Ref.ModelSHA256, ref.ModelSHA256)
	case e.Ref.TokenizerSHA256 != ref.TokenizerSHA256:
		return nil, mismatch(encoderTokenizerFile, e.Ref.TokenizerSHA256, ref.TokenizerSHA256)
	case e.Ref.Dim != ref.Dim:
		e.Close()
		return nil, fmt.Errorf("encoder %s: width %d, the program wants %d", dir, e.Ref.Dim, ref.Dim)
	}
	return shareEncoder(key, e), nil
}

// sharedEncoder returns the loaded encoder for key, with one more holder.
func sharedEncoder(key encoderKey) *Encoder {
	ortState.Lock()
	defer ortState.Unlock()
	e := ortState.encoders[key]
	if e != nil {
		e.refs++
	}
	return e
}

// shareEncoder registers e under key, or, if another program loaded the
// same encoder meanwhile, closes e and returns that one.
func shareEncoder(key encoderKey, e *Encoder) *Encoder {
	ortState.Lock()
	if other := ortState.encoders[key]; other != nil {
		other.refs++
		ortState.Unlock()
		e.Close()
		return other
	}
	if ortState.encoders == nil {
		ortState.encoders = map[encoderKey]*Encoder{}
	}
	e.key, e.refs = &key, 1
	ortState.encoders[key] = e
	ortState.Unlock()
	return e
}

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func (e *Encoder) newSession() (*encSession, error) {
	so, err := e.env.sessionOptions(e.dev, 1)
	if err != nil {
		return nil, err
	}
	defer so.Destroy()
	s, err := ort.NewDynamicAdvancedSessionWithONNXData(e.model, e.inputs, []string{e.Ref.Output}, so)
	if err != nil {
		return nil, fmt.Errorf("onnx runtime cannot load %s: %w", encoderModelFile, err)
	}
	n := e.max * e.Ref.MaxTokens
	return &encSession{s: s, ids: make([]int64, n), mask: make([]int64, n), types: make([]int64, n)}, nil
}

// Tokenize appends text's token ids, special tokens included, cut at
// MaxTokens.
func (e *Encoder) Tokenize(dst []int64, text []byte) []int64 {
	return e.tok.Encode(dst, string(text), e.Ref.MaxTokens)
}

// Text spells ids that Tokenize gave as the tokenizer's pieces, words
// apart: what an encoder-v1 program's log patterns are mined from, so that
// a record's novelty, like its embedding, depends on its ids alone.
func (e *Encoder) Text(ids []int64) string { return e.tok.Text(ids) }

// Embed writes one pooled embedding of Ref.Dim floats per token sequence
// into out. At most the program's max_batch sequences per call.
func (e *Encoder) Embed(seqs [][]int64, out []float32) error {
	if len(seqs) == 0 {
		return nil
	}
	if len(out) < len(seqs)*e.Ref.Dim {
		return fmt.Errorf("embedding buffer holds %d values, need %d", len(out), len(seqs)*e.Ref.Dim)
	}
	_, err := e.embed(seqs, out)
	return err
}

// embed runs the encoder; with out nil it only reports the width.
func (e *Encoder) embed(seqs [][]int64, out []float32) (dim int, err error) {
	n := len(seqs)
	if n > e.max {
		return 0, fmt.Errorf("batch of %d exceeds max_batch %d", n, e.max)
	}
	width := 1
	for _, s := range seqs {
		width = max(width, len(s))
	}
	if width > e.Ref.MaxTokens {
		return 0, fmt.Errorf("sequence of %d tokens exceeds max_tokens %d", width, e.Ref.MaxTokens)
	}
	s, err := e.pool.acquire()
	if err != nil {
		return 0, fmt.Errorf("encoder %s: %w", e.Ref.Name, err)
	}
	defer e.pool.release(s)
	pad := e.tok.PadID()
	for i, seq := range seqs {
		row := i * width
		for j := 0; j < width; j++ {
			s.types[row+j] = 0
			if j < len(seq) {
				s.ids[row+j], s.mask[row+j] = seq[j], 1
			} else {
				s.ids[row+j], s.mask[row+j] = pad, 0
			}
		}
	}
	shape := ort.NewShape(int64(n), int64(width))
	inputs := make([]ort.Value, len(e.inputs))
	for i, name := range e.inputs {
		buf := s.ids
		switch name {
		case "attention_mask":
			buf = s.mask
		case "token_type_ids":
			buf = s.types
		}
		t, err := ort.NewTensor(shape, buf[:n*width])
		if err != nil {
			return 0, fmt.Errorf("%s tensor: %w", name, err)
		}
		defer t.Destroy()
		inputs[i] = t
	}
	outputs := []ort.Value{nil} // ONNX Runtime allocates it: its size is the encoder's business
	if err := s.s.Run(inputs, outputs); err != nil {
		return 0, fmt.Errorf("run encoder %s: %w", e.Ref.Name, err)
	}
	defer outputs[0].Destroy()
	t, ok := outputs[0].(*ort.Tensor[float32])
	if !ok {
		return 0, fmt.Errorf("encoder %s: output %s is not a float tensor", e.Ref.Name, e.Ref.Output)
	}
	data, shp := t.GetData(), t.GetShape()
	switch {
	case e.Ref.Pooling == PoolNone && len(shp) == 2 && shp[0] == int64(n):
		dim = int(shp[1])
	case e.Ref.Pooling != PoolNone && len(shp) == 3 && shp[0] == int64(n) && shp[1] == int64(width):
		dim = int(shp[2])
	default:
		return 0, fmt.Errorf("encoder %s: output shape %v for a batch of %dx%d", e.Ref.Name, shp, n, width)
	}
	if out == nil {
		return dim, nil
	}
	if dim != e.Ref.Dim {
		return 0, fmt.Errorf("encoder %s: output width %d, want %d", e.Ref.Name, dim, e.Ref.Dim)
	}
	for i := 0; i < n; i++ {
		v := out[i*dim : (i+1)*dim]
		switch e.Ref.Pooling {
		case PoolNone:
			copy(v, data[i*dim:(i+1)*dim])
		case PoolCLS:
			copy(v, data[i*width*dim:i*width*dim+dim])
		case PoolMean:
			clear(v)
			count := 0
			for j := 0; j < width; j++ {
				if s.mask[i*width+j] == 0 {
					continue
				}
				count++
				for d, x := range data[(i*width+j)*dim : (i*width+j+1)*dim] {
					v[d] += x
				}
			}
			inv := 1 / float32(max(count, 1))
			for d := range v {
				v[d] *= inv
			}
		}
		if e.Ref.Normalize {
			var ss float64
			for _, x := range v {
				ss += float64(x) * float64(x)
			}
			if ss > 0 {
				inv := float32(1 / math.Sqrt(ss))
				for d := range v {
					v[d] *= inv
				}
			}
		}
	}
	return dim, nil
}

// Close releases the encoder; a shared one is destroyed with its last
// holder.
func (e *Encoder) Close() error {
	if e.key != nil {
		ortState.Lock()
		e.refs--
		if e.refs > 0 {
			ortState.Unlock()
			return nil
		}
		delete(ortState.encoders, *e.key)
		ortState.Unlock()
	}
	return e.pool.close()
}

// hashIDs is FNV-1a over token ids, never 0 (0 marks an empty cache slot).
func hashIDs(ids []int64) uint64 {
	h := uint64(14695981039346656037)
	for _, id := range ids {
		for s := 0; s < 64; s += 8 {
			h ^= uint64(id>>s) & 0xff
			h *= 1099511628211
		}
	}
	if h == 0 {
		h = 1
	}
	return h
}
