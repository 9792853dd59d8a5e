package plugin

import (
	"bytes"
	"encoding/binary"
	"math"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"
	"unsafe"
)

// The fast path of a flush. Fluent Bit's records are almost always plain:
// string keys; integer, float, bool, nil, string, array and map values.
// For those a flush reads the configured field and writes the output line
// straight from the chunk's msgpack, with no map, interface value or copy
// per record. Anything else (another extension, a non-string key, bad
// UTF-8, a missing or non-string field) takes the decoding path
// (reader.value, runtime.Lookup, appendLine), which defines what a flush
// does: FuzzRawPath compares the two on arbitrary chunks.

// event is one event of a chunk: its record either left as msgpack (raw,
// in the fast path's subset and valid UTF-8) or decoded (rec).
type event struct {
	time time.Time
	raw  []byte
	rec  map[interface{}]interface{}
}

// record returns the decoded record, decoding a raw one.
func (e *event) record() map[interface{}]interface{} {
	if e.rec == nil {
		v, _ := (&reader{b: e.raw}).value(1) // in the subset: cannot fail
		e.rec, _ = v.(map[interface{}]interface{})
	}
	return e.rec
}

// scanChunk appends a chunk's events to evs. Events outside the fast path's
// subset are decoded by the reader; when one cannot be, ok is false and
// the chunk is for DecodeChunk, which reports where it is damaged.
func scanChunk(data []byte, evs []event) (_ []event, ok bool) {
	r := reader{b: data}
	for r.pos < len(data) {
		start := r.pos
		if ev, ok := r.rawEvent(); ok {
			evs = append(evs, ev)
			continue
		}
		r.pos = start
		v, err := r.value(0)
		if err != nil {
			return evs, false
		}
		ev, err := toEvent(v)
		if err != nil {
			return evs, false
		}
		evs = append(evs, event{time: ev.Time, rec: ev.Record})
	}
	return evs, true
}

// rawEvent reads [time, record] or [[time, metadata...], record] when it is
// in the subset, at the depths reader.value gives them.
func (r *reader) rawEvent() (event, bool) {
	if n, ok := r.arrayLen(); !ok || n != 2 {
		return event{}, false
	}
	var ev event
	var ok bool
	if r.pos < len(r.b) && isArray(r.b[r.pos]) {
		n, _ := r.arrayLen()
		if n < 1 {
			return event{}, false
		}
		if ev.time, ok = r.timeValue(); !ok {
			return event{}, false
		}
		for ; n > 1; n-- {
			if !r.skip(2, false) {
				return event{}, false
			}
		}
	} else if ev.time, ok = r.timeValue(); !ok {
		return event{}, false
	}
	start := r.pos
	if r.pos >= len(r.b) || !isMap(r.b[r.pos]) || !r.skip(1, true) {
		return event{}, false
	}
	ev.raw = r.b[start:r.pos:r.pos]
	return ev, true
}

func isArray(c byte) bool { return c&0xf0 == 0x90 || c == 0xdc || c == 0xdd }
func isMap(c byte) bool   { return c&0xf0 == 0x80 || c == 0xde || c == 0xdf }

func (r *reader) arrayLen() (int, bool) {
	if r.pos >= len(r.b) {
		return 0, false
	}
	c := r.b[r.pos]
	r.pos++
	switch {
	case c&0xf0 == 0x90:
		return int(c & 0x0f), true
	case c == 0xdc, c == 0xdd:
		n, err := r.uint(2 << (c - 0xdc))
		return int(n), err == nil && n <= uint64(len(r.b))
	}
	return 0, false
}

// timeValue reads an event time as toTime converts it.
func (r *reader) timeValue() (time.Time, bool) {
	if r.pos >= len(r.b) {
		return time.Time{}, false
	}
	c := r.b[r.pos]
	r.pos++
	switch {
	case c <= 0x7f:
		return time.Unix(int64(c), 0), true
	case c >= 0xe0:
		return time.Unix(int64(int8(c)), 0), true
	}
	var s []byte
	var err error
	switch c {
	case 0xd7, 0xc7: // fixext8, or ext8 of length 8: EventTime when of type 0
		if c == 0xc7 {
			if s, err = r.need(1); err != nil || s[0] != 8 {
				return time.Time{}, false
			}
		}
		if s, err = r.need(9); err != nil || s[0] != 0 {
			return time.Time{}, false
		}
		return time.Unix(int64(binary.BigEndian.Uint32(s[1:])), int64(binary.BigEndian.Uint32(s[5:]))), true
	case 0xcc, 0xcd, 0xce, 0xcf:
		u, err := r.uint(1 << (c - 0xcc))
		return time.Unix(int64(u), 0), err == nil
	case 0xd0, 0xd1, 0xd2, 0xd3:
		u, err := r.uint(1 << (c - 0xd0))
		return time.Unix(signExtend(u, c-0xd0), 0), err == nil
	case 0xca, 0xcb:
		u, err := r.uint(4 << (c - 0xca))
		f := math.Float64frombits(u)
		if c == 0xca {
			f = float64(math.Float32frombits(uint32(u)))
		}
		sec, frac := math.Modf(f)
		return time.Unix(int64(sec), int64(frac*1e9)), err == nil
	}
	return time.Time{}, false
}

