package runtime

import (
	"fmt"
	"strings"
)

// FeaturizerConfig is the part of a program that says how text becomes
// feature ids. It is stored in the manifest, so an artifact always runs with
// the featurization it was trained with.
type FeaturizerConfig struct {
	// Kind names the algorithm. Only "logtok-v1" exists.
	Kind string `json:"kind"`
	// BucketBits sets the hash space: 2^BucketBits embedding rows, row 0 is
	// the padding row. Default: 18.
	BucketBits int `json:"bucket_bits"`
	// MaxBytes truncates longer input before featurization. Default: 4096.
	MaxBytes int `json:"max_bytes"`
	// MaxFeatures caps the features of one record; it is the width of the
	// model's input. Default: 256.
	MaxFeatures int `json:"max_features"`
	// WordNgrams is the longest word n-gram hashed. Default: 2.
	WordNgrams int `json:"word_ngrams"`
	// CharNgrams is the length of the character n-grams hashed inside each
	// word (0 disables them). Default: 4.
	CharNgrams int `json:"char_ngrams"`
	// Seed perturbs every hash, so two programs can use unrelated hash spaces.
	Seed uint64 `json:"seed"`
}

// Featurizer defaults, chosen by measurement (see README, "Sizing").
const (
	featurizerKind      = "logtok-v1"
	DefaultBucketBits   = 18
	DefaultMaxBytes     = 4096
	DefaultMaxFeatures  = 256
	DefaultWordNgrams   = 2
	DefaultCharNgrams   = 4
	maxBucketBits       = 22
	maxFeaturesLimit    = 4096
	maxWordNgramsLimit  = 4
	maxCharNgramsLimit  = 8
	maxMaxBytesLimit    = 1 << 20
	featureTypeWord     = 0x9e3779b97f4a7c15
	featureTypeChar     = 0xc2b2ae3d27d4eb4f
	featureTypeNgramMix = 0x165667b19e3779f9
)

// DefaultFeaturizerConfig returns the configuration new programs use.
func DefaultFeaturizerConfig() FeaturizerConfig {
	return FeaturizerConfig{
		Kind:        featurizerKind,
		BucketBits:  DefaultBucketBits,
		MaxBytes:    DefaultMaxBytes,
		MaxFeatures: DefaultMaxFeatures,
		WordNgrams:  DefaultWordNgrams,
		CharNgrams:  DefaultCharNgrams,
	}
}

// Validate reports the first out-of-range setting.
func (c FeaturizerConfig) Validate() error {
	switch {
	case c.Kind != featurizerKind:
		return fmt.Errorf("featurizer kind %q: want %q", c.Kind, featurizerKind)
	case c.BucketBits < 8 || c.BucketBits > maxBucketBits:
		return fmt.Errorf("featurizer bucket_bits %d: want 8..%d", c.BucketBits, maxBucketBits)
	case c.MaxBytes < 16 || c.MaxBytes > maxMaxBytesLimit:
		return fmt.Errorf("featurizer max_bytes %d: want 16..%d", c.MaxBytes, maxMaxBytesLimit)
	case c.MaxFeatures < 1 || c.MaxFeatures > maxFeaturesLimit:
		return fmt.Errorf("featurizer max_features %d: want 1..%d", c.MaxFeatures, maxFeaturesLimit)
	case c.WordNgrams < 1 || c.WordNgrams > maxWordNgramsLimit:
		return fmt.Errorf("featurizer word_ngrams %d: want 1..%d", c.WordNgrams, maxWordNgramsLimit)
	case c.CharNgrams < 0 || c.CharNgrams > maxCharNgramsLimit:
		return fmt.Errorf("featurizer char_ngrams %d: want 0..%d", c.CharNgrams, maxCharNgramsLimit)
	}
	return nil
}

// Buckets is the number of embedding rows, padding row included.
func (c FeaturizerConfig) Buckets() int { return 1 << c.BucketBits }

// Features is one record's featurization: bucket ids and their pooling
// weights. Slots past Len are padding (id 0, weight 0). Make it with
// NewFeatures: Featurize keeps the padding zero by clearing only what the
// record before wrote.
type Features struct {
	IDs     []int64
	Weights []float32
	Len     int
	// dirty is how many leading entries may be non-zero: the entries past
	// it are zero already, so the next record clears only up to it.
	dirty int
}

