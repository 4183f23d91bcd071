package local

import (
	"context"
	"fmt"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestDelayHonoured(t *testing.T) {
	srv := newServer(t, status(http.StatusOK))
	q := newQueue(t, tempDB(t), Config{BaseURL: srv.URL})
	run(t, q)
	// A task due in an hour holds nothing up: the tasks behind it are
	// delivered and it stays pending. The order of "now" and "soon" is not
	// asserted: a dispatcher starved for longer than soon's delay (a loaded
	// machine) finds both due at once and may deliver them concurrently.
	blocker := task("blocker", "blocker")
	blocker.Delay = time.Hour
	soon := task("soon", "soon")
	soon.Delay = 150 * time.Millisecond
	enqueued := time.Now()
	enqueue(t, q, blocker, soon, task("now", "now"))

	at := map[string]time.Time{}
	for range 2 {
		d := srv.next(t)
		at[d.Payload.Step] = d.At
	}
	if _, ok := at["now"]; !ok || len(at) != 2 {
		t.Fatalf("delivered %v, want now and soon", at)
	}
	if waited := at["soon"].Sub(enqueued); waited < soon.Delay {
		t.Errorf("delayed task delivered after %s, before its %s delay", waited, soon.Delay)
	}
	// The delivered tasks leave the store once answered; the blocker stays.
	deadline := time.Now().Add(guard)
	for q.Pending() != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("pending = %d, want the hour-delayed task only", q.Pending())
		}
		time.Sleep(time.Millisecond)
	}
	select {
	case d := <-srv.got:
		t.Errorf("unexpected delivery of %s", d.Payload.Step)
	default:
	}
}

func TestConcurrencyLimit(t *testing.T) {
	const limit, tasks = 3, 40
	var mu sync.Mutex
	inflight, peak := 0, 0
	// The first deliveries hold their slots until `limit` are in flight at
	// once (a barrier, not a sleep): the limit is then shown reached, and any
	// delivery beyond it would arrive while they are held.
	full := make(chan struct{})
	var fullOnce sync.Once
	hold, cancel := context.WithTimeout(context.Background(), guard)
	defer cancel()
	srv := newServer(t, func(w http.ResponseWriter, _ *http.Request, _ delivery) {
		mu.Lock()
		inflight++
		peak = max(peak, inflight)
		if inflight >= limit {
			fullOnce.Do(func() { close(full) })
		}
		mu.Unlock()
		select {
		case <-full:
		case <-hold.Done():
		}
		mu.Lock()
		inflight--
		mu.Unlock()
	})
	q := newQueue(t, tempDB(t), Config{BaseURL: srv.URL, Concurrency: limit})
	for i := range tasks {
		enqueue(t, q, task(fmt.Sprintf("t%02d", i), "s"))
	}
	run(t, q)
	seen := map[string]bool{}
	for range tasks {
		seen[srv.next(t).Header.Get(HeaderTaskName)] = true
	}
	srv.none(t, q)
	if len(seen) != tasks {
		t.Errorf("%d distinct tasks delivered, want %d", len(seen), tasks)
	}
	mu.Lock()
	defer mu.Unlock()
	if peak != limit {
		t.Errorf("at most %d deliveries in flight at once, want exactly the limit %d", peak, limit)
	}
}

func TestShutdownLeavesInterruptedTaskPending(t *testing.T) {
	release := make(chan struct{})
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request, _ delivery) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	db := tempDB(t)
	q := newQueue(t, db, Config{BaseURL: srv.URL, ShutdownTimeout: 20 * time.Millisecond})
	stop := run(t, q)
	enqueue(t, q, task("interrupted", "s"))
	srv.next(t)
	stop() // returns once the grace period is over and the delivery cancelled
	if n := q.Pending(); n != 1 {
		t.Fatalf("pending after shutdown = %d, want 1", n)
	}
	close(release)

	// The task is still stored, its interrupted delivery not counted.
	q2 := newQueue(t, db, Config{BaseURL: srv.URL})
	run(t, q2)
	if r, e := counts(srv.next(t)); r != "0" || e != "0" {
		t.Errorf("redelivery: retry count %s, execution count %s, want 0, 0", r, e)
	}
	waitIdle(t, q2)
}

func TestShutdownWaitsForDeliveries(t *testing.T) {
	release := make(chan struct{})
	srv := newServer(t, func(w http.ResponseWriter, _ *http.Request, _ delivery) { <-release })
	q := newQueue(t, tempDB(t), Config{BaseURL: srv.URL, ShutdownTimeout: time.Minute})
	stop := run(t, q)
	enqueue(t, q, task("finishing", "s"))
	srv.next(t)
	stopped := make(chan struct{})
	go func() { stop(); close(stopped) }()
	close(release)
	<-stopped
	if n := q.Pending(); n != 0 {
		t.Errorf("pending after a graceful shutdown = %d, want 0", n)
	}
}

func TestSetBaseURLBeforeRun(t *testing.T) {
	srv := newServer(t, status(http.StatusOK))
	q := newQueue(t, tempDB(t), Config{})
	enqueue(t, q, task("early", "s"))
	q.SetBaseURL(srv.URL)
	run(t, q)
	srv.next(t)
	waitIdle(t, q)
}

// goroutineID is the running goroutine's number, from its stack header
// (test only: it tells which goroutine a delivery ran on).
func goroutineID() string {
	buf := make([]byte, 64)
	buf = buf[:runtime.Stack(buf, false)]
	f := strings.Fields(string(buf))
	if len(f) < 2 {
		return ""
	}
	return f[1]
}

// goroutineRecorder is a transport that records which goroutine made each
// delivery and forwards it.
type goroutineRecorder struct {
	mu  sync.Mutex
	ids map[string]int
}

func (g *goroutineRecorder) RoundTrip(r *http.Request) (*http.Response, error) {
	g.mu.Lock()
	g.ids[goroutineID()]++
	g.mu.Unlock()
	return http.DefaultTransport.RoundTrip(r)
}

// Deliveries run on a pool of at most Concurrency goroutines, reused from
// one delivery to the next (a fresh goroutine per delivery grows a fresh
// stack for the whole step each time).
func TestDeliveriesReuseAtMostConcurrencyWorkers(t *testing.T) {
	const limit, tasks = 2, 30
	srv := newServer(t, func(http.ResponseWriter, *http.Request, delivery) {})
	rec := &goroutineRecorder{ids: map[string]int{}}
	q := newQueue(t, tempDB(t), Config{BaseURL: srv.URL, Concurrency: limit, Client: &http.Client{Transport: rec}})
	run(t, q)
	for i := range tasks {
		enqueue(t, q, task(fmt.Sprintf("t%02d", i), "s"))
		srv.next(t)
	}
	srv.none(t, q)
	rec.mu.Lock()
	defer rec.mu.Unlock()
	n := 0
	for _, c := range rec.ids {
		n += c
	}
	if n != tasks || len(rec.ids) > limit {
		t.Errorf("%d deliveries on %d goroutines, want %d on at most %d", n, len(rec.ids), tasks, limit)
	}
}
