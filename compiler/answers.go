package compiler

import (
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"strings"
	"time"

	"github.com/pawlogs/paw/runtime"
)

// Answer is a label given after compile time to a line the program
// escalated: by the teacher (By "model") or by a person ("person").
// Answers become training data when the program is compiled again.
type Answer struct {
	Template  string    `json:"template"` // the line's masked template
	Line      string    `json:"line"`     // a representative line
	Label     string    `json:"label"`
	By        string    `json:"by"` // model or person
	Time      time.Time `json:"time"`
	ProgramID string    `json:"program_id,omitempty"` // the program that escalated it
}

// Who answered.
const (
	ByModel  = "model"
	ByPerson = "person"
)

// learned is the answers a compile trains on: one per masked template (a
// person's over a model's, then the latest), none for a template the
// spec's own examples or tests hold (they win), none outside the labels;
// sorted by template, so the same answers give the same bytes. digest
// identifies them.
func (s *Spec) learned() (examples []Example, digest string) {
	if len(s.Answers) == 0 {
		return nil, ""
	}
	maxBytes := s.featurizerConfig().MaxBytes
	own := map[string]bool{}
	for _, e := range s.Examples {
		own[runtime.Normalize([]byte(e.Text), maxBytes)] = true
	}
	for _, e := range s.Tests {
		own[runtime.Normalize([]byte(e.Text), maxBytes)] = true
	}
	var valid []Answer
	for _, a := range s.Answers {
		if slices.Contains(s.Labels, a.Label) && strings.TrimSpace(a.Line) != "" {
			valid = append(valid, a)
		}
	}
	best, templates := BestPerTemplate(valid, maxBytes)
	byKey := make(map[string]Answer, len(templates))
	var keys []string
	for i, k := range templates {
		if !own[k] {
			byKey[k] = best[i]
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	h := sha256.New()
	for _, k := range keys {
		a := byKey[k]
		examples = append(examples, Example{Text: a.Line, Label: a.Label})
		h.Write([]byte(k + "\x00" + a.Line + "\x00" + a.Label + "\x00" + a.By + "\n"))
	}
	return examples, hex.EncodeToString(h.Sum(nil))
}

// BestPerTemplate keeps the best answer (see Better) for each masked
// template, in the order the templates first appear, with their templates.
func BestPerTemplate(as []Answer, maxBytes int) (best []Answer, templates []string) {
	at := map[string]int{}
	for _, a := range as {
		k := runtime.Normalize([]byte(a.Line), maxBytes)
		if i, ok := at[k]; ok {
			if Better(a, best[i]) {
				best[i] = a
			}
			continue
		}
		at[k] = len(best)
		best, templates = append(best, a), append(templates, k)
	}
	return best, templates
}

// Better reports whether answer a should replace b for the same template: a
// person's answer beats a model's; then the later one wins; then the
// smaller line, so the choice does not depend on the answers' order.
func Better(a, b Answer) bool {
	if (a.By == ByPerson) != (b.By == ByPerson) {
		return a.By == ByPerson
	}
	if !a.Time.Equal(b.Time) {
		return a.Time.After(b.Time)
	}
	return a.Line < b.Line
}
