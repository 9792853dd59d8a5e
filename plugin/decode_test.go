package plugin

import (
	"fmt"
	"reflect"
	"strings"

	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"testing"
	"time"

	"github.com/ugorji/go/codec"
)

// Bytes as msgpack-c in Fluent Bit writes them, built by hand so the test
// does not depend on the encoder it checks.
func fixext8(sec, nsec uint32) []byte {
	b := []byte{0xd7, 0x00, 0, 0, 0, 0, 0, 0, 0, 0}
	binary.BigEndian.PutUint32(b[2:], sec)
	binary.BigEndian.PutUint32(b[6:], nsec)
	return b
}

func str8(s string) []byte { return append([]byte{0xd9, byte(len(s))}, s...) }

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

func TestDecodeChunkForms(t *testing.T) {
	rec := cat([]byte{0x83}, // map of 3
		str8("log"), str8("disk full"),
		str8("n"), []byte{0xd3, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe}, // int64 -2
		str8("k8s"), []byte{0x81}, str8("pod"), str8("api-1"))
	f64 := make([]byte, 9)
	f64[0] = 0xcb
	binary.BigEndian.PutUint64(f64[1:], math.Float64bits(1764064800.25))
	tests := []struct {
		name string
		data []byte
		want time.Time
	}{
		{"v2: [[EventTime, meta], record]", cat([]byte{0x92, 0x92}, fixext8(1764064800, 123456789), []byte{0x80}, rec), time.Unix(1764064800, 123456789)},
		{"[EventTime, record]", cat([]byte{0x92}, fixext8(1764064800, 5), rec), time.Unix(1764064800, 5)},
		{"[uint32 seconds, record]", cat([]byte{0x92, 0xce, 0x69, 0x25, 0x3c, 0x20}, rec), time.Unix(0x69253c20, 0)},
		{"[float seconds, record]", cat([]byte{0x92}, f64, rec), time.Unix(1764064800, 250000000)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			evs, err := DecodeChunk(append(append([]byte{}, tc.data...), tc.data...)) // two events
			if err != nil {
				t.Fatal(err)
			}
			if len(evs) != 2 {
				t.Fatalf("%d events, want 2", len(evs))
			}
			ev := evs[1]
			if !ev.Time.Equal(tc.want) {
				t.Fatalf("time %v, want %v", ev.Time, tc.want)
			}
			if s, ok := ev.Record["log"].([]byte); !ok || string(s) != "disk full" {
				t.Fatalf("log is %#v, want []byte(\"disk full\")", ev.Record["log"])
			}
			if n, ok := ev.Record["n"].(int64); !ok || n != -2 {
				t.Fatalf("n is %#v, want int64(-2)", ev.Record["n"])
			}
			k8s, ok := ev.Record["k8s"].(map[interface{}]interface{})
			if !ok || string(k8s["pod"].([]byte)) != "api-1" {
				t.Fatalf("nested map is %#v", ev.Record["k8s"])
			}
		})
	}
}

func TestDecodeChunkRejects(t *testing.T) {
	good := cat([]byte{0x92}, fixext8(1, 0), []byte{0x81}, str8("log"), str8("x"))
	tests := []struct {
		name string
		data []byte
		n    int // events decoded before the damage
	}{
		{"truncated", append(append([]byte{}, good...), good[:len(good)-2]...), 1},
		{"not an array", cat(good, str8("hello")), 1},
		{"record not a map", cat(good, []byte{0x92, 0x01, 0x02}), 1},
		{"bad timestamp", cat([]byte{0x92}, str8("now"), []byte{0x80}), 0},
		{"garbage", []byte{0xc1}, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			evs, err := DecodeChunk(tc.data)
			if !errors.Is(err, ErrBadChunk) || len(evs) != tc.n {
				t.Fatalf("%d events, err %v; want %d and ErrBadChunk", len(evs), err, tc.n)
			}
		})
	}
}

// decodeWithUgorji is DecodeChunk on fluent-bit-go's decoder: the
// reference. One setting differs: with a key repeated in a map,
// fluent-bit-go's decoder decodes the second value into the first one's
// type and fails the chunk when they differ; DecodeChunk keeps the last
// value, as MapValueReset makes the reference do.
func decodeWithUgorji(data []byte) ([]Event, error) {
	h := handle()
	h.MapValueReset = true
	dec := codec.NewDecoderBytes(data, h)
	var events []Event
	for dec.NumBytesRead() < len(data) {
		var v interface{}
		if err := dec.Decode(&v); err != nil {
			return events, err
		}
		ev, err := toEvent(v)
		if err != nil {
			return events, err
		}
		events = append(events, ev)
	}
	return events, nil
}

// FuzzDecodeChunk: on any bytes, DecodeChunk and fluent-bit-go's decoder
// agree on the events and on whether the chunk is valid.
func FuzzDecodeChunk(f *testing.F) {
	f.Add(cat([]byte{0x92, 0x92}, fixext8(1, 2), []byte{0x80, 0x81}, str8("log"), str8("x")))
	f.Add([]byte{0x92, 0xce, 0, 0, 0, 1, 0x80})
	// msgpack timestamps (-1) of 4, 8 and 12 bytes, and of none.
	for _, ts := range [][]byte{{0xd6, 0xff, 0x5f, 0, 0, 1}, {0xd7, 0xff, 0, 0, 0, 4, 0x5f, 0, 0, 1}, {0xc7, 12, 0xff, 0, 0, 0, 7, 0, 0, 0, 0, 0x5f, 0, 0, 1}, {0xc7, 0, 0xff}} {
		f.Add(cat([]byte{0x92, 0xce, 0, 0, 0, 1, 0x81}, str8("t"), ts))
	}
	f.Add(cat([]byte{0x92, 0xcb, 0x41, 0xda, 0, 0, 0, 0, 0, 0, 0x82, 0xc4, 1, 'b', 0xc7, 2, 5, 1, 2}, str8("n"), []byte{0xdc, 0, 2, 0xca, 0x3f, 0x80, 0, 0, 0xc0}))
	h := EncodeHandle()
	var chunk []byte
	for _, rec := range []map[string]interface{}{{"log": "x", "n": -5, "u": uint64(1 << 40), "f": 1.5, "m": map[string]interface{}{"a": []interface{}{1, "b", nil, true}}}} {
		if err := EncodeEvent(h, &chunk, time.Unix(1764064800, 99), rec); err != nil {
			f.Fatal(err)
		}
	}
	f.Add(chunk)
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := DecodeChunk(data)
		want, werr := decodeWithUgorji(data)
		if (err == nil) != (werr == nil) {
			t.Fatalf("DecodeChunk error %v, reference error %v", err, werr)
		}
		// DeepEqual holds NaN unequal to itself; the printed forms (maps
		// print sorted) tell a decoded NaN from a wrong value.
		if err == nil && !reflect.DeepEqual(got, want) && fmt.Sprintf("%#v", got) != fmt.Sprintf("%#v", want) {
			t.Fatalf("DecodeChunk %#v\nreference  %#v", got, want)
		}
	})
}

func TestDecodeChunkMatchesReference(t *testing.T) {
	h := EncodeHandle()
	var chunk []byte
	for i := 0; i < 100; i++ {
		rec := map[string]interface{}{"log": fmt.Sprintf("line %d", i), "i": i, "neg": -i, "f": float64(i) / 3, "ok": i%2 == 0,
			"k8s": map[string]interface{}{"labels": map[string]interface{}{"app": "orders"}}, "list": []interface{}{i, "x"}, "nil": nil,
			"big": uint64(1) << 63, "bin": []byte{0, 1, 2}}
		if err := EncodeEvent(h, &chunk, time.Unix(int64(1764064800+i), int64(i)), rec); err != nil {
			t.Fatal(err)
		}
	}
	got, err := DecodeChunk(chunk)
	want, werr := decodeWithUgorji(chunk)
	if err != nil || werr != nil || len(got) != 100 || !reflect.DeepEqual(got, want) {
		t.Fatalf("DecodeChunk disagrees with fluent-bit-go's decoder: %v %v", err, werr)
	}
}

func TestParseConfig(t *testing.T) {
	props := func(kv ...string) func(string) string {
		m := map[string]string{}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return func(k string) string { return m[k] }
	}
	c, err := ParseConfig(props("pipeline", "p.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Field != "" || c.Output != "stdout" || c.MaxBatch != 256 || c.Device != "cpu" || c.LogLevel != "info" {
		t.Fatalf("defaults: %+v", c)
	}
	c, err = ParseConfig(props("pipeline", "p.yaml", "output", "kafka://a:9092,b:9093/logs", "field", "kubernetes.labels.app", "max_batch", "64"))
	if err != nil || c.MaxBatch != 64 {
		t.Fatalf("%+v, %v", c, err)
	}
	spec, _ := parseOutput(c.Output)
	if spec.topic != "logs" || len(spec.brokers) != 2 {
		t.Fatalf("kafka output %+v", spec)
	}
	for _, bad := range []func(string) string{
		props("pipeline", "p.yaml", "template_cache", "-2"),
		props("pipeline", "p.yaml", "log_level", "loud"),
		props("pipeline", "p.yaml", "output", "file://"),
		props("pipeline", "p.yaml", "output", "kafka://nohost/t"),
		props("pipeline", "p.yaml", "max_batch", "0"),
	} {
		if _, err := ParseConfig(bad); err == nil || !bytes.Contains([]byte(err.Error()), []byte("property")) {
			t.Errorf("accepted or unexplained: %v", err)
		}
	}
}

func TestFieldFor(t *testing.T) {
	tests := []struct {
		name, property, input, want, err string
	}{
		{"the property wins", "message", "log", "message", ""},
		{"the pipeline's field path", "", "kubernetes.labels.app", "kubernetes.labels.app", ""},
		{"neither: Fluent Bit's log key", "", "", "log", ""},
		{"a template is refused, not ignored", "", "{{.service}}: {{.msg}}", "", "is a template"},
		{"the property over a template", "msg", "{{.service}}: {{.msg}}", "msg", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := fieldFor(Config{Field: tc.property}, tc.input)
			if got != tc.want || (err == nil) != (tc.err == "") || err != nil && !strings.Contains(err.Error(), tc.err) {
				t.Fatalf("fieldFor = %q, %v; want %q, %q", got, err, tc.want, tc.err)
			}
		})
	}
}
