package cli

import (
	"context"
	"sync"

	"github.com/pawlogs/paw/runtime"
)

// processParallel scores texts in chunks of chunk records with several
// chunks in flight, so every batcher worker stays busy; outcomes keep the
// input order.
func processParallel(ctx context.Context, pl *runtime.Pipeline, texts [][]byte, chunk int) ([]runtime.Outcome, error) {
	outs := make([]runtime.Outcome, len(texts))
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
	)
	sem := make(chan struct{}, 4*defaultWorkers())
	for lo := 0; lo < len(texts); lo += chunk {
		hi := min(lo+chunk, len(texts))
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			o, err := pl.ProcessTexts(ctx, texts[lo:hi])
			if err != nil {
				mu.Lock()
				if firstErr == nil {
					firstErr = err
				}
				mu.Unlock()
				cancel()
				return
			}
			copy(outs[lo:hi], o)
		}()
	}
	wg.Wait()
	if firstErr == nil {
		firstErr = ctx.Err()
	}
	return outs, firstErr
}
