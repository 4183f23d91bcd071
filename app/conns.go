package app

import (
	"context"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// trackingListener remembers its connections so that those that never
// carried a request can be closed at shutdown.
type trackingListener struct {
	net.Listener
	closed atomic.Bool
	mu     sync.Mutex
	conns  map[*trackedConn]struct{}
}

type trackedConn struct {
	net.Conn
	l    *trackingListener
	used atomic.Bool
}

func newTrackingListener(ln net.Listener) *trackingListener {
	return &trackingListener{Listener: ln, conns: map[*trackedConn]struct{}{}}
}

func (l *trackingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	tc := &trackedConn{Conn: c, l: l}
	l.mu.Lock()
	l.conns[tc] = struct{}{}
	l.mu.Unlock()
	return tc, nil
}

func (l *trackingListener) Close() error {
	l.closed.Store(true)
	return l.Listener.Close()
}

func (l *trackingListener) closeUnused() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for c := range l.conns {
		if !c.used.Load() {
			_ = c.Conn.Close()
		}
	}
}

func (c *trackedConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.used.Store(true)
	}
	return n, err
}

func (c *trackedConn) Close() error {
	c.l.mu.Lock()
	delete(c.l.conns, c)
	c.l.mu.Unlock()
	return c.Conn.Close()
}

// shutdownServer stops srv gracefully: requests in flight finish (their
// bookkeeping does not depend on them anyway), idle keep-alive connections
// close at once, and so do connections that never sent a byte. Without the
// last part http.Server.Shutdown waits for such a connection (a client's
// spare dial) until it has been new for 5 s, and a `serve` with nothing in
// flight sat seconds in Shutdown after SIGTERM.
func shutdownServer(ctx context.Context, srv *http.Server, tl *trackingListener) error {
	done := make(chan error, 1)
	go func() { done <- srv.Shutdown(ctx) }()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		// Shutdown closes the listener first; from then on no connection
		// arrives, and those still unused are closed.
		if tl.closed.Load() {
			tl.closeUnused()
		}
		select {
		case err := <-done:
			return err
		case <-tick.C:
		}
	}
}