// Featurizer turns text into hashed features. It is safe for concurrent use;
// per-call scratch lives in the Features value the caller owns.
type Featurizer struct {
	cfg  FeaturizerConfig
	mask uint64
}

// NewFeaturizer validates cfg and returns a featurizer for it.
func NewFeaturizer(cfg FeaturizerConfig) (*Featurizer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Featurizer{cfg: cfg, mask: uint64(cfg.Buckets() - 1)}, nil
}

// Config returns the configuration the featurizer was built with.
func (f *Featurizer) Config() FeaturizerConfig { return f.cfg }

// NewFeatures allocates a Features buffer sized for this featurizer.
func (f *Featurizer) NewFeatures() Features {
	return Features{IDs: make([]int64, f.cfg.MaxFeatures), Weights: make([]float32, f.cfg.MaxFeatures)}
}

// Featurize fills dst (which must come from NewFeatures, or be that large)
// with text's features. Text longer than MaxBytes is truncated; invalid
// UTF-8 is harmless because tokens are made of ASCII letters and digits and
// every other byte only separates them.
func (f *Featurizer) Featurize(text []byte, dst *Features) {
	st := featState{f: f, ids: dst.IDs[:f.cfg.MaxFeatures]}
	scanTokens(truncate(text, f.cfg.MaxBytes), &st, nil, nil, nil)
	f.finish(&st, dst)
}

// featurizeReading is Featurize, with each of kws reading the featurized
// word tokens for its keywords on the way: one scan where the keywords
// would take a second.
func (f *Featurizer) featurizeReading(text []byte, dst *Features, kws []*kwScan) {
	st := featState{f: f, ids: dst.IDs[:f.cfg.MaxFeatures], kws: kws}
	scanTokens(truncate(text, f.cfg.MaxBytes), &st, nil, nil, nil)
	f.finish(&st, dst)
}

// finish pads dst after the features st emitted and sets their weights.
func (f *Featurizer) finish(st *featState, dst *Features) {
	n := f.cfg.MaxFeatures
	ids, weights := dst.IDs[:n], dst.Weights[:n]
	count := st.n
	if count == 0 {
		// An empty or all-separator record still gets one feature so the
		// model sees "empty" rather than a zero vector shared with padding.
		ids[0] = int64(f.bucket(mix(hashString("<empty>") ^ f.cfg.Seed ^ featureTypeWord)))
		count = 1
	}
	w := 1 / float32(count)
	for i := 0; i < count; i++ {
		weights[i] = w
	}
	// Batches read past Len up to their longest record: the tail must be
	// zero, and only what an earlier record wrote needs clearing.
	for i := count; i < min(dst.dirty, n); i++ {
		ids[i], weights[i] = 0, 0
	}
	dst.Len, dst.dirty = count, count
}

// Normalize returns the masked template of text: lower-cased word tokens
// with numbers, hex, IPs, UUIDs, timestamps, URLs and paths replaced by
// placeholders. Lines that differ only in variables share a template.
func Normalize(text []byte, maxBytes int) string {
	var b strings.Builder
	st := normState{b: &b}
	scanTokens(truncate(text, maxBytes), nil, &st, nil, nil)
	return b.String()
}

func truncate(text []byte, maxBytes int) []byte {
	if maxBytes > 0 && len(text) > maxBytes {
		return text[:maxBytes]
	}
	return text
}

// bucket maps a hash onto 1..Buckets-1; 0 is reserved for padding.
func (f *Featurizer) bucket(h uint64) uint64 {
	b := h & f.mask
	if b == 0 {
		b = 1
	}
	return b
}

// featState accumulates feature ids while tokens stream past.
type featState struct {
	f    *Featurizer
	ids  []int64
	n    int
	prev [maxWordNgramsLimit]uint64 // hashes of the last tokens, newest first
	seen int
	kws  []*kwScan // read the word tokens for keywords (featurizeReading)
}

func (s *featState) emit(h uint64) {
	if s.n < len(s.ids) {
		s.ids[s.n] = int64(s.f.bucket(mix(h ^ s.f.cfg.Seed)))
		s.n++
	}
}

func tokenHash(tok []byte, kind tokenKind) uint64 {
	if kind == tokWord {
		return hashBytes(tok)
	}
	return maskHashes[kind]
}

