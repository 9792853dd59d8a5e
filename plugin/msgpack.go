package plugin

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/ugorji/go/codec"
)

// A hand-written msgpack reader for flushed chunks. It yields the values
// fluent-bit-go's ugorji decoder yields (FuzzDecodeChunk compares the
// two on arbitrary bytes), at a fraction of the cost: no reflection, and
// strings alias the chunk instead of being copied.

// maxDepth bounds nesting, so a hostile chunk cannot exhaust the stack.
const maxDepth = 256

var errShort = errors.New("unexpected end of data")

type reader struct {
	b   []byte
	pos int
}

func (r *reader) need(n int) ([]byte, error) {
	if n < 0 || len(r.b)-r.pos < n {
		return nil, errShort
	}
	s := r.b[r.pos : r.pos+n : r.pos+n]
	r.pos += n
	return s, nil
}

func (r *reader) uint(n int) (uint64, error) {
	s, err := r.need(n)
	if err != nil {
		return 0, err
	}
	switch n {
	case 1:
		return uint64(s[0]), nil
	case 2:
		return uint64(binary.BigEndian.Uint16(s)), nil
	case 4:
		return uint64(binary.BigEndian.Uint32(s)), nil
	}
	return binary.BigEndian.Uint64(s), nil
}

func (r *reader) value(depth int) (interface{}, error) {
	if depth > maxDepth {
		return nil, errors.New("nested too deeply")
	}
	s, err := r.need(1)
	if err != nil {
		return nil, err
	}
	c := s[0]
	switch {
	case c <= 0x7f:
		return int64(c), nil
	case c >= 0xe0:
		return int64(int8(c)), nil
	case c >= 0x80 && c <= 0x8f:
		return r.mapOf(int(c&0x0f), depth)
	case c >= 0x90 && c <= 0x9f:
		return r.arrayOf(int(c&0x0f), depth)
	case c >= 0xa0 && c <= 0xbf:
		return r.need(int(c & 0x1f))
	}
	switch c {
	case 0xc0:
		return nil, nil
	case 0xc2:
		return false, nil
	case 0xc3:
		return true, nil
	case 0xc4, 0xd9: // bin8, str8
		return r.sized(1)
	case 0xc5, 0xda:
		return r.sized(2)
	case 0xc6, 0xdb:
		return r.sized(4)
	case 0xc7, 0xc8, 0xc9: // ext8/16/32
		n, err := r.uint(1 << (c - 0xc7))
		if err != nil {
			return nil, err
		}
		return r.ext(int(n))
	case 0xca:
		u, err := r.uint(4)
		return float64(math.Float32frombits(uint32(u))), err
	case 0xcb:
		u, err := r.uint(8)
		return math.Float64frombits(u), err
	case 0xcc, 0xcd, 0xce, 0xcf:
		return r.uint(1 << (c - 0xcc))
	case 0xd0:
		u, err := r.uint(1)
		return int64(int8(u)), err
	case 0xd1:
		u, err := r.uint(2)
		return int64(int16(u)), err
	case 0xd2:
		u, err := r.uint(4)
		return int64(int32(u)), err
	case 0xd3:
		u, err := r.uint(8)
		return int64(u), err
	case 0xd4, 0xd5, 0xd6, 0xd7, 0xd8: // fixext1..16
		return r.ext(1 << (c - 0xd4))
	case 0xdc, 0xdd:
		n, err := r.uint(2 << (c - 0xdc))
		if err != nil {
			return nil, err
		}
		return r.arrayOf(int(n), depth)
	case 0xde, 0xdf:
		n, err := r.uint(2 << (c - 0xde))
		if err != nil {
			return nil, err
		}
		return r.mapOf(int(n), depth)
	}
	return nil, fmt.Errorf("invalid msgpack byte 0x%02x", c)
}

func (r *reader) sized(lenBytes int) ([]byte, error) {
	n, err := r.uint(lenBytes)
	if err != nil {
		return nil, err
	}
	if n > uint64(len(r.b)) {
		return nil, errShort
	}
	return r.need(int(n))
}

func (r *reader) ext(n int) (interface{}, error) {
	t, err := r.need(1)
	if err != nil {
		return nil, err
	}
	data, err := r.need(n)
	if err != nil {
		return nil, err
	}
	if t[0] == 0 { // EventTime
		var et eventTime
		if n == 8 {
			et.Time = time.Unix(int64(binary.BigEndian.Uint32(data)), int64(binary.BigEndian.Uint32(data[4:])))
		}
		return et, nil
	}
	if t[0] == 0xff { // msgpack's timestamp extension (-1), as fluent-bit-go decodes it
		return timestamp(data)
	}
	if n == 0 {
		data = nil // as fluent-bit-go's decoder gives an empty extension (found by FuzzDecodeChunk)
	}
	return codec.RawExt{Tag: uint64(t[0]), Data: data}, nil
}

func (r *reader) arrayOf(n, depth int) (interface{}, error) {
	if n > len(r.b)-r.pos { // each element takes at least a byte
		return nil, errShort
	}
	out := make([]interface{}, n)
	for i := range out {
		v, err := r.value(depth + 1)
		if err != nil {
			return nil, err
		}
		out[i] = v
	}
	return out, nil
}

func (r *reader) mapOf(n, depth int) (interface{}, error) {
	if n > (len(r.b)-r.pos)/2 {
		return nil, errShort
	}
	out := make(map[interface{}]interface{}, n)
	for i := 0; i < n; i++ {
		k, err := r.value(depth + 1)
		if err != nil {
			return nil, err
		}
		switch kt := k.(type) {
		case []byte:
			k = string(kt)
		case []interface{}, map[interface{}]interface{}, codec.RawExt:
			return nil, fmt.Errorf("map key is %T", k) // not hashable
		}
		v, err := r.value(depth + 1)
		if err != nil {
			return nil, err
		}
		out[k] = v
	}
	return out, nil
}

// timestamp decodes msgpack's timestamp extension: 4 bytes of seconds, 8
// of nanoseconds (30 bits) and seconds (34), or 12 of nanoseconds and
// signed seconds (found by FuzzDecodeChunk: a 0-byte one must fail, as in
// fluent-bit-go).
func timestamp(b []byte) (interface{}, error) {
	switch len(b) {
	case 4:
		return time.Unix(int64(binary.BigEndian.Uint32(b)), 0).UTC(), nil
	case 8:
		v := binary.BigEndian.Uint64(b)
		return time.Unix(int64(v&(1<<34-1)), int64(v>>34)).UTC(), nil
	case 12:
		return time.Unix(int64(binary.BigEndian.Uint64(b[4:])), int64(binary.BigEndian.Uint32(b))).UTC(), nil
	}
	return nil, fmt.Errorf("timestamp extension of %d bytes: want 4, 8 or 12", len(b))
}
