// Package patterns mines log templates from a stream of lines: each line
// joins the pattern it resembles most ("<*> open through proxy <*>
// HTTPS"), or starts a new one. It is the grouping that teacher calls,
// novelty, suggestions and the user's pattern view share.
//
// The miner follows Drain (He et al., ICWS 2017), a tree over line length
// and leading tokens, with what the data showed it needs on Loghub-2k
// (make quality: grouping accuracy 0.94 against Drain's 0.70 in the same
// run):
//   - variables are found by shape before clustering (numbers, ids, times,
//     addresses, paths, day and month names, a unit after a number), while
//     a word with a digit in it (SOCKS5) stays a constant;
//   - key=value pairs and lists are split at = , ; |, and a value after =
//     is a variable;
//   - a line is routed by its first constant tokens, not its first tokens;
//   - once many lines agree on a constant, a line with another word there
//     starts a new pattern instead of turning the constant into a variable,
//     until four words have each held it so: then it is a variable after
//     all (a user name that a brute-force run repeats for dozens of lines,
//     then the next);
//   - patterns group by their constants alone, so values written in more
//     or fewer tokens ("0 bytes" and "1190 bytes (1.16 KB)") group together.
//
// It is streaming, deterministic for a given input order, and bounded: at
// most MaxPatterns patterns of at most MaxTokens tokens and an example of
// at most MaxLineBytes, the least recently seen evicted (and counted).
package patterns

import (
	"container/list"
	"fmt"
	"hash/fnv"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
	"weak"
)

// Wildcard stands for a variable in a pattern.
const Wildcard = "<*>"

// Config tunes a Miner. Zero values take the defaults.
type Config struct {
	// Similarity is the share of a line's tokens that must match a
	// pattern's constants for the line to join it. Default: 0.7.
	Similarity float64
	// MaxPatterns bounds memory; the least recently seen pattern is
	// evicted past it. Default: 10,000.
	MaxPatterns int
	// MaxTokens cuts longer lines (the rest is one variable). Default: 128.
	MaxTokens int
	// MaxLineBytes cuts longer lines before tokenizing. Default: 4096.
	MaxLineBytes int
}

func (c Config) withDefaults() Config {
	if c.Similarity <= 0 {
		c.Similarity = 0.7
	}
	if c.MaxPatterns <= 0 {
		c.MaxPatterns = 10000
	}
	if c.MaxTokens <= 0 {
		c.MaxTokens = 128
	}
	if c.MaxLineBytes <= 0 {
		c.MaxLineBytes = 4096
	}
	return c
}

// Pattern is one mined template.
type Pattern struct {
	ID      uint64   // stable for the pattern's first line's shape
	Tokens  []string // constants and Wildcards
	Count   int      // lines that joined it
	Example string   // its first line
	last    uint64   // sequence number of its latest line
	spaces  []bool   // whether white space came before each token, in Example
	lru     *list.Element
	route   string
	// kinds are the positions where lines held different words, each with
	// the words seen there: a few words name kinds of one event whose
	// lines may mean opposite things ("temperature critical", "...
	// warning"); variants words or more are values.
	kinds []kindPos
}

// kindPos is a position of a pattern that lines held different words at:
// the first words' hashes, and how many there were (up to variants: then
// the position holds values, not kinds). A position a shape variable took
// holds values, and has none.
type kindPos struct {
	pos   int
	n     int
	words [variants]uint64
}

// maxKindPositions bounds the positions a pattern tells kinds at; a
// position widened past them holds values.
const maxKindPositions = 8

// widen records that a line held t where the pattern holds c (c != t),
// before the position becomes a variable.
func (p *Pattern) widen(i int, c, t string) {
	k := p.kindAt(i)
	switch {
	case k != nil:
		k.saw(t)
	case c == Wildcard || t == Wildcard || len(p.kinds) == maxKindPositions:
		// A shape variable, or past the bound: values, which kind reads
		// no word of.
	default:
		k := kindPos{pos: i}
		k.saw(c)
		k.saw(t)
		p.kinds = append(p.kinds, k)
	}
}

func (p *Pattern) kindAt(i int) *kindPos {
	for j := range p.kinds {
		if p.kinds[j].pos == i {
			return &p.kinds[j]
		}
	}
	return nil
}

