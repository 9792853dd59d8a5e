package runtime

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
)

// Keywords: a hashnet-v1 program's label descriptions, as evidence for the
// records its examples do not cover. A spec that describes its labels
// ("error: a failure, crash, ... or lost connection") compiles each
// description's phrases into keyword phrases: the stems of their words
// ("fail", "lost connect"). A record's word tokens contain a phrase when
// each of its stems is part of one of them.
//
// Whether a record contains one of a label's phrases is evidence, read as
// a keyword filter's would be but weighed as naive Bayes weighs a feature:
// the compiler counts how often the label's own examples contain one (its
// hit rate) and how often the other labels' do (its false rate), and a
// record that contains one, or none, moves each label's odds from the base
// rates by those rates. That verdict stands in for the model in
// proportion to the record's novelty: a record made of what training saw
// keeps the model's scores; one made of unseen words gets the keywords'.
//
// Examples from some log systems say little of another system's lines,
// whose words training never saw; words a person chose to define a label
// do. Only the featurized tokens are read, so records with one template
// key get one decision, and the template cache stays exact.

// Keyword limits: what a manifest may hold, and so what the compiler
// writes.
const (
	MaxKeywordPhrases = 64 // per label
	MaxPhraseStems    = 8
	MaxKeywordStems   = 256 // distinct, per program
	MaxStemBytes      = 32
)

// KeywordRates are how often a label's keyword phrases occur: Hit in its
// own lines, False in the other labels' lines. Both are in (0, 1).
type KeywordRates struct {
	Hit   float64 `json:"hit"`
	False float64 `json:"false"`
}

// validateKeywords checks a manifest's keywords and their rates.
func validateKeywords(m *Manifest) error {
	if len(m.Keywords) == 0 {
		if len(m.KeywordRates) != 0 {
			return errors.New("keyword_rates without keywords")
		}
		return nil
	}
	if m.Interpreter != InterpreterHashnetV1 {
		return fmt.Errorf("keywords in a %s program: they are for %s", m.Interpreter, InterpreterHashnetV1)
	}
	if err := checkPhrases(m); err != nil {
		return err
	}
	for l, r := range m.KeywordRates {
		if _, ok := m.Keywords[l]; !ok {
			return fmt.Errorf("keyword_rates[%q]: a label without keywords", l)
		}
		if !(r.Hit > 0 && r.Hit < 1 && r.False > 0 && r.False < 1) {
			return fmt.Errorf("keyword_rates[%q] = %+v: want rates in (0, 1)", l, r)
		}
	}
	for l := range m.Keywords {
		if _, ok := m.KeywordRates[l]; !ok {
			return fmt.Errorf("keywords[%q] without keyword_rates", l)
		}
	}
	return nil
}

// checkPhrases checks the keywords' labels, phrases and stems.
func checkPhrases(m *Manifest) error {
	stems := map[string]bool{}
	for l, phrases := range m.Keywords {
		if !slices.Contains(m.Labels, l) {
			return fmt.Errorf("keywords[%q]: not a label", l)
		}
		if len(phrases) == 0 || len(phrases) > MaxKeywordPhrases {
			return fmt.Errorf("keywords[%q]: %d phrases, want 1..%d", l, len(phrases), MaxKeywordPhrases)
		}
		for _, p := range phrases {
			words := strings.Split(p, " ")
			if len(words) > MaxPhraseStems {
				return fmt.Errorf("keywords[%q]: phrase %.40q has %d stems, want at most %d", l, p, len(words), MaxPhraseStems)
			}
			for _, w := range words {
				if len(w) < 2 || len(w) > MaxStemBytes || strings.ToLower(w) != w || strings.ContainsFunc(w, func(r rune) bool { return r <= ' ' }) {
					return fmt.Errorf("keywords[%q]: stem %.40q: want 2..%d lower-case bytes, single-spaced", l, w, MaxStemBytes)
				}
				stems[w] = true
			}
		}
	}
	if len(stems) > MaxKeywordStems {
		return fmt.Errorf("keywords: %d distinct stems, want at most %d", len(stems), MaxKeywordStems)
	}
	return nil
}

