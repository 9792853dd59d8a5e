package runtime

import (
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"slices"
)

// Novelty says how unlike its training data a record is, in [0, 1]: the
// share of its feature mass the program never saw in training, up to 1 for
// a record made only of unseen features. A record whose template (the
// masked token stream) was a training example's has that example's
// features, so its novelty is 0. A score says what the program thinks;
// novelty says how much that is a guess. hashnet-v1 reads which features
// training saw from its table (rows training never touched are zero);
// encoder-v1, having no such table, compares templates: 0 for one among
// the training examples', 1 for any other.

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

// noveltyData is what a program knows of its training data.
type noveltyData struct {
	templates []uint64 // sorted
	seen      []uint64 // hashnet-v1: a bit per bucket, set for trained rows
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
		return nd, nil
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

// novelty of a record with template key and, for hashnet-v1, features f
// (for which features alone decide: a seen template's are all seen).
func (nd *noveltyData) novelty(key uint64, f *Features) float32 {
	if nd.hasTemplate(key) {
		return 0
	}
	if nd.seen == nil || f == nil {
		return 1
	}
	return nd.features(f)
}
