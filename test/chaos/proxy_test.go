package chaos

import (
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// proxy is a TCP proxy on 127.0.0.1 in front of target (an emulator or the
// Discord stand-in) that refuses a share of new connections with a reset and
// can reset every open connection at once.
type proxy struct {
	ln     net.Listener
	target string
	d      *dice
	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	wg     sync.WaitGroup
	quit   chan struct{}
	once   sync.Once
	// drop, when set, says for each chunk of the upstream's replies whether
	// to reset both sides instead of forwarding it (the request reached the
	// server; its answer is lost). Set it before traffic flows
	// (newDroppingProxy).
	drop func() bool
	// counters of dropped replies
	// counters
	accepted, refused, resets, dropped atomic.Int64
	calmed                             atomic.Bool
}

func newProxy(t *testing.T, target string, refuseShare float64) *proxy {
	t.Helper()
	return newDroppingProxy(t, target, refuseShare, 0)
}

// newDroppingProxy is newProxy that also drops every dropEvery-th chunk of
// the upstream's replies (0: none) until calm.
func newDroppingProxy(t *testing.T, target string, refuseShare float64, dropEvery int64) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln, target: target, d: newDice(refuseShare, uint64(time.Now().UnixNano())), conns: map[net.Conn]struct{}{}, quit: make(chan struct{})}
	if dropEvery > 0 {
		var chunks atomic.Int64
		p.drop = func() bool { return !p.calmed.Load() && chunks.Add(1)%dropEvery == 0 }
	}
	p.wg.Go(p.accept)
	t.Cleanup(p.close)
	return p
}

func (p *proxy) addr() string { return p.ln.Addr().String() }

func (p *proxy) accept() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		if p.d.roll() != 0 {
			p.refused.Add(1)
			reset(c)
			continue
		}
		p.accepted.Add(1)
		p.wg.Go(func() { p.pipe(c) })
	}
}

func (p *proxy) pipe(c net.Conn) {
	up, err := net.DialTimeout("tcp", p.target, 10*time.Second)
	if err != nil {
		reset(c)
		return
	}
	p.track(c, true)
	p.track(up, true)
	var once sync.Once
	done := func() {
		once.Do(func() { c.Close(); up.Close() })
	}
	go func() { _, _ = io.Copy(up, c); done() }()
	if p.drop == nil {
		_, _ = io.Copy(c, up)
	} else {
		buf := make([]byte, 32<<10)
		for {
			n, err := up.Read(buf)
			if n > 0 && p.drop() {
				p.dropped.Add(1)
				reset(c)
				reset(up)
				break
			}
			if n > 0 {
				if _, werr := c.Write(buf[:n]); werr != nil {
					break
				}
			}
			if err != nil {
				break
			}
		}
	}
	done()
	p.track(c, false)
	p.track(up, false)
}

func (p *proxy) track(c net.Conn, on bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if on {
		p.conns[c] = struct{}{}
	} else {
		delete(p.conns, c)
	}
}

// resetAll resets every open connection (both sides).
func (p *proxy) resetAll() {
	p.mu.Lock()
	conns := make([]net.Conn, 0, len(p.conns))
	for c := range p.conns {
		conns = append(conns, c)
	}
	p.mu.Unlock()
	if len(conns) > 0 {
		p.resets.Add(1)
	}
	for _, c := range conns {
		reset(c)
	}
}

// resetEvery resets all connections every interval until the returned stop
// is called or the proxy closes.
func (p *proxy) resetEvery(interval time.Duration) (stop func()) {
	ch := make(chan struct{})
	var once sync.Once
	p.wg.Go(func() {
		tk := time.NewTicker(interval)
		defer tk.Stop()
		for {
			select {
			case <-ch:
				return
			case <-p.quit:
				return
			case <-tk.C:
				p.resetAll()
			}
		}
	})
	return func() { once.Do(func() { close(ch) }) }
}

// calm stops refusing connections and dropping replies.
func (p *proxy) calm() {
	p.d.off.Store(true)
	p.calmed.Store(true)
}

func (p *proxy) close() {
	p.once.Do(func() { close(p.quit) })
	p.ln.Close()
	p.resetAll()
	p.wg.Wait()
}

// reset closes c with an RST rather than a FIN.
func reset(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = c.Close()
}
