package runtime

import (
	"archive/zip"
	"bytes"
	"compress/flate"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"slices"

	"github.com/pawlogs/paw/evaluate"
	"github.com/pawlogs/paw/internal/bounded"
)

// FormatVersion is the .paw layout this build writes and the newest it reads.
const FormatVersion = 1

// Entry names inside a .paw ZIP, in the order they are written.
const (
	entryManifest = "manifest.json"
	entrySpec     = "spec.yaml"
	entryModel    = "model.onnx"
)

// Size limits applied when reading artifacts. Uncompressed sizes are
// enforced while inflating, not read from headers, so a zip bomb stops at
// the limit.
const (
	MaxArtifactBytes = 64 << 20
	maxManifestBytes = 1 << 20
	maxSpecBytes     = 4 << 20
	maxModelBytes    = 256 << 20
	maxEntries       = 3
)

// MaxLabels bounds a program's labels: each costs a row of every cache
// entry and an output per record.
const MaxLabels = 256

// ErrCorrupt marks an artifact that is refused; the message gives the reason.
var ErrCorrupt = errors.New("invalid artifact")

// Manifest describes a program. It holds no timestamps: the same spec and
// compiler version give the same bytes.
type Manifest struct {
	FormatVersion   int              `json:"format_version"`
	Name            string           `json:"name"`
	Description     string           `json:"description"`
	Labels          []string         `json:"labels"`
	Positive        string           `json:"positive,omitempty"`
	Input           string           `json:"input,omitempty"`
	Interpreter     string           `json:"interpreter"`
	Featurizer      FeaturizerConfig `json:"featurizer,omitzero"` // hashnet-v1
	Model           ModelShape       `json:"model"`
	SpecSHA256      string           `json:"spec_sha256"`
	CompilerVersion string           `json:"compiler_version"`
	Metrics         CompileMetrics   `json:"metrics"`
	// Teacher is the provenance of teacher-labelled training data.
	Teacher *TeacherProvenance `json:"teacher,omitempty"`
	// Encoder is the frozen encoder an encoder-v1 program runs on.
	Encoder *EncoderRef `json:"encoder,omitempty"`
	// BaseRates are the label shares the program's scores assume, folded
	// into its bias; none: the balanced training mix.
	BaseRates map[string]float64 `json:"base_rates,omitempty"`
	// BaseRatesSource says where they came from: spec, or estimated from
	// N samples.
	BaseRatesSource string `json:"base_rates_source,omitempty"`
	// Templates are an encoder-v1 program's training examples' template
	// keys (EncodeTemplateKeys), what its novelty checks a record against.
	Templates string `json:"templates,omitempty"`
	// Patterns are an encoder-v1 program's training lines' log patterns
	// (runtime/patterns, patterns.Miner.Frozen), most lines first: its
	// novelty is how poorly the nearest covers a record.
	Patterns []string `json:"patterns,omitempty"`
	// Learned says how much of the program came from answers given after
	// its first compile (nil: none).
	Learned *Learned `json:"learned,omitempty"`
	// Keywords are a hashnet-v1 program's label descriptions as keyword
	// phrases, by label: each phrase's stems joined by a space ("lost
	// connect"). See keywords.go.
	Keywords map[string][]string `json:"keywords,omitempty"`
	// KeywordRates are how often each label's keywords occur in its own
	// examples and in the others'.
	KeywordRates map[string]KeywordRates `json:"keyword_rates,omitempty"`
}

// Learned is the answer set a program was compiled with.
type Learned struct {
	Answers int    `json:"answers"` // one per template
	Digest  string `json:"digest"`  // identifies the answer set
}

// TeacherProvenance says which model labelled which sample, so a program's
// origin can be audited; CacheKeyDigest identifies the exact answers.
type TeacherProvenance struct {
	Model          string             `json:"model"`
	BaseURL        string             `json:"base_url"`
	Sampled        int                `json:"sampled"`
	Clusters       int                `json:"clusters"`
	Labelled       int                `json:"labelled"`
	Holdout        int                `json:"holdout"`
	CacheKeyDigest string             `json:"cache_key_digest"`
	Fidelity       float64            `json:"fidelity"`
	FidelityLabels map[string]float64 `json:"fidelity_per_label"`
	// SystemPrompt is what the teacher was told: the task, the labels and
	// the few-shot examples. Escalations to the teacher at run time ask
	// with it, so they share the compile-time answer cache.
	SystemPrompt string `json:"system_prompt,omitempty"`
}

