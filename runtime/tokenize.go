package runtime

// The tokenizer is hand-written rather than built from regular expressions:
// it is the interpreter's hot path and must run in a few microseconds per
// line without allocating.

type tokenKind uint8

const (
	tokWord tokenKind = iota
	tokNum            // numbers, dates, times, month and day names
	tokHex
	tokIP
	tokUUID
	tokPath
	tokURL
	numTokenKinds
)

// maxTokenLen bounds a word token; longer words are cut (they are ids or
// base64 blobs far more often than words).
const maxTokenLen = 32

var maskNames = [numTokenKinds]string{"", "<num>", "<hex>", "<ip>", "<uuid>", "<path>", "<url>"}

var maskHashes = func() (h [numTokenKinds]uint64) {
	for i, n := range maskNames {
		h[i] = mix(hashString(n))
	}
	return h
}()

// scanner walks whitespace-separated fields and classifies each. It calls
// its sink directly rather than through an interface, which would move the
// scanner and its buffer to the heap on every record.
type scanner struct {
	feat *featState
	norm *normState
	toks *Tokens
	kw   *kwScan
	last tokenKind
	any  bool
	buf  [maxTokenLen]byte
}

func scanTokens(text []byte, feat *featState, norm *normState, toks *Tokens, kw *kwScan) {
	s := scanner{feat: feat, norm: norm, toks: toks, kw: kw}
	i := 0
	for i < len(text) && !s.full() {
		for i < len(text) && byteClass[text[i]] == cSpace {
			i++
		}
		// The field's byte classes are ORed on the way: a superset of the
		// trimmed field's, which can only run more checks, never fewer.
		j := i
		var classes uint8
		for j < len(text) {
			c := byteClass[text[j]]
			if c == cSpace {
				break
			}
			classes |= c
			j++
		}
		if j > i {
			s.fieldClasses(text[i:j], classes)
		}
		i = j
	}
}

// full reports whether the features are capped: no later token can
// change them, so the rest of the text need not be scanned. Templates
// (norm) have no cap.
func (s *scanner) full() bool {
	switch {
	case s.feat != nil:
		return s.feat.n >= len(s.feat.ids)
	case s.toks != nil:
		return s.toks.features >= s.toks.f.cfg.MaxFeatures
	case s.kw != nil:
		return s.kw.features >= s.kw.k.feat.cfg.MaxFeatures
	}
	return false
}

func (s *scanner) emit(tok []byte, kind tokenKind) {
	// Runs of the same mask collapse: a timestamp "2015-10-18 18:02:41,309"
	// is one <num>, however it is spelled.
	if kind != tokWord && s.any && s.last == kind {
		return
	}
	s.emitHashed(tok, kind, tokenHash(tok, kind))
}

// emitHashed passes on a token whose tokenHash is h.
func (s *scanner) emitHashed(tok []byte, kind tokenKind, h uint64) {
	s.last, s.any = kind, true
	switch {
	case s.feat != nil:
		if s.feat.n < len(s.feat.ids) {
			s.feat.hashedToken(tok, kind, h)
		}
	case s.toks != nil:
		s.toks.hashedToken(tok, kind, h)
	case s.kw != nil:
		s.kw.token(tok, kind)
	default:
		s.norm.token(tok, kind)
	}
}

// Byte classes, ORed over a field so the variable checks run only on the
// fields that could match them; most fields are plain words.
const (
	cWord  uint8 = 1 << iota // letters, digits, bytes >= 0x80
	cColon                   // ':'
	cSlash                   // '/' or '\\'
	cEq                      // '='
	cDash                    // '-'
	cTilde                   // '~'
	cOther
	cSpace // isSpace; never part of a field's classes
)

var byteClass = func() (t [256]uint8) {
	for c := 0; c < 256; c++ {
		switch {
		case isSpace(byte(c)):
			t[c] = cSpace
		case isWordByte(byte(c)):
			t[c] = cWord
		case c == ':':
			t[c] = cColon
		case c == '/' || c == '\\':
			t[c] = cSlash
		case c == '=':
			t[c] = cEq
		case c == '-':
			t[c] = cDash
		case c == '~':
			t[c] = cTilde
		default:
			t[c] = cOther
		}
	}
	return t
}()

func (s *scanner) field(f []byte) {
	var classes uint8
	for _, c := range f {
		classes |= byteClass[c]
	}
	s.fieldClasses(f, classes)
}

