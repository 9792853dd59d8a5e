package processor_test

import (
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pawlogs/paw/internal/devbroker"
	"github.com/pawlogs/paw/internal/testkit"
	"github.com/pawlogs/paw/processor"
	"github.com/pawlogs/paw/runtime"
)

// trickle produces [from, to) in small chunks until done, so records keep
// arriving while the test changes something.
func trickle(t *testing.T, addr string, from, to int, value func(int) []byte) (wait func()) {
	cl := client(t, addr)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for lo := from; lo < to; lo += 1000 {
			produce(t, cl, lo, min(lo+1000, to), 4, value)
			time.Sleep(5 * time.Millisecond)
		}
	}()
	return wg.Wait
}

func TestHotReloadDuringTraffic(t *testing.T) {
	const n = 60_000
	s := newSetup(t, textPipeline, "", devbroker.Config{})
	r := startProcessor(t, s)
	oldID := r.pl.ProgramIDs()["errs"]
	next := testPrograms(t, 7)["errs"]
	newID := runtime.ArtifactID(next)
	wait := trickle(t, s.broker.Addr(), 0, n, textValue)
	consumeUntil(t, s.broker.Addr(), outputTopics, time.Minute, func(c *consumed) bool { return c.total() >= n/4 })
	writeFile(t, filepath.Join(s.dir, "errs.paw"), next)
	wait()
	c := consumeUntil(t, s.broker.Addr(), outputTopics, time.Minute, func(c *consumed) bool { return c.total() >= n })
	r.shutdown(t)
	if dups := delivery(t, c, n, destFor); dups != 0 {
		t.Fatalf("%d duplicates", dups)
	}
	ids := map[string]int{}
	for _, rec := range c.byTopic["alerts"] {
		ids[header(rec, "paw-errs-id")]++
	}
	if ids[oldID] == 0 || ids[newID] == 0 || len(ids) != 2 {
		t.Fatalf("alerts by program ID: %v; want both %s and %s", ids, oldID[:12], newID[:12])
	}
	// Once a partition has seen the new program, the old one never returns.
	switched := map[int32]bool{}
	for _, rec := range c.byTopic["alerts"] {
		id := header(rec, "paw-errs-id")
		if id == newID {
			switched[rec.Partition] = true
		} else if switched[rec.Partition] {
			t.Fatalf("partition %d went back to the old program", rec.Partition)
		}
	}
	t.Logf("alerts tagged by the old program: %d, by the new: %d", ids[oldID], ids[newID])
	// The new ID is in the metrics too, and the old one is gone.
	if r.metric(t, "paw_program_info", map[string]string{"program": "errs", "id": newID}) != 1 ||
		r.metric(t, "paw_program_info", map[string]string{"id": oldID}) != -1 ||
		r.metric(t, "paw_program_reloads_total", map[string]string{"program": "errs", "result": "ok"}) != 1 {
		t.Fatal("paw_program_info / paw_program_reloads_total do not show the reload")
	}
}

func TestRebalanceTwoProcessors(t *testing.T) {
	const n = 80_000
	s := newSetup(t, textPipeline, "", devbroker.Config{})
	a := startProcessor(t, s)
	wait := trickle(t, s.broker.Addr(), 0, n, textValue)
	consumeUntil(t, s.broker.Addr(), outputTopics, time.Minute, func(c *consumed) bool { return c.total() >= n/5 })
	b := startProcessor(t, s) // joins mid-stream: the group rebalances
	wait()
	c := consumeUntil(t, s.broker.Addr(), outputTopics, 2*time.Minute, func(c *consumed) bool { return c.distinct() >= n })
	time.Sleep(500 * time.Millisecond) // let commits land before reading stats
	sa, sb := a.p.Stats(), b.p.Stats()
	a.shutdown(t)
	b.shutdown(t)
	dups := delivery(t, c, n, destFor)
	t.Logf("two processors: a fetched %d, b fetched %d; %d duplicates of %d records", sa.Fetched, sb.Fetched, dups, n)
	if sa.Fetched == 0 || sb.Fetched == 0 {
		t.Fatalf("one processor got no partitions: a %d, b %d", sa.Fetched, sb.Fetched)
	}
}