// saw counts word w at the position, until it holds values.
func (k *kindPos) saw(w string) {
	if k.n == variants {
		return
	}
	if w == Wildcard {
		k.n = variants // a shape variable among the words: values
		return
	}
	h := hashWord(w)
	if !slices.Contains(k.words[:k.n], h) {
		k.words[k.n] = h
		k.n++
	}
}

// kind is the line's kind within the pattern: a hash of its words at the
// positions that hold kinds, but for the pattern's own first word there,
// so that its lines keep the kind they had before other words came (0
// where there are none).
func (p *Pattern) kind(toks []string) uint64 {
	var h uint64
	for _, k := range p.kinds {
		if k.n == variants || toks[k.pos] == Wildcard {
			continue
		}
		if w := hashWord(toks[k.pos]); w != k.words[0] {
			h = (h^w)*0x9e3779b97f4a7c15 + uint64(k.pos) + 1
		}
	}
	return h
}

func hashWord(w string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(w); i++ {
		h = (h ^ uint64(w[i])) * 1099511628211
	}
	return h
}

// String is the pattern's text, spaced as its first line was.
func (p *Pattern) String() string {
	var b strings.Builder
	for i, t := range p.Tokens {
		if i > 0 && (i >= len(p.spaces) || p.spaces[i]) {
			b.WriteByte(' ')
		}
		b.WriteString(t)
	}
	return b.String()
}

// Miner groups lines into patterns. It is not safe for concurrent use.
type Miner struct {
	cfg     Config
	groups  map[string][]*Pattern // by routing key: length and leading constants
	recent  *list.List            // of *Pattern, most recently seen first
	seq     uint64
	evicted int
	// byKey remembers what AddKeyed saw of each caller-given key, at most
	// memoFactor×MaxPatterns keys, forgotten all at once past that.
	byKey map[uint64]keyed
}

// memoFactor bounds AddKeyed's memo to this many keys per pattern.
const memoFactor = 4

// New returns an empty miner.
func New(cfg Config) *Miner {
	return &Miner{cfg: cfg.withDefaults(), groups: map[string][]*Pattern{}, recent: list.New(), byKey: map[uint64]keyed{}}
}

// Evicted is how many patterns were dropped to stay within MaxPatterns.
func (m *Miner) Evicted() int { return m.evicted }

// AddKeyed is Add for a line whose key (never 0) the caller has already
// computed, such as the featurizer's template key. A key's first settled
// lines are mined, so that what differs between them (the "5" of "5ms",
// which the featurizer's key does not tell apart) becomes a variable; its
// later lines join the pattern the last of those joined, at the cost of a
// map lookup, while that pattern lives, and with that line's kind. Key 0
// is AddKind. The line is copied only when it is mined.
func (m *Miner) AddKeyed(line []byte, key uint64) (*Pattern, uint64) {
	if key == 0 {
		return m.add(string(line))
	}
	if k, ok := m.byKey[key]; ok && k.lines >= settled {
		if p := k.p.Value(); p != nil && p.lru != nil {
			m.seq++
			p.Count++
			p.last = m.seq
			m.recent.MoveToFront(p.lru)
			return p, k.kind
		}
	}
	p, kind := m.add(string(line))
	k, ok := m.byKey[key]
	if !ok && len(m.byKey) >= memoFactor*m.cfg.MaxPatterns {
		clear(m.byKey)
	}
	m.byKey[key] = keyed{weak.Make(p), k.lines + 1, kind}
	return p, kind
}

// keyed is what AddKeyed remembers of a key: the pattern its latest mined
// line joined, and how many of its lines were mined. The pointer is weak:
// the memo must not keep evicted patterns, up to 4 KiB of example each,
// alive.
type keyed struct {
	p     weak.Pointer[Pattern]
	lines int
	kind  uint64 // of the latest mined line
}

// Add files line under a pattern and returns it.
func (m *Miner) Add(line string) *Pattern {
	p, _ := m.add(line)
	return p
}

// AddKind is Add that also returns the line's kind within the pattern, as
// Kind reads it when the line joins: lines of a word that came before its
// position showed values keep the kind they had.
func (m *Miner) AddKind(line string) (*Pattern, uint64) { return m.add(line) }

