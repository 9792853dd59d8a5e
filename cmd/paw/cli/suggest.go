package cli

import (
	"fmt"

	"github.com/pawlogs/paw/compiler"
	"github.com/pawlogs/paw/runtime"
)

// runSuggest picks the lines a program is least sure about, for a person
// to label: the loop from a drift alert back to a better program.
func runSuggest(e *env, args []string) error {
	fs := newFlags(e, "suggest")
	rf := addRuntimeFlags(fs)
	data := fs.String("data", "", "unlabelled lines: JSONL (text field) or plain text")
	textField := fs.String("text-field", "text", "JSON field holding the text, for JSONL data")
	n := fs.Int("n", 50, "how many lines to suggest")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 || *data == "" || *n <= 0 {
		return usagef("want one program, --data and a positive --n")
	}
	lines, err := benchLines(*data, *textField)
	if err != nil {
		return err
	}
	opts, err := rf.options()
	if err != nil {
		return err
	}
	p, b, closeAll, err := rf.loadBatcher(pos[0], opts)
	if err != nil {
		return err
	}
	defer closeAll()
	results, err := b.Classify(e.ctx, lines...)
	if err != nil {
		return err
	}
	decisions := make([]runtime.Decision, len(results))
	for i := range results {
		decisions[i] = results[i].Decisions[0]
	}
	maxBytes := p.Manifest.Featurizer.MaxBytes
	if maxBytes == 0 { // encoder-v1 programs have no featurizer; diversity still goes by template
		maxBytes = runtime.DefaultMaxBytes
	}
	ss := compiler.Suggest(lines, decisions, p.Labels(), maxBytes, *n)
	if err := compiler.WriteSuggestions(e.stdout, p.Name(), p.Labels(), ss); err != nil {
		return err
	}
	fmt.Fprintf(e.stderr, "paw suggest: %d of %d lines suggested (one per kind of pattern, least certain first)\n", len(ss), len(lines))
	return nil
}