func TestBrokerRestart(t *testing.T) {
	const n = 40_000
	dataDir := t.TempDir()
	s := newSetup(t, textPipeline, "", devbroker.Config{DataDir: dataDir})
	addr := s.broker.Addr()
	r := startProcessor(t, s)
	// Records keep coming at about 25,000/s; the producer (franz-go) waits
	// out the broker's absence.
	fed := make(chan struct{})
	go func() {
		defer close(fed)
		cl := client(t, addr)
		for lo := 0; lo < n; lo += 500 {
			produce(t, cl, lo, lo+500, 4, textValue)
			time.Sleep(20 * time.Millisecond)
		}
	}()
	consumeUntil(t, addr, outputTopics, time.Minute, func(c *consumed) bool { return c.total() >= n/4 })
	for deadline := time.Now().Add(time.Minute); r.p.Stats().Commits < 1; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("no commit within a minute")
		}
	}
	before := r.p.Stats()
	s.broker.Close()
	time.Sleep(time.Second)
	b, err := devbroker.Start(devbroker.Config{Listen: addr, DataDir: dataDir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	<-fed
	c := consumeUntil(t, addr, outputTopics, 2*time.Minute, func(c *consumed) bool { return c.distinct() >= n })
	st := r.p.Stats()
	r.shutdown(t)
	dups := delivery(t, c, n, destFor)
	t.Logf("broker down for 1s after %d records were fetched (%d uncommitted at the last commit): %d records, %d duplicates, %d rewinds",
		before.Fetched, before.Uncommitted, n, dups, st.Rewinds)
	// The group resumed from the commits kept in the broker's data folder,
	// not from the start.
	if int64(dups) >= before.Fetched {
		t.Fatalf("%d duplicates: everything before the restart was processed again", dups)
	}
}

// TestBrokerDownAtStart: the processor says why it is idle, keeps trying,
// and processes everything once the broker appears.
func TestBrokerDownAtStart(t *testing.T) {
	const n = 3000
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	s := newSetup(t, textPipeline, "", devbroker.Config{})
	writeFile(t, s.config, []byte(strings.Replace(string(testkit.ReadFile(t, s.config)), s.broker.Addr(), addr, 1)))
	s.broker.Close()
	var logs testkit.LockedBuffer
	r := startProcessorWith(t, s, slog.New(slog.NewTextHandler(&logs, nil)))
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(logs.String(), "brokers not ready; retrying"); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no clear message while the broker is down:\n%s", logs.String())
		}
	}
	// Not ready while no broker answers; ready once one does.
	if code, body := readyz(r.p); code != 503 || body != "starting" {
		t.Fatalf("/readyz with the broker down: %d %q", code, body)
	}
	b, err := devbroker.Start(devbroker.Config{Listen: addr, Topics: []string{"in:4", "alerts:4", "app:2", "dropped:1", "dlq:1"}})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	produce(t, client(t, addr), 0, n, 4, textValue)
	c := consumeUntil(t, addr, outputTopics, time.Minute, func(c *consumed) bool { return c.distinct() >= n })
	if code, body := readyz(r.p); code != 200 || body != "ready" {
		t.Fatalf("/readyz once the broker answered: %d %q", code, body)
	}
	r.shutdown(t)
	if code, body := readyz(r.p); code != 503 || body != "stopped" {
		t.Fatalf("/readyz after the shutdown: %d %q", code, body)
	}
	for _, phase := range []string{"processor starting", "processor ready", "processor draining", "processor stopped"} {
		if strings.Count(logs.String(), `msg="`+phase) != 1 {
			t.Errorf("want one %q line in the log", phase)
		}
	}
	delivery(t, c, n, destFor)
	line := logs.String()[strings.Index(logs.String(), "brokers not ready"):]
	t.Logf("while the broker was down: %s", line[:strings.Index(line, "\n")])
}

// readyz asks the processor's GET /readyz.
func readyz(p *processor.Processor) (int, string) {
	rec := httptest.NewRecorder()
	p.ReadyHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
	return rec.Code, strings.TrimSpace(rec.Body.String())
}

// TestStopWhileBrokersAreDown: SIGTERM while the processor waits for its
// brokers is a clean stop.
func TestStopWhileBrokersAreDown(t *testing.T) {
	s := newSetup(t, textPipeline, "", devbroker.Config{})
	s.broker.Close()
	var logs testkit.LockedBuffer
	r := startProcessorWith(t, s, slog.New(slog.NewTextHandler(&logs, nil)))
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(logs.String(), "brokers not ready"); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("no brokers-not-ready message")
		}
	}
	r.shutdown(t) // fails the test if Run returns an error
}