// fieldClasses handles a field whose ORed byte classes (or a superset of
// them) are known.
func (s *scanner) fieldClasses(f []byte, classes uint8) {
	f = trimPunct(f)
	if len(f) == 0 {
		return
	}
	if classes == cWord { // one plain word: no variable shape can match
		s.word(f)
		return
	}
	if classes&cColon != 0 && classes&cSlash != 0 && hasURLScheme(f) {
		s.emit(nil, tokURL)
		return
	}
	// key=value: the key is words, the value is classified on its own.
	if classes&cEq != 0 {
		if k := indexByte(f, '='); k > 0 && k < len(f)-1 {
			s.words(f[:k])
			s.field(f[k+1:])
			return
		} else if k == len(f)-1 {
			f = f[:k]
		}
		if len(f) == 0 {
			return
		}
	}
	if kind, ok := classify(f, classes); ok {
		s.emit(nil, kind)
		return
	}
	s.words(f)
}

// words splits f into runs of word bytes and masks the runs that are
// numbers or hex.
func (s *scanner) words(f []byte) {
	i := 0
	for i < len(f) {
		for i < len(f) && byteClass[f[i]] != cWord {
			i++
		}
		j := i
		for j < len(f) && byteClass[f[j]] == cWord {
			j++
		}
		if j > i {
			s.word(f[i:j])
		}
		i = j
	}
}

func (s *scanner) word(w []byte) {
	// One pass counts digits, tests for hex and builds the lower-cased
	// token with digit runs folded ("node17" -> "node0"); the token is
	// dropped if the word turns out to be a number.
	// The token's FNV-1a hash (hashBytes) is computed on the way too.
	digits := 0
	var flags uint16
	n := 0
	inDigits := false
	h := uint64(fnvOffset)
	for _, c := range w {
		e := wordTab[c]
		if e&wDigit != 0 {
			digits++
			if !inDigits && n < len(s.buf) {
				s.buf[n] = '0'
				h = (h ^ '0') * fnvPrime
				n++
			}
			inDigits = true
			continue
		}
		inDigits = false
		flags |= e
		if n < len(s.buf) {
			c = byte(e)
			s.buf[n] = c
			h = (h ^ uint64(c)) * fnvPrime
			n++
		}
	}
	hex := flags&wNotHex == 0
	switch {
	case digits == len(w):
		s.emit(nil, tokNum)
		return
	case len(w) > 2 && w[0] == '0' && (w[1]|0x20) == 'x' && isHex(w[2:]):
		s.emit(nil, tokHex)
		return
	case hex && digits > 0 && len(w) >= 6:
		s.emit(nil, tokHex)
		return
	case 2*digits >= len(w):
		// Mostly digits: a timestamp piece ("04T09", "112Z") or an id.
		s.emit(nil, tokNum)
		return
	}
	tok := s.buf[:n]
	if digits == 0 && n == 3 && isDateWord(tok) {
		s.emit(nil, tokNum)
		return
	}
	s.emitHashed(tok, tokWord, h)
}

// wordTab holds, for each byte of a word, the byte its token keeps
// (lower-cased) and flags, so word's loop makes one lookup per byte.
const (
	wDigit  uint16 = 1 << 8
	wNotHex uint16 = 1 << 9 // not a hex digit
)

var wordTab = func() (t [256]uint16) {
	for c := 0; c < 256; c++ {
		b := byte(c)
		if b >= 'A' && b <= 'Z' {
			b += 'a' - 'A'
		}
		e := uint16(b)
		switch {
		case c >= '0' && c <= '9':
			e |= wDigit
		case !isHexByte(byte(c)):
			e |= wNotHex
		}
		t[c] = e
	}
	return t
}()

// classify recognizes whole-field variables; classes are the field's ORed
// byte classes.
func classify(f []byte, classes uint8) (tokenKind, bool) {
	if classes&cColon != 0 && classes&cSlash != 0 && hasURLScheme(f) {
		return tokURL, true
	}
	if classes&cDash != 0 && isUUID(f) {
		return tokUUID, true
	}
	if classes&(cDash|cEq|cTilde|cOther) == cOther || classes&cColon != 0 {
		// IP shapes hold digits, dots (class other), colons, hex letters
		// and at most a leading slash.
		g := f
		if g[0] == '/' {
			g = g[1:]
		}
		if isIPv4(g) || isIPv6(g) {
			return tokIP, true
		}
	}
	if classes&(cSlash|cTilde) != 0 && isPath(f) {
		return tokPath, true
	}
	return 0, false
}