// Kind is the kind of line within p, a pattern line joined: a hash of the
// words it holds where p's lines held a few different words (fewer than
// four: "critical", "warning" and "normal" after "temperature"), 0 where
// they held none. Lines of one pattern and kind are one event in one
// state, what one teacher's answer may stand for: a pattern's kinds may
// differ in meaning. Read once all lines are mined, every line of a kind
// gets the same.
func (m *Miner) Kind(p *Pattern, line string) uint64 {
	toks, _ := m.tokens(line)
	if len(toks) != len(p.Tokens) {
		return 0
	}
	return p.kind(toks)
}

func (m *Miner) add(line string) (*Pattern, uint64) {
	m.seq++
	toks, spaces := m.tokens(line)
	key := routeKey(toks)
	best, bestSim := (*Pattern)(nil), -1.0
	contradicted := false
	for _, p := range m.groups[key] {
		s := similarity(p.Tokens, toks)
		if s <= bestSim {
			continue
		}
		if m.contradicts(p, toks) {
			contradicted = true
			continue
		}
		best, bestSim = p, s
	}
	if best != nil && bestSim < m.cfg.Similarity {
		best = nil
	}
	if contradicted {
		best = m.generalize(key, toks, best)
	}
	if best != nil {
		for i, t := range toks {
			if c := best.Tokens[i]; c != t {
				best.widen(i, c, t)
				best.Tokens[i] = Wildcard
			} else if c == Wildcard {
				if k := best.kindAt(i); k != nil {
					k.saw(t)
				}
			}
		}
		best.Count++
		best.last = m.seq
		m.recent.MoveToFront(best.lru)
		return best, best.kind(toks)
	}
	if m.recent.Len() >= m.cfg.MaxPatterns {
		m.evict()
	}
	p := &Pattern{ID: idOf(toks), Tokens: toks, spaces: spaces, Count: 1, Example: line, last: m.seq, route: key}
	p.lru = m.recent.PushFront(p)
	m.groups[key] = append(m.groups[key], p)
	return p, 0
}

// Patterns returns the patterns, those with the most lines first (ties by
// ID), after merging those that differ only in their variables' runs.
func (m *Miner) Patterns() []*Pattern {
	merged := map[string]*Pattern{}
	var order []string
	keys := make([]string, 0, len(m.groups))
	for k := range m.groups {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		for _, p := range m.groups[k] {
			c := collapsed(p.Tokens)
			if q, ok := merged[c]; ok {
				q.Count += p.Count
				continue
			}
			cp := *p
			cp.Tokens = slices.Clone(p.Tokens)
			merged[c] = &cp
			order = append(order, c)
		}
	}
	out := make([]*Pattern, 0, len(order))
	for _, c := range order {
		out = append(out, merged[c])
	}
	slices.SortStableFunc(out, func(a, b *Pattern) int {
		if a.Count != b.Count {
			return b.Count - a.Count
		}
		switch {
		case a.ID < b.ID:
			return -1
		case a.ID > b.ID:
			return 1
		}
		return 0
	})
	return out
}

// Frozen returns at most n of the miner's patterns, those with the most
// lines first (ties by ID), unmerged, each as its tokens joined by single
// spaces (a token holds none): what FromFrozen reads back, for a program
// to store the patterns of its training lines.
func (m *Miner) Frozen(n int) []string {
	var all []*Pattern
	for _, ps := range m.groups {
		all = append(all, ps...)
	}
	texts := make(map[*Pattern]string, len(all))
	for _, p := range all {
		texts[p] = strings.Join(p.Tokens, " ")
	}
	slices.SortFunc(all, func(a, b *Pattern) int {
		switch {
		case a.Count != b.Count:
			return b.Count - a.Count
		case a.ID != b.ID:
			if a.ID < b.ID {
				return -1
			}
			return 1
		}
		return strings.Compare(texts[a], texts[b])
	})
	out := make([]string, 0, min(n, len(all)))
	for _, p := range all[:min(n, len(all))] {
		out = append(out, texts[p])
	}
	return out
}

