package runtime

import (
	"encoding/binary"
	"math/bits"
)

// A record's template key costs a full scan of its tokens (about 1.5 µs a
// line). Most records repeat an earlier record's bytes but for their
// values: timestamps, counters, ports, pids, trace ids. The memo reads a
// record's bytes blind to what no token depends on, hashes them, about 12
// times cheaper than the scan (BenchmarkBlindHash), and remembers the key
// each hash maps to. A reading is a text with the record's own tokens, so
// records read alike have one key, whichever reading found them
// (FuzzKeyMemo). What it is blind to:
//   - Which digit stands where: only where digits stand, with one
//     exception, a word starting "0x". So every digit is read as "1", but
//     a "0" before "x" or "X".
//   - What a hex run is made of: six or more hex digits and letters, one
//     at least a digit, bounded by bytes that are not word bytes, is one
//     <hex> token, and any field holding it is classified the same way
//     whichever they are (a UUID, an IPv6 address or a path read them only
//     as hex). So it is read as "1aaa...", of its length. A run read so
//     is one: "1" and five or more "a" are hex with a digit. This reading
//     needs a pass over the runs, so it is tried only when the first one
//     misses.
// In one pass over Loghub's 28,000 raw lines, with the default 16,384
// slots, 82% of records find their key this way (BenchmarkTemplateKey:
// 0.3 µs a key instead of 1.5; 0.4 instead of 1.2 for service logs with a
// new trace id in every record).

// keyMemo maps blind hashes to template keys. It is direct-mapped: a
// record whose slot holds another hash is scanned and takes the slot.
// Its answers are the scan's, so it changes no decision. Not safe for
// concurrent use; each batcher worker has its own.
type keyMemo struct {
	blind []uint64 // 0 marks an empty slot; blind hashes are never 0
	keys  []uint64
	mask  uint64
	buf   []byte // a record with its hex runs read as "1aaa..."
	// Records whose values are written in other letters (user names, base64)
	// never repeat their blind bytes, and the hashes would only add to their
	// scan: when too few of a window's lookups hit, the memo stands aside
	// for a while. Likewise the hex-run reading, which costs about a quarter
	// of a scan (BenchmarkBlindHash): it stands aside when too few of its
	// tries hit.
	all, hex duty
}

// duty counts a reading's tries and hits by window of memoWindow tries,
// and how many more records it stands aside for.
type duty struct {
	tries, hits, rest int
}

// aside reports whether the reading stands aside for this record.
func (d *duty) aside() bool {
	if d.rest > 0 {
		d.rest--
		return true
	}
	return false
}

// try counts a try; a window that ends with fewer than one hit in minHits
// stands the reading aside for memoRest records.
func (d *duty) try(minHits int) {
	if d.tries++; d.tries == memoWindow {
		if d.hits*minHits < memoWindow {
			d.rest = memoRest
		}
		d.tries, d.hits = 0, 0
	}
}

// The memo's duty cycle: lookups per window; a window with fewer than one
// hit in memoMinHits stands the memo aside for memoRest records. A hit
// saves about 12 hashes, so 1 in 16 is above break-even, and the memo
// costs a record it cannot help about 1/16 of its hashes. A hit of the
// hex-run reading saves about 4 of its tries: 1 in 3 is above.
const (
	memoWindow     = 1024
	memoMinHits    = 16
	memoRest       = 15 * memoWindow
	memoHexMinHits = 3
)

// newKeyMemo makes a memo of size slots rounded down to a power of two.
func newKeyMemo(size int) *keyMemo {
	n := 1
	for 2*n <= size {
		n <<= 1
	}
	return &keyMemo{blind: make([]uint64, n), keys: make([]uint64, n), mask: uint64(n - 1)}
}

// key is f.Scan(text, t), from the memo when a record with the same blind
// bytes was scanned last in its slot.
func (m *keyMemo) key(f *Featurizer, text []byte, t *Tokens) uint64 {
	if m.all.aside() {
		return f.Scan(text, t)
	}
	m.all.try(memoMinHits)
	text = truncate(text, f.cfg.MaxBytes)
	b := blindHash(text)
	if k, ok := m.get(b); ok {
		return k
	}
	if !m.hex.aside() {
		if hex, ok := m.blindHexRuns(text); ok {
			b = blindHash(hex)
			m.hex.try(memoHexMinHits)
			if k, ok := m.get(b); ok {
				m.hex.hits++
				return k
			}
		}
	}
	k := f.Scan(text, t)
	slot := b & m.mask
	m.blind[slot], m.keys[slot] = b, k
	return k
}

