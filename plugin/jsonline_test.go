package plugin

import (
	"bytes"
	"encoding/json"
	"math"
	"testing"
	"time"

	"github.com/pawlogs/paw/runtime"
)

// appendLine must produce exactly what encoding/json produces for outLine.
func TestAppendLineMatchesEncodingJSON(t *testing.T) {
	recs := []map[interface{}]interface{}{
		{"log": []byte("plain"), "n": int64(-3), "u": uint64(1 << 63), "f": 0.1, "tiny": 1e-9, "huge": 1e22, "b": true, "nil": nil},
		{"log": []byte("quotes \" back \\ <tag> & \n\t\r \x01 \x7f é \u2028 \xff\xfe"), "list": []interface{}{int64(1), []byte("x"), map[interface{}]interface{}{"k": 2.5}}},
		{"kubernetes": map[interface{}]interface{}{"labels": map[interface{}]interface{}{"app": []byte("orders")}, "pod": []byte("api-1")}},
		{},
	}
	tags := []runtime.Tag{{Program: "z", Label: "ok", Score: 0.123456789, ID: "id1"}, {Program: "a", Label: "error", Score: 1e-7, ID: "id2"}, {Program: "m", Label: "error", Score: 1, ID: "id3", By: runtime.TagByTeacher}}
	ts := time.Date(2026, 11, 25, 10, 0, 0, 120000000, time.FixedZone("x", 3600))
	for i, rec := range recs {
		for _, tg := range [][]runtime.Tag{nil, tags} {
			got := appendLine(nil, ts, "app.log", rec, tg, "dest")
			l := outLine{Timestamp: stamp(ts), Tag: "app.log", Record: jsonMap(rec), Destination: "dest"}
			if tg != nil {
				l.Paw = runtime.TagMap(tg)
			}
			want, err := json.Marshal(l)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("record %d:\n got  %s\n want %s", i, got, want)
			}
		}
	}
	if got := appendValue(nil, math.NaN()); string(got) != "null" {
		t.Fatalf("NaN -> %s", got)
	}
}

func FuzzAppendLine(f *testing.F) {
	f.Add([]byte("log line"), 1.5, int64(3))
	f.Add([]byte("\xff<\u2028>\x00"), 1e-9, int64(-1))
	f.Fuzz(func(t *testing.T, s []byte, fl float64, n int64) {
		if math.IsNaN(fl) || math.IsInf(fl, 0) {
			return
		}
		rec := map[interface{}]interface{}{"log": s, "f": fl, "n": n, string(s): []interface{}{s}}
		got := appendLine(nil, time.Unix(n%1e10, 0), string(s), rec, nil, "")
		want, err := json.Marshal(outLine{Timestamp: stamp(time.Unix(n%1e10, 0)), Tag: string(s), Record: jsonMap(rec)})
		if err != nil {
			return
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("\n got  %s\n want %s", got, want)
		}
	})
}
