package plugin

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/pawlogs/paw/runtime"
)

// appendLine writes a record's output line. It is encoding/json's output
// for outLine (same escaping of control characters and invalid UTF-8, map
// keys sorted) without reflection or the intermediate map[string]any: this
// is most of a flush's cost.
func appendLine(buf []byte, ts time.Time, tag string, rec map[interface{}]interface{}, tags []runtime.Tag, dest string) []byte {
	buf = appendLineHead(buf, ts, tag)
	buf = appendMap(buf, rec)
	return appendLineTail(buf, tags, dest)
}

// appendLineHead writes a line up to its record.
func appendLineHead(buf []byte, ts time.Time, tag string) []byte {
	buf = append(buf, `{"timestamp":"`...)
	buf = ts.UTC().AppendFormat(buf, time.RFC3339Nano)
	buf = append(buf, `","tag":`...)
	buf = appendString(buf, tag)
	return append(buf, `,"record":`...)
}

// appendLineTail writes a line after its record.
func appendLineTail(buf []byte, tags []runtime.Tag, dest string) []byte {
	if len(tags) > 0 {
		buf = append(buf, `,"paw":{`...)
		// Sorted by program, as encoding/json orders a map's keys: an
		// insertion sort on the stack, since a record has a few tags.
		var small [8]int
		order := small[:0]
		if len(tags) > len(small) {
			order = make([]int, 0, len(tags))
		}
		for i := range tags {
			j := len(order)
			order = append(order, i)
			for ; j > 0 && tags[order[j-1]].Program > tags[i].Program; j-- {
				order[j] = order[j-1]
			}
			order[j] = i
		}
		for i, k := range order {
			t := &tags[k]
			if i > 0 {
				buf = append(buf, ',')
			}
			buf = appendString(buf, t.Program)
			buf = append(buf, `:{"label":`...)
			buf = appendString(buf, t.Label)
			buf = append(buf, `,"score":`...)
			buf = appendFloat(buf, float64(t.Score), 32)
			buf = append(buf, `,"id":`...)
			buf = appendString(buf, t.ID)
			if t.By != "" {
				buf = append(buf, `,"by":`...)
				buf = appendString(buf, t.By)
			}
			buf = append(buf, `,"novelty":`...)
			buf = appendFloat(buf, float64(t.Novelty), 32)
			buf = append(buf, '}')
		}
		buf = append(buf, '}')
	}
	if dest != "" {
		buf = append(buf, `,"destination":`...)
		buf = appendString(buf, dest)
	}
	return append(buf, '}')
}

func appendMap(buf []byte, m map[interface{}]interface{}) []byte {
	keys := make([]string, 0, len(m))
	vals := make(map[string]interface{}, len(m))
	for k, v := range m {
		ks := keyString(k)
		keys = append(keys, ks)
		vals[ks] = v
	}
	sort.Strings(keys)
	buf = append(buf, '{')
	for i, k := range keys {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = appendString(buf, k)
		buf = append(buf, ':')
		buf = appendValue(buf, vals[k])
	}
	return append(buf, '}')
}

func appendValue(buf []byte, v interface{}) []byte {
	switch t := v.(type) {
	case nil:
		return append(buf, "null"...)
	case bool:
		return strconv.AppendBool(buf, t)
	case []byte:
		return appendString(buf, string(t))
	case string:
		return appendString(buf, t)
	case int64:
		return strconv.AppendInt(buf, t, 10)
	case uint64:
		return strconv.AppendUint(buf, t, 10)
	case int:
		return strconv.AppendInt(buf, int64(t), 10)
	case float64:
		return appendFloat(buf, t, 64)
	case float32:
		return appendFloat(buf, float64(t), 32)
	case map[interface{}]interface{}:
		return appendMap(buf, t)
	case []interface{}:
		buf = append(buf, '[')
		for i, x := range t {
			if i > 0 {
				buf = append(buf, ',')
			}
			buf = appendValue(buf, x)
		}
		return append(buf, ']')
	case eventTime:
		return appendString(buf, stamp(t.Time))
	}
	return appendString(buf, fmt.Sprint(v))
}

// appendFloat formats like encoding/json; NaN and infinities, which JSON
// cannot hold, become null.
func appendFloat(buf []byte, f float64, bits int) []byte {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return append(buf, "null"...)
	}
	abs := math.Abs(f)
	format := byte('f')
	if abs != 0 && (bits == 64 && (abs < 1e-6 || abs >= 1e21) || bits == 32 && (float32(abs) < 1e-6 || float32(abs) >= 1e21)) {
		format = 'e'
	}
	buf = strconv.AppendFloat(buf, f, format, -1, bits)
	if format == 'e' {
		// clean up e-09 to e-9, as encoding/json does
		n := len(buf)
		if n >= 4 && buf[n-4] == 'e' && buf[n-3] == '-' && buf[n-2] == '0' {
			buf[n-2] = buf[n-1]
			buf = buf[:n-1]
		}
	}
	return buf
}

const hex = "0123456789abcdef"

// appendString quotes s as encoding/json does (HTML escaping included).
func appendString(buf []byte, s string) []byte {
	buf = append(buf, '"')
	start := 0
	for i := 0; i < len(s); {
		if b := s[i]; b < utf8.RuneSelf {
			if b >= 0x20 && b != '"' && b != '\\' && b != '<' && b != '>' && b != '&' {
				i++
				continue
			}
			buf = append(buf, s[start:i]...)
			switch b {
			case '\\', '"':
				buf = append(buf, '\\', b)
			case '\n':
				buf = append(buf, '\\', 'n')
			case '\r':
				buf = append(buf, '\\', 'r')
			case '\t':
				buf = append(buf, '\\', 't')
			case '\b':
				buf = append(buf, '\\', 'b')
			case '\f':
				buf = append(buf, '\\', 'f')
			default:
				buf = append(buf, '\\', 'u', '0', '0', hex[b>>4], hex[b&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			buf = append(buf, s[start:i]...)
			buf = append(buf, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			buf = append(buf, s[start:i]...)
			buf = append(buf, '\\', 'u', '2', '0', '2', hex[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	buf = append(buf, s[start:]...)
	return append(buf, '"')
}