// FromFrozen rebuilds a miner from Frozen's texts, for Nearest. A text
// that Frozen could not have written (an empty token, more than MaxTokens
// tokens, or more bytes than MaxLineBytes and 4 a token) is refused.
func FromFrozen(cfg Config, texts []string) (*Miner, error) {
	m := New(cfg)
	// A pattern's text may outgrow its line by a space and a <*> in
	// place of a one-byte value per token.
	maxBytes := m.cfg.MaxLineBytes + 4*m.cfg.MaxTokens
	for i, t := range texts {
		if len(t) > maxBytes {
			return nil, fmt.Errorf("pattern %d: %d bytes, want at most %d", i, len(t), maxBytes)
		}
		var toks []string // an empty line's pattern has none
		if t != "" {
			toks = strings.Split(t, " ")
		}
		if len(toks) > m.cfg.MaxTokens || slices.Contains(toks, "") {
			return nil, fmt.Errorf("pattern %d: want at most %d tokens, each not empty", i, m.cfg.MaxTokens)
		}
		key := routeKey(toks)
		p := &Pattern{ID: idOf(toks), Tokens: toks, route: key}
		p.lru = m.recent.PushBack(p)
		m.groups[key] = append(m.groups[key], p)
	}
	return m, nil
}

// Nearest is how well the pattern that covers line best covers it, in
// [0, 1]: the share of the positions where either holds a constant at
// which the pattern holds the line's word or a variable; 0 when no pattern
// has the line's length and leading constants. It files nothing, so calls
// may run concurrently with each other, not with Add.
func (m *Miner) Nearest(line string) float64 {
	toks, _ := m.tokens(line)
	best := 0.0
	for _, p := range m.groups[routeKey(toks)] {
		same, n := 0, 0
		for i, t := range toks {
			c := p.Tokens[i]
			if c == Wildcard && t == Wildcard {
				continue
			}
			n++
			if c == Wildcard || c == t {
				same++
			}
		}
		if n == 0 {
			return 1
		}
		best = max(best, float64(same)/float64(n))
	}
	return best
}

// Key is the grouping key of a pattern as Patterns merges it: lines whose
// patterns have equal keys are in one group.
func Key(p *Pattern) string { return collapsed(p.Tokens) }

// KindKey is the grouping key of line, which joined p: p's Key and the
// line's Kind within it. Lines with equal KindKeys are one event in one
// state, what one answer (a teacher's, a person's) may stand for. Read
// once all lines are mined, as Kind is.
func (m *Miner) KindKey(p *Pattern, line string) string {
	return Key(p) + "\x00" + strconv.FormatUint(m.Kind(p, line), 16)
}

// settled is how many lines must have agreed on a constant before a line
// with another word there starts a pattern of its own instead of turning
// the constant into a variable: "initialized by client SPP." after 600
// lines of "...WindowsUpdateAgent." is another event, not another value.
const settled = 8

// variants is how many settled patterns may differ in one constant, all
// else alike, before that constant is taken for a variable after all: a
// brute-force run holds one user name for dozens of lines ("Invalid user
// webmaster from <*>"), then the next, and the next; an event has a few
// kinds ("... open through proxy <*> HTTPS", "... SOCKS5").
const variants = 4

// generalize finds, among the patterns toks is routed to, the settled
// ones it would join but for one constant, the same position in each. When
// that position has held variants words or more, between them, toks' own
// and best's (the pattern toks joins, nil if none; a variable there counts
// as two words), it becomes a variable in each of them: they now group
// with best. It returns the pattern toks joins.
func (m *Miner) generalize(route string, toks []string, best *Pattern) *Pattern {
	var found []*Pattern
	pos := -1
	for _, p := range m.groups[route] {
		d := m.oneConstantApart(p, toks)
		if d < 0 || pos >= 0 && d != pos {
			continue
		}
		pos = d
		found = append(found, p)
	}
	if len(found) == 0 {
		return best
	}
	words := len(found) + 1
	switch {
	case best == nil || best.Tokens[pos] == toks[pos]:
	case best.Tokens[pos] == Wildcard:
		words += 2 // best has held two words there at least
	default:
		words++ // best holds another word there
	}
	if words < variants {
		return best
	}
	for _, p := range found {
		p.Tokens[pos] = Wildcard
		if k := p.kindAt(pos); k != nil {
			k.n = variants // four words or more: values
		}
	}
	if best == nil {
		best = found[0]
	}
	return best
}