// KeywordMatcher reads which labels' keyword phrases a record contains.
// It is safe for concurrent use.
type KeywordMatcher struct {
	feat   *Featurizer
	labels int
	stems  [][]byte
	// byPair[a<<8|b] is 1 + the index in pairStems of the stems that
	// start with bytes a, b; 0 for none. A record's every byte pair is
	// looked up, and a table index costs less than a map's.
	byPair    *[1 << 16]uint16
	pairStems [][]int
	phrases   []kwPhrase
}

type kwPhrase struct {
	label int
	stems []int
}

// NewKeywordMatcher reads m's keywords, checked as a manifest's, for
// records featurized with m's featurizer.
func NewKeywordMatcher(m *Manifest) (*KeywordMatcher, error) {
	if err := checkPhrases(m); err != nil {
		return nil, err
	}
	feat, err := NewFeaturizer(m.Featurizer)
	if err != nil {
		return nil, err
	}
	return newKeywordMatcher(m, feat), nil
}

func newKeywordMatcher(m *Manifest, feat *Featurizer) *KeywordMatcher {
	k := &KeywordMatcher{feat: feat, labels: len(m.Labels), byPair: new([1 << 16]uint16)}
	index := map[string]int{}
	for li, l := range m.Labels {
		for _, p := range m.Keywords[l] {
			ph := kwPhrase{label: li}
			for _, w := range strings.Split(p, " ") {
				i, ok := index[w]
				if !ok {
					i = len(k.stems)
					index[w] = i
					k.stems = append(k.stems, []byte(w))
					pair := uint16(w[0])<<8 | uint16(w[1])
					if k.byPair[pair] == 0 {
						k.pairStems = append(k.pairStems, nil)
						k.byPair[pair] = uint16(len(k.pairStems))
					}
					j := k.byPair[pair] - 1
					k.pairStems[j] = append(k.pairStems[j], i)
				}
				ph.stems = append(ph.stems, i)
			}
			k.phrases = append(k.phrases, ph)
		}
	}
	return k
}

// Contains sets hit[i] to whether text contains one of label i's
// phrases; hit holds a value per label.
func (k *KeywordMatcher) Contains(text []byte, hit []bool) {
	s := k.read(text)
	k.labelsIn(&s, hit)
}

// read is text's reading: the stems its featurized word tokens contain,
// in a scan of their own.
func (k *KeywordMatcher) read(text []byte) kwScan {
	s := kwScan{k: k}
	scanTokens(truncate(text, k.feat.cfg.MaxBytes), nil, nil, nil, &s)
	return s
}

// labelsIn sets hit[i] to whether the words s read contain one of label
// i's phrases.
func (k *KeywordMatcher) labelsIn(s *kwScan, hit []bool) {
	clear(hit[:k.labels])
	for _, p := range k.phrases {
		if !hit[p.label] && p.containedIn(s) {
			hit[p.label] = true
		}
	}
}

// keywordEvidence is a program's keywords and their rates: the log-odds
// each label gains from each label's phrases being contained or not.
type keywordEvidence struct {
	match   *KeywordMatcher
	logBase []float64    // per label: the base rate
	logIf   [][2]float64 // [label*labels+of]: {contained, not} for of's phrases
	has     []bool       // per label: has phrases
}

// newKeywordEvidence reads m's keywords; nil when it has none.
func newKeywordEvidence(m *Manifest, feat *Featurizer) *keywordEvidence {
	if len(m.Keywords) == 0 {
		return nil
	}
	n := len(m.Labels)
	e := &keywordEvidence{match: newKeywordMatcher(m, feat), logIf: make([][2]float64, n*n), has: make([]bool, n)}
	for li, l := range m.Labels {
		r := 1 / float64(n)
		if b, ok := m.BaseRates[l]; ok {
			r = b
		}
		e.logBase = append(e.logBase, math.Log(r))
		_, e.has[li] = m.Keywords[l]
	}
	for li := range m.Labels {
		for oi, o := range m.Labels {
			rates, ok := m.KeywordRates[o]
			if !ok {
				continue
			}
			p := rates.False
			if li == oi {
				p = rates.Hit
			}
			e.logIf[li*n+oi] = [2]float64{math.Log(p), math.Log(1 - p)}
		}
	}
	return e
}

