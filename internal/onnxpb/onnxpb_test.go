package onnxpb

import (
	"bytes"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
)

func tiny() []byte {
	g := &Graph{}
	g.Node("Add", "add", []string{"x", "b"}, []string{"y"})
	g.Name("tiny")
	g.Initializer(FloatTensor("b", []int64{2}, []float32{1, 2}))
	g.Input(ValueInfo("x", Float, "batch", 2))
	g.Output(ValueInfo("y", Float, "batch", 2))
	return g.Model("test")
}

// The writer is deterministic, and what it writes reads back as a
// ModelProto: IR version, producer, one graph with the node first, and
// the default opset.
func TestModelLayout(t *testing.T) {
	m := tiny()
	if !bytes.Equal(m, tiny()) {
		t.Fatal("two writes of one graph differ")
	}
	fields := map[protowire.Number][]byte{}
	var ir uint64
	for b := m; len(b) > 0; {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			t.Fatal("bad tag")
		}
		b = b[n:]
		switch typ {
		case protowire.VarintType:
			v, n := protowire.ConsumeVarint(b)
			ir, b = v, b[n:]
		case protowire.BytesType:
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				t.Fatal("bad bytes")
			}
			fields[num], b = v, b[n:]
		default:
			t.Fatalf("unexpected wire type %d", typ)
		}
	}
	if ir != IRVersion || string(fields[2]) != "paw" || string(fields[3]) != "test" || fields[7] == nil || fields[8] == nil {
		t.Fatalf("model fields: ir %d, %q %q, graph %d bytes, opset %d bytes", ir, fields[2], fields[3], len(fields[7]), len(fields[8]))
	}
	num, _, _ := protowire.ConsumeTag(fields[7])
	if num != 1 {
		t.Fatalf("the graph starts with field %d, want its node (1)", num)
	}
}
