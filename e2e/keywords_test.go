package e2e

import (
	"context"
	"testing"

	"github.com/pawlogs/paw/compiler"
	"github.com/pawlogs/paw/runtime"
	"github.com/pawlogs/paw/runtime/runtimetest"
)

var describedLabels = map[string]string{
	"error":  "a failure, crash, exception, timeout, refused or lost connection, or data at risk",
	"benign": "routine, informational, successful or already-recovered events",
}

// decide tags texts with one program, through a pipeline as paw runs it.
func decide(t *testing.T, artifact []byte, texts []string) []runtime.Decision {
	t.Helper()
	b := runtimetest.Batcher(t, runtime.BatcherConfig{}, loadProgram(t, runtimetest.Env(t), artifact))
	in := make([][]byte, len(texts))
	for i, s := range texts {
		in[i] = []byte(s)
	}
	res, err := b.Classify(context.Background(), in...)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]runtime.Decision, len(res))
	for i, r := range res {
		out[i] = r.Decisions[0]
	}
	return out
}

// A spec that describes its labels: the compiler decides its test lines as
// paw then decides them, keywords included, and lines of a system its
// examples never showed are decided by the descriptions' words.
func TestDescribedSpec(t *testing.T) {
	spec := &compiler.Spec{Name: "errs", Description: "Is this log line a real error?", Labels: []string{"error", "benign"},
		Positive: "error", LabelDescriptions: describedLabels}
	spec.Examples = []compiler.Example{
		{Text: "[error] mod_jk child workerEnv in error state 6", Label: "error"},
		{Text: "[error] jk2_init() Can't find child 5620 in scoreboard", Label: "error"},
		{Text: "sshd(pam_unix)[19939]: authentication failure; rhost=218.188.2.4", Label: "error"},
		{Text: "kernel: Out of memory: Killed process 4121 (java)", Label: "error"},
		{Text: "[notice] jk2_init() Found child 6725 in scoreboard slot 10", Label: "benign"},
		{Text: "[notice] workerEnv.init() ok /etc/httpd/conf/workers2.properties", Label: "benign"},
		{Text: "session opened for user cyrus by (uid=0)", Label: "benign"},
		{Text: "syslogd 1.4.1: restart.", Label: "benign"},
	}
	// Lines of another system, with the words a keyword filter would see.
	foreign := []compiler.Example{
		{Text: "2015-10-18 18:05:40,322 WARN [LeaseRenewer] org.apache.hadoop.hdfs.LeaseRenewer: Failed to renew lease for [DFSClient_1]", Label: "error"},
		{Text: "2016-05-03 12:01:02,100 ERROR [QuorumPeer] Exception causing close of session 0x14ed93111f20027", Label: "error"},
		{Text: "2015-10-18 18:01:47,978 INFO [main] org.apache.hadoop.mapreduce.v2.app.MRAppMaster: Created MRAppMaster for application", Label: "benign"},
		{Text: "081109 203615 148 INFO dfs.DataNode$PacketResponder: PacketResponder 1 for block blk_38865049064139660 terminating", Label: "benign"},
	}
	spec.Tests = foreign
	res, err := compiler.Compile(context.Background(), spec, nil)
	if err != nil {
		t.Fatal(err)
	}
	m := res.Manifest
	if len(m.Keywords["error"]) == 0 || m.KeywordRates["error"].Hit <= m.KeywordRates["error"].False {
		t.Fatalf("keywords %v, rates %v", m.Keywords, m.KeywordRates)
	}
	texts := make([]string, len(foreign))
	for i, e := range foreign {
		texts[i] = e.Text
	}
	failing := map[string]string{}
	for _, f := range res.Failing {
		failing[f.Text] = f.Got
	}
	for i, d := range decide(t, res.Artifact, texts) {
		compiled := foreign[i].Label
		if got, ok := failing[texts[i]]; ok {
			compiled = got
		}
		if d.Label != compiled {
			t.Errorf("%q: compile decided %s, run %s (score %.3f, novelty %.2f)", texts[i], compiled, d.Label, d.Score, d.Novelty)
		}
		if d.Label != foreign[i].Label {
			t.Errorf("%q: %s (score %.3f, novelty %.2f), want %s", texts[i], d.Label, d.Score, d.Novelty, foreign[i].Label)
		}
	}

	// With no examples at all, the program is its keywords: a keyword
	// filter from the descriptions' words.
	bare := &compiler.Spec{Name: "bare", Description: spec.Description, Labels: spec.Labels, Positive: "error", LabelDescriptions: describedLabels}
	res, err = compiler.Compile(context.Background(), bare, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i, d := range decide(t, res.Artifact, texts) {
		if d.Novelty != 1 || d.Label != foreign[i].Label {
			t.Errorf("without examples %q: %s (score %.3f, novelty %.2f), want %s at novelty 1", texts[i], d.Label, d.Score, d.Novelty, foreign[i].Label)
		}
	}
}