// oneConstantApart returns the one position where p holds a constant and
// toks another word, when p is settled and toks would join it but for
// that (similarity, with the two words counted alike); else -1.
func (m *Miner) oneConstantApart(p *Pattern, toks []string) int {
	if p.Count < settled {
		return -1
	}
	d, same, n := -1, 0, 0
	for i, t := range toks {
		c := p.Tokens[i]
		if c == Wildcard && t == Wildcard {
			continue // as similarity counts
		}
		n++
		switch {
		case c == t:
			same++
		case c != Wildcard && t != Wildcard:
			if d >= 0 {
				return -1
			}
			d = i
		}
	}
	if d < 0 || float64(same+1)/float64(n) < m.cfg.Similarity {
		return -1
	}
	return d
}

// contradicts reports whether toks has another word where p has held a
// constant for settled lines.
func (m *Miner) contradicts(p *Pattern, toks []string) bool {
	if p.Count < settled {
		return false
	}
	for i, t := range toks {
		if c := p.Tokens[i]; c != Wildcard && t != Wildcard && c != t && !dotted(c) {
			return true
		}
	}
	return false
}

// dotted reports a name of four or more dotted parts
// (com.apple.Safari.SafeBrowsing): a source that varies within one event,
// so neither a route nor a settled constant.
func dotted(t string) bool { return strings.Count(t, ".") >= 3 }

// evict drops the least recently seen pattern.
func (m *Miner) evict() {
	old := m.recent.Remove(m.recent.Back()).(*Pattern)
	old.lru = nil // AddKeyed's memo may still name it
	ps := m.groups[old.route]
	i := slices.Index(ps, old)
	m.groups[old.route] = slices.Delete(ps, i, i+1)
	if len(m.groups[old.route]) == 0 {
		delete(m.groups, old.route)
	}
	m.evicted++
}

// tokens splits a line on white space and masks what is variable by its
// shape.
func (m *Miner) tokens(line string) ([]string, []bool) {
	if len(line) > m.cfg.MaxLineBytes {
		line = line[:m.cfg.MaxLineBytes]
	}
	var toks []string
	var spaces []bool
	space := false
	start := -1
	flush := func(end int) {
		if start >= 0 {
			toks, spaces = append(toks, line[start:end]), append(spaces, space)
			space, start = false, -1
		}
	}
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			flush(i)
			space = true
		case isDelimiterByte(c):
			flush(i)
			toks, spaces = append(toks, line[i:i+1]), append(spaces, space)
			space = false
		default:
			if start < 0 {
				start = i
			}
		}
	}
	flush(len(line))
	if len(toks) > m.cfg.MaxTokens {
		toks, spaces = append(toks[:m.cfg.MaxTokens-1], Wildcard), spaces[:m.cfg.MaxTokens]
	}
	for i, t := range toks {
		// A value after "=" is a variable whatever it looks like.
		if len(t) == 1 && isDelimiterByte(t[0]) {
			continue
		}
		if variable(t) || (i > 0 && toks[i-1] == "=" && !spaces[i]) || (i > 0 && toks[i-1] == Wildcard && unit(t)) {
			toks[i] = Wildcard
		}
	}
	return toks, spaces
}

// delimiters are tokens of their own: key=value pairs, lists and
// brackets are split into their parts.
const delimiters = "=,;|"

// isDelimiterByte is strings.IndexByte(delimiters, c) >= 0, without the
// call: it runs on every byte of a line.
func isDelimiterByte(c byte) bool { return c == '=' || c == ',' || c == ';' || c == '|' }

// variable reports whether a token is a value rather than a word: a
// number, an id, a time, an address or a version (digits that make up
// much of it, or digits joined by punctuation), hex of 8 or more, a path
// or URL, or bytes that are not UTF-8. A word with a digit in it (SOCKS5,
// x86, ee0) stays a word: a line's constant.
func variable(t string) bool {
	if !utf8.ValidString(t) {
		return true
	}
	if strings.Count(t, "/") >= 2 || strings.Contains(t, "://") {
		return true
	}
	if w := trimPunct(t, ",.;()[]"); len(w) <= maxDateWord && dateWords[strings.ToLower(w)] {
		return true // part of a timestamp
	}
	var digits, letters, hex int
	punct := false
	for _, r := range t {
		switch {
		case unicode.IsDigit(r):
			digits++
			hex++
		case unicode.IsLetter(r):
			letters++
			if ('a' <= r && r <= 'f') || ('A' <= r && r <= 'F') {
				hex++
			}
		case r == '.' || r == ':' || r == '-' || r == '_' || r == '/' || r == '=' || r == '@' || r == '#' || r == ',':
			punct = true
		}
	}
	switch {
	case digits == 0:
		return false
	case digits*2 >= digits+letters: // mostly digits: 42, 0x1f, 10.0.0.1, 12:30:01
		return true
	case punct: // digits joined by punctuation: node-129, blk_-42, v1.2
		return true
	case hex >= 8 && hex == digits+letters: // a hash or an id
		return true
	}
	return false
}

