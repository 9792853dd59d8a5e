package teacher

import (
	"context"
	"sync"
)

// LabelEach asks about every line, with at most concurrency calls in
// flight, and hands each answer to done, one call of done at a time, in
// the order the answers come. A done that returns false stops the asking,
// as ctx ending does; calls in flight still finish and are handed over.
// It returns once every call it started has.
func (c *Client) LabelEach(ctx context.Context, lines []string, concurrency int, done func(i int, a Answer, err error) bool) {
	var (
		mu      sync.Mutex
		stopped bool
		wg      sync.WaitGroup
	)
	jobs := make(chan int)
	for w := 0; w < max(concurrency, 1); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				mu.Lock()
				stop := stopped
				mu.Unlock()
				if stop || ctx.Err() != nil {
					continue // handed over before the stop: not asked
				}
				a, err := c.Label(ctx, lines[i])
				mu.Lock()
				if !done(i, a, err) {
					stopped = true
				}
				mu.Unlock()
			}
		}()
	}
feed:
	for i := range lines {
		mu.Lock()
		stop := stopped
		mu.Unlock()
		if stop || ctx.Err() != nil {
			break
		}
		select {
		case jobs <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(jobs)
	wg.Wait()
}
