package compiler

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/pawlogs/paw/runtime"
)

// Label descriptions as evidence. A spec may describe each label in words
// ("error: a failure, crash, exception, timeout, refused or lost
// connection"). The compiler turns each description, and each phrase of
// it, into a pseudo-example of its label with a small weight: words a
// person chose to define a label are weak evidence for it, enough for a
// spec without examples to act like a keyword filter, and outweighed by
// real examples where they exist. The spec's own description is evidence
// for its positive label, the one it asks about.

// DefaultDescriptionWeight is a pseudo-example's weight against a real
// example's 1 (options.description_weight).
const DefaultDescriptionWeight = 0.5

var phraseSep = regexp.MustCompile(`(?i)\s*(?:[,;:()/]|\band\b|\bor\b|\bnor\b)\s*`)
var leadingArticle = regexp.MustCompile(`(?i)^(?:a|an|the|any|some)\s+`)

// phrases splits a description into its phrases, whole first.
func phrases(desc string) []string {
	desc = strings.Join(strings.Fields(desc), " ")
	if desc == "" {
		return nil
	}
	out := []string{desc}
	seen := map[string]bool{strings.ToLower(desc): true}
	for _, p := range phraseSep.Split(desc, -1) {
		p = strings.Trim(leadingArticle.ReplaceAllString(strings.TrimSpace(p), ""), " .!?\"'")
		if k := strings.ToLower(p); p != "" && !seen[k] {
			seen[k] = true
			out = append(out, p)
		}
	}
	return out
}

// describesEveryLabel reports whether every label has a description.
func (s *Spec) describesEveryLabel() bool {
	if len(s.Labels) == 0 || len(s.LabelDescriptions) == 0 {
		return false
	}
	for _, l := range s.Labels {
		if strings.TrimSpace(s.LabelDescriptions[l]) == "" {
			return false
		}
	}
	return true
}

// pseudoExamples are the descriptions' evidence, in label order; none
// for a spec in the list form.
func (s *Spec) pseudoExamples() []Example {
	if len(s.LabelDescriptions) == 0 {
		return nil
	}
	var out []Example
	for _, l := range s.Labels {
		// The label's own name is a word of its definition too
		// ("error", "auth_failure" read as "auth failure").
		name := strings.NewReplacer("_", " ", "-", " ", ".", " ").Replace(l)
		out = append(out, Example{Text: name, Label: l})
		for _, p := range phrases(s.LabelDescriptions[l]) {
			if !strings.EqualFold(p, name) {
				out = append(out, Example{Text: p, Label: l})
			}
		}
	}
	if s.Positive != "" {
		for _, p := range phrases(s.Description) {
			out = append(out, Example{Text: p, Label: s.Positive})
		}
	}
	return out
}

// descriptionWeight is options.description_weight, or the default.
func (s *Spec) descriptionWeight() float32 {
	if w := s.Options.DescriptionWeight; w > 0 {
		return float32(w)
	}
	return DefaultDescriptionWeight
}