// ModelShape is the model's tensor sizes: for encoder-v1, Dim is the
// encoder's width.
type ModelShape struct {
	Buckets     int     `json:"buckets,omitempty"` // hashnet-v1
	Dim         int     `json:"dim"`
	Temperature float64 `json:"temperature"`
}

// CompileMetrics are measured at compile time and travel with the program.
type CompileMetrics struct {
	Examples      int     `json:"examples"`
	Tests         int     `json:"tests"`
	TrainAccuracy float64 `json:"train_accuracy"`
	// CalibrationECE is the expected calibration error (10 bins) of the
	// cross-validation folds' predictions, at the fitted temperature.
	CalibrationECE float64          `json:"calibration_ece,omitempty"`
	Test           *evaluate.Report `json:"test,omitempty"`
}

// Validate checks a manifest's internal consistency.
func (m *Manifest) Validate() error {
	switch {
	case m.FormatVersion < 1:
		return fmt.Errorf("format_version %d: want >= 1", m.FormatVersion)
	case m.FormatVersion > FormatVersion:
		return fmt.Errorf("format_version %d is newer than this paw reads (%d): upgrade paw", m.FormatVersion, FormatVersion)
	case m.Name == "":
		return errors.New("name is empty")
	case len(m.Labels) < 2 || len(m.Labels) > MaxLabels:
		return fmt.Errorf("%d labels: want 2..%d", len(m.Labels), MaxLabels)
	case m.Interpreter != InterpreterHashnetV1 && m.Interpreter != InterpreterEncoderV1:
		return fmt.Errorf("interpreter %q: this paw runs %q and %q", m.Interpreter, InterpreterHashnetV1, InterpreterEncoderV1)
	case m.Positive != "" && !slices.Contains(m.Labels, m.Positive):
		return fmt.Errorf("positive label %q is not one of %v", m.Positive, m.Labels)
	}
	if _, err := decodeTemplateKeys(m.Templates); err != nil {
		return err
	}
	if _, err := frozenPatterns(m); err != nil {
		return err
	}
	if err := validateKeywords(m); err != nil {
		return err
	}
	for l, r := range m.BaseRates {
		if !slices.Contains(m.Labels, l) || !(r > 0 && r < 1) {
			return fmt.Errorf("base_rates[%q] = %v: want a label's share in (0, 1)", l, r)
		}
	}
	seen := map[string]bool{}
	for _, l := range m.Labels {
		if l == "" || seen[l] {
			return fmt.Errorf("labels %v: empty or duplicate label", m.Labels)
		}
		seen[l] = true
	}
	if m.Interpreter == InterpreterEncoderV1 {
		switch {
		case m.Encoder == nil:
			return errors.New("encoder-v1 program without an encoder")
		case m.Model.Dim != m.Encoder.Dim:
			return fmt.Errorf("model dim %d, encoder %d", m.Model.Dim, m.Encoder.Dim)
		}
		return m.Encoder.Validate()
	}
	switch {
	case m.Encoder != nil:
		return fmt.Errorf("%s program with an encoder", m.Interpreter)
	case m.Model.Buckets != m.Featurizer.Buckets():
		return fmt.Errorf("model has %d buckets, featurizer %d", m.Model.Buckets, m.Featurizer.Buckets())
	case m.Model.Dim < 1:
		return fmt.Errorf("model dim %d: want >= 1", m.Model.Dim)
	}
	return m.Featurizer.Validate()
}

// Artifact is a decoded .paw file.
type Artifact struct {
	ID       string // hex SHA-256 of the file
	Manifest Manifest
	Spec     []byte
	Model    []byte
}

// EncodeArtifact writes the ZIP. Entries are stored in a fixed order with
// zeroed times, so equal inputs give equal bytes. It sets m.SpecSHA256 to
// the digest of spec.
func EncodeArtifact(m *Manifest, spec, model []byte) ([]byte, error) {
	m.SpecSHA256 = sha256Hex(spec)
	if err := m.Validate(); err != nil {
		return nil, fmt.Errorf("manifest: %w", err)
	}
	mj, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode manifest: %w", err)
	}
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	zw.RegisterCompressor(zip.Deflate, func(w io.Writer) (io.WriteCloser, error) {
		return flate.NewWriter(w, flate.BestCompression)
	})
	for _, e := range []struct {
		name string
		data []byte
	}{{entryManifest, append(mj, '\n')}, {entrySpec, spec}, {entryModel, model}} {
		w, err := zw.CreateHeader(&zip.FileHeader{Name: e.name, Method: zip.Deflate})
		if err != nil {
			return nil, fmt.Errorf("zip %s: %w", e.name, err)
		}
		if _, err := w.Write(e.data); err != nil {
			return nil, fmt.Errorf("zip %s: %w", e.name, err)
		}
	}
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("zip: %w", err)
	}
	return buf.Bytes(), nil
}

