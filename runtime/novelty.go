package runtime

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/pawlogs/paw/runtime/patterns"
)

// Novelty says how unlike its training data a record is, in [0, 1]: the
// share of its feature mass the program never saw in training, up to 1 for
// a record made only of unseen features. A record whose template (the
// masked token stream) was a training example's has that example's
// features, so its novelty is 0. A score says what the program thinks;
// novelty says how much that is a guess. hashnet-v1 reads which features
// training saw from its table (rows training never touched are zero).
// encoder-v1, having no such table, compares the record with its training
// lines, both spelled from their token ids (Encoder.Text): 0 for one of
// their exact token streams, else the share of its words that the nearest
// of their log patterns does not cover (a new number or name in a known
// line is covered; a program compiled before patterns were stored says 1).

// NovelThreshold is the novelty above which a decision counts as novel in
// metrics (paw_novel_total) and reports.
const NovelThreshold = 0.5

// maxTemplateKeys bounds the training templates a manifest lists.
const maxTemplateKeys = 32768

// EncodeTemplateKeys is the manifest's templates field: the distinct keys,
// sorted, as little-endian uint64s in base64. More than maxTemplateKeys
// are not listed (nil): novelty then reads features only.
func EncodeTemplateKeys(keys []uint64) string {
	ks := slices.Clone(keys)
	slices.Sort(ks)
	ks = slices.Compact(ks)
	if len(ks) == 0 || len(ks) > maxTemplateKeys {
		return ""
	}
	b := make([]byte, 8*len(ks))
	for i, k := range ks {
		binary.LittleEndian.PutUint64(b[8*i:], k)
	}
	return base64.StdEncoding.EncodeToString(b)
}

func decodeTemplateKeys(s string) ([]uint64, error) {
	if s == "" {
		return nil, nil
	}
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil || len(b)%8 != 0 || len(b)/8 > maxTemplateKeys {
		return nil, fmt.Errorf("templates: want at most %d sorted keys as base64", maxTemplateKeys)
	}
	keys := make([]uint64, len(b)/8)
	for i := range keys {
		keys[i] = binary.LittleEndian.Uint64(b[8*i:])
		if i > 0 && keys[i] <= keys[i-1] {
			return nil, fmt.Errorf("templates: keys are not sorted and distinct")
		}
	}
	return keys, nil
}

// TokenKey is an encoder-v1 record's template key: its token ids.
func TokenKey(ids []int64) uint64 { return hashIDs(ids) }

// Bounds on the log patterns a manifest lists: in number, and in bytes as
// the manifest's JSON writes them (a manifest holds at most 1 MiB, and a
// control character or a < takes 6 bytes there).
const (
	maxNoveltyPatterns     = 4096
	maxNoveltyPatternBytes = 256 << 10
)

// NoveltyPatterns is what an encoder-v1 manifest lists of m, the miner of
// its training lines: its patterns with the most lines, within the bounds.
func NoveltyPatterns(m *patterns.Miner) []string {
	var out []string
	size := 0
	for _, p := range m.Frozen(maxNoveltyPatterns) {
		if size += jsonSize(p); size > maxNoveltyPatternBytes {
			break
		}
		out = append(out, p)
	}
	return out
}

// jsonSize is the length of s as a JSON string.
func jsonSize(s string) int {
	b, _ := json.Marshal(s)
	return len(b)
}

// frozenPatterns reads the manifest's patterns (nil without any). Only an
// encoder-v1 program has them: a hashnet-v1 program reads novelty from its
// features.
func frozenPatterns(m *Manifest) (*patterns.Miner, error) {
	switch {
	case m.Patterns == nil:
		return nil, nil
	case m.Interpreter != InterpreterEncoderV1:
		return nil, fmt.Errorf("patterns in a %s program", m.Interpreter)
	case len(m.Patterns) > maxNoveltyPatterns:
		return nil, fmt.Errorf("%d patterns: want at most %d", len(m.Patterns), maxNoveltyPatterns)
	}
	size := 0
	for _, p := range m.Patterns {
		size += jsonSize(p)
	}
	if size > maxNoveltyPatternBytes {
		return nil, fmt.Errorf("patterns of %d bytes: want at most %d", size, maxNoveltyPatternBytes)
	}
	pm, err := patterns.FromFrozen(patterns.Config{}, m.Patterns)
	if err != nil {
		return nil, fmt.Errorf("patterns: %w", err)
	}
	return pm, nil
}

// noveltyData is what a program knows of its training data.
type noveltyData struct {
	templates []uint64 // sorted
	seen      []uint64 // hashnet-v1: a bit per bucket, set for trained rows
	// near holds an encoder-v1 program's training patterns, nil for one
	// compiled without them: novelty is then 0 or 1 by template.
	near *patterns.Miner
}

// newNoveltyData reads the manifest's templates and, for hashnet-v1, which
// table rows training changed.
func newNoveltyData(a *Artifact) (*noveltyData, error) {
	keys, err := decodeTemplateKeys(a.Manifest.Templates)
	if err != nil {
		return nil, err
	}
	nd := &noveltyData{templates: keys}
	if a.Manifest.Interpreter != InterpreterHashnetV1 {
		nd.near, err = frozenPatterns(&a.Manifest)
		return nd, err
	}
	g, err := parseONNX(a.Model)
	if err != nil {
		return nd, nil // not paw's graph (DecodeArtifact refuses it): templates only
	}
	t, _ := g.rowTable()
	if len(t.dims) != 2 || len(t.raw) != 4*int(t.dims[0]*t.dims[1]) {
		return nd, nil // not paw's graph (refused elsewhere): templates only
	}
	rows, width := int(t.dims[0]), int(t.dims[1])
	nd.seen = make([]uint64, (rows+63)/64)
	for r := 0; r < rows; r++ {
		row := t.raw[4*r*width : 4*(r+1)*width]
		for _, b := range row {
			if b != 0 {
				nd.seen[r/64] |= 1 << (r % 64)
				break
			}
		}
	}
	return nd, nil
}

// hasTemplate reports whether key was a training template.
func (nd *noveltyData) hasTemplate(key uint64) bool {
	_, ok := slices.BinarySearch(nd.templates, key)
	return ok
}

// features is the share of f's weight on rows training never changed.
func (nd *noveltyData) features(f *Features) float32 {
	var unseen, total float32
	for i := 0; i < f.Len; i++ {
		w := f.Weights[i]
		total += w
		if id := f.IDs[i]; nd.seen[id/64]&(1<<(id%64)) == 0 {
			unseen += w
		}
	}
	if total == 0 {
		return 1
	}
	return unseen / total
}

// novelty of an encoder-v1 record with template key and token ids: 0 for
// a training template, else how poorly the nearest training pattern covers
// the ids' text (1 with none listed).
func (nd *noveltyData) novelty(key uint64, ids []int64, enc *Encoder) float32 {
	switch {
	case nd.hasTemplate(key):
		return 0
	case nd.near == nil:
		return 1
	}
	return float32(1 - nd.near.Nearest(enc.Text(ids)))
}
