package plugin_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ugorji/go/codec"

	"github.com/pawlogs/paw/compiler"
	"github.com/pawlogs/paw/internal/testkit"
	"github.com/pawlogs/paw/plugin"
	"github.com/pawlogs/paw/runtime"
)

// The tests drive the real out_paw.so through testdata/harness.c, a C
// stand-in for Fluent Bit's Go proxy, built once per test binary.
var build struct {
	dir, so, harness, programs string
}

func TestMain(m *testing.M) {
	code, err := buildAndRun(m)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Exit(code)
}

func buildAndRun(m *testing.M) (int, error) {
	dir, err := os.MkdirTemp("", "out_paw-test-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(dir)
	build.dir = dir
	build.so = filepath.Join(dir, "out_paw.so")
	build.harness = filepath.Join(dir, "harness")
	build.programs = filepath.Join(dir, "programs")
	if out, err := exec.Command("go", "build", "-buildmode=c-shared", "-o", build.so, "github.com/pawlogs/paw/plugin/cmd/out_paw").CombinedOutput(); err != nil {
		return 0, fmt.Errorf("build out_paw.so: %v\n%s", err, out)
	}
	if out, err := exec.Command("gcc", "-Wall", "-O2", "-o", build.harness, "testdata/harness.c", "-ldl", "-lpthread").CombinedOutput(); err != nil {
		return 0, fmt.Errorf("build harness: %v\n%s", err, out)
	}
	if err := compilePrograms(build.programs); err != nil {
		return 0, err
	}
	return m.Run(), nil
}

// compilePrograms compiles the shipped specs (real-error, security-event,
// noise) into dir.
func compilePrograms(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	specs, _ := filepath.Glob("../configs/filters/*.yaml")
	for _, path := range specs {
		spec, err := compiler.LoadSpec(path, compiler.LoadOptions{})
		if err != nil {
			return err
		}
		res, err := compiler.Compile(context.Background(), spec, nil)
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, spec.Name+".paw"), res.Artifact, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// harness is one running harness process: one Fluent Bit.
type harness struct {
	t      testing.TB
	cmd    *exec.Cmd
	in     io.WriteCloser
	reply  *bufio.Reader
	stdout *testkit.LockedBuffer
	stderr *testkit.LockedBuffer
}

func startHarness(t *testing.T) *harness { return startHarnessB(t) }

func startHarnessB(t testing.TB) *harness {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, stdout: &testkit.LockedBuffer{}, stderr: &testkit.LockedBuffer{}}
	h.cmd = exec.Command(build.harness, build.so)
	h.cmd.ExtraFiles = []*os.File{w} // fd 3: replies
	h.cmd.Stdout, h.cmd.Stderr = h.stdout, h.stderr
	if h.in, err = h.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	if err := h.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w.Close()
	h.reply = bufio.NewReader(r)
	t.Cleanup(func() {
		h.in.Close()
		done := make(chan struct{})
		go func() { h.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			h.cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("harness stderr:\n%s", h.stderr.String())
		}
	})
	if got := h.read(); got != "ready" {
		t.Fatalf("harness: %s\n%s", got, h.stderr.String())
	}
	if got := h.do("register"); got != "register 0 type=2 proxy=11 name=paw" {
		t.Fatalf("register: %s", got)
	}
	return h
}

func (h *harness) read() string {
	h.t.Helper()
	type res struct {
		s   string
		err error
	}
	ch := make(chan res, 1)
	go func() {
		s, err := h.reply.ReadString('\n')
		ch <- res{strings.TrimSpace(s), err}
	}()
	select {
	case r := <-ch:
		if r.err != nil {
			h.t.Fatalf("harness reply: %v\nstderr:\n%s", r.err, h.stderr.String())
		}
		return r.s
	case <-time.After(2 * time.Minute):
		h.t.Fatalf("harness did not answer\nstderr:\n%s", h.stderr.String())
	}
	return ""
}

// stderrContains waits briefly for s in the harness's stderr, which
// arrives through a pipe after the reply.
func (h *harness) stderrContains(s string) bool {
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if strings.Contains(h.stderr.String(), s) {
			return true
		}
	}
	return false
}

// do sends one command and returns its reply.
func (h *harness) do(cmd string) string {
	h.t.Helper()
	if _, err := fmt.Fprintln(h.in, cmd); err != nil {
		h.t.Fatal(err)
	}
	return h.read()
}