// unit reports whether a token is a unit of the number before it (12 KB,
// <1 sec): part of the value.
func unit(t string) bool {
	w := trimPunct(t, "()[],;.")
	return len(w) <= maxUnit && units[strings.ToLower(w)]
}

// trimPunct is strings.Trim(t, cutset) for an ASCII cutset, without
// building the cutset's set on every call.
func trimPunct(t, cutset string) string {
	for len(t) > 0 && strings.IndexByte(cutset, t[0]) >= 0 {
		t = t[1:]
	}
	for len(t) > 0 && strings.IndexByte(cutset, t[len(t)-1]) >= 0 {
		t = t[:len(t)-1]
	}
	return t
}

// The longest unit and date word: a longer token is neither, and is not
// lowered to find out.
var maxUnit, maxDateWord = longest(units), longest(dateWords)

func longest(m map[string]bool) int {
	n := 0
	for k := range m {
		n = max(n, len(k))
	}
	return n
}

var units = func() map[string]bool {
	m := map[string]bool{}
	for _, u := range strings.Fields("b kb mb gb tb kib mib gib tib ms us ns sec secs s seconds second min mins minutes minute h hrs hours hour days day %") {
		m[u] = true
	}
	return m
}()

// dateWords are the day and month names of timestamps inside messages.
var dateWords = func() map[string]bool {
	m := map[string]bool{}
	for _, w := range strings.Fields("mon tue wed thu fri sat sun monday tuesday wednesday thursday friday saturday sunday jan feb mar apr may jun jul aug sep sept oct nov dec january february march april june july august september october november december") {
		m[w] = true
	}
	return m
}()

// routeKey picks a line's candidates: same length, same first two
// constant tokens (Drain routes by the first tokens, which are often
// variables).
func routeKey(toks []string) string {
	var b strings.Builder
	b.WriteString(itoa(len(toks)))
	n := 0
	for _, t := range toks {
		if t == Wildcard || dotted(t) {
			continue
		}
		b.WriteByte(0)
		b.WriteString(t)
		if n++; n == 2 {
			break
		}
	}
	return b.String()
}

// similarity is the share of positions where the pattern's constant equals
// the token, among those where either holds a constant: variables both
// hold (a header's time, host and pid) say nothing of the event, and
// counting them made short messages behind a long header alike ("RAS
// KERNEL FATAL program interrupt" and "RAS KERNEL INFO generating
// core.12").
func similarity(pattern, toks []string) float64 {
	if len(pattern) == 0 {
		return 1
	}
	same, n := 0, 0
	for i, t := range toks {
		if pattern[i] == Wildcard && t == Wildcard {
			continue
		}
		n++
		if pattern[i] == t {
			same++
		}
	}
	if n == 0 {
		return 1
	}
	return float64(same) / float64(n)
}

// collapsed is a pattern's grouping key: its constants in order, each
// run of variables (and the delimiters between them) as one <*>, and a
// variable run that only some lines have ("(1.16 KB)" before "sent")
// dropped, so lines that differ only in how their values are written
// group together.
func collapsed(toks []string) string {
	var b strings.Builder
	for i := 0; i < len(toks); i++ {
		t := toks[i]
		if t == Wildcard || (isDelimiter(t) && (i > 0 && toks[i-1] == Wildcard || i+1 < len(toks) && toks[i+1] == Wildcard)) {
			continue
		}
		b.WriteString(t)
		b.WriteByte(' ')
	}
	return b.String()
}

func isDelimiter(t string) bool { return len(t) == 1 && strings.IndexByte(delimiters, t[0]) >= 0 }

func idOf(toks []string) uint64 {
	h := fnv.New64a()
	for _, t := range toks {
		h.Write([]byte(t))
		h.Write([]byte{0})
	}
	return h.Sum64()
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var b [20]byte
	i := len(b)
	for n > 0 {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
	}
	return string(b[i:])
}
