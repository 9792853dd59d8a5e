package processor_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pawlogs/paw/internal/devbroker"
	"github.com/pawlogs/paw/processor"
)

// TestKcatInterop drives the processor with kcat (librdkafka), a client
// independent of both kafka-go and franz-go: kcat produces the input and
// reads back the routed topics and the DLQ.
func TestKcatInterop(t *testing.T) {
	kcat, err := exec.LookPath("kcat")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("kcat is missing: .ci/run installs it")
		}
		t.Skip("kcat is not installed (apt-get install kcat; .ci/run installs it)")
	}
	const n = 3000
	s := newSetup(t, jsonPipeline, "", devbroker.Config{})
	addr := s.broker.Addr()
	var in bytes.Buffer
	for seq := 0; seq < n; seq++ {
		v := []byte(fmt.Sprintf("not json %d", seq))
		if seq%10 != 9 {
			v, _ = json.Marshal(map[string]string{"log": lineFor(seq)})
		}
		fmt.Fprintf(&in, "%d|%s\n", seq, v)
	}
	cmd := exec.Command(kcat, "-P", "-b", addr, "-t", "in", "-K", "|", "-H", "origin=kcat")
	cmd.Stdin = &in
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("kcat -P: %v\n%s", err, out)
	}
	r := startProcessor(t, s)
	consumeUntil(t, addr, outputTopics, time.Minute, func(c *consumed) bool { return c.total() >= n })
	r.shutdown(t)

	counts := map[string]int{}
	for _, topic := range outputTopics {
		out, err := exec.Command(kcat, "-C", "-b", addr, "-t", topic, "-o", "beginning", "-e", "-q",
			"-f", "%k\t%h\t%s\n").CombinedOutput()
		if err != nil {
			t.Fatalf("kcat -C %s: %v\n%s", topic, err, out)
		}
		for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			if line == "" {
				continue
			}
			parts := strings.SplitN(line, "\t", 3)
			if len(parts) != 3 {
				t.Fatalf("kcat line %q", line)
			}
			seq, err := strconv.Atoi(parts[0])
			if err != nil {
				t.Fatalf("kcat key %q", parts[0])
			}
			want := destFor(seq)
			if seq%10 == 9 {
				want = "dlq"
			}
			if topic != want {
				t.Fatalf("record %d in %s, want %s", seq, topic, want)
			}
			hs := parts[1]
			if !strings.Contains(hs, "origin=kcat") {
				t.Fatalf("record %d lost its headers: %s", seq, hs)
			}
			switch topic {
			case "dlq":
				if !strings.Contains(hs, processor.HeaderDLQReason+"="+processor.ReasonNotJSON) || !strings.Contains(hs, processor.HeaderSourceTopic+"=in") {
					t.Fatalf("dead letter %d headers: %s", seq, hs)
				}
			case "alerts":
				if !strings.Contains(parts[2], `"paw":{"errs":{"label":"error"`) {
					t.Fatalf("alert %d not tagged: %s", seq, parts[2])
				}
			}
			counts[topic]++
		}
	}
	t.Logf("read back with kcat: %v", counts)
	if total := counts["alerts"] + counts["app"] + counts["dropped"] + counts["dlq"]; total != n || counts["dlq"] != n/10 {
		t.Fatalf("kcat read %v, want %d records with %d dead letters", counts, n, n/10)
	}
}