// par runs commands concurrently and returns their replies, in any order.
func (h *harness) par(cmds ...string) []string {
	h.t.Helper()
	fmt.Fprintln(h.in, "par")
	for _, c := range cmds {
		fmt.Fprintln(h.in, c)
	}
	fmt.Fprintln(h.in, "end")
	var out []string
	for range cmds {
		out = append(out, h.read())
	}
	return out
}

// instance sets properties and initializes instance n; it returns the
// init reply.
func (h *harness) instance(n int, props map[string]string) string {
	h.t.Helper()
	for k, v := range props {
		h.do(fmt.Sprintf("prop %d %s %s", n, k, v))
	}
	return h.do(fmt.Sprintf("init %d", n))
}

// testRecord is what the tests send: seq identifies the record.
func testRecord(seq int) map[string]interface{} {
	lines := []string{
		"ERROR [payment-svc] charge failed for order %d: upstream timeout after 30s",
		"INFO  [orders-api] order %d created for customer 88, total 19.90 EUR",
		"WARN  [auth] sshd[3114]: Failed password for invalid user admin from 203.0.113.%d port 41200 ssh2",
		"DEBUG [worker] heartbeat %d sent to coordinator, next in 3s",
		"FATAL [db] could not connect to postgres at 10.0.4.12:5432: connection refused (attempt %d)",
		"INFO  [gateway] GET /healthz 200 0.%dms",
	}
	return map[string]interface{}{
		"log":        fmt.Sprintf(lines[seq%len(lines)], seq%250),
		"seq":        seq,
		"stream":     "stdout",
		"kubernetes": map[string]interface{}{"pod": fmt.Sprintf("api-%d", seq%3), "labels": map[string]interface{}{"app": "orders"}},
	}
}

var baseTime = time.Date(2026, 11, 25, 10, 0, 0, 123456789, time.UTC)

func eventTime(seq int) time.Time { return baseTime.Add(time.Duration(seq) * time.Millisecond) }

// writeChunks writes chunks of per records, [from, to), into dir, in the
// three timestamp forms Fluent Bit has used, cycling by chunk: EventTime
// with metadata (2.1+), bare EventTime, and integer seconds.
func writeChunks(t testing.TB, dir string, from, to, per int) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	h := plugin.EncodeHandle()
	for lo, c := from, 0; lo < to; lo, c = lo+per, c+1 {
		var buf []byte
		for seq := lo; seq < min(lo+per, to); seq++ {
			encodeForm(t, h, &buf, c%3, eventTime(seq), testRecord(seq))
		}
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("chunk-%06d", lo)), buf, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func encodeForm(t testing.TB, h *codec.MsgpackHandle, buf *[]byte, form int, ts time.Time, rec map[string]interface{}) {
	t.Helper()
	var err error
	switch form {
	case 0:
		err = plugin.EncodeEvent(h, buf, ts, rec)
	case 1:
		err = appendMsgpack(h, buf, []interface{}{plugin.EventTime(ts), rec})
	default:
		err = appendMsgpack(h, buf, []interface{}{uint64(ts.Unix()), rec})
	}
	if err != nil {
		t.Fatal(err)
	}
}

func appendMsgpack(h *codec.MsgpackHandle, buf *[]byte, v interface{}) error {
	var out []byte
	if err := codec.NewEncoderBytes(&out, h).Encode(v); err != nil {
		return err
	}
	*buf = append(*buf, out...)
	return nil
}

// oracle classifies texts in-process with the same pipeline and programs.
func oracle(t *testing.T, pipelinePath string, texts [][]byte) []runtime.Outcome {
	t.Helper()
	pc, err := runtime.LoadPipelineConfig(pipelinePath)
	if err != nil {
		t.Fatal(err)
	}
	pc.ProgramsDir, pc.Input = build.programs, ""
	env, err := runtime.OpenEnv("")
	if err != nil {
		t.Fatal(err)
	}
	defer env.Close()
	pl, err := runtime.OpenPipeline(env, pc, runtime.PipelineOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer pl.Close()
	outs, err := pl.ProcessTexts(context.Background(), texts)
	if err != nil {
		t.Fatal(err)
	}
	return outs
}

func writePipeline(t testing.TB, dir, name, yaml string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// recompile compiles a spec with another seed: same behaviour, new ID.
func recompile(t *testing.T, path string, seed uint64) []byte {
	t.Helper()
	spec, err := compiler.LoadSpec(path, compiler.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	spec.Options.Seed = seed
	res, err := compiler.Compile(context.Background(), spec, nil)
	if err != nil {
		t.Fatal(err)
	}
	return res.Artifact
}
