package runtime

import (
	"context"
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/pawlogs/paw/internal/onnxpb"
	"github.com/pawlogs/paw/runtime/graph"
)

// loopArtifact is the hostile program of the hardening report: an ONNX Loop
// of 2^40 iterations in front of the softmax, so any run of it hangs. It is
// built past DecodeArtifact, whose graph check refuses it, to test the
// defences behind that check.
func loopArtifact(t *testing.T) *Artifact {
	t.Helper()
	body := &onnxpb.Graph{}
	body.Node("Identity", "c", []string{"cond_in"}, []string{"cond_out"})
	body.Node("Identity", "v", []string{"v_in"}, []string{"v_out"})
	body.Name("body")
	body.Input(onnxpb.ValueInfo("i", onnxpb.Int64))
	body.Input(onnxpb.ValueInfo("cond_in", 9))
	body.Input(onnxpb.ValueInfo("v_in", onnxpb.Float, 1, 2))
	body.Output(onnxpb.ValueInfo("cond_out", 9))
	body.Output(onnxpb.ValueInfo("v_out", onnxpb.Float, 1, 2))
	bodyBytes := body.Model("x")
	// Model wraps the body; Loop wants the GraphProto itself (field 7).
	var bodyProto []byte
	for b := bodyBytes; len(b) > 0; {
		num, typ, n := protowire.ConsumeTag(b)
		b = b[n:]
		n = protowire.ConsumeFieldValue(num, typ, b)
		if num == 7 {
			bodyProto, _ = protowire.ConsumeBytes(b)
		}
		b = b[n:]
	}
	var attr []byte
	attr = protowire.AppendString(protowire.AppendTag(attr, 1, protowire.BytesType), "body")
	attr = protowire.AppendBytes(protowire.AppendTag(attr, 6, protowire.BytesType), bodyProto)
	attr = protowire.AppendVarint(protowire.AppendTag(attr, 20, protowire.VarintType), 5)
	var cond []byte
	cond = protowire.AppendVarint(protowire.AppendTag(cond, 2, protowire.VarintType), 9)
	cond = protowire.AppendString(protowire.AppendTag(cond, 8, protowire.BytesType), "cond")
	cond = protowire.AppendBytes(protowire.AppendTag(cond, 9, protowire.BytesType), []byte{1})

	g := &onnxpb.Graph{}
	g.Node("Loop", "spin", []string{"M", "cond", "start"}, []string{"logits"}, attr)
	g.Node("Softmax", "softmax", []string{"logits"}, []string{graph.OutputProbs}, onnxpb.IntAttr("axis", -1))
	g.Initializer(onnxpb.Int64Tensor("M", nil, []int64{1 << 40}))
	g.Initializer(cond)
	g.Initializer(onnxpb.FloatTensor("start", []int64{1, 2}, []float32{0, 0}))
	g.Input(onnxpb.ValueInfo(graph.InputIDs, onnxpb.Int64, "batch", "features"))
	g.Input(onnxpb.ValueInfo(graph.InputWeights, onnxpb.Float, "batch", "features"))
	g.Output(onnxpb.ValueInfo(graph.OutputProbs, onnxpb.Float, "batch", 2))
	return &Artifact{ID: "loop", Manifest: testManifest(), Spec: []byte("name: t\n"), Model: g.Model("x")}
}

func testEnv(t *testing.T) *Env {
	t.Helper()
	env, err := OpenEnv("")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { env.Close() })
	return env
}

// waitFor fails the test instead of hanging it.
func waitFor[T any](t *testing.T, what string, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(time.Minute):
		t.Fatalf("%s did not return", what)
		panic("unreachable")
	}
}

func TestTrialRefusesAGraphThatHangs(t *testing.T) {
	env := testEnv(t)
	done := make(chan error, 1)
	go func() {
		_, err := NewProgram(env, loopArtifact(t), ProgramOptions{TrialTimeout: 200 * time.Millisecond, denseTable: true})
		done <- err
	}()
	err := waitFor(t, "NewProgram", done)
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "trial inference: did not finish within 200ms") {
		t.Fatalf("error %v", err)
	}
}

func TestTrialRefusesScoresThatAreNotProbabilities(t *testing.T) {
	env := testEnv(t)
	w := &graph.Hashnet{Rows: 256, Width: 2, Table: make([]float32, 512), Head: make([]float32, 4),
		Bias: []float32{float32(math.NaN()), 0}}
	model, err := w.Encode("test")
	if err != nil {
		t.Fatal(err)
	}
	m := testManifest()
	data, err := EncodeArtifact(&m, []byte("name: t\n"), model)
	if err != nil {
		t.Fatal(err)
	}
	a, err := DecodeArtifact(data)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NewProgram(env, a, ProgramOptions{}); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "not a probability") {
		t.Fatalf("error %v", err)
	}
}

func TestAbortStopsARunInFlight(t *testing.T) {
	env := testEnv(t)
	p, err := NewProgram(env, loopArtifact(t), ProgramOptions{noTrial: true, denseTable: true})
	if err != nil {
		t.Fatal(err)
	}
	f := p.feat.NewFeatures()
	p.feat.Featurize([]byte("disk failed"), &f)
	done := make(chan error, 1)
	go func() { done <- p.Run([]*Features{&f}, make([]float32, 2)) }()
	time.Sleep(100 * time.Millisecond) // let the run start
	p.Abort()
	if err := waitFor(t, "Run", done); !errors.Is(err, ErrAborted) {
		t.Fatalf("run after Abort: %v", err)
	}
	if err := p.Run([]*Features{&f}, make([]float32, 2)); !errors.Is(err, ErrAborted) {
		t.Fatalf("run after Abort: %v", err)
	}
	closed := make(chan error, 1)
	go func() { closed <- p.Close() }()
	if err := waitFor(t, "Close", closed); err != nil {
		t.Fatal(err)
	}
}

// The shutdown of the hardening report: a batch is stuck in inference and
// its caller has given up; Close must still return.
func TestPipelineCloseAbortsInference(t *testing.T) {
	env := testEnv(t)
	p, err := NewProgram(env, loopArtifact(t), ProgramOptions{noTrial: true, denseTable: true})
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := ParsePipelineConfig("p.yaml", []byte("steps:\n  - tag: {programs: [t]}\n"))
	if err != nil {
		t.Fatal(err)
	}
	pl, err := NewPipeline(cfg, []*Program{p}, BatcherConfig{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	processed := make(chan error, 1)
	go func() {
		_, err := pl.ProcessTexts(ctx, [][]byte{[]byte("disk failed")})
		processed <- err
	}()
	time.Sleep(100 * time.Millisecond)
	cancel() // SIGTERM
	if err := waitFor(t, "Process", processed); !errors.Is(err, context.Canceled) {
		t.Fatalf("Process: %v", err)
	}
	closed := make(chan error, 1)
	go func() { closed <- pl.Close() }()
	if err := waitFor(t, "Pipeline.Close", closed); err != nil {
		t.Fatal(err)
	}
}
