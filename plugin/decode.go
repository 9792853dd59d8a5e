package plugin

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"reflect"
	"time"

	"github.com/ugorji/go/codec"
)

// Event is one record of a Fluent Bit chunk.
type Event struct {
	Time time.Time
	// Record is as Fluent Bit's msgpack decodes it with fluent-bit-go's
	// settings: string values as []byte, integers as int64 or uint64,
	// floats as float64, nested maps as map[interface{}]interface{}.
	Record map[interface{}]interface{}
}

// eventTime is Fluent Bit's EventTime, msgpack extension type 0: seconds
// and nanoseconds, both big-endian uint32.
type eventTime struct{ time.Time }

type eventTimeExt struct{}

func (eventTimeExt) WriteExt(v interface{}) []byte {
	t := v.(*eventTime)
	b := make([]byte, 8)
	binary.BigEndian.PutUint32(b, uint32(t.Unix()))
	binary.BigEndian.PutUint32(b[4:], uint32(t.Nanosecond()))
	return b
}

func (eventTimeExt) ReadExt(dst interface{}, b []byte) {
	if len(b) != 8 {
		return // left zero; decodeChunk reports it
	}
	dst.(*eventTime).Time = time.Unix(int64(binary.BigEndian.Uint32(b)), int64(binary.BigEndian.Uint32(b[4:])))
}

// handle is fluent-bit-go's decoder configuration (output.NewDecoder):
// the reference DecodeChunk is checked against, and the encoder of test
// chunks.
func handle() *codec.MsgpackHandle {
	h := new(codec.MsgpackHandle)
	if err := h.SetBytesExt(reflect.TypeOf(eventTime{}), 0, eventTimeExt{}); err != nil {
		panic(err) // a static registration: cannot fail
	}
	return h
}

// ErrBadChunk is returned for data that is not a sequence of Fluent Bit
// events; Fluent Bit itself never sends such a chunk.
var ErrBadChunk = errors.New("malformed chunk")

// DecodeChunk decodes a flushed chunk: a sequence of [time, record] (Fluent
// Bit before 2.1) or [[time, metadata], record] events, where time is an
// EventTime, an integer or a float of seconds. Byte strings in the events
// alias data.
func DecodeChunk(data []byte) ([]Event, error) {
	r := reader{b: data}
	var events []Event
	for r.pos < len(data) {
		v, err := r.value(0)
		if err != nil {
			return events, fmt.Errorf("%w: event %d: %v", ErrBadChunk, len(events), err)
		}
		ev, err := toEvent(v)
		if err != nil {
			return events, fmt.Errorf("%w: event %d: %v", ErrBadChunk, len(events), err)
		}
		events = append(events, ev)
	}
	return events, nil
}

func toEvent(v interface{}) (Event, error) {
	pair, ok := v.([]interface{})
	if !ok || len(pair) != 2 {
		return Event{}, fmt.Errorf("want a 2-element array, got %T", v)
	}
	head := pair[0]
	if h, ok := head.([]interface{}); ok { // [[time, metadata], record]
		if len(h) < 1 {
			return Event{}, errors.New("empty event header")
		}
		head = h[0]
	}
	t, err := toTime(head)
	if err != nil {
		return Event{}, err
	}
	rec, ok := pair[1].(map[interface{}]interface{})
	if !ok {
		return Event{}, fmt.Errorf("record is %T, not a map", pair[1])
	}
	return Event{Time: t, Record: rec}, nil
}

func toTime(v interface{}) (time.Time, error) {
	switch t := v.(type) {
	case eventTime:
		return t.Time, nil
	case uint64:
		return time.Unix(int64(t), 0), nil
	case int64:
		return time.Unix(t, 0), nil
	case float64:
		sec, frac := math.Modf(t)
		return time.Unix(int64(sec), int64(frac*1e9)), nil
	}
	return time.Time{}, fmt.Errorf("timestamp is %T", v)
}

// EncodeHandle encodes like msgpack-c in Fluent Bit: str8 and bin types,
// EventTime as extension type 0.
func EncodeHandle() *codec.MsgpackHandle {
	h := handle()
	h.WriteExt = true
	return h
}

// EncodeEvent appends one event the way Fluent Bit 2.1+ writes it:
// [[EventTime, {}], record]. The tests' and benchmarks' chunks use it.
func EncodeEvent(h *codec.MsgpackHandle, buf *[]byte, t time.Time, record map[string]interface{}) error {
	ev := []interface{}{[]interface{}{&eventTime{t}, map[string]interface{}{}}, record}
	var out []byte
	if err := codec.NewEncoderBytes(&out, h).Encode(ev); err != nil {
		return err
	}
	*buf = append(*buf, out...)
	return nil
}

// EventTime wraps t so that it encodes as Fluent Bit's EventTime.
func EventTime(t time.Time) interface{} { return &eventTime{t} }