// hashedToken emits a token's features; h is tokenHash(tok, kind).
func (s *featState) hashedToken(tok []byte, kind tokenKind, h uint64) {
	if s.n >= len(s.ids) {
		return
	}
	if kind == tokWord {
		// The tokens Tokens (the key) and kwScan.token read: those that
		// start below the feature cap.
		for _, k := range s.kws {
			k.word(tok)
		}
	}
	// Shift the n-gram window.
	copy(s.prev[1:], s.prev[:len(s.prev)-1])
	s.prev[0] = h
	s.seen++
	s.emit(h ^ featureTypeWord)
	ng := h
	for k := 1; k < s.f.cfg.WordNgrams && k < s.seen; k++ {
		ng = mix(ng^featureTypeNgramMix) ^ s.prev[k]
		s.emit(ng ^ uint64(k+1)*featureTypeWord)
	}
	if c := s.f.cfg.CharNgrams; kind == tokWord && c > 0 && len(tok) > c {
		// Character n-grams inside the word, with '<' and '>' as word
		// boundaries, so "failed" and "failure" share "fail" pieces.
		var buf [maxTokenLen + 2]byte
		buf[0] = '<'
		copy(buf[1:], tok)
		buf[len(tok)+1] = '>'
		w := buf[:len(tok)+2]
		if c == 4 { // the default: hashBytes unrolled
			for i := 0; i+4 <= len(w); i++ {
				g := w[i : i+4 : i+4]
				h := ((((fnvOffset^uint64(g[0]))*fnvPrime^uint64(g[1]))*fnvPrime^uint64(g[2]))*fnvPrime ^ uint64(g[3])) * fnvPrime
				s.emit(h ^ featureTypeChar)
			}
			return
		}
		for i := 0; i+c <= len(w); i++ {
			s.emit(hashBytes(w[i:i+c]) ^ featureTypeChar)
		}
	}
}

// featureCount is how many features hashedToken emits for a token, given
// how many tokens came before it.
func (f *Featurizer) featureCount(tokLen int, kind tokenKind, before int) int {
	n := 1 + min(f.cfg.WordNgrams-1, before)
	if c := f.cfg.CharNgrams; kind == tokWord && c > 0 && tokLen > c {
		n += tokLen + 2 - c + 1
	}
	return n
}

// Tokens is the state of Scan, which reads a record's token stream only
// as far as its key: records with equal keys have the same token stream up
// to the feature cap, hence the same features, hence the same decision
// from any program using this featurizer. Make it with
// Featurizer.NewTokens; it is reused across records.
type Tokens struct {
	f        *Featurizer
	n        int // tokens
	features int // features the tokens will emit
	key      uint64
}

// NewTokens makes Scan's state for this featurizer's records.
func (f *Featurizer) NewTokens() *Tokens { return &Tokens{f: f} }

// Scan tokenizes text into t and returns its key (never 0). Tokens past
// the feature cap are not read: they could not change the features.
func (f *Featurizer) Scan(text []byte, t *Tokens) uint64 {
	t.n, t.features, t.key = 0, 0, 0
	scanTokens(truncate(text, f.cfg.MaxBytes), nil, nil, t, nil)
	k := mix(t.key ^ uint64(t.n))
	if k == 0 {
		k = 1
	}
	return k
}

func (t *Tokens) hashedToken(tok []byte, kind tokenKind, h uint64) {
	if t.features >= t.f.cfg.MaxFeatures {
		return
	}
	t.features += t.f.featureCount(len(tok), kind, t.n)
	t.n++
	t.key = mix(t.key ^ h)
}

// normState writes the template text of the tokens.
type normState struct {
	b *strings.Builder
}

func (s *normState) token(tok []byte, kind tokenKind) {
	if s.b.Len() > 0 {
		s.b.WriteByte(' ')
	}
	if kind == tokWord {
		s.b.Write(tok)
	} else {
		s.b.WriteString(maskNames[kind])
	}
}

// FNV-1a (the scanner computes it inline for words, with these constants).
const (
	fnvOffset = 14695981039346656037
	fnvPrime  = 1099511628211
)

func hashBytes(b []byte) uint64 {
	h := uint64(fnvOffset)
	for _, c := range b {
		h ^= uint64(c)
		h *= fnvPrime
	}
	return h
}

func hashString(s string) uint64 { return hashBytes([]byte(s)) }

// mix is the splitmix64 finalizer.
func mix(h uint64) uint64 {
	h ^= h >> 30
	h *= 0xbf58476d1ce4e5b9
	h ^= h >> 27
	h *= 0x94d049bb133111eb
	h ^= h >> 31
	return h
}