// kwScan is one record's reading: which stems its tokens contain. It
// reads the tokens the featurizer reads, up to its feature cap, as
// Tokens does for the template key: the tokens past the cap change no
// key, so they may change no decision.
type kwScan struct {
	k        *KeywordMatcher
	n        int // tokens
	features int // features the tokens will emit
	seen     [MaxKeywordStems / 64]uint64
}

func (s *kwScan) token(tok []byte, kind tokenKind) {
	f := s.k.feat
	if s.features >= f.cfg.MaxFeatures {
		return
	}
	s.features += f.featureCount(len(tok), kind, s.n)
	s.n++
	if kind == tokWord {
		s.word(tok)
	}
}

// word marks the stems tok contains.
func (s *kwScan) word(tok []byte) {
	for i := 0; i+1 < len(tok); i++ {
		j := s.k.byPair[uint16(tok[i])<<8|uint16(tok[i+1])]
		if j == 0 {
			continue
		}
		for _, c := range s.k.pairStems[j-1] {
			if bytes.HasPrefix(tok[i:], s.k.stems[c]) {
				s.seen[c/64] |= 1 << (c % 64)
			}
		}
	}
}

// mix moves probs toward the keywords' verdict on text, by novelty: the
// share of the record training never saw.
func (e *keywordEvidence) mix(text []byte, novelty float32, probs []float32) {
	if novelty <= 0 {
		return
	}
	s := e.match.read(text)
	e.mixScan(&s, novelty, probs)
}

// mixScan is mix for a record whose words s has read.
func (e *keywordEvidence) mixScan(s *kwScan, novelty float32, probs []float32) {
	if novelty <= 0 {
		return
	}
	n := len(e.logBase)
	// Room on the stack for a few labels: zeroing MaxLabels' worth on
	// every cache miss cost 4% of the featurizing it follows.
	var hitBuf [8]bool
	var logitBuf [8]float64
	hit, logit := hitBuf[:], logitBuf[:]
	if n > len(hitBuf) {
		hit, logit = make([]bool, n), make([]float64, n)
	}
	e.match.labelsIn(s, hit[:n])
	for li := range n {
		logit[li] = e.logBase[li]
		for oi := range n {
			if !e.has[oi] {
				continue
			}
			if hit[oi] {
				logit[li] += e.logIf[li*n+oi][0]
			} else {
				logit[li] += e.logIf[li*n+oi][1]
			}
		}
	}
	top := slices.Max(logit[:n])
	var sum float64
	for i := range n {
		logit[i] = math.Exp(logit[i] - top)
		sum += logit[i]
	}
	g := float64(novelty)
	for i := range n {
		probs[i] = float32((1-g)*float64(probs[i]) + g*logit[i]/sum)
	}
}

func (p kwPhrase) containedIn(s *kwScan) bool {
	for _, c := range p.stems {
		if s.seen[c/64]&(1<<(c%64)) == 0 {
			return false
		}
	}
	return true
}

// Judge is what a hashnet-v1 program with keywords adds to its model's
// probabilities, outside ONNX Runtime: the record's novelty, and the
// keywords weighed by it. The compiler judges its test lines with it, so
// that they are decided as records are at run time.
type Judge struct {
	nov *noveltyData
	kw  *keywordEvidence
}

// NewJudge reads a's novelty data and keywords; nil when a has no
// keywords, as its model's probabilities are then its decision.
func NewJudge(a *Artifact) (*Judge, error) {
	if len(a.Manifest.Keywords) == 0 {
		return nil, nil
	}
	if err := validateKeywords(&a.Manifest); err != nil {
		return nil, err
	}
	feat, err := NewFeaturizer(a.Manifest.Featurizer)
	if err != nil {
		return nil, err
	}
	nov, err := newNoveltyData(a)
	if err != nil {
		return nil, err
	}
	if nov.seen == nil {
		return nil, fmt.Errorf("keywords: the model is not a hashnet-v1 table")
	}
	return &Judge{nov: nov, kw: newKeywordEvidence(&a.Manifest, feat)}, nil
}

// Judge mixes the keywords' verdict on text into probs, the model's
// probabilities for f, text's features, and returns text's novelty.
func (j *Judge) Judge(text []byte, f *Features, probs []float32) float32 {
	nov := j.nov.features(f)
	j.kw.mix(text, nov, probs)
	return nov
}
