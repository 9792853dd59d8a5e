package compiler

import (
	"reflect"
	"strings"
	"testing"

	"github.com/pawlogs/paw/runtime"
)

var errorDescriptions = map[string]string{
	"error":  "a failure, crash, exception, timeout, refused or lost connection, or data at risk",
	"benign": "routine, informational, successful or already-recovered events",
}

func TestKeywords(t *testing.T) {
	tests := []struct {
		name   string
		labels []string
		desc   map[string]string
		interp string
		want   map[string][]string
	}{
		{"phrases as stems", []string{"error", "benign"}, errorDescriptions, "", map[string][]string{
			"error":  {"error", "fail", "crash", "except", "timeout", "refus", "lost connect", "data risk"},
			"benign": {"benign", "routin inform success already recover event", "routin", "inform", "success", "already recover event"},
		}},
		{"the list form has none", []string{"error", "benign"}, nil, "", nil},
		{"an encoder reads words itself", []string{"error", "benign"}, errorDescriptions, runtime.InterpreterEncoderV1, nil},
		{"names split, short and function words dropped", []string{"auth_failure", "none"},
			map[string]string{"auth_failure": "a login that was denied to the user", "none": "nothing of the kind"}, "",
			map[string][]string{"auth_failure": {"auth fail", "login deni user"}, "none": {"none", "noth kind"}}},
		{"a sentence is no phrase", []string{"a", "yes"},
			map[string]string{"a": "one two three four five six seven eight nine ten", "yes": "yes"}, "",
			map[string][]string{"yes": {"yes"}}},
		{"at most 64 phrases a label", []string{"many", "b"},
			map[string]string{"many": strings.Repeat("alpha, beta, gamma, delta, ", 10) + manyWords(100), "b": "yes"}, "",
			nil}, // checked below
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := &Spec{Labels: tc.labels, LabelDescriptions: tc.desc, Interpreter: tc.interp}
			got := s.keywords()
			if tc.name == "at most 64 phrases a label" {
				if n := len(got["many"]); n != runtime.MaxKeywordPhrases {
					t.Fatalf("%d phrases, want %d", n, runtime.MaxKeywordPhrases)
				}
				m := runtime.Manifest{Labels: tc.labels, Interpreter: runtime.InterpreterHashnetV1, Featurizer: runtime.DefaultFeaturizerConfig(), Keywords: got}
				if _, err := runtime.NewKeywordMatcher(&m); err != nil {
					t.Fatalf("the runtime refuses them: %v", err)
				}
				return
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("keywords %q, want %q", got, tc.want)
			}
		})
	}
}

// manyWords is n distinct made-up words, comma-separated.
func manyWords(n int) string {
	var b strings.Builder
	for i := range n {
		b.WriteString(", w")
		for j := i; ; j /= 26 {
			b.WriteByte(byte('a' + j%26))
			if j < 26 {
				break
			}
		}
		b.WriteString("xyz")
	}
	return b.String()
}

func TestKeywordRates(t *testing.T) {
	m := runtime.Manifest{Labels: []string{"error", "benign"}, Positive: "error", Featurizer: runtime.DefaultFeaturizerConfig(),
		Keywords: map[string][]string{"error": {"fail"}, "benign": {"success"}}}
	train := []Example{
		{Text: "disk failed", Label: "error"},
		{Text: "job failure", Label: "error"},
		{Text: "worker crashed", Label: "error"},
		{Text: "backup done successfully", Label: "benign"},
		{Text: "failover finished", Label: "benign"},
		{Text: "user logged in", Label: "benign"},
		{Text: "cache warmed", Label: "benign"},
	}
	got, err := keywordRates(&m, train)
	if err != nil {
		t.Fatal(err)
	}
	// Smoothed toward the priors, each worth two lines: error's phrases
	// are in 2 of its 3 lines and 1 of benign's 4; benign's (not the
	// positive) in 1 of its 4 and none of error's 3.
	want := map[string]runtime.KeywordRates{
		"error":  {Hit: round6((2 + 0.5*2) / (3 + 2.0)), False: round6((1 + 0.05*2) / (4 + 2.0))},
		"benign": {Hit: round6((1 + 0.2*2) / (4 + 2.0)), False: round6((0 + 0.05*2) / (3 + 2.0))},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("rates %+v, want %+v", got, want)
	}
	// No examples: the priors.
	got, _ = keywordRates(&m, nil)
	if got["error"] != (runtime.KeywordRates{Hit: 0.5, False: 0.05}) || got["benign"] != (runtime.KeywordRates{Hit: 0.2, False: 0.05}) {
		t.Fatalf("rates without examples %+v", got)
	}
}