// signExtend reads u, of 1<<log bytes, as a signed integer.
func signExtend(u uint64, log byte) int64 {
	switch log {
	case 0:
		return int64(int8(u))
	case 1:
		return int64(int16(u))
	case 2:
		return int64(int32(u))
	}
	return int64(u)
}

// skip passes one value of the subset, at the depth reader.value would
// read it: false for anything else, for bad UTF-8 in a string when utf is
// set, and for nesting reader.value refuses.
func (r *reader) skip(depth int, utf bool) bool {
	if depth > maxDepth || r.pos >= len(r.b) {
		return false
	}
	c := r.b[r.pos]
	r.pos++
	switch {
	case c <= 0x7f, c >= 0xe0:
		return true
	case c <= 0x8f:
		return r.skipMap(int(c&0x0f), depth, utf)
	case c <= 0x9f:
		return r.skipArray(int(c&0x0f), depth, utf)
	case c <= 0xbf:
		return r.skipString(int(c&0x1f), utf)
	}
	switch c {
	case 0xc0, 0xc2, 0xc3:
		return true
	case 0xc4, 0xc5, 0xc6, 0xd9, 0xda, 0xdb:
		n, ok := r.strLen(c)
		return ok && r.skipString(n, utf)
	case 0xca, 0xcb:
		_, err := r.need(4 << (c - 0xca))
		return err == nil
	case 0xcc, 0xcd, 0xce, 0xcf:
		_, err := r.need(1 << (c - 0xcc))
		return err == nil
	case 0xd0, 0xd1, 0xd2, 0xd3:
		_, err := r.need(1 << (c - 0xd0))
		return err == nil
	case 0xd7: // fixext8: in the subset only as an EventTime
		s, err := r.need(9)
		return err == nil && s[0] == 0
	case 0xdc, 0xdd:
		n, err := r.uint(2 << (c - 0xdc))
		return err == nil && n <= uint64(len(r.b)) && r.skipArray(int(n), depth, utf)
	case 0xde, 0xdf:
		n, err := r.uint(2 << (c - 0xde))
		return err == nil && n <= uint64(len(r.b)) && r.skipMap(int(n), depth, utf)
	}
	return false
}

// strLen reads the length of a str8/16/32 or bin8/16/32 whose type byte
// was c.
func (r *reader) strLen(c byte) (int, bool) {
	var size int
	switch c {
	case 0xc4, 0xd9:
		size = 1
	case 0xc5, 0xda:
		size = 2
	default:
		size = 4
	}
	n, err := r.uint(size)
	return int(n), err == nil && n <= uint64(len(r.b))
}

func (r *reader) skipString(n int, utf bool) bool {
	s, err := r.need(n)
	return err == nil && (!utf || utf8.Valid(s))
}

func (r *reader) skipArray(n, depth int, utf bool) bool {
	for ; n > 0; n-- {
		if !r.skip(depth+1, utf) {
			return false
		}
	}
	return true
}

// skipMap passes a map whose keys are all strings (or binaries, which
// reader.value turns into strings too).
func (r *reader) skipMap(n, depth int, utf bool) bool {
	for ; n > 0; n-- {
		if k, ok := r.key(); !ok || utf && !utf8.Valid(k) {
			return false
		}
		if !r.skip(depth+1, utf) {
			return false
		}
	}
	return true
}

// key reads a str or bin value: a map key of the subset.
func (r *reader) key() ([]byte, bool) {
	if r.pos >= len(r.b) {
		return nil, false
	}
	c := r.b[r.pos]
	r.pos++
	n := int(c & 0x1f)
	switch {
	case c >= 0xa0 && c <= 0xbf:
	case c == 0xc4, c == 0xc5, c == 0xc6, c == 0xd9, c == 0xda, c == 0xdb:
		var ok bool
		if n, ok = r.strLen(c); !ok {
			return nil, false
		}
	default:
		return nil, false
	}
	s, err := r.need(n)
	return s, err == nil
}

// rawLookup returns the string at path in a raw record, as runtime.Lookup
// finds it (the last of duplicate keys); ok is false when there is none,
// for the decoding path to say why.
func rawLookup(rec []byte, path []string) (text []byte, ok bool) {
	r := reader{b: rec}
	for depth, seg := range path {
		n, ok := r.mapLen()
		if !ok {
			return nil, false
		}
		found := -1
		for ; n > 0; n-- {
			k, _ := r.key()
			if string(k) == seg {
				found = r.pos
			}
			r.skip(depth+1, false)
		}
		if found < 0 {
			return nil, false
		}
		r.pos = found
	}
	if r.pos >= len(r.b) {
		return nil, false
	}
	s, ok := r.key() // a str or bin value
	return s, ok
}