// keywords are the descriptions as run-time keyword phrases (the
// runtime's keywords.go), by label: the label's name and each phrase of
// its description, as the stems of their words. A hashnet-v1 program
// trusts them for the records its examples do not cover. None for the
// list form, nor for encoder-v1, whose encoder already reads words it was
// not shown.
func (s *Spec) keywords() map[string][]string {
	if len(s.LabelDescriptions) == 0 || s.interpreter() != runtime.InterpreterHashnetV1 {
		return nil
	}
	out := map[string][]string{}
	stems := map[string]bool{}
	for _, l := range s.Labels {
		name := strings.NewReplacer("_", " ", "-", " ", ".", " ").Replace(l)
		seen := map[string]bool{}
		for _, p := range append([]string{name}, phrases(s.LabelDescriptions[l])...) {
			ws := phraseStems(p)
			key := strings.Join(ws, " ")
			// A phrase of more stems than a manifest holds is a sentence,
			// which no line contains whole.
			if len(ws) == 0 || len(ws) > runtime.MaxPhraseStems || seen[key] || len(out[l]) == runtime.MaxKeywordPhrases {
				continue
			}
			n := len(stems)
			for _, w := range ws {
				if !stems[w] {
					n++
				}
			}
			if n > runtime.MaxKeywordStems {
				continue
			}
			for _, w := range ws {
				stems[w] = true
			}
			seen[key] = true
			out[l] = append(out[l], key)
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// phraseStems are the stems of a phrase's words: lower-cased, with short
// and function words left out and a common English ending cut
// ("refused" -> "refus", "connection" -> "connect"), so that a record's
// "Refusing" or "connections" contains them.
func phraseStems(p string) []string {
	var out []string
	for _, w := range strings.FieldsFunc(strings.ToLower(p), func(r rune) bool { return !unicode.IsLetter(r) }) {
		if utf8.RuneCountInString(w) < 3 || stopWords[w] {
			continue
		}
		w = stem(w)
		if len(w) > runtime.MaxStemBytes {
			return nil
		}
		if !slices.Contains(out, w) {
			out = append(out, w)
		}
	}
	return out
}

// stem cuts the first of these endings that leaves four bytes or more.
func stem(w string) string {
	for _, suf := range stemEndings {
		if strings.HasSuffix(w, suf) && len(w)-len(suf) >= 4 {
			return w[:len(w)-len(suf)]
		}
	}
	return w
}

var stemEndings = strings.Fields("ational ations ation ings ing ures ure ions ion ful ed es s e")

var stopWords = func() map[string]bool {
	m := map[string]bool{}
	for _, w := range strings.Fields("the any some for with from are was were been being its that this these those and nor not into than then there their our your his her has have had can could should would will shall may might must all each every other such only also very more most less least who whom which what when where why how") {
		m[w] = true
	}
	return m
}()

// Keyword rates before any example: a label's phrases in half its lines
// and in one in twenty of the others', each worth two examples. A spec
// with examples soon outweighs them. A filter's other labels (those that
// are not its positive) are what is left once the positive is taken out,
// which their descriptions name only in part: their phrases are expected
// in fewer of their lines, so that a line with no one's keywords leans
// away from the positive, as a keyword filter's does.
const (
	priorHit      = 0.5
	priorHitOther = 0.2
	priorFalse    = 0.05
	priorLines    = 2.0
)

// hashnetKeywords are the spec's keywords and their rates in train, for
// a hashnet-v1 program featurized with fcfg; nil for the list form.
func (s *Spec) hashnetKeywords(fcfg runtime.FeaturizerConfig, train []Example) (map[string][]string, map[string]runtime.KeywordRates, error) {
	kws := s.keywords()
	if kws == nil {
		return nil, nil, nil
	}
	m := runtime.Manifest{Labels: s.Labels, Positive: s.Positive, Featurizer: fcfg, Keywords: kws}
	rates, err := keywordRates(&m, train)
	if err != nil {
		return nil, nil, fmt.Errorf("keywords: %w", err)
	}
	return kws, rates, nil
}

// keywordRates counts how often each label's keyword phrases occur in its
// own examples (hit) and in the other labels' (false), smoothed toward the
// priors above.
func keywordRates(m *runtime.Manifest, train []Example) (map[string]runtime.KeywordRates, error) {
	match, err := runtime.NewKeywordMatcher(m)
	if err != nil {
		return nil, err
	}
	n := len(m.Labels)
	own, ownHit := make([]float64, n), make([]float64, n)
	other, otherHit := make([]float64, n), make([]float64, n)
	hit := make([]bool, n)
	for _, e := range train {
		match.Contains([]byte(e.Text), hit)
		for i, l := range m.Labels {
			h := 0.0
			if hit[i] {
				h = 1
			}
			if e.Label == l {
				own[i], ownHit[i] = own[i]+1, ownHit[i]+h
			} else {
				other[i], otherHit[i] = other[i]+1, otherHit[i]+h
			}
		}
	}
	out := map[string]runtime.KeywordRates{}
	for i, l := range m.Labels {
		if _, ok := m.Keywords[l]; !ok {
			continue
		}
		hitPrior := priorHit
		if m.Positive != "" && l != m.Positive {
			hitPrior = priorHitOther
		}
		out[l] = runtime.KeywordRates{
			Hit:   round6((ownHit[i] + hitPrior*priorLines) / (own[i] + priorLines)),
			False: round6((otherHit[i] + priorFalse*priorLines) / (other[i] + priorLines)),
		}
	}
	return out, nil
}