// ArtifactID is the content address of an artifact's bytes.
func ArtifactID(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

// ReadArtifactFile reads and decodes a .paw file.
func ReadArtifactFile(path string) (*Artifact, error) {
	data, err := bounded.ReadFile(path, MaxArtifactBytes)
	if err != nil {
		return nil, fmt.Errorf("read program %s: %w", path, tooLargeArtifact(err))
	}
	a, err := DecodeArtifact(data)
	if err != nil {
		if ext := filepath.Ext(path); ext == ".yaml" || ext == ".yml" {
			return nil, fmt.Errorf("program %s: %w (this is a spec: compile it first, paw compile %s)", path, err, path)
		}
		return nil, fmt.Errorf("program %s: %w", path, err)
	}
	return a, nil
}

// tooLargeArtifact is err, or for bytes past MaxArtifactBytes, the error
// DecodeArtifact gives them: read from a file or a server, an oversized
// artifact is corrupt as one in memory is.
func tooLargeArtifact(err error) error {
	if errors.Is(err, bounded.ErrTooLarge) {
		return fmt.Errorf("%w: file is larger than %d bytes", ErrCorrupt, MaxArtifactBytes)
	}
	return err
}

// DecodeArtifact parses and checks a .paw file's bytes. Anything unexpected
// (extra or missing entries, traversal names, oversize entries, a newer
// format) is refused with ErrCorrupt and the reason.
func DecodeArtifact(data []byte) (*Artifact, error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrCorrupt, fmt.Sprintf(format, args...))
	}
	if len(data) > MaxArtifactBytes {
		return nil, bad("file is larger than %d bytes", MaxArtifactBytes)
	}
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		return nil, bad("not a .paw ZIP: %v", err)
	}
	if len(zr.File) > maxEntries {
		return nil, bad("%d entries, want %d", len(zr.File), maxEntries)
	}
	limits := map[string]int64{entryManifest: maxManifestBytes, entrySpec: maxSpecBytes, entryModel: maxModelBytes}
	got := map[string][]byte{}
	for _, f := range zr.File {
		limit, ok := limits[f.Name]
		if !ok {
			return nil, bad("unexpected entry %q", f.Name)
		}
		if _, dup := got[f.Name]; dup {
			return nil, bad("duplicate entry %q", f.Name)
		}
		b, err := readEntry(f, limit)
		if err != nil {
			return nil, bad("%s: %v", f.Name, err)
		}
		got[f.Name] = b
	}
	for _, name := range []string{entryManifest, entrySpec, entryModel} {
		if _, ok := got[name]; !ok {
			return nil, bad("missing %s", name)
		}
	}
	a := &Artifact{ID: ArtifactID(data), Spec: got[entrySpec], Model: got[entryModel]}
	dec := json.NewDecoder(bytes.NewReader(got[entryManifest]))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&a.Manifest); err != nil {
		return nil, bad("manifest.json: %v", err)
	}
	if err := a.Manifest.Validate(); err != nil {
		return nil, bad("manifest.json: %v", err)
	}
	if got := sha256Hex(a.Spec); a.Manifest.SpecSHA256 != got {
		return nil, bad("manifest.json: spec_sha256 %q is not the digest of spec.yaml (%s)", a.Manifest.SpecSHA256, got)
	}
	if err := checkModel(&a.Manifest, a.Model); err != nil {
		return nil, bad("model.onnx: %v", err)
	}
	return a, nil
}

func readEntry(f *zip.File, limit int64) ([]byte, error) {
	if f.UncompressedSize64 > uint64(limit) {
		return nil, fmt.Errorf("declares %d bytes, limit %d", f.UncompressedSize64, limit)
	}
	rc, err := f.Open()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	// Presized by the declared size, as the model inflates to megabytes;
	// but never past what deflate can make of the entry's bytes (at most
	// 1032 to 1), so a lying header cannot make a small file cost much.
	size := min(f.UncompressedSize64, 1032*f.CompressedSize64+64)
	b, err := bounded.ReadAll(rc, limit, int64(size))
	if errors.Is(err, bounded.ErrTooLarge) {
		return nil, fmt.Errorf("inflates past the %d-byte limit", limit)
	}
	if err != nil {
		return nil, err
	}
	return b, nil
}
