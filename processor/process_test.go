package processor_test

import (
	"context"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"syscall"
	"testing"
	"time"

	"github.com/pawlogs/paw/internal/devbroker"
	"github.com/pawlogs/paw/processor"
)

// TestMain lets the test binary run a processor as a child process, as
// `paw process` does, so tests can kill it for real.
func TestMain(m *testing.M) {
	if cfg := os.Getenv("PAW_TEST_PROCESS_CONFIG"); cfg != "" {
		os.Exit(runChild(cfg))
	}
	os.Exit(m.Run())
}

func runChild(config string) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	p, err := processor.Open(config, "", processor.Options{Logger: log})
	if err != nil {
		log.Error("open", "err", err)
		return 1
	}
	defer p.Close()
	if err := p.Run(ctx); err != nil {
		return 1
	}
	return 0
}

func startChild(t *testing.T, config string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "PAW_TEST_PROCESS_CONFIG="+config)
	if testing.Verbose() {
		cmd.Stderr = os.Stderr
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return cmd
}

func TestKillAndRestart(t *testing.T) {
	const n = 60_000
	s := newSetup(t, textPipeline, "", devbroker.Config{})
	addr := s.broker.Addr()
	produce(t, client(t, addr), 0, n, 4, textValue)

	first := startChild(t, s.config)
	consumeUntil(t, addr, outputTopics, time.Minute, func(c *consumed) bool { return c.total() >= n/4 })
	if err := first.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	first.Wait()

	second := startChild(t, s.config)
	c := consumeUntil(t, addr, outputTopics, 2*time.Minute, func(c *consumed) bool { return c.distinct() >= n })
	dups := delivery(t, c, n, destFor)
	t.Logf("SIGKILL mid-stream, then restart: all %d records delivered, %d duplicates", n, dups)

	// SIGTERM drains, commits and exits 0 in bounded time ...
	if err := second.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	exited := make(chan error, 1)
	go func() { exited <- second.Wait() }()
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("processor exited with %v after SIGTERM, want 0", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("processor still running 20s after SIGTERM")
	}
	t.Logf("SIGTERM to exit: %v", time.Since(start).Round(time.Millisecond))

	// ... so a restart finds nothing left to redo.
	before := c.total()
	third := startChild(t, s.config)
	time.Sleep(4 * time.Second)
	third.Process.Signal(syscall.SIGTERM)
	third.Wait()
	after := readAll(t, addr, outputTopics, time.Second)
	if extra := after.total() - before; extra != 0 {
		t.Fatalf("a restart after a clean shutdown re-produced %d records", extra)
	}
}
