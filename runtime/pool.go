package runtime

import (
	"errors"
	"sync"
)

// errPoolClosed is returned by acquire once the pool is closed.
var errPoolClosed = errors.New("closed")

// sessionPool hands out up to limit ONNX Runtime sessions, creating them on
// demand; callers beyond the limit wait for a release.
type sessionPool[S any] struct {
	create   func() (S, error)
	destroy  func(S) error
	limit    int
	mu       sync.Mutex
	idle     []S
	created  int
	released chan struct{}
	closed   bool
}

// newSessionPool creates the first session right away, so that a model ONNX
// Runtime cannot load is reported when the program loads, not on the first
// record.
func newSessionPool[S any](limit int, create func() (S, error), destroy func(S) error) (*sessionPool[S], error) {
	s, err := create()
	if err != nil {
		return nil, err
	}
	return &sessionPool[S]{create: create, destroy: destroy, limit: max(limit, 1), idle: []S{s}, created: 1, released: make(chan struct{}, 1)}, nil
}

func (p *sessionPool[S]) acquire() (S, error) {
	var zero S
	for {
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			return zero, errPoolClosed
		}
		if n := len(p.idle); n > 0 {
			s := p.idle[n-1]
			p.idle = p.idle[:n-1]
			p.mu.Unlock()
			return s, nil
		}
		if p.created < p.limit {
			p.created++
			p.mu.Unlock()
			s, err := p.create()
			if err != nil {
				p.mu.Lock()
				p.created--
				p.mu.Unlock()
			}
			return s, err
		}
		p.mu.Unlock()
		<-p.released
	}
}

func (p *sessionPool[S]) release(s S) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		p.destroy(s)
		return
	}
	p.idle = append(p.idle, s)
	p.mu.Unlock()
	select {
	case p.released <- struct{}{}:
	default:
	}
}

// shrink destroys the idle sessions; later acquires create them again.
func (p *sessionPool[S]) shrink() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	var errs []error
	for _, s := range p.idle {
		errs = append(errs, p.destroy(s))
		p.created--
	}
	p.idle = nil
	return errors.Join(errs...)
}

// close destroys the idle sessions; sessions in use are destroyed when
// they are released.
func (p *sessionPool[S]) close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil
	}
	p.closed = true
	var errs []error
	for _, s := range p.idle {
		errs = append(errs, p.destroy(s))
	}
	p.idle = nil
	close(p.released)
	return errors.Join(errs...)
}
