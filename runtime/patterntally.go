package runtime

import (
	"cmp"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/pawlogs/paw/runtime/patterns"
)

// Pattern sampling bounds: a tally holds at most maxTallyPatterns mined
// patterns and maxTallyCounts (program, pattern) counts between takes, so
// a pipeline nobody takes patterns from, or one fed a template per line,
// stays small.
const (
	defaultPatternSample = 64
	maxTallyPatterns     = 2000
	maxTallyCounts       = 8000
	// maxPatternTemplate bounds a reported template's text in bytes.
	maxPatternTemplate = 1024
)

// PatternCount is what a pipeline saw of one log pattern for one program
// since the previous TakePatterns.
type PatternCount struct {
	Program  string
	ID       uint64 // the pattern's ID, stable while the pattern lives
	Template string // with patterns.Wildcard for variables
	// Count estimates the records: the sampled ones times the sample rate.
	Count int64
	// Label is the program's most frequent decision on the pattern's
	// sampled records, Share that label's share of them.
	Label string
	Share float64
	// Novelty is the program's mean novelty on the sampled records.
	Novelty float64
}

// patternTally groups a sample of a pipeline's records into patterns and
// counts the programs' decisions on each. It is safe for concurrent use.
type patternTally struct {
	every uint64
	on    atomic.Bool // set by the first collector: until then, no work
	seen  atomic.Uint64
	mu    sync.Mutex
	miner *patterns.Miner
	// The miner is fed template keys: a key seen before costs it a lookup
	// instead of mining the line again.
	feat    *Featurizer
	toks    *Tokens
	counts  map[tallyKey]*tallyCount
	dropped int64 // sampled decisions not counted: counts was full
}

type tallyKey struct {
	program string
	id      uint64
}

type tallyCount struct {
	pattern *patterns.Pattern
	sampled int64
	labels  map[string]int64
	novelty float64
}

// newPatternTally returns nil when sample is -1 (off).
func newPatternTally(sample int) *patternTally {
	if sample < 0 {
		return nil
	}
	if sample == 0 {
		sample = defaultPatternSample
	}
	feat, err := NewFeaturizer(DefaultFeaturizerConfig())
	if err != nil {
		panic(err) // the default configuration is valid
	}
	return &patternTally{
		every:  uint64(sample),
		miner:  patterns.New(patterns.Config{MaxPatterns: maxTallyPatterns}),
		feat:   feat,
		toks:   feat.NewTokens(),
		counts: map[tallyKey]*tallyCount{},
	}
}

// add samples texts[i], whose decisions are results[i].
func (t *patternTally) add(st *pipelineState, texts [][]byte, results []Result) {
	if t == nil || len(texts) == 0 || !t.on.Load() {
		return
	}
	// The records numbered first..first+n-1 are this batch; sample those
	// that are multiples of every.
	n := uint64(len(texts))
	first := t.seen.Add(n) - n
	i := (t.every - first%t.every) % t.every
	if i >= n {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	for ; i < n; i += t.every {
		p, _ := t.miner.AddKeyed(texts[i], t.feat.Scan(texts[i], t.toks))
		for pi, dec := range results[i].Decisions {
			k := tallyKey{st.progs[pi].Name(), p.ID}
			c := t.counts[k]
			if c == nil {
				if len(t.counts) >= maxTallyCounts {
					t.dropped++
					continue
				}
				c = &tallyCount{labels: map[string]int64{}}
				t.counts[k] = c
			}
			c.pattern = p
			c.sampled++
			c.labels[dec.Label]++
			c.novelty += float64(dec.Novelty)
		}
	}
}

// take returns the counts since the last take, largest first, and an
// estimate of the decisions not counted for lack of room.
func (t *patternTally) take() ([]PatternCount, int64) {
	if t == nil {
		return nil, 0
	}
	t.mu.Lock()
	counts, dropped := t.counts, t.dropped
	t.counts, t.dropped = map[tallyKey]*tallyCount{}, 0
	// The template text is read under the lock: the miner widens patterns.
	out := make([]PatternCount, 0, len(counts))
	for k, c := range counts {
		label, top := "", int64(-1)
		for l, n := range c.labels {
			if n > top || (n == top && l < label) {
				label, top = l, n
			}
		}
		tmpl := truncUTF8(c.pattern.String(), maxPatternTemplate)
		if tmpl == "" {
			tmpl = "(empty line)"
		}
		out = append(out, PatternCount{
			Program: k.program, ID: k.id, Template: tmpl,
			Count: c.sampled * int64(t.every), Label: label, Share: float64(top) / float64(c.sampled),
			Novelty: c.novelty / float64(c.sampled),
		})
	}
	t.mu.Unlock()
	slices.SortFunc(out, func(a, b PatternCount) int {
		return cmp.Or(cmp.Compare(b.Count, a.Count), cmp.Compare(a.Program, b.Program), cmp.Compare(a.ID, b.ID))
	})
	return out, dropped * int64(t.every)
}

// truncUTF8 cuts s to at most n bytes on a rune boundary.
func truncUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n]
}

// CollectPatterns starts the pattern sampling TakePatterns hands over
// (pattern_sample permitting). Until it is called the pipeline does none
// of that work: nothing would collect it.
func (pl *Pipeline) CollectPatterns() {
	if pl.patterns != nil {
		pl.patterns.on.Store(true)
	}
}

// TakePatterns hands over the log patterns of the records sampled since
// the last call, with the programs' decisions on them (largest first),
// and an estimate of the decisions not counted because the tally was full.
// It returns nothing when the pipeline's pattern_sample is -1.
func (pl *Pipeline) TakePatterns() ([]PatternCount, int64) { return pl.patterns.take() }
