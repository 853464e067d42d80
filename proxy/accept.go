package proxy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"
)

// ErrServerClosed is returned by Acceptor.Serve after Shutdown. The protocol
// packages re-export it as their own ErrServerClosed.
var ErrServerClosed = errors.New("proxy: server closed")

// Acceptor is the accept loop the database proxies share: it tracks
// listeners and connection goroutines so that Shutdown can stop accepting,
// let sessions finish, and then end them. The zero value is ready to use.
type Acceptor struct {
	mu        sync.Mutex
	listeners map[net.Listener]struct{}
	conns     sync.WaitGroup
	closed    bool
	stop      context.CancelFunc // ends every session of every Serve
}

// Serve accepts clients on ln and runs handle for each in its own goroutine
// until Shutdown (ErrServerClosed) or ctx ends (nil). handle's context ends
// when the session must. A client of a Listen listener is opened (its PROXY
// header read) in that goroutine first; handle never sees a refused one.
func (a *Acceptor) Serve(ctx context.Context, ln net.Listener, handle func(context.Context, net.Conn)) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if !a.track(ln, cancel) {
		return ErrServerClosed
	}
	defer a.untrack(ln)
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	for {
		conn, err := ln.Accept()
		if err != nil {
			return a.acceptError(ctx, err)
		}
		a.conns.Add(1)
		go func() {
			defer a.conns.Done()
			if conn, err := Open(conn); err == nil { // the PROXY header, if ln is from Listen
				handle(ctx, conn)
			}
		}()
	}
}

// acceptError turns an Accept failure into Serve's result; nil means
// keep accepting.
func (a *Acceptor) acceptError(ctx context.Context, err error) error {
	if a.isClosed() {
		return ErrServerClosed
	}
	if ctx.Err() != nil {
		return nil
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return nil
	}
	return fmt.Errorf("accept client: %w", err)
}

// Shutdown stops accepting and waits for live sessions to end until ctx is
// done; then it ends them and waits up to teardown for their credentials to
// be dropped and recordings sealed.
func (a *Acceptor) Shutdown(ctx context.Context, teardown time.Duration) error {
	a.mu.Lock()
	a.closed = true
	for ln := range a.listeners {
		ln.Close()
	}
	stop := a.stop
	a.mu.Unlock()
	done := make(chan struct{})
	go func() { a.conns.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
	}
	if stop != nil {
		stop()
	}
	select {
	case <-done:
		return nil
	case <-time.After(teardown):
		return fmt.Errorf("shut down proxy: sessions still ending: %w", ctx.Err())
	}
}

func (a *Acceptor) track(ln net.Listener, cancel context.CancelFunc) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return false
	}
	if a.listeners == nil {
		a.listeners = map[net.Listener]struct{}{}
	}
	a.listeners[ln] = struct{}{}
	prev := a.stop
	a.stop = func() {
		cancel()
		if prev != nil {
			prev()
		}
	}
	return true
}

func (a *Acceptor) untrack(ln net.Listener) {
	a.mu.Lock()
	delete(a.listeners, ln)
	a.mu.Unlock()
}

func (a *Acceptor) isClosed() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.closed
}