func isSpace(c byte) bool { return c <= ' ' || c == 0x7f }

// Bytes >= 0x80 count as word bytes, so UTF-8 words survive intact and
// invalid sequences are hashed like any other bytes.
func isWordByte(c byte) bool {
	return c >= 0x80 || (c >= '0' && c <= '9') || (c|0x20) >= 'a' && (c|0x20) <= 'z'
}

func isHexByte(c byte) bool {
	return (c >= '0' && c <= '9') || ((c|0x20) >= 'a' && (c|0x20) <= 'f')
}

func isHex(b []byte) bool {
	for _, c := range b {
		if !isHexByte(c) {
			return false
		}
	}
	return len(b) > 0
}

func indexByte(b []byte, c byte) int {
	for i, x := range b {
		if x == c {
			return i
		}
	}
	return -1
}

func trimPunct(f []byte) []byte {
	for len(f) > 0 && isOpen(f[0]) {
		f = f[1:]
	}
	for len(f) > 0 && isClose(f[len(f)-1]) {
		f = f[:len(f)-1]
	}
	return f
}

func isOpen(c byte) bool {
	switch c {
	case '[', '(', '{', '<', '"', '\'', '`', ',', ';':
		return true
	}
	return false
}

func isClose(c byte) bool {
	switch c {
	case ']', ')', '}', '>', '"', '\'', '`', ',', ';', ':', '.', '!', '?':
		return true
	}
	return false
}

func hasURLScheme(f []byte) bool {
	for i := 0; i+2 < len(f); i++ {
		c := f[i]
		if c == ':' {
			return i > 0 && f[i+1] == '/' && f[i+2] == '/'
		}
		if !((c|0x20) >= 'a' && (c|0x20) <= 'z' || c == '+' || c == '-' || c == '.' || (c >= '0' && c <= '9')) {
			return false
		}
	}
	return false
}

func isUUID(f []byte) bool {
	if len(f) != 36 {
		return false
	}
	for i, c := range f {
		if i == 8 || i == 13 || i == 18 || i == 23 {
			if c != '-' {
				return false
			}
		} else if !isHexByte(c) {
			return false
		}
	}
	return true
}

// isIPv4 accepts a.b.c.d with an optional :port.
func isIPv4(f []byte) bool {
	parts, digits := 0, 0
	for i, c := range f {
		switch {
		case c >= '0' && c <= '9':
			digits++
			if digits > 3 {
				return false
			}
		case c == '.':
			if digits == 0 {
				return false
			}
			parts++
			digits = 0
		case c == ':':
			return parts == 3 && digits > 0 && isDigits(f[i+1:])
		default:
			return false
		}
	}
	return parts == 3 && digits > 0
}

// isIPv6 wants colons and hex, and either "::" or a hex letter, so that a
// time such as 18:02:41 is not taken for an address.
func isIPv6(f []byte) bool {
	colons, letters := 0, 0
	double := false
	for i, c := range f {
		switch {
		case c == ':':
			colons++
			if i > 0 && f[i-1] == ':' {
				double = true
			}
		case c >= '0' && c <= '9', c == '.':
		case (c|0x20) >= 'a' && (c|0x20) <= 'f':
			letters++
		default:
			return false
		}
	}
	return colons >= 2 && (double || letters > 0)
}

func isDigits(b []byte) bool {
	for _, c := range b {
		if c < '0' || c > '9' {
			return false
		}
	}
	return len(b) > 0
}

func isPath(f []byte) bool {
	if len(f) > 1 && (f[0] == '/' || (f[0] == '~' && f[1] == '/')) {
		return true
	}
	if len(f) > 2 && ((f[0]|0x20) >= 'a' && (f[0]|0x20) <= 'z') && f[1] == ':' && f[2] == '\\' {
		return true
	}
	slashes := 0
	for _, c := range f {
		if c == '/' || c == '\\' {
			slashes++
		}
	}
	return slashes >= 2
}

// isDateWord matches lower-cased month and weekday abbreviations ("may" is
// left alone: it is a common word).
func isDateWord(w []byte) bool {
	switch string(w) {
	case "jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
		"mon", "tue", "wed", "thu", "fri", "sat", "sun":
		return true
	}
	return false
}