func (r *reader) mapLen() (int, bool) {
	if r.pos >= len(r.b) || !isMap(r.b[r.pos]) {
		return 0, false
	}
	c := r.b[r.pos]
	r.pos++
	if c&0xf0 == 0x80 {
		return int(c & 0x0f), true
	}
	n, err := r.uint(2 << (c - 0xde))
	return int(n), err == nil
}

// transcoder writes raw records as appendMap writes decoded ones: JSON
// with sorted keys, the last of duplicate keys winning.
type transcoder struct {
	r   reader
	kvs []rawKV // the keys of the maps being written, innermost last
}

type rawKV struct {
	key []byte
	val int // offset of the value
}

// appendRecord writes a raw record.
func (x *transcoder) appendRecord(buf, rec []byte) []byte {
	x.r = reader{b: rec}
	buf = x.value(buf)
	x.r = reader{}
	return buf
}

func (x *transcoder) value(buf []byte) []byte {
	r := &x.r
	c := r.b[r.pos]
	r.pos++
	switch {
	case c <= 0x7f:
		return strconv.AppendInt(buf, int64(c), 10)
	case c >= 0xe0:
		return strconv.AppendInt(buf, int64(int8(c)), 10)
	case c <= 0x8f:
		return x.mapOf(buf, int(c&0x0f))
	case c <= 0x9f:
		return x.arrayOf(buf, int(c&0x0f))
	case c <= 0xbf:
		s, _ := r.need(int(c & 0x1f))
		return appendString(buf, str(s))
	}
	switch c {
	case 0xc0:
		return append(buf, "null"...)
	case 0xc2:
		return append(buf, "false"...)
	case 0xc3:
		return append(buf, "true"...)
	case 0xc4, 0xc5, 0xc6, 0xd9, 0xda, 0xdb:
		n, _ := r.strLen(c)
		s, _ := r.need(n)
		return appendString(buf, str(s))
	case 0xca:
		u, _ := r.uint(4)
		return appendFloat(buf, float64(math.Float32frombits(uint32(u))), 64)
	case 0xcb:
		u, _ := r.uint(8)
		return appendFloat(buf, math.Float64frombits(u), 64)
	case 0xcc, 0xcd, 0xce, 0xcf:
		u, _ := r.uint(1 << (c - 0xcc))
		return strconv.AppendUint(buf, u, 10)
	case 0xd0, 0xd1, 0xd2, 0xd3:
		u, _ := r.uint(1 << (c - 0xd0))
		return strconv.AppendInt(buf, signExtend(u, c-0xd0), 10)
	case 0xd7: // EventTime, as stamp writes it
		s, _ := r.need(9)
		t := time.Unix(int64(binary.BigEndian.Uint32(s[1:])), int64(binary.BigEndian.Uint32(s[5:])))
		buf = t.UTC().AppendFormat(append(buf, '"'), time.RFC3339Nano)
		return append(buf, '"')
	case 0xdc, 0xdd:
		n, _ := r.uint(2 << (c - 0xdc))
		return x.arrayOf(buf, int(n))
	}
	n, _ := r.uint(2 << (c - 0xde)) // 0xde, 0xdf: the subset has no other type
	return x.mapOf(buf, int(n))
}

func (x *transcoder) arrayOf(buf []byte, n int) []byte {
	buf = append(buf, '[')
	for i := 0; i < n; i++ {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = x.value(buf)
	}
	return append(buf, ']')
}

func (x *transcoder) mapOf(buf []byte, n int) []byte {
	base := len(x.kvs)
	for i := 0; i < n; i++ {
		k, _ := x.r.key()
		x.kvs = append(x.kvs, rawKV{key: k, val: x.r.pos})
		x.r.skip(0, false)
	}
	end := x.r.pos
	slices.SortStableFunc(x.kvs[base:], func(a, b rawKV) int { return bytes.Compare(a.key, b.key) })
	buf = append(buf, '{')
	first := true
	for i := base; i < base+n; i++ {
		// x.kvs may grow (and move) while a nested map is written: index it.
		if i+1 < base+n && bytes.Equal(x.kvs[i].key, x.kvs[i+1].key) {
			continue // a later duplicate wins, as in a decoded map
		}
		if !first {
			buf = append(buf, ',')
		}
		first = false
		buf = append(appendString(buf, str(x.kvs[i].key)), ':')
		x.r.pos = x.kvs[i].val
		buf = x.value(buf)
	}
	x.kvs = x.kvs[:base]
	x.r.pos = end
	return append(buf, '}')
}

// str views b as a string for appendString, which does not keep it.
func str(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }
