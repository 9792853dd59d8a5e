package plugin

import (
	"bytes"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
)

// rawPaths are the fields the raw-path tests look up.
var rawPaths = [][]string{{"log"}, {"k8s", "pod"}, {"n"}}

// checkRawPath fails when the fast path and the decoding path disagree on
// a chunk: which events it holds, their times and records, the text each
// field gives and the line each record becomes.
func checkRawPath(t *testing.T, data []byte) {
	t.Helper()
	evs, ok := scanChunk(data, nil)
	want, err := DecodeChunk(data)
	if !ok {
		if err == nil {
			t.Fatalf("scanChunk gave up on a chunk DecodeChunk reads")
		}
		return
	}
	if err != nil || len(evs) != len(want) {
		t.Fatalf("scanChunk read %d events, DecodeChunk %d (err %v)", len(evs), len(want), err)
	}
	var x transcoder
	for i := range evs {
		ev := &evs[i]
		if !ev.time.Equal(want[i].Time) {
			t.Fatalf("event %d: time %v, want %v", i, ev.time, want[i].Time)
		}
		if ev.raw == nil {
			continue
		}
		if !validUTF8(want[i].Record) {
			t.Fatalf("event %d: raw with invalid UTF-8", i)
		}
		got := x.appendRecord(nil, ev.raw)
		if w := appendMap(nil, want[i].Record); !bytes.Equal(got, w) {
			t.Fatalf("event %d: transcoded\n%s\nwant\n%s", i, got, w)
		}
		for _, path := range rawPaths {
			text, ok := rawLookup(ev.raw, path)
			v, err := (&Instance{cfg: Config{Field: strings.Join(path, ".")}, field: path}).text(want[i].Record)
			if ok != (err == nil) || ok && !bytes.Equal(text, v) {
				t.Fatalf("event %d, field %v: raw %q %v, decoded %q %v", i, path, text, ok, v, err)
			}
		}
		dec := (&event{raw: ev.raw}).record()
		if !reflect.DeepEqual(dec, want[i].Record) && fmt.Sprintf("%#v", dec) != fmt.Sprintf("%#v", want[i].Record) {
			t.Fatalf("event %d: record() %#v, want %#v", i, dec, want[i].Record)
		}
	}
}

func rawSeeds(t testing.TB) [][]byte {
	h := EncodeHandle()
	var chunk []byte
	for i, rec := range []map[string]interface{}{
		{"log": "x", "n": -5, "u": uint64(1 << 40), "f": 1.5, "m": map[string]interface{}{"a": []interface{}{1, "b", nil, true}}},
		{"log": "quotes \" <tag> & \u2028", "k8s": map[string]interface{}{"pod": "api-1", "labels": map[string]interface{}{"app": "orders"}}, "t": EventTime(time.Unix(5, 6))},
		{"log": 3},
		{"k8s": "flat"},
	} {
		if err := EncodeEvent(h, &chunk, time.Unix(1764064800+int64(i), 99), rec); err != nil {
			t.Fatal(err)
		}
	}
	return [][]byte{
		chunk,
		// duplicate keys: the last wins
		cat([]byte{0x92, 0x01, 0x83}, str8("log"), str8("first"), str8("n"), []byte{0x07}, str8("log"), str8("last")),
		// a binary key and value, float32, int16, uint8 and ext8 EventTime header
		cat([]byte{0x92, 0x92, 0xc7, 8, 0}, []byte{0, 0, 0, 1, 0, 0, 0, 2}, []byte{0x80, 0x84, 0xc4, 3}, []byte("log"), []byte{0xc4, 2, 'h', 'i'},
			str8("f"), []byte{0xca, 0x3f, 0xc0, 0, 0}, str8("i"), []byte{0xd1, 0xff, 0x00}, str8("u"), []byte{0xcc, 200}),
		// invalid UTF-8 in a value: the decoding path's
		cat([]byte{0x92, 0x01, 0x81}, str8("log"), []byte{0xa2, 0xff, 0xfe}),
		// an integer key and a msgpack timestamp: the decoding path's
		cat([]byte{0x92, 0x01, 0x82, 0x05}, str8("x"), str8("log"), []byte{0xd6, 0xff, 0, 0, 0, 1}),
		// float and negative times, and a truncated event
		cat([]byte{0x92, 0xcb, 0x41, 0xda, 0, 0, 0, 0, 0, 0, 0x80, 0x92, 0xd0, 0xfe, 0x80, 0x92, 0x01}),
	}
}

func TestRawPathMatchesDecoding(t *testing.T) {
	seeds := rawSeeds(t)
	for i, data := range seeds {
		t.Run(fmt.Sprint(i), func(t *testing.T) { checkRawPath(t, data) })
	}
	// The fast path must be the one taken for plain records.
	evs, ok := scanChunk(seeds[0], nil)
	if !ok || len(evs) != 4 || evs[0].raw == nil || evs[1].raw == nil {
		t.Fatalf("plain records were decoded: ok=%v %d events", ok, len(evs))
	}
	if text, ok := rawLookup(evs[1].raw, []string{"k8s", "pod"}); !ok || string(text) != "api-1" {
		t.Fatalf("nested field: %q %v", text, ok)
	}
	evs, _ = scanChunk(seeds[1], nil)
	if text, _ := rawLookup(evs[0].raw, []string{"log"}); string(text) != "last" {
		t.Fatalf("duplicate key: %q, want the last", text)
	}
	if evs, _ := scanChunk(seeds[3], nil); evs[0].raw != nil {
		t.Fatal("a record with invalid UTF-8 took the fast path")
	}
}

// FuzzRawPath: on any bytes, the fast path gives what decoding gives.
func FuzzRawPath(f *testing.F) {
	for _, s := range rawSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(checkRawPath)
}