func (m *keyMemo) get(b uint64) (uint64, bool) {
	slot := b & m.mask
	if m.blind[slot] != b {
		return 0, false
	}
	m.all.hits++
	return m.keys[slot], true
}

// Byte kinds of the hex-run pass; 0 is a byte that ends a word.
const (
	hexDigit uint8 = 1 << iota
	hexLetter
	hexOther // another word byte
)

var hexTab = func() (t [256]uint8) {
	for c := range 256 {
		switch b := byte(c); {
		case b >= '0' && b <= '9':
			t[c] = hexDigit
		case isHexByte(b):
			t[c] = hexLetter
		case isWordByte(b):
			t[c] = hexOther
		}
	}
	return t
}()

// minHexRun is the shortest run of hex letters and digits that word
// always masks as <hex> (when it holds a digit).
const minHexRun = 6

// blindHexRuns copies text into m.buf with its hex runs read as "1aaa...";
// ok is false when it has none.
func (m *keyMemo) blindHexRuns(text []byte) ([]byte, bool) {
	found := false
	for i := 0; i < len(text); {
		for i < len(text) && hexTab[text[i]] == 0 {
			i++
		}
		start := i
		var kinds uint8
		for ; i < len(text); i++ {
			k := hexTab[text[i]]
			if k == 0 {
				break
			}
			kinds |= k
		}
		if kinds != hexDigit|hexLetter || i-start < minHexRun {
			continue
		}
		if !found {
			m.buf = append(m.buf[:0], text...)
			found = true
		}
		m.buf[start] = '1'
		for j := start + 1; j < i; j++ {
			m.buf[j] = 'a'
		}
	}
	return m.buf, found
}

// SWAR constants: a byte of ones, and the high and low bits of each byte.
const (
	swarOnes  = 0x0101010101010101
	swarHighs = 0x8080808080808080
	swarLows  = ^uint64(swarHighs)
)

// blindHash hashes text with every ASCII digit read as '1', but a '0'
// followed by 'x' or 'X', eight bytes at a time. It is never 0.
func blindHash(text []byte) uint64 {
	n := len(text)
	// Two lanes, so that one round's multiplies need not wait for the
	// other's.
	h1, h2 := uint64(n)*xxPrime5, uint64(xxPrime1)
	i := 0
	for ; i+17 <= n; i += 16 {
		w := text[i : i+17 : i+17]
		h1 = xxRound(h1, blindWord(binary.LittleEndian.Uint64(w), binary.LittleEndian.Uint64(w[1:])))
		h2 = xxRound(h2, blindWord(binary.LittleEndian.Uint64(w[8:]), binary.LittleEndian.Uint64(w[9:])))
	}
	// The last 0 to 16 bytes, zero-padded, with the byte after them.
	var tail [32]byte
	copy(tail[:], text[i:])
	h1 = xxRound(h1, blindWord(binary.LittleEndian.Uint64(tail[:]), binary.LittleEndian.Uint64(tail[1:])))
	h2 = xxRound(h2, blindWord(binary.LittleEndian.Uint64(tail[8:]), binary.LittleEndian.Uint64(tail[9:])))
	h := mix(h1 ^ bits.RotateLeft64(h2, 29))
	if h == 0 {
		h = 1
	}
	return h
}

// blindWord reads each ASCII digit of the eight bytes x as '1', but a '0'
// followed by 'x' or 'X'; next holds the eight bytes that follow x's.
func blindWord(x, next uint64) uint64 {
	// A byte of t is zero where x has '0' and next has 'x' or 'X'.
	t := (x ^ '0'*swarOnes) | ((next | 0x20*swarOnes) ^ 'x'*swarOnes)
	keep := ^((t&swarLows + swarLows) | t | swarLows)
	// Digits: at least '0' and below '9'+1, the high bit clear (with it
	// cleared first, no carry crosses a byte).
	y := x & swarLows
	d := (y + (0x80-'0')*swarOnes) &^ (y + (0x80-'9'-1)*swarOnes) &^ x &^ keep & swarHighs
	d = (d >> 7) * 0xff // 0xff in each digit byte
	return x&^d | '1'*swarOnes&d
}

// xxHash64's primes and round.
const (
	xxPrime1 = 11400714785074694791
	xxPrime2 = 14029467366897019727
	xxPrime5 = 2870177450012600261
)

func xxRound(acc, w uint64) uint64 {
	return bits.RotateLeft64(acc+w*xxPrime2, 31) * xxPrime1
}
