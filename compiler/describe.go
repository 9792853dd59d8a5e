package compiler

import (
	"regexp"
	"strings"
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
