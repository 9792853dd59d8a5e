// Package lifecycle is the one life every long-running part of paw has
// (paw process, paw serve and the out_paw plugin): it starts, becomes
// ready, drains what it holds when asked to stop, and stops.
//
// Each phase is logged once, with how long the part had run, so an
// operator reads the same four lines from each. GET /readyz answers 200
// only while the part is ready. Background tasks stop in order: those that
// feed the part work (watching specs or programs, drift checks) when the
// drain begins, and those that report on its work (metrics reports,
// answer logs) only once it has stopped, so the last report has the final
// counts.
package lifecycle

import (
	"context"
	"log/slog"
	"net/http"
	"sync"
	"time"
)

// Phase is where a part is in its life.
type Phase int

// The phases, in order.
const (
	Starting Phase = iota
	Ready
	Draining
	Stopped
)

func (p Phase) String() string {
	switch p {
	case Starting:
		return "starting"
	case Ready:
		return "ready"
	case Draining:
		return "draining"
	}
	return "stopped"
}

// Lifecycle is one part's life. The zero value is not usable; use New.
type Lifecycle struct {
	name string
	log  *slog.Logger
	born time.Time

	mu          sync.Mutex
	phase       Phase
	feed, watch tasks
}

// tasks are background goroutines stopped together.
type tasks struct {
	cancels []context.CancelFunc
	wg      sync.WaitGroup
}

func (t *tasks) stop() {
	for _, c := range t.cancels {
		c()
	}
	t.wg.Wait()
}

// New starts a life in the Starting phase, logged with attrs (what the
// part is about to run: brokers, folders, programs).
func New(name string, log *slog.Logger, attrs ...any) *Lifecycle {
	if log == nil {
		log = slog.Default()
	}
	l := &Lifecycle{name: name, log: log, born: time.Now()}
	log.Info(name+" starting", attrs...)
	return l
}

// Phase returns the current phase.
func (l *Lifecycle) Phase() Phase {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.phase
}

// Ready marks the part ready, once; later calls, or calls after the drain
// began, do nothing.
func (l *Lifecycle) Ready(attrs ...any) {
	if l.advance(Ready) {
		l.log.Info(l.name+" ready", append([]any{"after", l.since()}, attrs...)...)
	}
}

// Feed runs task until the drain begins: work that feeds the part (a
// program watcher, a spec builder, a drift check).
func (l *Lifecycle) Feed(ctx context.Context, task func(ctx context.Context)) {
	l.start(ctx, &l.feed, task)
}

// Watch runs task until the part has stopped: work that reports on it
// (metrics reports, answer logs), whose last round should see the drain's
// results. Its context does not end with ctx.
func (l *Lifecycle) Watch(ctx context.Context, task func(ctx context.Context)) {
	l.start(context.WithoutCancel(ctx), &l.watch, task)
}

func (l *Lifecycle) start(ctx context.Context, t *tasks, task func(context.Context)) {
	tctx, cancel := context.WithCancel(ctx)
	l.mu.Lock()
	if l.phase == Stopped || t == &l.feed && l.phase == Draining {
		// Too late: the tasks of this kind were already stopped.
		l.mu.Unlock()
		cancel()
		return
	}
	t.cancels = append(t.cancels, cancel)
	t.wg.Add(1)
	l.mu.Unlock()
	go func() {
		defer t.wg.Done()
		task(tctx)
	}()
}

// Drain logs that the part is draining, with why, and stops the feeding
// tasks; the part itself then finishes what it holds. Only the first call
// does anything.
func (l *Lifecycle) Drain(why string) {
	if !l.advance(Draining) {
		return
	}
	l.log.Info(l.name+" draining", "why", why, "after", l.since())
	l.feed.stop()
}

// Stop drains if no one has, stops the reporting tasks (after their last
// round), and logs that the part stopped, with attrs (its totals, say)
// and err if it failed. It returns err.
func (l *Lifecycle) Stop(err error, attrs ...any) error {
	l.Drain("stopping")
	if !l.advance(Stopped) {
		return err
	}
	l.watch.stop()
	attrs = append([]any{"after", l.since()}, attrs...)
	if err != nil {
		l.log.Error(l.name+" stopped", append(attrs, "err", err)...)
	} else {
		l.log.Info(l.name+" stopped", attrs...)
	}
	return err
}

// advance moves to phase p if that is forward, and reports whether it did.
func (l *Lifecycle) advance(p Phase) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if p <= l.phase {
		return false
	}
	l.phase = p
	return true
}

func (l *Lifecycle) since() time.Duration { return time.Since(l.born).Round(time.Millisecond) }

// ReadyHandler serves GET /readyz: 200 "ready" while the part is ready,
// 503 with the phase otherwise (starting, draining or stopped), for load
// balancers and orchestrators.
func (l *Lifecycle) ReadyHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		p := l.Phase()
		if p != Ready {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		w.Write([]byte(p.String() + "\n"))
	})
}

// Every calls tick every interval until ctx ends: the loop of each of
// paw's background tasks that polls, saves, commits or checks. A tick runs
// to its end; the next waits for it.
func Every(ctx context.Context, interval time.Duration, tick func()) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			tick()
		}
	}
}
